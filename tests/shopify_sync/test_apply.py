"""Stored webhooks applied to the models by the worker (issue #15 item 2): through the real
endpoint with real HMAC, then ``processing`` as ``manage.py realtime_worker`` runs it."""
from datetime import UTC, datetime, timedelta
import json
from pathlib import Path
import random

from channels.db import database_sync_to_async as db
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
import pytest

from inventory import services as inventory
from inventory.models import InventoryItem, InventoryLevel, Location, Product, StockMovement
from orders import services as orders
from orders.models import Customer, Order
from shopify_sync import processing
from shopify_sync.models import Tombstone, WebhookDelivery
from shopify_sync.webhooks import sign
from tests.domain import events_named, pending, subscribe
from tests.shopify_sync import feed

SECRET = "whsec-apply-0123456789"
PAYLOADS = Path(__file__).parent / "payloads"
_ids = iter(range(1, 10**9))


@pytest.fixture(autouse=True)
def secrets(settings):
    settings.SHOPIFY_WEBHOOK_SECRET = SECRET
    settings.SHOPIFY_WEBHOOK_OLD_SECRET = ""


def load(fixture: str, **changes) -> dict:
    return {**json.loads((PAYLOADS / f"{fixture}.json").read_text()), **changes}


def deliver(topic: str, payload, *, event_id=None, triggered_at=None) -> str:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    response = Client().generic(
        "POST", "/shopify/webhooks/", body, content_type="application/json",
        HTTP_X_SHOPIFY_TOPIC=topic, HTTP_X_SHOPIFY_HMAC_SHA256=sign(body, SECRET),
        HTTP_X_SHOPIFY_EVENT_ID=event_id or f"evt-{next(_ids)}", HTTP_X_SHOPIFY_SHOP_DOMAIN="oda.myshopify.com",
        HTTP_X_SHOPIFY_API_VERSION="2025-01",
        HTTP_X_SHOPIFY_TRIGGERED_AT=triggered_at or datetime.now(UTC).isoformat(),
    )
    assert response.status_code == 200, response.content
    return response.json()["status"]


def apply(topic: str, payload) -> WebhookDelivery:
    deliver(topic, payload)
    processing.process_due()
    return WebhookDelivery.objects.order_by("-pk").first()


def catalogue():
    apply("locations/create", load("locations_create"))
    apply("products/create", load("products_create"))


@pytest.mark.django_db
def test_a_delivery_is_stored_at_once_and_applied_by_the_worker():
    deliver("products/create", load("products_create"))
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.processed_at, Product.objects.exists()) == ("pending", None, False)
    call_command("realtime_worker", "--once")
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.error) == ("processed", 1, "")
    assert delivery.processed_at is not None and delivery.result == "product 788032119674292922: 2 variant(s)"
    product = Product.objects.get(shopify_id=788032119674292922)
    assert (product.title, product.handle, product.status) == ("Linen Shirt", "linen-shirt", "active")
    skus = dict(InventoryItem.objects.values_list("shopify_id", "sku"))
    assert skus == {757877296736021300: "LIN-M", 757877296736021301: None}  # no SKU: None, not ""


@pytest.mark.django_db
def test_applying_twice_changes_nothing_and_variants_without_sku_do_not_collide():
    catalogue()
    other = load("products_create", id=1, handle="other", variants=[
        {"id": 2, "title": "One", "price": "1.00", "sku": "", "position": 1, "inventory_item_id": 3}])
    assert apply("products/create", other).status == "processed"
    before = feed.state()
    again = load("products_create", id=788032119674292922, body_html="<p>same data</p>")  # another body, same data
    assert apply("products/update", again).status == "processed"
    assert feed.state() == before
    assert InventoryItem.objects.filter(sku__isnull=True).count() == 2


@pytest.mark.django_db(transaction=True)
async def test_inventory_level_maps_shopify_available_to_on_hand_plus_reserved(make_user, token, connect):
    await db(catalogue)()
    item = await db(InventoryItem.objects.get)(shopify_id=757877296736021300)
    location = await db(Location.objects.get)(shopify_id=655441491)
    await db(inventory.set_quantity)(item.pk, location.pk, 20, reason="count")
    await db(inventory.reserve)(item.pk, location.pk, 3, reason="checkout")
    sock = await connect(token(await db(make_user)(perms=["inventory.view_inventorylevel"])))
    await subscribe(sock, "inventory", rooms=["inventory:all"])

    delivery = await db(apply)("inventory_levels/update", load("inventory_levels_update"))  # available: 9
    assert delivery.status == "processed"
    level = await db(InventoryLevel.objects.get)(item=item, location=location)
    assert (level.available, level.reserved, level.sellable) == (12, 3, 9)
    frames = events_named(await pending(sock), "inventory:updated")
    assert len(frames) == 1
    data = frames[0]["data"]
    assert (data["change"], data["available"], data["sellable"], data["previousAvailable"]) == ("shopify", 12, 9, 20)


