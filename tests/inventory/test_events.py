"""Inventory events end to end: a service or a model change -> the socket of a subscribed client."""
from datetime import timedelta

from channels.db import database_sync_to_async as db
from django.db import transaction
from django.db.models import F
from django.utils import timezone
import pytest

from inventory import services
from inventory.models import Reservation
from tests.domain import events_named, make_level, pending, subscribe

pytestmark = pytest.mark.django_db(transaction=True)

VIEW = "inventory.view_inventorylevel"


@pytest.fixture
async def level():
    return await db(make_level)(10, threshold=5)


@pytest.fixture
async def viewer(make_user, token, connect):
    """A socket of a user who may view inventory, subscribed to inventory:all."""
    user = await db(make_user)(perms=[VIEW])
    sock = await connect(token(user))
    await subscribe(sock, "inventory", rooms=["inventory:all"])
    return sock


async def test_updated_reaches_each_room_with_the_documented_payload(level, viewer, make_user, token, connect):
    user = await db(make_user)(perms=[VIEW])
    by_location = await connect(token(user))
    await subscribe(by_location, "inventory", {"locationIds": [level.location_id]},
                    rooms=[f"inventory:location:{level.location_id}"])
    by_product = await connect(token(user))
    product_id = level.item.variant.product_id
    await subscribe(by_product, "inventory", {"productIds": [str(product_id)]},
                    rooms=[f"inventory:product:{product_id}"])
    other_location = await connect(token(user))
    await subscribe(other_location, "inventory", {"locationIds": [level.location_id + 1000]})
    editor = await db(make_user)(perms=[VIEW])

    await db(services.adjust)(level.item_id, level.location_id, -3, reason="In-store sale", user=editor)

    for sock in (viewer, by_location, by_product):
        frame = await sock.receive_event("inventory:updated")
        assert frame["type"] == "inventory:updated"
        data = frame["data"]
        assert data == {
            "levelId": str(level.pk), "inventoryItemId": str(level.item_id), "sku": level.item.sku,
            "variantId": str(level.item.variant_id), "productId": str(product_id),
            "locationId": str(level.location_id), "available": 7, "reserved": 0, "sellable": 7,
            "previousAvailable": 10, "previousReserved": 0, "delta": -3, "reservedDelta": 0,
            "lowStockThreshold": 5, "change": "adjust", "reason": "In-store sale", "userId": str(editor.pk),
            "updatedAt": data["updatedAt"],
        }
        assert await sock.nothing()  # one event per change, no lowStock (7 > 5)
    assert await other_location.nothing()


async def test_no_event_without_subscription_or_permission(level, make_user, token, connect):
    viewer_user = await db(make_user)(perms=[VIEW])
    unsubscribed = await connect(token(viewer_user))
    stranger = await connect(token(await db(make_user)()))
    reply = await stranger.command("subscribe:inventory")
    assert reply["data"]["rooms"] == [] and reply["data"]["refused"] == [{"room": "inventory:all", "reason": "forbidden"}]
    await db(services.set_quantity)(level.item_id, level.location_id, 3, reason="Count")
    assert await unsubscribed.nothing()
    assert await stranger.nothing()


async def test_a_plain_save_emits_exactly_once(level, viewer):
    def plain_save():
        level.available = 12
        level.save()
    await db(plain_save)()
    data = (await viewer.receive_event("inventory:updated"))["data"]
    assert (data["available"], data["previousAvailable"], data["delta"], data["change"]) == (12, 10, 2, "save")
    assert await viewer.nothing()


async def test_a_save_with_an_f_expression_reports_numbers(level, viewer):
    def f_save():
        level.available = F("available") - 2
        level.save()
    await db(f_save)()
    data = (await viewer.receive_event("inventory:updated"))["data"]
    assert (data["available"], data["previousAvailable"], data["delta"]) == (8, 10, -2)


