"""Domain refusals, independent of how a caller reaches them (socket, admin, shell, Shopify).

Domain errors are not typed by the socket layer: a client command maps them to the socket
layer's ``CommandError`` (same ``code`` and message) where it is registered, with
``as_command_errors``; the admin and management commands show them as they are.
"""
import functools

from django_oda_realtime.exceptions import CommandError


class DomainError(Exception):
    """A domain operation refused; ``code`` is a stable string (the socket error's ``code``)."""

    code = "domain_error"
    default_message = "The operation was refused"

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        self.message = message or self.default_message
        if code is not None:
            self.code = code
        super().__init__(self.message)


class NotFound(DomainError):
    """The object a domain operation names does not exist."""

    code = "not_found"
    default_message = "Not found"


def as_command_errors(handler):
    """The command boundary: a domain refusal becomes the socket layer's ``CommandError``."""

    @functools.wraps(handler)
    def wrapper(caller, data):
        try:
            return handler(caller, data)
        except DomainError as e:
            raise CommandError(e.message, code=e.code) from e

    return wrapper
