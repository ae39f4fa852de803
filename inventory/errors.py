"""Errors of the stock services, independent of how a caller reaches them (socket, admin, shell).

``inventory/commands.py`` maps them to the socket layer's ``CommandError`` at the command
boundary (``domain_shared.errors.as_command_errors``: same ``code`` and message); the admin and
management commands show them as they are.
"""
from domain_shared.errors import DomainError, NotFound

__all__ = ["Conflict", "InsufficientStock", "InventoryError", "LocationRequired", "NotFound"]


class InventoryError(DomainError):
    """A stock operation refused; ``code`` is a stable string (the socket error's ``code``)."""

    code = "inventory_error"
    default_message = "The stock operation was refused"


class InsufficientStock(InventoryError):
    code = "insufficient_stock"
    default_message = "Not enough stock"


class Conflict(InventoryError):
    code = "conflict"
    default_message = "The stock changed since it was read"


class LocationRequired(InventoryError):
    code = "location_required"
    default_message = "locationId is required: the item is not stocked at exactly one location"
