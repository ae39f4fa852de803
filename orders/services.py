"""All writes of orders: create an order, change its states through checked transitions.

Each change locks the order row, checks every transition (``lifecycle``) and saves.
Whatever saved the order (these services, the admin, Shopify, a plain ``save()``
anywhere), ``record_save`` (from ``post_save``) writes one history row per changed
state and sends one ``order_changed``: one ``order:updated`` after commit. The
services only put their user and note on the instance, so there is one event per
change, never two. An invalid change writes nothing.
"""
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from domain_shared.errors import NotFound
from domain_shared.users import acting_user

from . import lifecycle, signals
from .models import STATE_FIELDS, TRACKED_FIELDS, Customer, Order, OrderHistory, OrderLine

FIELDS = STATE_FIELDS


def next_number() -> str:
    last = Order.objects.filter(number__startswith="#").order_by("-pk").values_list("number", flat=True).first()
    try:
        return f"#{int(last[1:]) + 1}"
    except (TypeError, ValueError):
        return "#1001"


def create_order(customer: Customer, lines=(), *, number: str | None = None, currency: str = "EUR",
                 user=None, note: str = "") -> Order:
    """A pending order with ``lines`` of ``(inventory_item or None, title, sku, quantity, unit_price)``."""
    lines = list(lines)
    total = sum((Decimal(unit_price) * quantity for *_, quantity, unit_price in lines), Decimal(0))
    with transaction.atomic():
        order = Order(customer=customer, number=number or next_number(), currency=currency, total=total)
        order._changed_by, order._change_note = user, note or "Order created"
        order.save()
        for item, title, sku, quantity, unit_price in lines:
            OrderLine.objects.create(order=order, inventory_item=item, title=title, sku=sku,
                                     quantity=quantity, unit_price=unit_price)
        return order


def _history(order, changes, user, note) -> None:
    OrderHistory.objects.bulk_create(
        OrderHistory(order=order, field=field, from_value=old or "", to_value=new, note=note[:300],
                     user=acting_user(user))
        for field, (old, new) in changes.items()
    )


def update_order(order_id: int, *, status: str | None = None, payment_status: str | None = None,
                 fulfillment_status: str | None = None, user=None, note: str = "") -> Order:
    """Change any of the three states at once; every transition is checked first."""
    wanted = {"status": status, "payment_status": payment_status, "fulfillment_status": fulfillment_status}
    with transaction.atomic():
        try:
            order = Order.objects.select_for_update().get(pk=order_id)
        except Order.DoesNotExist:
            raise NotFound(f"Order {order_id} does not exist") from None
        current = {field: getattr(order, field) for field in FIELDS}
        requested = {f: v for f, v in wanted.items() if v is not None and v != current[f]}
        if not requested:
            return order
        lifecycle.check_order(current, requested)
        for field, value in requested.items():
            setattr(order, field, value)
        order.updated_at = timezone.now()
        order._changed_by, order._change_note = user, note
        order.save(update_fields=[*requested, "updated_at"])  # record_save: history and the one event
        return order


def set_status(order_id: int, status: str, *, user=None, note: str = "") -> Order:
    return update_order(order_id, status=status, user=user, note=note)


def advance(order_id: int, *, user=None, note: str = "") -> Order | None:
    """Move an order one step along pending -> ... -> delivered (fulfilment and payment follow)."""
    order = Order.objects.get(pk=order_id)
    new = lifecycle.next_status(order.status)
    if new is None:
        return None
    extra = {}
    if new == lifecycle.Status.CONFIRMED and order.payment_status == lifecycle.PaymentStatus.PENDING:
        extra["payment_status"] = lifecycle.PaymentStatus.PAID
    if new == lifecycle.Status.SHIPPED and order.fulfillment_status != lifecycle.FulfillmentStatus.FULFILLED:
        extra["fulfillment_status"] = lifecycle.FulfillmentStatus.FULFILLED
    return update_order(order_id, status=new, user=user, note=note, **extra)


def _same(field: str, old, new) -> bool:
    if field == "total" and old is not None and new is not None:
        return Decimal(str(old)) == Decimal(str(new))
    return old == new


def record_save(order: Order, *, created: bool) -> None:
    """After any save of an order: history of its states and one ``order_changed`` (none if nothing changed)."""
    if any(hasattr(getattr(order, f), "resolve_expression") for f in TRACKED_FIELDS):
        order.refresh_from_db(fields=[f.removesuffix("_id") if f.endswith("_id") else f for f in TRACKED_FIELDS])
    previous = getattr(order, "_rt_previous", None)
    order._rt_previous = None
    user, note = getattr(order, "_changed_by", None), getattr(order, "_change_note", "")
    order._changed_by, order._change_note = None, ""
    if created or previous is None:
        changes = {field: (None, getattr(order, field)) for field in FIELDS}
        note = note or "Order created"
    else:
        changes = {f: (previous[f], getattr(order, f)) for f in TRACKED_FIELDS if not _same(f, previous[f], getattr(order, f))}
        if not changes:
            return  # saved without a change: no event
        note = note or "Saved"
    states = {f: change for f, change in changes.items() if f in FIELDS}
    if states:
        _history(order, states, user, note)
    signals.order_changed.send(sender=Order, order=order, changes=changes, user=acting_user(user), note=note,
                               created=created)
