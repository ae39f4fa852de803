"""orders/* and customers/*: upserts by ``shopify_id``, Shopify's states mapped to the lifecycle.

The map is ``shopify_sync.mapping`` (shared with the pull sync, docs/shopify.md): payment from
``financial_status``, fulfilment from ``fulfillment_status``, status from both plus ``cancelled_at``. Shopify's state is the
truth, so these saves skip the local lifecycle check (``check_lifecycle=False``); each
still sends its one ``order:updated`` (orders/receivers.py). Shopify's order names
(#1001) are kept in ``shopify_name``: the order number is ``shopify-<id>``, never a
local ``#nnnn``.
"""
from inventory.models import ProductVariant
from orders.models import Customer, Order, OrderLine

from .. import mapping
from .common import Malformed, Stale, check_alive, check_newer, integer, items, money, shopify_id, text, version

def _name(payload: dict, sid: int) -> str:
    name = f"{text(payload, 'first_name', 100)} {text(payload, 'last_name', 100)}".strip()
    return (name or text(payload, "email", 200) or f"Shopify customer {sid}")[:200]


def _email(payload: dict) -> str | None:
    return text(payload, "email", 254).strip().lower() or None


def upsert_customer(payload: dict, when, *, update_if_equal: bool) -> Customer:
    sid = shopify_id(payload)
    check_alive("customer_redacted", sid, when)
    customer = Customer.objects.select_for_update().filter(shopify_id=sid).first()
    email = _email(payload)
    if customer is None and email is not None:
        # A local customer with that email and no Shopify id is the same person: link it.
        customer = Customer.objects.select_for_update().filter(email=email, shopify_id__isnull=True).first()
    if customer is not None and customer.shopify_id == sid:
        stored = customer.shopify_updated_at
        if stored is not None and (when < stored or (when == stored and not update_if_equal)):
            return customer
    customer = customer or Customer()
    if email is not None and Customer.objects.filter(email=email).exclude(pk=customer.pk).exists():
        email = None  # another customer holds it: unique but nullable (shopify_sync.mapping)
    customer.shopify_id, customer.email, customer.name = sid, email, _name(payload, sid)
    customer.phone = text(payload, "phone", 40)
    customer.shopify_updated_at = when
    customer.save()
    return customer


def customer_upsert(delivery, payload: dict) -> str:
    when = version(payload, delivery)
    customer = upsert_customer(payload, when, update_if_equal=True)
    if customer.shopify_updated_at != when:
        raise Stale(f"customer {payload['id']} is newer here")
    return f"customer {payload['id']}: saved"


def order_upsert(delivery, payload: dict) -> str:
    sid, when = shopify_id(payload), version(payload, delivery)
    order = Order.objects.select_for_update().filter(shopify_id=sid).first()
    if order is not None:
        check_newer(order.shopify_updated_at, when, f"order {sid}")
    else:
        order = Order(shopify_id=sid, number=mapping.order_number(sid))
    payment, fulfillment = mapping.payment(payload.get("financial_status")), mapping.fulfillment(
        payload.get("fulfillment_status"))
    if payment is None or fulfillment is None:
        raise Malformed("unknown financial_status or fulfillment_status")
    customer_payload = payload.get("customer")
    if customer_payload is not None and not isinstance(customer_payload, dict):
        raise Malformed("customer is not an object")
    customer_when = when
    if customer_payload and customer_payload.get("updated_at") is not None:
        customer_when = version(customer_payload, delivery)
    # Embedded customers create a missing customer and update only when strictly newer: the
    # customers/* topics carry the full record (docs/shopify.md, Ordering).
    order.customer = (upsert_customer(customer_payload, customer_when, update_if_equal=False)
                      if customer_payload else None)
    order.shopify_name = text(payload, "name", 64)
    order.currency = (text(payload, "currency", 3) or "EUR").upper()
    order.total = money(payload, "total_price")
    order.payment_status, order.fulfillment_status = payment, fulfillment
    order.status = mapping.order_status(payment, fulfillment, bool(payload.get("cancelled_at")))
    order.shopify_updated_at = when
    lines = [_line(line) for line in items(payload, "line_items")]
    order._change_note = "Shopify"
    order.save(check_lifecycle=False)
    current = list(order.lines.order_by("pk").values_list("inventory_item_id", "title", "sku", "quantity", "unit_price"))
    if current != [(l.inventory_item_id, l.title, l.sku, l.quantity, l.unit_price) for l in lines]:
        order.lines.all().delete()
        for line in lines:
            line.order = order
        OrderLine.objects.bulk_create(lines)
    return f"order {sid} ({order.shopify_name}): {order.status}"


def _line(payload: dict) -> OrderLine:
    quantity = integer(payload, "quantity")
    if quantity <= 0:
        raise Malformed("a line item has no positive quantity")
    variant_sid = shopify_id(payload, "variant_id", required=False)
    item_id = None
    if variant_sid is not None:
        item_id = ProductVariant.objects.filter(shopify_id=variant_sid).values_list("inventory_item", flat=True).first()
    return OrderLine(inventory_item_id=item_id, shopify_variant_id=variant_sid, title=(text(payload, "title", 300) or "Item"),
                     sku=text(payload, "sku", 64), quantity=quantity, unit_price=money(payload, "price"))
