"""Settings of the daphne subprocesses of the Socket.IO tests: the project's, with
``REALTIME`` overrides from the ``SIO_TEST_REALTIME`` environment variable (JSON),
so a test server can have a one-second heartbeat or a small maxPayload."""
import json
import os

from oda_realtime.settings import *  # noqa: F401,F403
from oda_realtime.settings import REALTIME

REALTIME = {**REALTIME, **json.loads(os.environ.get("SIO_TEST_REALTIME", "{}"))}
