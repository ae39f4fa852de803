"""Errors of the stock services, independent of how a caller reaches them (socket, admin, shell).

``inventory/commands.py`` maps them to the socket layer's ``CommandError`` at the command
boundary (same ``code`` and message); the admin and management commands show them as they are.
"""


class InventoryError(Exception):
    """A stock operation refused; ``code`` is a stable string (the socket error's ``code``)."""

    code = "inventory_error"
    default_message = "The stock operation was refused"

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        self.message = message or self.default_message
        if code is not None:
            self.code = code
        super().__init__(self.message)


class InsufficientStock(InventoryError):
    code = "insufficient_stock"
    default_message = "Not enough stock"


class Conflict(InventoryError):
    code = "conflict"
    default_message = "The stock changed since it was read"
