"""The same ASGI application on uvicorn, the alternative server (docs/benchmarks.md).

uvicorn's WebSocket ``send`` awaits the transport's drain, so without a bound of
our own one client that never reads would stall the hub's fan-out for every other
socket of the process. On such servers each ``/ws/`` socket has a bounded outbox
(``SocketConsumer``) and the Engine.IO session of ``/socket.io/`` queues behind the
transport's buffer (``django_oda_realtime/socketio/carriers.py`` through its outlet, ``django_oda_realtime/server/outlets.py``): for both protocols a reading client keeps
receiving every event, the never-reading one is closed as a slow consumer and its
connection ends, server memory stays bounded.
"""
import asyncio
import json
import time

from channels.db import database_sync_to_async
import pytest
import websockets

from django_oda_realtime import apublish
from django_oda_realtime.conf import rt_settings
from tests.hardening.support import (
    PeakRss, client_frame, command, connected, flood_until_closed, peer_gone, raw_websocket, read_until, receive_event,
    slow_consumer_budget, wait_for,
)
from tests.servers import UvicornProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

ROOM = "inventory:all"
PERM = "inventory.view_inventorylevel"
EVENT_BYTES = 30_000
BATCH = 10
RSS_GROWTH_LIMIT_MB = 8  # measured (2 runs each): closed after 5.1 MB published, server RSS +1-2 MB


async def test_connect_subscribe_and_receive_on_uvicorn(redis_layer, redis_url, layer_prefix, make_user, token):
    user = await database_sync_to_async(make_user)(perms=[PERM])
    with UvicornProcess(redis_url=redis_url, layer_prefix=layer_prefix) as server:
        ws = await connected(server, token(user))
        try:
            assert ws.connected_frame["data"]["username"] == user.username
            reply = await command(ws, "subscribe:inventory", {})
            assert reply["data"]["rooms"] == [ROOM]
            await apublish("inventory:updated", {"available": 7}, [ROOM])
            frame = await receive_event(ws, "inventory:updated")
            assert frame["data"] == {"available": 7}
        finally:
            await ws.close()


async def good_client(protocol, server, raw_token):
    """A reading client subscribed to ``inventory:all``: (websocket, frame -> n of a test:bulk event or None)."""
    if protocol == "native":
        ws = await connected(server, raw_token, max_size=None)
        assert (await command(ws, "subscribe:inventory", {}))["data"]["rooms"] == [ROOM]

        def bulk_n(message):
            frame = json.loads(message)
            return frame["data"]["n"] if frame.get("event") == "test:bulk" else None
        return ws, bulk_n
    ws = await websockets.connect(f"{server.ws_url}/socket.io/?EIO=4&transport=websocket", proxy=None,
                                  max_size=None, ping_interval=None, open_timeout=5)
    assert (await ws.recv()).startswith("0{")
    await ws.send("40" + json.dumps({"token": raw_token}))
    assert (await ws.recv()).startswith("40{")
    assert (await ws.recv()).startswith('42["connected"')
    await ws.send('42["subscribe:inventory",{}]')
    assert (await ws.recv()).startswith('42["subscribed"')

    def bulk_n(message):
        return json.loads(message[2:])[1]["data"]["n"] if message.startswith('42["test:bulk"') else None
    return ws, bulk_n


SLOW_PATH = {"native": "/ws/?token={}", "socketio": "/socket.io/?EIO=4&transport=websocket"}
CLOSED_LOG = {"native": "slow_consumer (4008)", "socketio": "Engine.IO session closed (slow consumer"}


@pytest.mark.parametrize("protocol", ["native", "socketio"])
async def test_a_client_that_never_reads_does_not_stall_the_others_on_uvicorn(
    protocol, redis_layer, redis_url, layer_prefix, make_user, token
):
    good_user = await database_sync_to_async(make_user)(perms=[PERM])
    slow_user = await database_sync_to_async(make_user)(perms=[PERM])
    budget = slow_consumer_budget(int(rt_settings.MAX_OUTBOUND_BACKLOG_BYTES), BATCH * EVENT_BYTES)
    with UvicornProcess(redis_url=redis_url, layer_prefix=layer_prefix) as server:
        good, bulk_n = await good_client(protocol, server, token(good_user))
        sock, _ = raw_websocket(server.port, SLOW_PATH[protocol].format(token(slow_user)), rcvbuf=4096)
        if protocol == "socketio":
            sock.sendall(client_frame("40" + json.dumps({"token": token(slow_user)})))
        await wait_for(lambda: f"user={slow_user.pk}" in server.output())
        sock.sendall(client_frame('42["subscribe:inventory",{}]' if protocol == "socketio" else
                                  json.dumps({"event": "subscribe:inventory", "data": {}, "ack": 1})))
        await read_until(sock, b'"rooms":["inventory:all"]')  # subscribed before events are published

        received = []  # n of each test:bulk event the good client got, in order

        async def read_good():
            while True:
                n = bulk_n(await good.recv())
                if n is not None:
                    received.append(n)

        reader = asyncio.create_task(read_good())
        peak = PeakRss(server.proc.pid)
        worst_catch_up = 0.0

        async def caught_up(published):
            # The reading client gets the whole batch promptly, whatever the other one does.
            nonlocal worst_catch_up
            t0 = time.monotonic()
            assert await wait_for(lambda: len(received) == published, timeout=5), (
                f"the reading client got {len(received)} of {published} events: the fan-out stalled")
            worst_catch_up = max(worst_catch_up, time.monotonic() - t0)

        started = time.monotonic()
        try:
            closed_after = await flood_until_closed(
                ROOM, lambda: CLOSED_LOG[protocol] in server.output(), caught_up, event_bytes=EVENT_BYTES,
                batch=BATCH, budget=budget)
            assert await wait_for(lambda: CLOSED_LOG[protocol] in server.output(), timeout=5), server.output()[-3000:]
            assert await wait_for(lambda: peer_gone(sock), timeout=8), "the slow socket was never disconnected"
            assert received == list(range(closed_after // EVENT_BYTES)), "events lost or out of order for the reading client"
        finally:
            peak.stop.set()
            reader.cancel()
            sock.close()
            await good.close()
        print(f"uvicorn slow consumer ({protocol}): closed after {closed_after / 1e6:.1f} MB published "
              f"(budget {budget / 1e6:.1f} MB) in "
              f"{time.monotonic() - started:.1f}s; reading client caught up within {worst_catch_up * 1000:.0f} ms "
              f"per batch of {BATCH}; server RSS {peak.baseline:.0f} MB -> peak {peak.peak:.0f} MB")
        assert closed_after < budget, f"{budget / 1e6:.1f} MB published and the client was never closed"
        assert peak.growth < RSS_GROWTH_LIMIT_MB, f"server RSS grew by {peak.growth:.1f} MB"
