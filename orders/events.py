"""Order event names, rooms and payloads (docs/events.md). Pure."""
from .rooms import ALL, customer_room

ORDER_UPDATED = "order:updated"

WIRE_NAMES = {"status": "status", "payment_status": "paymentStatus", "fulfillment_status": "fulfillmentStatus"}


def order_rooms(order) -> list[str]:
    return [ALL, customer_room(order.customer_id)]


def updated_payload(order, changes: dict[str, tuple], *, user_id=None, note: str = "", created: bool = False) -> dict:
    """``order:updated``: the order's states now, the previous status, and what changed (from -> to)."""
    previous = {field: old for field, (old, new) in changes.items()}
    return {
        "orderId": str(order.pk),
        "number": order.number,
        "customerId": str(order.customer_id),
        "status": order.status,
        "previousStatus": previous.get("status", order.status),
        "paymentStatus": order.payment_status,
        "fulfillmentStatus": order.fulfillment_status,
        "changes": {WIRE_NAMES[f]: {"from": old, "to": new} for f, (old, new) in changes.items()},
        "created": created,
        "total": order.total,
        "currency": order.currency,
        "note": note,
        "userId": None if user_id is None else str(user_id),
        "updatedAt": order.updated_at,
    }
