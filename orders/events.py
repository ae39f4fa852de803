"""Order event names, rooms and payloads (docs/events.md). Pure."""
from decimal import Decimal

from .rooms import ALL, customer_room

ORDER_UPDATED = "order:updated"

WIRE_NAMES = {"status": "status", "payment_status": "paymentStatus", "fulfillment_status": "fulfillmentStatus",
              "total": "total", "currency": "currency", "customer_id": "customerId", "number": "number"}


def order_rooms(order) -> list[str]:
    """``orders:all`` and the customer's room (a Shopify guest order has no customer)."""
    return [ALL] if order.customer_id is None else [ALL, customer_room(order.customer_id)]


def _amount(value) -> str:
    """A decimal as a string with two places: "118.00" (a new order's default total is the int 0)."""
    return f"{Decimal(str(value)):.2f}"


def _wire(field: str, value):
    if value is None:
        return None
    if field == "total":
        return _amount(value)
    return str(value) if field == "customer_id" else value


def updated_payload(order, changes: dict[str, tuple], *, user_id=None, note: str = "", created: bool = False) -> dict:
    """``order:updated``: the order's states now, the previous status, and what changed (from -> to)."""
    previous = {field: old for field, (old, new) in changes.items()}
    return {
        "orderId": str(order.pk),
        "number": order.number,
        "customerId": None if order.customer_id is None else str(order.customer_id),
        "status": order.status,
        "previousStatus": previous.get("status", order.status),
        "paymentStatus": order.payment_status,
        "fulfillmentStatus": order.fulfillment_status,
        "changes": {WIRE_NAMES[f]: {"from": _wire(f, old), "to": _wire(f, new)} for f, (old, new) in changes.items()},
        "created": created,
        "total": _amount(order.total),
        "currency": order.currency,
        "note": note,
        "userId": None if user_id is None else str(user_id),
        "updatedAt": order.updated_at,
    }
