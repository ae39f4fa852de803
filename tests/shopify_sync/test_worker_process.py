"""End to end: ``manage.py serve`` stores a signed webhook, ``manage.py realtime_worker`` applies it."""
from datetime import UTC, datetime
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from inventory.models import Location
from shopify_sync.models import WebhookDelivery
from shopify_sync.webhooks import sign
from tests.servers import ROOT, ServerProcess, database_url

SECRET = "whsec-process-0123456789"


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
@pytest.mark.slow
def test_the_server_stores_and_the_worker_process_applies(layer_prefix):
    env = {"SHOPIFY_WEBHOOK_SECRET": SECRET}
    server = ServerProcess(redis_url=None, layer_prefix=layer_prefix, env=env).start()
    worker_env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    worker_env.update(DJANGO_SETTINGS_MODULE="oda_realtime.settings", DATABASE_URL=database_url(),
                      PYTHONUNBUFFERED="1", **env)
    worker_env.pop("REDIS_URL", None)
    worker = subprocess.Popen([sys.executable, "manage.py", "realtime_worker"], cwd=ROOT, env=worker_env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        body = json.dumps({"id": 655441491, "name": "Oslo Store", "active": True, "address1": "Karl Johans gate 1",
                           "city": "Oslo", "updated_at": "2025-01-10T09:00:00-05:00"}).encode()
        request = urllib.request.Request(f"{server.url}/shopify/webhooks/", data=body, method="POST", headers={
            "Content-Type": "application/json", "X-Shopify-Topic": "locations/create",
            "X-Shopify-Hmac-Sha256": sign(body, SECRET), "X-Shopify-Event-Id": "evt-process",
            "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(), "Host": "localhost"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read()) == {"status": "accepted"}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not WebhookDelivery.objects.filter(status="processed").exists():
            time.sleep(0.1)
        delivery = WebhookDelivery.objects.get()
        assert (delivery.status, delivery.attempts) == ("processed", 1), delivery.error
        assert Location.objects.get(shopify_id=655441491).name == "Oslo Store"
    finally:
        worker.send_signal(signal.SIGTERM)
        output = worker.communicate(timeout=15)[0]
        server.stop()
    assert worker.returncode == 0, output
