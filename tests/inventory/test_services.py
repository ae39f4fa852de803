"""Inventory services: numbers, ledger, reservations, and the database's own guards."""
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
import pytest

from inventory import services
from inventory.models import InventoryLevel, Reservation, StockMovement
from django_oda_realtime.exceptions import RealtimeError
from domain_shared.errors import NotFound
from tests.domain import make_level

pytestmark = pytest.mark.django_db


def numbers(level):
    level.refresh_from_db()
    return level.available, level.reserved


def test_set_and_adjust_write_the_ledger(make_user):
    user = make_user()
    level = make_level(10)
    services.set_quantity(level.item_id, level.location_id, 25, reason="Recount", user=user)
    services.adjust(level.item_id, level.location_id, -4, reason="Sale")
    assert numbers(level) == (21, 0)
    moves = list(StockMovement.objects.filter(level=level).order_by("pk").values_list(
        "kind", "available_delta", "available_after", "reason", "user_id"))
    assert moves == [("set", 15, 25, "Recount", user.pk), ("adjust", -4, 21, "Sale", None)]


def test_refused_changes_write_nothing():
    level = make_level(5)
    services.reserve(level.item_id, level.location_id, 3, reason="Order")
    before = StockMovement.objects.count()
    with pytest.raises(services.InsufficientStock):
        services.adjust(level.item_id, level.location_id, -6, reason="Sale")
    with pytest.raises(services.InsufficientStock):
        services.adjust(level.item_id, level.location_id, -3, reason="Sale")  # would leave reserved > on hand
    with pytest.raises(services.InsufficientStock):
        services.reserve(level.item_id, level.location_id, 3, reason="Order")  # only 2 sellable
    with pytest.raises(services.InsufficientStock):
        services.set_quantity(level.item_id, level.location_id, 2, reason="Recount")  # below reserved
    assert numbers(level) == (5, 3)
    assert StockMovement.objects.count() == before
    assert Reservation.objects.count() == 1


def test_unknown_ids_are_not_found():
    # A domain refusal, not the socket layer's error: the command edge maps it (test_commands).
    assert not issubclass(NotFound, RealtimeError)
    level = make_level(5)
    with pytest.raises(NotFound):
        services.adjust(level.item_id + 1000, level.location_id, -1, reason="x")
    with pytest.raises(NotFound):
        services.reserve(level.item_id, level.location_id + 1000, 1, reason="x")
    with pytest.raises(NotFound):
        services.release(987654)


@pytest.mark.parametrize("change", [
    {"available": -1}, {"reserved": -1}, {"reserved": F("available") + 1}, {"low_stock_threshold": -1},
], ids=["negative stock", "negative reserved", "reserved over available", "negative threshold"])
def test_database_refuses_impossible_numbers_whatever_the_code_path(change):
    level = make_level(5)
    with pytest.raises(IntegrityError), transaction.atomic():
        InventoryLevel.objects.filter(pk=level.pk).update(**change)
    assert numbers(level) == (5, 0)


def test_release_fulfill_and_closed_reservations():
    level = make_level(10)
    a = services.reserve(level.item_id, level.location_id, 4, reason="Order #1", reference="#1")
    b = services.reserve(level.item_id, level.location_id, 2, reason="Order #2")
    services.release(a.pk, reason="Cancelled")
    assert numbers(level) == (10, 2)
    services.fulfill(b.pk)
    assert numbers(level) == (8, 0)
    with pytest.raises(services.Conflict) as e:
        services.release(b.pk)
    assert e.value.code == "reservation_closed"
    assert [r.status for r in Reservation.objects.order_by("pk")] == ["released", "fulfilled"]


def test_expire_old_reservations():
    level = make_level(10)
    old = services.reserve(level.item_id, level.location_id, 4, reason="Cart", ttl=timedelta(minutes=5))
    fresh = services.reserve(level.item_id, level.location_id, 1, reason="Cart", ttl=timedelta(hours=1))
    assert services.expire_reservations(now=timezone.now() + timedelta(minutes=10)) == 1
    old.refresh_from_db(), fresh.refresh_from_db()
    assert (old.status, fresh.status) == ("expired", "active")
    assert numbers(level) == (10, 1)


def test_overdue_reservations_do_not_block_a_new_one():
    level = make_level(5)
    old = services.reserve(level.item_id, level.location_id, 5, reason="Cart")
    Reservation.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    services.reserve(level.item_id, level.location_id, 3, reason="Cart")
    old.refresh_from_db()
    assert old.status == "expired"
    assert numbers(level) == (5, 3)


def test_a_retried_request_id_reserves_once(make_user):
    user, other = make_user(), make_user()
    level = make_level(10)
    first = services.reserve(level.item_id, level.location_id, 3, reason="Cart", user=user, request_id="req-1")
    again = services.reserve(level.item_id, level.location_id, 3, reason="Cart", user=user, request_id="req-1")
    assert (again.pk, again.duplicate, first.duplicate) == (first.pk, True, False)
    assert numbers(level) == (10, 3)
    with pytest.raises(services.Conflict) as e:
        services.reserve(level.item_id, level.location_id, 4, reason="Cart", user=user, request_id="req-1")
    assert e.value.code == "request_id_reused"
    services.reserve(level.item_id, level.location_id, 3, reason="Cart", user=other, request_id="req-1")
    assert numbers(level) == (10, 6)  # another user's request id is their own


def test_expected_quantity_refuses_a_stale_update():
    level = make_level(10)
    services.set_quantity(level.item_id, level.location_id, 12, reason="Count", expected=10)
    with pytest.raises(services.Conflict):
        services.set_quantity(level.item_id, level.location_id, 30, reason="Count", expected=10)
    assert numbers(level) == (12, 0)


def test_a_plain_save_is_in_the_ledger_too():
    level = make_level(10)
    level.available = 7
    level._change_reason = "Shelf count"
    level.save()
    move = StockMovement.objects.get(level=level)
    assert (move.kind, move.available_delta, move.available_after, move.reason) == ("save", -3, 7, "Shelf count")