@pytest.mark.django_db
def test_an_older_delivery_never_overwrites_newer_data():
    catalogue()
    newer = load("products_create", title="Linen Shirt (new)", updated_at="2025-01-11T09:00:00-05:00")
    older = load("products_create", title="Linen Shirt (old)", updated_at="2025-01-10T10:00:00-05:00")
    assert apply("products/update", newer).status == "processed"
    delivery = apply("products/update", older)
    assert (delivery.status, delivery.result[:6]) == ("ignored", "stale:")
    assert Product.objects.get().title == "Linen Shirt (new)"

    level = load("inventory_levels_update")
    apply("inventory_levels/update", {**level, "available": 5, "updated_at": "2025-01-10T12:00:00-05:00"})
    assert apply("inventory_levels/update", {**level, "available": 7}).status == "ignored"  # 10:00, older
    assert InventoryLevel.objects.get().available == 5


@pytest.mark.django_db
def test_a_delete_wins_over_an_older_update_that_arrives_after_it():
    catalogue()
    apply("products/delete", {"id": 788032119674292922})
    assert not Product.objects.exists() and not InventoryItem.objects.exists()
    assert apply("products/update", load("products_create")).status == "ignored"
    assert not Product.objects.exists()
    assert Tombstone.objects.filter(resource="product").count() == 1


@pytest.mark.django_db(transaction=True)
async def test_orders_map_shopify_states_and_send_order_updated(make_user, token, connect):
    sock = await connect(token(await db(make_user)(perms=["orders.view_order"])))
    await subscribe(sock, "orders", rooms=["orders:all"])
    await db(catalogue)()
    local = await db(Customer.objects.create)(email="local@example.com", name="Local")
    await db(orders.create_order)(local, number="#1001")  # a local #1001 already exists
    await pending(sock)

    delivery = await db(apply)("orders/create", load("orders_create"))
    assert (delivery.status, delivery.error) == ("processed", "")
    order = await db(Order.objects.select_related("customer").get)(shopify_id=820982911946154508)
    assert (order.number, order.shopify_name, order.status, order.payment_status, order.fulfillment_status) == (
        "shopify-820982911946154508", "#1001", "confirmed", "paid", "unfulfilled")
    assert (order.customer.email, order.customer.name, str(order.total)) == ("ada@example.com", "Ada Lovelace",
                                                                             "118.00")
    lines = await db(lambda: list(order.lines.values_list("sku", "quantity", "inventory_item__sku")))()
    assert lines == [("LIN-M", 2, "LIN-M")]
    frames = events_named(await pending(sock), "order:updated")
    assert [(f["data"]["created"], f["data"]["note"], f["data"]["status"]) for f in frames] == [
        (True, "Shopify", "confirmed")]

    # Shopify may move an order where the local lifecycle would refuse: straight to cancelled+refunded.
    cancelled = load("orders_create", financial_status="refunded", cancelled_at="2025-01-10T12:00:00-05:00",
                     updated_at="2025-01-10T12:00:00-05:00")
    assert (await db(apply)("orders/cancelled", cancelled)).status == "processed"
    order = await db(Order.objects.get)(pk=order.pk)
    assert (order.status, order.payment_status) == ("refunded", "refunded")
    frames = events_named(await pending(sock), "order:updated")
    assert [f["data"]["changes"]["status"] for f in frames] == [{"from": "confirmed", "to": "refunded"}]


@pytest.mark.django_db
def test_guest_orders_without_email_do_not_collide():
    for oid in (1, 2):
        guest = load("orders_create", id=oid, name=f"#10{oid}", email=None, customer=None, contact_email=None)
        assert apply("orders/create", guest).status == "processed"
    anonymous = load("orders_create", id=3, customer={**load("orders_create")["customer"], "id": 77, "email": None})
    anonymous2 = load("orders_create", id=4, customer={**load("orders_create")["customer"], "id": 78, "email": None})
    assert apply("orders/create", anonymous).status == "processed"
    assert apply("orders/create", anonymous2).status == "processed"
    assert Order.objects.filter(customer__isnull=True).count() == 2
    assert Customer.objects.filter(email__isnull=True).count() == 2


