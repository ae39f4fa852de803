"""``inventory:update`` and ``inventory:reserve`` from a socket: results, broadcasts, error events."""
from channels.db import database_sync_to_async as db
import pytest

from inventory.models import InventoryLevel, Reservation, StockMovement
from tests.domain import events_named, make_level, make_location, pending, subscribe

pytestmark = pytest.mark.django_db(transaction=True)

VIEW, CHANGE = "inventory.view_inventorylevel", "inventory.change_inventorylevel"


@pytest.fixture
async def level():
    return await db(make_level)(10, threshold=2)


@pytest.fixture
async def editor(make_user, token, connect):
    user = await db(make_user)(perms=[VIEW, CHANGE])
    sock = await connect(token(user))
    sock.user = user
    return sock


@pytest.fixture
async def watcher(make_user, token, connect):
    sock = await connect(token(await db(make_user)(perms=[VIEW])))
    await subscribe(sock, "inventory", rooms=["inventory:all"])
    return sock


def state(level):
    row = InventoryLevel.objects.get(pk=level.pk)
    return row.available, row.reserved, StockMovement.objects.count(), Reservation.objects.count()


async def test_update_sets_the_quantity_and_everyone_watching_sees_it(level, editor, watcher):
    reply = await editor.command("inventory:update", {
        "inventoryItemId": str(level.item_id), "quantity": 42, "reason": "Cycle count", "expectedQuantity": 10})
    assert reply["data"] == {"inventoryItemId": str(level.item_id), "locationId": str(level.location_id),
                             "available": 42, "reserved": 0}
    data = (await watcher.receive_event("inventory:updated"))["data"]
    assert (data["available"], data["previousAvailable"], data["reason"], data["userId"]) == (
        42, 10, "Cycle count", str(editor.user.pk))


async def test_reserve_is_idempotent_with_a_request_id(level, editor, watcher):
    request = {"inventoryItemId": level.item_id, "locationId": level.location_id, "quantity": 3,
               "reason": "Checkout", "requestId": "c0ffee-1"}
    first = (await editor.command("inventory:reserve", request))["data"]
    again = (await editor.command("inventory:reserve", request))["data"]
    assert (first["duplicate"], again["duplicate"]) == (False, True)
    assert again["reservationId"] == first["reservationId"] and first["quantity"] == 3
    frames = await pending(watcher)
    assert len(events_named(frames, "inventory:reservation")) == 1
    assert await db(state)(level) == (10, 3, 1, 1)


BAD = [
    # (command, data (ITEM/LOC replaced), expected code)
    ("inventory:update", {"inventoryItemId": "ITEM", "quantity": -5, "reason": "x"}, "validation_error"),
    ("inventory:update", {"inventoryItemId": "ITEM", "quantity": 2.5, "reason": "x"}, "validation_error"),
    ("inventory:update", {"inventoryItemId": "ITEM", "quantity": "7", "reason": "x"}, "validation_error"),
    ("inventory:update", {"inventoryItemId": "ITEM", "quantity": 7, "reason": "x", "sneaky": 1}, "validation_error"),
    ("inventory:update", {"inventoryItemId": "not-an-id", "quantity": 7, "reason": "x"}, "validation_error"),
    ("inventory:update", "a string", "validation_error"),
    ("inventory:update", {"inventoryItemId": "999999", "quantity": 7, "reason": "x"}, "not_found"),
    ("inventory:update", {"inventoryItemId": "ITEM", "locationId": "999999", "quantity": 7, "reason": "x"},
     "not_found"),
    ("inventory:update", {"inventoryItemId": "ITEM", "quantity": 7, "reason": "x", "expectedQuantity": 3},
     "conflict"),
    ("inventory:reserve", {"inventoryItemId": "ITEM", "quantity": 0, "reason": "x"}, "validation_error"),
    ("inventory:reserve", {"inventoryItemId": "ITEM", "quantity": 11, "reason": "x"}, "insufficient_stock"),
    ("inventory:reserve", {"inventoryItemId": "999999", "quantity": 1, "reason": "x"}, "not_found"),
    ("inventory:reserve", {"inventoryItemId": "ITEM", "locationId": "LOC2", "quantity": 1, "reason": "x"},
     "not_found"),
    ("inventory:reserve", {"inventoryItemId": "ITEM", "quantity": 1, "reason": "x", "requestId": "a b"},
     "validation_error"),
]


def fill(data, level, other_location):
    if not isinstance(data, dict):
        return data
    names = {"ITEM": str(level.item_id), "LOC2": str(other_location.pk)}
    return {k: names.get(v, v) if isinstance(v, str) else v for k, v in data.items()}


@pytest.mark.parametrize("command,data,code", BAD, ids=[f"{c}-{code}-{i}" for i, (c, _, code) in enumerate(BAD)])
async def test_failures_are_error_events_and_write_nothing(level, editor, watcher, command, data, code):
    other_location = await db(make_location)()
    data = fill(data, level, other_location)
    before = await db(state)(level)
    await editor.send(command, data)
    error_event = "inventory:updateError" if command == "inventory:update" else "inventory:reservationError"
    frame = await editor.receive_event(error_event)
    assert frame["data"]["code"] == code and frame["code"] == code
    assert frame["data"]["request"] == data
    assert isinstance(frame["data"]["error"], str) and frame["data"]["error"] == frame["error"]
    assert await db(state)(level) == before
    assert await watcher.nothing()
    assert (await editor.command("ping"))["event"] == "pong"  # the socket is still up


@pytest.mark.parametrize("command,error_event", [
    ("inventory:update", "inventory:updateError"), ("inventory:reserve", "inventory:reservationError")])
async def test_without_the_change_permission(level, make_user, token, connect, watcher, command, error_event):
    sock = await connect(token(await db(make_user)(perms=[VIEW])))
    before = await db(state)(level)
    data = {"inventoryItemId": str(level.item_id), "quantity": 1, "reason": "x"}
    await sock.send(command, data)
    frame = await sock.receive_event(error_event)
    assert frame["data"] == {"error": "You do not have permission to change inventory", "code": "permission_denied",
                             "request": data}
    assert await db(state)(level) == before
    assert await watcher.nothing()


async def test_location_is_required_when_the_item_is_in_several(level, editor):
    await db(make_level)(5, item=level.item)
    await editor.send("inventory:update", {"inventoryItemId": level.item_id, "quantity": 1, "reason": "x"})
    frame = await editor.receive_event("inventory:updateError")
    assert frame["data"]["code"] == "location_required"


async def test_update_below_reserved_is_insufficient_stock(level, editor):
    await editor.command("inventory:reserve", {"inventoryItemId": level.item_id, "quantity": 6, "reason": "x"})
    reply = await editor.command("inventory:update", {"inventoryItemId": level.item_id, "quantity": 5, "reason": "x"})
    assert reply["error"]["code"] == "insufficient_stock"
