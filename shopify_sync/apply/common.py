"""What the appliers share: reading payload fields strictly, versions, tombstones, outcomes.

Outcomes (``shopify_sync/processing.py`` turns them into a delivery's status):
``Malformed``: the payload cannot be applied, ever (failed at once, nothing written);
``NotYet``: something it needs is missing (retried with backoff);
``Stale``: older than what is stored (ignored; docs/shopify.md, *Ordering*).
"""
from datetime import datetime
from decimal import Decimal, InvalidOperation

from ..models import Tombstone
from ..webhooks import parse_time


class Malformed(Exception):
    """The payload does not have the documented shape."""


class NotYet(Exception):
    """A resource this delivery refers to is not stored yet: retry later."""


class Stale(Exception):
    """The delivery is older than the stored data: nothing to do."""


def shopify_id(payload: dict, key: str = "id", *, required: bool = True) -> int | None:
    value = payload.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise Malformed(f"{key} is not a Shopify id: {str(value)[:40]!r}")
    return value


def text(payload: dict, key: str, limit: int, default: str = "") -> str:
    value = payload.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise Malformed(f"{key} is not text")
    return value[:limit]


def integer(payload: dict, key: str, *, default: int | None = None) -> int:
    value = payload.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Malformed(f"{key} is not an integer")
    return value


def money(payload: dict, key: str) -> Decimal:
    value = payload.get(key)
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise Malformed(f"{key} is not an amount") from None
    if not amount.is_finite() or amount < 0 or amount >= 10**10:
        raise Malformed(f"{key} is out of range")
    return amount.quantize(Decimal("0.01"))


def items(payload: dict, key: str) -> list[dict]:
    value = payload.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise Malformed(f"{key} is not a list of objects")
    return value


def version(payload: dict, delivery) -> datetime:
    """The payload's ``updated_at``, else the delivery's ``X-Shopify-Triggered-At`` (deletes carry no time)."""
    if payload.get("updated_at") is not None:
        parsed = parse_time(payload["updated_at"])
        if parsed is None:
            raise Malformed("updated_at is not an ISO 8601 time")
        return parsed
    parsed = parse_time(delivery.triggered_at)
    if parsed is None:
        raise Malformed("the delivery has no time to order it by")
    return parsed


def check_newer(stored: datetime | None, incoming: datetime, what: str) -> None:
    """Raise ``Stale`` when ``incoming`` is older than ``stored`` (equal applies again: idempotent)."""
    if stored is not None and incoming < stored:
        raise Stale(f"{what} is newer here ({stored.isoformat()})")


def bury(resource: str, key, when: datetime) -> None:
    """Record a deletion (keeping the latest time), so older creates and updates are ignored."""
    stone, created = Tombstone.objects.select_for_update().get_or_create(
        resource=resource, key=str(key), defaults={"deleted_at": when})
    if not created and stone.deleted_at < when:
        stone.deleted_at = when
        stone.save(update_fields=["deleted_at"])


def check_alive(resource: str, key, incoming: datetime) -> None:
    """Raise ``Stale`` when the resource was deleted at or after ``incoming``."""
    deleted_at = Tombstone.objects.filter(resource=resource, key=str(key)).values_list("deleted_at", flat=True).first()
    if deleted_at is not None and incoming <= deleted_at:
        raise Stale(f"{resource} {key} was deleted at {deleted_at.isoformat()}")
