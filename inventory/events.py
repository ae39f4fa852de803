"""Inventory event names, rooms and payloads (docs/events.md). Pure: reads model attributes only."""
from .rooms import ALL, location_room, product_room

INVENTORY_UPDATED = "inventory:updated"
INVENTORY_LOW_STOCK = "inventory:lowStock"
INVENTORY_RESERVATION = "inventory:reservation"

# Client commands and their error events.
INVENTORY_UPDATE = "inventory:update"
INVENTORY_RESERVE = "inventory:reserve"
INVENTORY_UPDATE_ERROR = "inventory:updateError"
INVENTORY_RESERVATION_ERROR = "inventory:reservationError"


def _id(value) -> str | None:
    return None if value is None else str(value)


def level_rooms(item, location_id) -> list[str]:
    """Where a change of ``item`` at ``location_id`` is announced."""
    return [ALL, location_room(location_id), product_room(item.variant.product_id)]


def _level_ids(level) -> dict:
    item = level.item
    return {
        "levelId": _id(level.pk),
        "inventoryItemId": _id(item.pk),
        "sku": item.sku,
        "variantId": _id(item.variant_id),
        "productId": _id(item.variant.product_id),
        "locationId": _id(level.location_id),
    }


def updated_payload(level, *, kind: str, previous_available: int, previous_reserved: int,
                    reason: str, user_id) -> dict:
    """``inventory:updated``: the level's new numbers, the previous ones and why."""
    return {
        **_level_ids(level),
        "available": level.available,
        "reserved": level.reserved,
        "sellable": level.available - level.reserved,
        "previousAvailable": previous_available,
        "previousReserved": previous_reserved,
        "delta": level.available - previous_available,
        "reservedDelta": level.reserved - previous_reserved,
        "lowStockThreshold": level.low_stock_threshold,
        "change": kind,
        "reason": reason,
        "userId": _id(user_id),
        "updatedAt": level.updated_at,
    }


def crossed_low_stock(previous_sellable: int, previous_threshold: int, sellable: int, threshold: int) -> bool:
    """True only for the change that takes sellable stock from above its threshold to at or below it."""
    return previous_sellable > previous_threshold and sellable <= threshold


def low_stock_payload(level) -> dict:
    """``inventory:lowStock``: the level that just fell to its threshold."""
    return {
        **_level_ids(level),
        "productTitle": level.item.variant.product.title,
        "variantTitle": level.item.variant.title,
        "available": level.available,
        "reserved": level.reserved,
        "sellable": level.available - level.reserved,
        "lowStockThreshold": level.low_stock_threshold,
    }


def reservation_payload(reservation, action: str) -> dict:
    """``inventory:reservation``: a reservation was created, released, expired or fulfilled."""
    item = reservation.item
    return {
        "reservationId": _id(reservation.pk),
        "action": action,
        "status": reservation.status,
        "inventoryItemId": _id(item.pk),
        "sku": item.sku,
        "variantId": _id(item.variant_id),
        "productId": _id(item.variant.product_id),
        "locationId": _id(reservation.location_id),
        "quantity": reservation.quantity,
        "reason": reservation.reason,
        "reference": reservation.reference,
        "expiresAt": reservation.expires_at,
        "userId": _id(reservation.created_by_id),
    }
