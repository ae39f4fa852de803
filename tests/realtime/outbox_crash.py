"""Helper of test_outbox_relay_servers: save a product (its receiver publishes a ``user:activity``
notification to ``staff``) and die by SIGKILL right after commit, before any publish could run.

``python tests/realtime/outbox_crash.py HANDLE`` with DATABASE_URL, REDIS_URL and the layer prefix
in the environment, as ``manage.py serve`` gets them.
"""
import os
from pathlib import Path
import signal
import sys

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oda_realtime.settings")

import django  # noqa: E402

django.setup()

from django.db import transaction  # noqa: E402

from inventory.models import Product  # noqa: E402

with transaction.atomic():
    # Registered first, so it runs before the publish of the product's receiver would have.
    transaction.on_commit(lambda: os.kill(os.getpid(), signal.SIGKILL))
    Product.objects.create(title=f"Crash Tee {sys.argv[1]}", handle=sys.argv[1])  # the title names this run
print("not reached")
