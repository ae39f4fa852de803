"""Socket.IO test fixtures: one daphne subprocess per module (on Redis), users and tokens.

The server runs ``tests.socketio.server_settings`` with fast timers (``SERVER_REALTIME``);
``sio_layer`` points this process's channel layer at the server's, so ``publish()``
here reaches its sockets.
"""
import asyncio
import json
import os
import re
import urllib.request
import uuid

from channels.layers import channel_layers
from django.conf import settings as django_settings
import pytest

from tests.clients import close_clients  # noqa: F401  (autouse: clients left open are closed)
from tests.conftest import require_redis
from tests.servers import ServerProcess

SERVER_REALTIME = {
    "PING_INTERVAL": 1.0,
    "PING_TIMEOUT": 1.0,
    "SOCKETIO_MAX_PAYLOAD": 20_000,
    "SOCKETIO_CONNECT_TIMEOUT": 1.5,
    "MAX_OUTBOUND_BACKLOG_BYTES": 64 * 1024,
    "MAX_CONNECTIONS_PER_USER": 3,
    "AUTH_EXPIRY_WARNING": 1.0,
}
ORIGIN = "https://shop.example.com"  # allowed by ServerProcess's REALTIME_ALLOWED_ORIGINS


def socketio_server(redis_url: str, prefix: str, *, port: int | None = None, realtime: dict | None = None,
                    env: dict | None = None) -> ServerProcess:
    """A daphne subprocess running the project with Socket.IO test settings."""
    return ServerProcess(
        redis_url=redis_url, layer_prefix=prefix, port=port,
        env={
            "DJANGO_SETTINGS_MODULE": "tests.socketio.server_settings",
            # Presence (the per-user cap) counts in Redis: keys of its own, not shared with other test servers.
            "SIO_TEST_REALTIME": json.dumps({**SERVER_REALTIME, "PRESENCE_PREFIX": prefix, **(realtime or {})}),
            **(env or {}),
        },
    )


def use_layer(settings, redis_url: str, prefix: str) -> None:
    """This process publishes on the channel layer of a server started with ``prefix``."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": redis_url, "socket_timeout": 15}], "prefix": prefix},
        }
    }
    channel_layers.backends.clear()


@pytest.fixture(scope="module")
def module_redis_url():
    require_redis(django_settings.TEST_REDIS_URL)
    return django_settings.TEST_REDIS_URL


SIO_METRICS_TOKEN = "sio-tests-" + uuid.uuid4().hex


def metric(server, sample: str, token: str = SIO_METRICS_TOKEN) -> float:
    """The value of an unlabelled ``sample`` on ``server``'s ``/metrics`` now."""
    request = urllib.request.Request(server.url + "/metrics", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        text = response.read().decode()
    match = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.M)
    assert match, f"{sample} is not exposed"
    return float(match.group(1))


def polls_waiting(server) -> float:
    """Long-polling GETs parked on ``server`` now."""
    return metric(server, "oda_realtime_polls_waiting")


async def parked(server, get) -> asyncio.Future:
    """Start ``get`` (a long-polling GET) and return it once the server has parked it."""
    before = await asyncio.to_thread(polls_waiting, server)
    waiting = asyncio.ensure_future(get)
    async with asyncio.timeout(5):
        while await asyncio.to_thread(polls_waiting, server) <= before:
            await asyncio.sleep(0.02)
    return waiting


@pytest.fixture(scope="module")
def sio_server(django_db_setup, module_redis_url):
    server = socketio_server(module_redis_url, f"sio{uuid.uuid4().hex[:10]}",
                             env={"REALTIME_METRICS_TOKEN": SIO_METRICS_TOKEN})
    server.start()
    yield server
    server.stop()
    if os.environ.get("SIO_TEST_SHOW_LOG"):
        print(server.output())


@pytest.fixture
def sio_layer(settings, sio_server, module_redis_url):
    use_layer(settings, module_redis_url, sio_server.layer_prefix)
