"""Payloads against the contract: every domain event, made by the apps' own code, checked by the
suite-wide fixture (tests/conftest.py); a drifting payload caught; the add-on's own events over a real
``/ws/`` socket (docs/contract.md)."""
from channels.db import database_sync_to_async as db
from django.contrib.auth.signals import user_logged_in, user_logged_out
import pytest

from inventory import services as inventory
from inventory.models import Product
from notifications import inbox as notifications_inbox, services as notifications
from orders import events as order_events, services as orders
from orders.models import Customer
from django_oda_realtime.contract import asyncapi
from django_oda_realtime.contract.testing import validate_event
from shopify_sync import signals as shopify_signals
from shopify_sync.models import WebhookDelivery
from shopify_sync.progress import sync_job
from shopify_sync.webhooks import summarize
from tests.broadcast_app.models import Return
from tests.domain import make_item, make_level, subscribe



def domain_events() -> set[tuple[str, str]]:
    return {(spec.name, spec.type) for spec in asyncapi.events() if not spec.direct}


def every_domain_event(user) -> None:
    """Make each app send each of its events once, through its own services and receivers."""
    level = make_level(10, threshold=5)
    inventory.set_quantity(level.item_id, level.location_id, 8, reason="Count", user=user)  # inventory:updated
    reservation = inventory.reserve(level.item_id, level.location_id, 3, reason="Checkout", user=user,
                                    reference="#1001", request_id="req-1")  # inventory:reservation, lowStock
    inventory.release(reservation.pk, reason="Abandoned", user=user)
    customer = Customer.objects.create(email="ada@example.com", name="Ada", user=user)
    item = make_item()
    order = orders.create_order(customer, [(item, "Linen Shirt / M", item.sku, 1, "59.00")], number="#C1")
    orders.update_order(order.pk, status="confirmed", payment_status="paid", user=user, note="Captured")
    for resource in ("products", "inventory", "orders", "customers"):
        with sync_job(resource, total=2, interval=0) as job:
            job.advance()
            job.advance(failed=1, error="Image missing")
    delivery = WebhookDelivery.objects.create(
        event_id="evt-c1", webhook_id="wh-c1", topic="products/update", shop_domain="oda.myshopify.com",
        api_version="2025-01", payload={"id": 1, "title": "Linen Shirt"},
        summary=summarize("products/update", {"id": 1, "title": "Linen Shirt", "status": "active"}))
    shopify_signals.webhook_received.send(sender=WebhookDelivery, delivery=delivery)
    shopify_signals.webhook_processed.send(sender=WebhookDelivery, delivery=delivery)
    user_logged_in.send(sender=type(user), request=None, user=user)
    user_logged_out.send(sender=type(user), request=None, user=user)
    Product.objects.create(title="Wool Coat", handle="wool-coat")
    notifications.announce("Checkout is read-only at 02:00", kind="maintenance", title="Maintenance")
    notifications.announce("New collection", kind="event")
    notifications.security_alert("failed_logins", "5 failed logins", username="ada", user_id=user.pk,
                                 details={"failures": 5})
    ret = Return.objects.create(customer=user, reason="Too small")  # returns:changed (realtime.Broadcast)
    ret.status = Return.Status.APPROVED
    ret.save()  # returns:statusChanged
    notifications_inbox.mark_all_read(user)  # notifications:read


@pytest.mark.django_db
def test_every_domain_event_is_checked_against_its_schema(make_user, published_events_match_contract,
                                                          django_capture_on_commit_callbacks):
    user = make_user("ada")
    with django_capture_on_commit_callbacks(execute=True):
        every_domain_event(user)
    assert published_events_match_contract.violations == []
    assert domain_events() - published_events_match_contract.seen == set()


@pytest.mark.django_db
def test_a_payload_that_drifts_from_the_contract_fails(monkeypatch, make_user, published_events_match_contract,
                                                       django_capture_on_commit_callbacks):
    real = order_events.updated_payload

    def drifted(order, changes, **kwargs):
        data = real(order, changes, **kwargs)
        data["orderId"] = int(data["orderId"])  # ids are strings in the contract
        data["trackingUrl"] = "https://example.com/t/1"  # a key the contract does not have
        del data["currency"]
        return data

    monkeypatch.setattr(order_events, "updated_payload", drifted)
    customer = Customer.objects.create(email="eve@example.com", name="Eve", user=make_user())
    item = make_item()
    with django_capture_on_commit_callbacks(execute=True):
        order = orders.create_order(customer, [(item, "Linen Shirt / M", item.sku, 1, "59.00")], number="#D1")
    violations = list(published_events_match_contract.violations)
    published_events_match_contract.violations.clear()  # expected here: keep the fixture from failing the test
    assert len(violations) == 3, violations
    assert any(f"data['orderId']: {order.pk} is not of type 'string'" in v for v in violations)
    assert any("'trackingUrl' was unexpected" in v for v in violations)
    assert any("'currency' is a required property" in v for v in violations)
    assert all(v.endswith("(published by orders.receivers)") for v in violations)