async def test_raw_saves_send_nothing(level, viewer):
    from django.db.models.signals import post_save, pre_save

    from inventory.models import InventoryLevel

    def fixture_load():
        level.available = 1
        pre_save.send(sender=InventoryLevel, instance=level, raw=True)
        post_save.send(sender=InventoryLevel, instance=level, created=False, raw=True)
    await db(fixture_load)()
    assert await viewer.nothing()


async def test_nothing_is_sent_when_the_transaction_rolls_back(level, viewer):
    def rolled_back():
        with pytest.raises(RuntimeError), transaction.atomic():
            services.adjust(level.item_id, level.location_id, -1, reason="Sale")
            raise RuntimeError
    await db(rolled_back)()
    assert await viewer.nothing()


async def test_low_stock_once_per_downward_crossing(level, viewer):
    """threshold 5: 10 -> 6 -> 5 (alert) -> 3 -> 8 -> 4 (alert again) -> 2."""
    alerts = []
    for quantity in (6, 5, 3, 8, 4, 2):
        await db(services.set_quantity)(level.item_id, level.location_id, quantity, reason="Count")
        frames = await pending(viewer)
        assert [f["data"]["available"] for f in events_named(frames, "inventory:updated")] == [quantity]
        alerts += [(quantity, f["data"]) for f in events_named(frames, "inventory:lowStock")]
    assert [q for q, _ in alerts] == [5, 4]
    data = alerts[0][1]
    assert data == {
        "levelId": str(level.pk), "inventoryItemId": str(level.item_id), "sku": level.item.sku,
        "variantId": str(level.item.variant_id), "productId": str(level.item.variant.product_id),
        "locationId": str(level.location_id), "productTitle": "Linen Shirt", "variantTitle": "M",
        "available": 5, "reserved": 0, "sellable": 5, "lowStockThreshold": 5,
    }


async def test_a_reservation_that_eats_sellable_stock_is_a_crossing(level, viewer):
    await db(services.reserve)(level.item_id, level.location_id, 6, reason="Order")
    frame = await viewer.receive_event("inventory:lowStock")
    assert (frame["data"]["available"], frame["data"]["reserved"], frame["data"]["sellable"]) == (10, 6, 4)


async def test_reservation_events_created_released_expired_fulfilled(level, viewer, make_user):
    user = await db(make_user)()
    r1 = await db(services.reserve)(level.item_id, level.location_id, 2, reason="Order #1001", user=user,
                                    reference="#1001")
    frames = await pending(viewer)
    [created] = [f["data"] for f in events_named(frames, "inventory:reservation")]
    assert created == {
        "reservationId": str(r1.pk), "action": "created", "status": "active",
        "inventoryItemId": str(level.item_id), "sku": level.item.sku, "variantId": str(level.item.variant_id),
        "productId": str(level.item.variant.product_id), "locationId": str(level.location_id), "quantity": 2,
        "reason": "Order #1001", "reference": "#1001", "expiresAt": created["expiresAt"], "userId": str(user.pk),
    }
    [updated] = [f["data"] for f in events_named(frames, "inventory:updated")]
    assert (updated["reserved"], updated["previousReserved"], updated["change"]) == (2, 0, "reserve")

    await db(services.release)(r1.pk, reason="Cancelled")
    data = (await viewer.receive_event("inventory:reservation"))["data"]
    assert (data["action"], data["status"]) == ("released", "released")

    r2 = await db(services.reserve)(level.item_id, level.location_id, 1, reason="Cart")
    await db(services.fulfill)(r2.pk)
    r3 = await db(services.reserve)(level.item_id, level.location_id, 1, reason="Cart", ttl=timedelta(seconds=1))
    await db(services.expire_reservations)(now=timezone.now() + timedelta(seconds=5))
    actions = []
    for _ in range(4):
        actions.append((await viewer.receive_event("inventory:reservation"))["data"]["action"])
    assert actions == ["created", "fulfilled", "created", "expired"]
    assert await db(lambda: Reservation.objects.get(pk=r3.pk).status)() == "expired"
