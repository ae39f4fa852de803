"""The real socket.io-client (npm, package.json) against daphne: both transports, auth, acks, model events, restarts."""
import asyncio
from datetime import timedelta
import uuid

from channels.db import database_sync_to_async
import pytest
from rest_framework_simplejwt.tokens import AccessToken

from tests.conftest import token_for
from tests.domain import make_level
from tests.socketio.conftest import socketio_server, use_layer
from tests.socketio_client.node import NodeClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

PERMS = ["inventory.view_inventorylevel", "inventory.change_inventorylevel"]


@pytest.fixture
async def clients():
    started: list[NodeClient] = []

    async def start(url, options=None, **kwargs) -> NodeClient:
        client = await NodeClient(url, options, **kwargs).start()
        started.append(client)
        return client

    yield start
    for client in started:
        await client.close()


@pytest.mark.parametrize(
    "how", ["default-auth-payload", "websocket-only-header", "polling-only-query"],
)
async def test_socketio_client_connects_subscribes_and_receives_model_changes(clients, sio_server, sio_layer, make_user, how):
    user = await database_sync_to_async(make_user)(perms=PERMS)
    level = await database_sync_to_async(make_level)(available=10)
    raw = token_for(user)
    options = {
        "default-auth-payload": {"auth": {"token": raw}},  # io(url, {auth}): polling first, then the upgrade
        "websocket-only-header": {"transports": ["websocket"], "extraHeaders": {"Authorization": f"Bearer {raw}"}},
        "polling-only-query": {"transports": ["polling"], "query": {"token": raw}},
    }[how]
    client = await clients(sio_server.url, options)

    opened = await client.next("open")
    connect = await client.next("connect")
    welcome = (await client.next("event", "connected"))["args"][0]
    assert welcome["data"]["userId"] == str(user.pk) and welcome["data"]["connectionId"] == connect["id"]
    if how == "default-auth-payload":
        assert opened["transport"] == "polling"
        assert (await client.next("upgrade"))["transport"] == "websocket"
    else:
        assert opened["transport"] == connect["transport"] == options["transports"][0]

    reply = await client.emit("subscribe:inventory", {"locationIds": [str(level.location_id)]}, ack=True)
    assert reply["data"]["rooms"] == [f"inventory:location:{level.location_id}"]

    def sell_two():
        level.available = 8
        level.save()

    await database_sync_to_async(sell_two)()
    updated = (await client.next("event", "inventory:updated"))["args"][0]
    assert set(updated) == {"event", "type", "data", "id", "timestamp"}
    assert (updated["data"]["available"], updated["data"]["delta"]) == (8, -2)

    await client.emit("inventory:update", {"inventoryItemId": "item-123", "quantity": 100, "reason": "Stock adjustment"})
    error = (await client.next("event", "inventory:updateError"))["args"][0]
    assert error["code"] == "validation_error" and error["error"]

    reply = await client.emit("inventory:update", {"inventoryItemId": level.item_id, "locationId": level.location_id,
                                                   "quantity": 3, "reason": "recount"}, ack=True)
    assert reply["data"]["available"] == 3
    assert (await client.next("event", "inventory:updated"))["args"][0]["data"]["available"] == 3
    reply = await client.emit("inventory:reserve", {"inventoryItemId": level.item_id, "quantity": 99, "reason": "x"}, ack=True)
    assert reply["error"]["code"] == "insufficient_stock"


async def test_connect_error_says_why_and_a_retry_with_a_good_token_connects(clients, sio_server, make_user):
    active = await database_sync_to_async(make_user)(perms=PERMS)
    inactive = await database_sync_to_async(make_user)(is_active=False)
    expired = AccessToken.for_user(active)
    expired.set_exp(lifetime=-timedelta(seconds=5))

    client = await clients(sio_server.url, {"auth": {"token": "not-a-token"}})
    refused = await client.next("connect_error")
    assert refused["message"] == "token_invalid" and refused["data"]["code"] == "token_invalid"
    for auth, reason in [({"token": str(expired)}, "token_expired"), ({}, "token_missing"),
                         ({"token": token_for(inactive)}, "user_inactive")]:
        await client.send({"do": "connect", "auth": auth})
        assert (await client.next("connect_error"))["message"] == reason
    await client.send({"do": "connect", "auth": {"token": token_for(active)}})
    await client.next("connect")
    assert (await client.next("event", "connected"))["args"][0]["data"]["userId"] == str(active.pk)


async def test_client_reconnects_after_a_server_restart_on_the_same_port(clients, module_redis_url, settings, make_user):
    user = await database_sync_to_async(make_user)(perms=PERMS)
    server = socketio_server(module_redis_url, f"siorestart{uuid.uuid4().hex[:10]}")
    use_layer(settings, module_redis_url, server.layer_prefix)
    server.start()
    try:
        client = await clients(server.url, {"auth": {"token": token_for(user)}, "reconnectionDelay": 100,
                                            "reconnectionDelayMax": 300}, resubscribe=["subscribe:inventory", {}])
        await client.next("connect")
        assert (await client.next("resubscribed"))["reply"]["data"]["rooms"] == ["inventory:all"]
        server.stop()
        assert (await client.next("disconnect"))["reason"] in ("transport close", "transport error")
        server = socketio_server(module_redis_url, server.layer_prefix, port=server.port)
        server.start()
        await client.next("reconnect", timeout=15)
        await client.next("connect")
        assert (await client.next("resubscribed"))["reply"]["data"]["rooms"] == ["inventory:all"]
        level = await database_sync_to_async(make_level)(available=4)

        def restock():
            level.available = 40
            level.save()

        await database_sync_to_async(restock)()
        assert (await client.next("event", "inventory:updated"))["args"][0]["data"]["available"] == 40
    finally:
        server.stop()
