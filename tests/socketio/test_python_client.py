"""A second, independent client implementation: python-socketio's AsyncClient against daphne."""
import asyncio

from channels.db import database_sync_to_async
import pytest
import socketio

from tests.conftest import token_for
from tests.domain import make_level

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

PERMS = ["inventory.view_inventorylevel", "inventory.change_inventorylevel"]


class Recorder:
    """An AsyncClient whose events land in queues, by name."""

    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.queues: dict[str, asyncio.Queue] = {}
        self.client.on("*", self._any)
        self.client.on("connect_error", self._connect_error)

    def queue(self, name: str) -> asyncio.Queue:
        return self.queues.setdefault(name, asyncio.Queue())

    async def _any(self, event, *args):
        await self.queue(event).put(args)

    async def _connect_error(self, data):
        await self.queue("connect_error").put(data)

    async def next(self, name: str, timeout: float = 5.0):
        return await asyncio.wait_for(self.queue(name).get(), timeout)


@pytest.fixture
async def recorder():
    rec = Recorder()
    yield rec
    if rec.client.connected:
        await rec.client.disconnect()


@pytest.mark.parametrize("transports", [["polling", "websocket"], ["websocket"]], ids=["polling-then-upgrade", "websocket"])
async def test_async_client_subscribes_receives_a_model_change_and_uses_acks(
    recorder, sio_server, sio_layer, make_user, transports
):
    user = await database_sync_to_async(make_user)(perms=PERMS)
    level = await database_sync_to_async(make_level)(available=10)
    client = recorder.client
    await client.connect(sio_server.url, auth={"token": token_for(user)}, transports=transports, wait_timeout=5)
    welcome, *_offset = await recorder.next("connected")  # the offset of connection state recovery last
    assert welcome["data"]["userId"] == str(user.pk)
    assert welcome["data"]["connectionId"] == client.get_sid()

    reply = await client.call("subscribe:inventory", {"locationIds": [level.location_id]}, timeout=5)
    assert reply == {"data": {"topic": "inventory", "rooms": [f"inventory:location:{level.location_id}"], "refused": []}}

    def restock():
        level.available = 25
        level.save()

    await database_sync_to_async(restock)()  # a plain model save in Django: post_save -> publish
    payload, *_offset = await recorder.next("inventory:updated")  # the offset of connection state recovery last
    assert payload["event"] == "inventory:updated"
    assert (payload["data"]["available"], payload["data"]["previousAvailable"]) == (25, 10)

    reply = await client.call("inventory:update", {"inventoryItemId": level.item_id, "locationId": level.location_id,
                                                   "quantity": 30, "reason": "recount"}, timeout=5)
    assert reply["data"]["available"] == 30
    payload, *_offset = await recorder.next("inventory:updated")  # the offset of connection state recovery last
    assert payload["data"]["available"] == 30 and payload["data"]["userId"] == str(user.pk)

    reply = await client.call("inventory:update", {"inventoryItemId": "item-123", "quantity": 1, "reason": "x"}, timeout=5)
    assert reply["error"]["code"] == "validation_error"
    await client.emit("inventory:update", {"quantity": -1})
    (error,) = await recorder.next("inventory:updateError")
    assert error["code"] == "validation_error" and error["data"]["request"] == {"quantity": -1}
    if transports[0] == "polling":
        for _ in range(50):
            if client.transport() == "websocket":
                break
            await asyncio.sleep(0.05)
        assert client.transport() == "websocket"


async def test_async_client_gets_the_refusal_reason(recorder, sio_server):
    with pytest.raises(socketio.exceptions.ConnectionError):
        await recorder.client.connect(sio_server.url, auth={"token": "garbage"}, wait_timeout=5)
    refusal = await recorder.next("connect_error")
    assert refusal["message"] == "token_invalid"
    assert refusal["data"]["code"] == "token_invalid"