MALFORMED = {
    "price not a number": ("products/create", lambda p: {**p, "variants": [{**p["variants"][0], "price": "abc"}]}),
    "id not a number": ("products/update", lambda p: {**p, "id": "788"}),
    "variant without id (after the product row)": ("products/create",
                                                   lambda p: {**p, "variants": [p["variants"][0], {"title": "x"}]}),
    "bad updated_at": ("products/create", lambda p: {**p, "updated_at": "yesterday"}),
}


@pytest.mark.django_db
@pytest.mark.parametrize("name", MALFORMED)
def test_a_malformed_payload_is_recorded_and_writes_nothing(name):
    topic, change = MALFORMED[name]
    delivery = apply(topic, change(load("products_create")))
    assert delivery.status == "failed" and delivery.error.startswith("malformed:"), delivery.error
    assert delivery.processed_at is None
    assert not Product.objects.exists() and not InventoryItem.objects.exists()  # not partially applied


@pytest.mark.django_db
def test_a_delivery_that_needs_missing_data_is_retried_with_backoff(settings):
    settings.SHOPIFY_WEBHOOK_RETRY_BASE = 30
    delivery = apply("inventory_levels/update", load("inventory_levels_update"))
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert delivery.error.startswith("not yet:")
    first_wait = delivery.next_attempt_at - timezone.now()
    assert timedelta(seconds=25) < first_wait <= timedelta(seconds=30)
    assert processing.process_due() == 0  # not due yet
    processing.process_due(now=timezone.now() + timedelta(seconds=31))
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.status) == (2, "pending")
    assert delivery.next_attempt_at - timezone.now() > timedelta(seconds=55)  # doubled
    catalogue()
    processing.process_due(now=timezone.now() + timedelta(hours=1))
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.error) == ("processed", 3, "")
    assert InventoryLevel.objects.get().available == 9


@pytest.mark.django_db
def test_after_max_attempts_a_delivery_is_failed_and_the_admin_can_retry_it(settings, admin_client):
    settings.SHOPIFY_WEBHOOK_MAX_ATTEMPTS = 2
    delivery = apply("inventory_levels/update", load("inventory_levels_update"))
    processing.process_due(now=timezone.now() + timedelta(hours=2))
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 2)
    page = admin_client.get("/admin/shopify_sync/webhookdelivery/?status=failed")
    assert page.status_code == 200 and b"not yet: inventory item" in page.content
    catalogue()
    response = admin_client.post("/admin/shopify_sync/webhookdelivery/",
                                 {"action": "retry_now", "_selected_action": [delivery.pk]})
    assert response.status_code == 302
    processing.process_due()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("processed", 1)


@pytest.mark.django_db
def test_unknown_topics_are_stored_and_ignored():
    delivery = apply("collections/update", {"id": 5, "title": "Summer"})
    assert (delivery.status, delivery.result) == ("ignored", "no applier for collections/update")


@pytest.mark.django_db
def test_customers_redact_erases_the_customer_and_their_payloads():
    apply("customers/create", load("customers_create"))
    apply("orders/create", load("orders_create"))
    assert apply("customers/redact", load("customers_redact")).status == "processed"
    customer = Customer.objects.get(shopify_id=706405506930370084)
    assert (customer.email, customer.name, customer.phone) == (None, "Redacted customer", "")
    pruned = WebhookDelivery.objects.filter(topic__in=["customers/create", "orders/create"])
    assert [d.payload for d in pruned] == [{}, {}]
    # An older customers/update arriving later does not bring the data back.
    late = load("customers_create", updated_at="2025-01-10T10:00:00-05:00")
    assert apply("customers/update", late).status == "ignored"
    assert Customer.objects.get(pk=customer.pk).email is None


@pytest.mark.django_db
def test_shop_redact_data_request_and_app_uninstalled_are_handled():
    apply("customers/create", load("customers_create"))
    request = {"shop_id": 954889, "shop_domain": "oda.myshopify.com", "customer": {"id": 706405506930370084},
               "orders_requested": [820982911946154508]}
    delivery = apply("customers/data_request", request)
    assert (delivery.status, delivery.result) == (
        "processed", "data request for customer 706405506930370084, 1 order(s): to answer")
    uninstalled = {"id": 954889, "name": "Oda", "myshopify_domain": "oda.myshopify.com", "domain": "oda.no"}
    assert apply("app/uninstalled", uninstalled).status == "processed"
    assert apply("shop/redact", {"shop_id": 954889, "shop_domain": "oda.myshopify.com"}).status == "processed"
    assert Customer.objects.get().email is None
    assert WebhookDelivery.objects.get(topic="customers/create").payload == {}


