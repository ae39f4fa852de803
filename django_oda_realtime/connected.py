"""Extra fields of the ``connected`` payload, contributed by apps (docs/protocol.md, ``connected``).

An app registers ``fn(user) -> dict`` in ``ready()``, with the JSON Schema of each field it adds
(``connected``'s contract lists them as optional fields, django_oda_realtime/contract/builtin.py); ``Session.open`` calls every one in the thread
hop it already makes for permissions (synchronous, database allowed), and merges their dicts into the
payload. A function that raises is logged and contributes nothing: the socket still opens.
"""
from collections.abc import Callable
import logging

logger = logging.getLogger("realtime.connected")

__all__ = ["register_connected_extra", "connected_extra", "connected_fields"]

_extras: dict[str, Callable[[object], dict]] = {}
_fields: dict[str, dict] = {}


def register_connected_extra(fn: Callable[[object], dict], fields: dict[str, dict], *, name: str | None = None) -> None:
    """Add (or replace, by ``name``) a contributor of ``connected`` fields, ``fields`` naming their schemas."""
    _extras[name or f"{fn.__module__}.{fn.__qualname__}"] = fn
    _fields.update(fields)


def connected_fields() -> dict[str, dict]:
    """The schemas of the registered extra fields, by field name (for the event contract)."""
    return dict(_fields)


def connected_extra(user) -> dict:
    """The registered extra fields for ``user`` (sync; called from a database thread)."""
    extra: dict = {}
    for name, fn in list(_extras.items()):
        try:
            extra.update(fn(user))
        except Exception:  # noqa: BLE001  one broken contributor must not refuse the socket
            logger.exception("connected extra %s failed", name)
    return extra