@pytest.mark.django_db
def test_an_event_missing_from_the_contract_fails(monkeypatch, published_events_match_contract,
                                                  django_capture_on_commit_callbacks):
    monkeypatch.setattr(order_events, "ORDER_UPDATED", "order:changed")
    customer = Customer.objects.create(email="eve@example.com", name="Eve")
    item = make_item()
    with django_capture_on_commit_callbacks(execute=True):
        orders.create_order(customer, [(item, "Linen Shirt / M", item.sku, 1, "59.00")], number="#D2")
    violations = list(published_events_match_contract.violations)
    published_events_match_contract.violations.clear()
    assert violations == ["'order:changed' (type 'order:changed') is not in the event contract "
                          "(published by orders.receivers)"]


def test_datetimes_must_be_iso_8601():
    data = {"expiresAt": 1.0}
    assert validate_event("auth:refreshed", None, data) == []
    problems = validate_event("shopify:webhook:received", None, {
        "webhookId": "w", "eventId": None, "topic": "products/update", "shop": "s", "apiVersion": "2025-01",
        "receivedAt": "yesterday", "summary": {}})
    assert problems == ["shopify:webhook:received (shopify:webhook:received) data['receivedAt']: "
                        "'yesterday' is not a 'date-time'"]


# -- the add-on's own events, as a /ws/ client receives them -------------------------------------


def assert_matches(frame: dict) -> None:
    assert validate_event(frame["event"], frame["type"], frame["data"]) == [], frame


@pytest.mark.django_db(transaction=True)
async def test_the_socket_events_match_the_contract(make_user, token, connect):
    user = await db(make_user)("dana", perms=["inventory.view_inventorylevel", "inventory.change_inventorylevel"])
    sock = await connect(token(user))
    assert_matches(sock.connected_payload)
    await sock.send("subscribe:inventory", {"locationIds": ["1", 2]})
    assert_matches(await sock.receive_event("subscribed"))
    await sock.send("subscribe:orders")  # refused: no orders.view_order
    subscribed = await sock.receive_event("subscribed")
    assert subscribed["data"]["refused"] == [{"room": "orders:all", "reason": "forbidden"}]
    assert_matches(subscribed)
    await sock.send("unsubscribe:inventory", {"locationIds": ["1"]})
    assert_matches(await sock.receive_event("unsubscribed"))
    await sock.send("subscribe:inventory", {"locationIds": "1"})
    assert_matches(await sock.receive_event("subscribe:error"))
    await sock.send("inventory:update", {"inventoryItemId": "12"})
    error = await sock.receive_event("inventory:updateError")
    assert error["code"] == "validation_error"
    assert_matches(error)
    await sock.send("auth:refresh", {"token": token(user)})
    assert_matches(await sock.receive_event("auth:refreshed"))
    await sock.send("auth:refresh", {"token": "not-a-token"})
    assert_matches(await sock.receive_event("auth:error"))
    await sock.comm.send_to(text_data="not json")
    assert_matches(await sock.receive_event("error"))
    await sock.send("ping")
    assert_matches(await sock.receive_event("pong"))


@pytest.mark.django_db(transaction=True)
async def test_command_acks_match_the_contract(make_user, token, connect):
    """What an ack carries, ``{data}`` or ``{error}``, against the command's ack schema."""
    import jsonschema

    user = await db(make_user)("erin", perms=["inventory.view_inventorylevel", "inventory.change_inventorylevel"])
    level = await db(make_level)(10)
    sock = await connect(token(user))
    specs = {spec.name: spec for spec in asyncapi.command_specs()}
    replies = [
        ("subscribe:inventory", await subscribe(sock, "inventory") and await sock.command("subscribe:inventory")),
        ("inventory:update", await sock.command("inventory:update", {
            "inventoryItemId": level.item_id, "locationId": str(level.location_id), "quantity": 7, "reason": "Count"})),
        ("inventory:reserve", await sock.command("inventory:reserve", {
            "inventoryItemId": level.item_id, "quantity": 2, "reason": "Checkout", "requestId": "r-9"})),
        ("inventory:reserve", await sock.command("inventory:reserve", {
            "inventoryItemId": level.item_id, "quantity": 99, "reason": "Checkout"})),
        ("auth:refresh", await sock.command("auth:refresh", {"token": token(user)})),
    ]
    assert replies[3][1]["error"]["code"] == "insufficient_stock"
    for name, reply in replies:
        body = {k: v for k, v in reply.items() if k in ("data", "error")}
        jsonschema.validate(body, asyncapi.ack_schema(specs[name]))
