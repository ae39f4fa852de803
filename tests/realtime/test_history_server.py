"""Events published through the history reach real clients of real server processes.

A compatibility check of the message the append script PUBLISHes: two daphne processes on Redis,
a WebSocket client on each; two publishers in this process (two Redis connections) publish at once
through ``history.publish``. Today's hub reads the message as before (the added ``"pos"`` is
ignored until issue 13's integration) and both clients get every event, each publisher's in order,
both in the same order. (That positions follow delivery order is asserted where positions are
visible: test_history.py::test_concurrent_publishers_are_seen_in_one_order_by_every_subscriber.)
"""
import asyncio
import json

from channels.db import database_sync_to_async
import pytest
import websockets

from django_oda_realtime.events import Event
from django_oda_realtime.history_redis import RedisHistory
from tests.realtime.test_history import delete_keys, pubsub_layer
from tests.servers import ServerProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

ROOM = "inventory:location:4"


async def subscribed(url: str, raw: str):
    ws = await websockets.connect(f"{url}/ws/?token={raw}")
    async with asyncio.timeout(10):
        while json.loads(await ws.recv()).get("event") != "connected":
            pass
        await ws.send(json.dumps({"event": "subscribe:inventory", "data": {"locationIds": ["4"]}, "ack": 1}))
        while json.loads(await ws.recv()).get("ack") != 1:
            pass
    return ws


async def updates(ws, count: int) -> list[dict]:
    seen = []
    async with asyncio.timeout(30):
        while len(seen) < count:
            frame = json.loads(await ws.recv())
            if frame.get("event") == "inventory:updated":
                seen.append(frame)
    return seen


async def test_two_server_processes_deliver_history_events_in_one_order(redis_url, layer_prefix, make_user, token):
    user = await database_sync_to_async(make_user)("viewer", perms=["inventory.view_inventorylevel"])
    raw = await database_sync_to_async(token)(user)
    layers = [pubsub_layer(redis_url, layer_prefix) for _ in range(2)]
    publishers = [RedisHistory.for_layer(layer) for layer in layers]
    with ServerProcess(redis_url=redis_url, layer_prefix=layer_prefix) as one, \
            ServerProcess(redis_url=redis_url, layer_prefix=layer_prefix) as two:
        sockets = [await subscribed(one.ws_url, raw), await subscribed(two.ws_url, raw)]
        try:
            # Until both hear a probe: both processes' subscriptions are live.
            async with asyncio.timeout(10):
                for ws in sockets:
                    while True:
                        await publishers[0].publish(Event.build("inventory:updated", {"probe": True}, [ROOM]))
                        try:
                            async with asyncio.timeout(0.5):
                                await updates(ws, 1)
                            break
                        except TimeoutError:
                            continue
            await asyncio.sleep(0.5)
            for ws in sockets:  # drop the remaining probes
                try:
                    async with asyncio.timeout(0.3):
                        while True:
                            await ws.recv()
                except TimeoutError:
                    pass

            async def run(history, tag):
                for i in range(100):
                    await history.publish(Event.build("inventory:updated", {"tag": tag, "n": i}, [ROOM]))

            await asyncio.gather(run(publishers[0], "a"), run(publishers[1], "b"))
            seen = [await updates(ws, 200) for ws in sockets]
        finally:
            for ws in sockets:
                await ws.close()
            for history, layer in zip(publishers, layers):
                await history.aclose()
                await layer.flush()
            delete_keys(redis_url, layer_prefix)
    orders = [[frame["id"] for frame in frames] for frames in seen]
    assert orders[0] == orders[1]
    for tag in ("a", "b"):
        assert [f["data"]["n"] for f in seen[0] if f["data"].get("tag") == tag] == list(range(100))
