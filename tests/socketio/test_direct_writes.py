"""``manage.py serve`` takes daphne's direct-write fast path for both protocols (django_oda_realtime/server/outlets.py).

The fast path reads daphne/autobahn/Twisted internals; if a new version changed them, every
outlet would silently fall back to the ASGI ``send`` and only the benchmark would notice.
Here a real server publishes to a ``/ws/`` socket and a ``/socket.io/`` WebSocket, and its
``/metrics`` must count one direct write per delivered event and socket.
"""
import asyncio
import uuid

from channels.db import database_sync_to_async
import pytest

from django_oda_realtime import apublish
from django_oda_realtime.rooms import user_room
from tests.conftest import token_for
from tests.hardening.support import connected as ws_connected
from tests.socketio.conftest import metric, socketio_server, use_layer
from tests.socketio.wire import RawSocket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

METRICS_TOKEN = "direct-writes-" + uuid.uuid4().hex
EVENTS = 5


@pytest.fixture
def server(django_db_setup, settings, redis_url):
    prefix = f"dw{uuid.uuid4().hex[:10]}"
    proc = socketio_server(redis_url, prefix, env={"REALTIME_METRICS_TOKEN": METRICS_TOKEN})
    proc.start()
    use_layer(settings, redis_url, prefix)
    yield proc
    proc.stop()


def direct_writes(server) -> float:
    return metric(server, "oda_realtime_direct_writes_total", METRICS_TOKEN)


@pytest.mark.parametrize("path", ["/ws/", "/socket.io/"])
async def test_events_reach_a_websocket_by_direct_write(server, make_user, path):
    user = await database_sync_to_async(make_user)()
    if path == "/ws/":
        ws = await ws_connected(server, token_for(user))
        receive = ws.recv
    else:
        ws = await RawSocket.open(server.ws_url)
        assert (await ws.connect({"token": token_for(user)})).startswith("40{")
        await ws.event("connected")
        receive = ws.recv
    try:
        before = await asyncio.to_thread(direct_writes, server)
        for i in range(EVENTS):
            await apublish("test:direct", {"n": i}, rooms=[user_room(user.pk)])
        got = 0
        async with asyncio.timeout(10):
            while got < EVENTS:
                if "test:direct" in str(await receive()):
                    got += 1
        after = await asyncio.to_thread(direct_writes, server)
    finally:
        await ws.close()
    assert after - before >= EVENTS
