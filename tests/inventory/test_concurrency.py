"""Many threads reserve and sell from the same level at once, on PostgreSQL (select_for_update is
a no-op on SQLite): stock never goes negative and reservations never exceed what is on hand."""
from concurrent.futures import ThreadPoolExecutor
import threading

from django.db import connection, connections
import pytest

from inventory import services
from inventory.models import InventoryLevel, Reservation, StockMovement
from tests.domain import make_item, make_level, make_location

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

THREADS = 12


def run_in_threads(fn, jobs) -> list:
    """Run ``fn(job)`` for each job in real threads started together; each closes its DB connection."""
    barrier = threading.Barrier(min(THREADS, len(jobs)))

    def work(job):
        try:
            barrier.wait(timeout=10)
            return fn(job)
        except services.InsufficientStock:
            return "insufficient"
        finally:
            connections.close_all()

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(work, jobs))


def test_on_postgresql():
    assert connection.vendor == "postgresql"


def test_parallel_reservations_never_oversell():
    level = make_level(20)
    results = run_in_threads(
        lambda i: services.reserve(level.item_id, level.location_id, 3, reason=f"cart {i}").pk, range(THREADS * 2))
    made = [r for r in results if r != "insufficient"]
    assert len(made) == 6  # 6 x 3 = 18 <= 20; the 7th would need 21
    level.refresh_from_db()
    assert (level.available, level.reserved) == (20, 18)
    assert sum(Reservation.objects.filter(status="active").values_list("quantity", flat=True)) == 18


def test_parallel_sales_and_reservations_keep_every_invariant():
    level = make_level(30)

    def job(i):
        if i % 3 == 0:
            return services.adjust(level.item_id, level.location_id, -2, reason="sale")
        return services.reserve(level.item_id, level.location_id, 2, reason="cart")

    results = run_in_threads(job, range(THREADS * 3))
    level.refresh_from_db()
    assert 0 <= level.reserved <= level.available
    active = sum(Reservation.objects.filter(status="active").values_list("quantity", flat=True))
    assert level.reserved == active
    sold = 2 * StockMovement.objects.filter(kind="adjust").count()
    assert level.available == 30 - sold
    assert results.count("insufficient") == THREADS * 3 - StockMovement.objects.count()


def test_multi_level_locks_in_pk_order_do_not_deadlock():
    """Threads lock the same two levels in opposite orders: pk-ordered locking means no deadlock."""
    item, a, b = make_item(), make_location(), make_location()
    make_level(100, item=item, location=a), make_level(100, item=item, location=b)

    def job(i):
        pairs = [(item.pk, a.pk), (item.pk, b.pk)]
        if i % 2:
            pairs.reverse()
        from django.db import transaction

        with transaction.atomic():
            locked = services._locked(pairs)
            for level in locked.values():
                services._apply(level, "adjust", available_delta=-1, reason="transfer")
        return True

    assert all(run_in_threads(job, range(THREADS * 2)))
    assert sorted(InventoryLevel.objects.filter(item=item).values_list("available", flat=True)) == [76, 76]
