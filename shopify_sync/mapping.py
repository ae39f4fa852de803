"""Shopify's values -> ours: the one set of rules the webhooks (``apply``) and the pull sync
(``pull``) both use, so either path stores the same row (docs/shopify.md, *Mapping*). Pure.

- order number: ``shopify-<order id>``; Shopify's name (``#1001``) is kept in ``shopify_name``
  (local numbers never start with ``shopify-``, so they never collide);
- states: ``PAYMENT`` and ``FULFILLMENT`` below, keyed by the REST webhook value; the GraphQL
  enums (``PAID``, ``PARTIALLY_FULFILLED``...) are the same words upper-cased; ``order_status``
  derives the status;
- stock: Shopify's ``available`` is sellable, ours is on hand: ``on_hand = max(0, available) + reserved``;
- a customer without an email, or whose email another customer holds, stores ``None``
  (the column is unique but nullable); the same for a variant's SKU;
- an order without a customer (a guest) has ``customer = None``.
"""
from orders.lifecycle import FulfillmentStatus as F, PaymentStatus as P, Status as S

ORDER_PREFIX = "shopify-"

# financial_status (webhooks) / displayFinancialStatus lower-cased (pull) -> payment_status
PAYMENT = {
    "pending": P.PENDING, "partially_paid": P.PENDING, "authorized": P.AUTHORIZED, "paid": P.PAID,
    "partially_refunded": P.PARTIALLY_REFUNDED, "refunded": P.REFUNDED, "voided": P.VOIDED, "expired": P.VOIDED,
}
# fulfillment_status (webhooks; null = none yet) / displayFulfillmentStatus lower-cased (pull)
FULFILLMENT = {
    None: F.UNFULFILLED, "unfulfilled": F.UNFULFILLED, "partial": F.PARTIAL, "partially_fulfilled": F.PARTIAL,
    "fulfilled": F.FULFILLED, "restocked": F.RETURNED,
    # GraphQL-only states of work not yet shipped
    "in_progress": F.UNFULFILLED, "on_hold": F.UNFULFILLED, "open": F.UNFULFILLED, "pending_fulfillment": F.UNFULFILLED,
    "scheduled": F.UNFULFILLED, "request_declined": F.UNFULFILLED,
}


def order_number(order_id: int) -> str:
    """Our ``Order.number`` for a Shopify order."""
    return f"{ORDER_PREFIX}{order_id}"


def _key(value):
    return value.lower() if isinstance(value, str) else value


def payment(value) -> str | None:
    """Our payment status, None for a value outside the map."""
    return PAYMENT.get(_key(value))


def fulfillment(value) -> str | None:
    """Our fulfilment status, None for a value outside the map."""
    return FULFILLMENT.get(_key(value))


def order_status(payment: str, fulfillment: str, cancelled: bool) -> str:
    """Our status from Shopify's states (Shopify has no 'delivered': shipped is as far as it tells)."""
    if payment == P.REFUNDED and (cancelled or fulfillment in (F.FULFILLED, F.RETURNED)):
        return S.REFUNDED
    if cancelled:
        return S.CANCELLED
    if fulfillment in (F.FULFILLED, F.RETURNED):
        return S.SHIPPED
    if fulfillment == F.PARTIAL:
        return S.PROCESSING
    if payment in (P.AUTHORIZED, P.PAID, P.PARTIALLY_REFUNDED):
        return S.CONFIRMED
    return S.PENDING


def on_hand(sellable: int, reserved: int) -> int:
    """Our on-hand count: Shopify's sellable units (an oversold, negative count is 0) plus our reserved units."""
    return max(0, sellable) + reserved
