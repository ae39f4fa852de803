"""The client commands ``inventory:update`` and ``inventory:reserve`` (registered in ``apps.ready``).

Handlers are sync (the session runs them in a DB thread): permission first,
then strict validation, then one service call in one transaction, so a failure
writes nothing. Failures reach the caller as ``inventory:updateError`` /
``inventory:reservationError`` with ``{error, code, request}``.
"""
from django_oda_realtime import commands
from django_oda_realtime.exceptions import PermissionDenied
from domain_shared.errors import as_command_errors

from . import events, services
from .validation import parse_reserve, parse_update

CHANGE = "inventory.change_inventorylevel"


def _require_change(user) -> None:
    if not user.has_perm(CHANGE):
        raise PermissionDenied("You do not have permission to change inventory")


@as_command_errors
def update(caller, data) -> dict:
    """Set an item's quantity on hand at a location."""
    _require_change(caller.user)
    req = parse_update(data)
    location_id = services.resolve_location(req.item_id, req.location_id)
    level = services.set_quantity(
        req.item_id, location_id, req.quantity, reason=req.reason, user=caller.user, expected=req.expected_quantity
    )
    return {
        "inventoryItemId": str(level.item_id),
        "locationId": str(level.location_id),
        "available": level.available,
        "reserved": level.reserved,
    }


@as_command_errors
def reserve(caller, data) -> dict:
    """Reserve sellable units of an item at a location (idempotent with ``requestId``)."""
    _require_change(caller.user)
    req = parse_reserve(data)
    location_id = services.resolve_location(req.item_id, req.location_id)
    reservation = services.reserve(
        req.item_id, location_id, req.quantity, reason=req.reason, user=caller.user,
        reference=req.reference, request_id=req.request_id,
    )
    return {
        "reservationId": str(reservation.pk),
        "inventoryItemId": str(reservation.item_id),
        "locationId": str(reservation.location_id),
        "quantity": reservation.quantity,
        "status": reservation.status,
        "expiresAt": reservation.expires_at,
        "requestId": reservation.request_id,
        "duplicate": reservation.duplicate,
    }


def register() -> None:
    commands.register(events.INVENTORY_UPDATE, update, error_event=events.INVENTORY_UPDATE_ERROR)
    commands.register(events.INVENTORY_RESERVE, reserve, error_event=events.INVENTORY_RESERVATION_ERROR)
