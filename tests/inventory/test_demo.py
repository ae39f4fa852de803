"""``seed_demo`` (idempotent, roles) and ``simulate`` (events flow), run as a newcomer would."""
import io

from channels.db import database_sync_to_async as db
from django.contrib.auth import get_user_model
from django.core.management import call_command
import pytest

from inventory.models import InventoryLevel, Product, StockMovement
from orders.models import Customer, Order
from tests.domain import events_named, pending, subscribe

pytestmark = pytest.mark.django_db(transaction=True)


def seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def counts():
    return (Product.objects.count(), InventoryLevel.objects.count(), Customer.objects.count(),
            Order.objects.count(), StockMovement.objects.count())


def test_seed_demo_is_idempotent_and_gives_roles(settings):
    settings.DEBUG = True  # the published demo passwords: development only (tests/ops/test_seed_demo.py)
    output = seed()
    first = counts()
    assert first[0] >= 5 and first[1] >= 30 and first[3] >= 5
    assert "manager-demo-pass" in output
    seed()
    assert counts() == first
    User = get_user_model()
    manager, viewer, customer = (User.objects.get(username=n) for n in ("manager", "viewer", "customer"))
    assert manager.has_perm("inventory.change_inventorylevel") and manager.has_perm("orders.view_order")
    assert viewer.has_perm("inventory.view_inventorylevel") and not viewer.has_perm("inventory.change_inventorylevel")
    assert not customer.has_perm("orders.view_order") and customer.customer.orders.exists()
    assert User.objects.get(username="admin").is_superuser
    assert set(Order.objects.values_list("status", flat=True)) >= {"pending", "confirmed", "shipped", "delivered"}


async def test_simulate_produces_a_stream_of_events(make_user, token, connect):
    await db(seed)()
    user = await db(make_user)(perms=["inventory.view_inventorylevel", "orders.view_order",
                                      "shopify_sync.view_syncjob"])
    sock = await connect(token(user))
    for topic in ("inventory", "orders", "shopify"):
        await subscribe(sock, topic)
    await db(call_command)("simulate", seconds=1.5, rate=20, seed=7, stdout=io.StringIO(), stderr=io.StringIO())
    frames = await pending(sock)
    assert len(events_named(frames, "inventory:updated")) >= 10
    assert events_named(frames, "order:updated")
    statuses = [f["data"]["status"] for f in events_named(frames, "shopify:syncStatus")]
    assert statuses[:1] == ["running"] and statuses[-1] == "completed"
    assert events_named(frames, "shopify:product:progress")


def test_expire_reservations_command():
    from datetime import timedelta

    from inventory import services
    from tests.domain import make_level

    level = make_level(5)
    services.reserve(level.item_id, level.location_id, 2, reason="Cart", ttl=timedelta(seconds=-1))
    out = io.StringIO()
    call_command("expire_reservations", stdout=out)
    assert out.getvalue().strip() == "Expired 1 reservation(s)."
    level.refresh_from_db()
    assert level.reserved == 0