@pytest.mark.django_db
def test_retention_prunes_old_payloads_but_keeps_the_row_for_dedupe(settings):
    settings.SHOPIFY_WEBHOOK_RETENTION_DAYS = 30
    apply("customers/create", load("customers_create"))
    WebhookDelivery.objects.update(received_at=timezone.now() - timedelta(days=31))
    assert processing.prune() == 1
    delivery = WebhookDelivery.objects.get()
    assert delivery.payload == {} and delivery.payload_pruned_at is not None
    assert deliver("customers/create", load("customers_create")) == "duplicate"  # the digest is kept


def run_feed(deliveries) -> None:
    for topic, body, event_id, triggered in deliveries:
        deliver(topic, body, event_id=event_id, triggered_at=triggered)
    later = timezone.now()
    for _ in range(20):  # the worker's retries, without waiting for the backoff
        later += timedelta(hours=2)
        if not processing.process_due(now=later, limit=10_000):
            break


def reset() -> None:
    for model in (Order, Customer, Product, Location, WebhookDelivery, Tombstone, StockMovement):
        model.objects.all().delete()


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_shuffled_deliveries_with_duplicates_leave_the_same_state_as_in_order():
    deliveries = feed.feed(200)
    run_feed(deliveries)
    in_order = feed.state()
    assert in_order["orders"] and in_order["levels"] and in_order["products"]
    assert WebhookDelivery.objects.filter(status="processed").count() > len(deliveries) * 0.8
    reset()

    rnd = random.Random(11)
    shuffled = deliveries + rnd.sample(deliveries, len(deliveries) // 5)  # duplicates: same ids
    shuffled += [(t, b, f"{e}-again", tr) for t, b, e, tr in rnd.sample(deliveries, len(deliveries) // 10)]  # new ids
    rnd.shuffle(shuffled)
    run_feed(shuffled)
    assert feed.state() == in_order
    assert WebhookDelivery.objects.count() == len(deliveries)


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_parallel_workers_apply_each_delivery_once():
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    catalogue()
    level = load("inventory_levels_update")
    for i in range(30):
        deliver("inventory_levels/update", {**level, "available": i, "updated_at": f"2025-01-11T10:00:{i:02d}Z"})
    barrier = threading.Barrier(4)

    def work(_):
        try:
            barrier.wait(timeout=10)
            return processing.process_due()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(4) as pool:
        handled = sum(pool.map(work, range(4)))
    assert handled == 30
    rows = WebhookDelivery.objects.filter(topic="inventory_levels/update")
    assert sorted(set(rows.values_list("attempts", flat=True))) == [1]
    assert set(rows.values_list("status", flat=True)) <= {"processed", "ignored"}
    assert InventoryLevel.objects.get().available == 29  # the newest, whichever worker applied it


@pytest.mark.django_db(transaction=True)
async def test_each_outcome_is_published_to_shopify_watchers(make_user, token, connect):
    sock = await connect(token(await db(make_user)(perms=["shopify_sync.view_syncjob"])))
    await subscribe(sock, "shopify", rooms=["shopify:all"])
    await db(apply)("locations/create", load("locations_create"))
    frames = events_named(await pending(sock), "shopify:webhook:processed")
    assert len(frames) == 1
    data = frames[0]["data"]
    assert (data["topic"], data["status"], data["attempts"], data["result"], data["error"]) == (
        "locations/create", "processed", 1, "location 655441491: saved", "")


@pytest.mark.django_db
def test_an_email_another_customer_holds_is_stored_as_none_as_the_pull_does():
    apply("customers/create", load("customers_create"))
    # Another Shopify customer with the same email (Shopify moved the email; the other update is late):
    # stored without one, the rule of shopify_sync.mapping shared with the pull sync.
    delivery = apply("customers/create", load("customers_create", id=42, first_name="Eve"))
    assert (delivery.status, delivery.error) == ("processed", "")
    assert dict(Customer.objects.values_list("shopify_id", "email")) == {
        706405506930370084: "ada@example.com", 42: None}


@pytest.mark.django_db
def test_a_database_error_is_retried_and_its_error_quotes_no_value():
    payload = load("orders_create")
    # A row holding the number the order needs: an IntegrityError whose DETAIL line quotes the value.
    Order.objects.create(number=f"shopify-{payload['id']}")
    delivery = apply("orders/create", payload)
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert delivery.error.startswith("IntegrityError: duplicate key value violates unique constraint")
    assert f"shopify-{payload['id']}" not in delivery.error
    assert not Order.objects.filter(shopify_id=payload["id"]).exists()  # nothing of it written
