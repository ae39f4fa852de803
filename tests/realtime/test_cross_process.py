"""Across processes: daphne as a subprocess on Redis, a real WebSocket client, publish from here."""
import asyncio
import json

from channels.db import database_sync_to_async
import pytest
import websockets

from django_oda_realtime import publish
from tests.servers import ServerProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


async def receive_event(ws, name, timeout=5.0):
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("event") == name:
                return frame


async def command(ws, event, data=None, ack=1, timeout=5.0):
    await ws.send(json.dumps({"event": event, "data": data, "ack": ack}))
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("ack") == ack:
                return frame


@pytest.fixture
def inventory_viewer(make_user):
    return make_user("viewer", perms=["inventory.view_inventorylevel"])


async def test_event_published_in_this_process_reaches_a_client_of_daphne(
    redis_layer, redis_url, layer_prefix, inventory_viewer, token
):
    raw = token(inventory_viewer)
    with ServerProcess(redis_url=redis_url, layer_prefix=layer_prefix) as server:
        async with websockets.connect(f"{server.ws_url}/ws/?token={raw}") as ws:
            connected = await receive_event(ws, "connected")
            assert connected["data"]["username"] == "viewer"
            reply = await command(ws, "subscribe:inventory", {"locationIds": ["4"]})
            assert reply["data"]["rooms"] == ["inventory:location:4"]
            await database_sync_to_async(publish)("inventory:updated", {"available": 12}, ["inventory:location:4"])
            frame = await receive_event(ws, "inventory:updated")
            assert frame["data"] == {"available": 12}
        await asyncio.sleep(0.3)
        log = server.output()
    assert "WSCONNECT /ws/" in log, log
    assert raw not in log and "token=" not in log


async def test_refusal_reason_reaches_a_real_client(redis_url, layer_prefix):
    with ServerProcess(redis_url=redis_url, layer_prefix=layer_prefix) as server:
        async with websockets.connect(f"{server.ws_url}/ws/?token=nonsense") as ws:
            frame = json.loads(await ws.recv())
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
    assert frame["code"] == "token_invalid"
    assert closed.value.rcvd.code == 4002


@pytest.mark.slow
async def test_an_idle_socket_on_the_redis_layers_stays_open_and_hears_events(
    redis_url, layer_prefix, inventory_viewer, token
):
    """docs/design.md#redis-idle-timeout: redis-py 8's 5 s socket timeout killed idle consumers after ~5.8 s (1011).

    Both channels-redis layers at once (one daphne each), to pay the 31 s wait once.
    """
    from django_oda_realtime.events import Event
    from django_oda_realtime.rooms import group_for
    from tests.servers import redis_layers

    raw = token(inventory_viewer)
    layers = redis_layers(redis_url, layer_prefix)
    servers = {
        "pubsub": ServerProcess(redis_url=redis_url, layer_prefix=layer_prefix),
        "core": ServerProcess(
            redis_url=redis_url, layer_prefix=layer_prefix + "c", env={"REALTIME_CHANNEL_LAYER": "core"}
        ),
    }
    try:
        sockets = {}
        for name, server in servers.items():
            server.start()
            ws = await websockets.connect(f"{server.ws_url}/ws/?token={raw}", ping_interval=None)
            await receive_event(ws, "connected")
            await command(ws, "subscribe:inventory")
            sockets[name] = ws
        await asyncio.sleep(31)
        for name, ws in sockets.items():
            event = Event.build("inventory:updated", {"after": "idle", "layer": name}, ["inventory:all"])
            await layers[name].group_send(group_for("inventory:all"), event.to_layer())
            frame = await receive_event(ws, "inventory:updated")
            assert frame["data"] == {"after": "idle", "layer": name}
            await ws.close()
    finally:
        for server in servers.values():
            server.stop()
        await layers["pubsub"].flush()
