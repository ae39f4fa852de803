"""Strict parsing of the inventory commands' data (issue #3, #5). Pure: no ORM.

Ids are positive integers, as JSON numbers or canonical decimal strings ("12",
not "012" or "12.0"); quantities are JSON integers (no floats, booleans or
strings); unknown fields are refused. Everything wrong raises ``InvalidInput``.
"""
from dataclasses import dataclass
import re

from django_oda_realtime.exceptions import InvalidInput

MAX_QUANTITY = 1_000_000
MAX_ID = 2**63 - 1
MAX_REASON = 200
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class UpdateRequest:
    item_id: int
    quantity: int
    reason: str
    location_id: int | None = None
    expected_quantity: int | None = None


@dataclass(frozen=True)
class ReserveRequest:
    item_id: int
    quantity: int
    reason: str
    location_id: int | None = None
    request_id: str | None = None
    reference: str = ""


def _mapping(data: object, required: set[str], optional: set[str]) -> dict:
    if not isinstance(data, dict):
        raise InvalidInput("data must be an object")
    unknown = set(data) - required - optional
    if unknown:
        raise InvalidInput("Unknown field(s): " + ", ".join(sorted(str(k)[:40] for k in unknown))[:200])
    missing = required - set(data)
    if missing:
        raise InvalidInput("Missing field(s): " + ", ".join(sorted(missing)))
    return data


def parse_id(value: object, name: str) -> int:
    if isinstance(value, str) and re.fullmatch(r"[1-9][0-9]{0,18}", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise InvalidInput(f"{name} must be a positive integer id")
    return value


def parse_quantity(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{name} must be an integer")
    if not minimum <= value <= MAX_QUANTITY:
        raise InvalidInput(f"{name} must be between {minimum} and {MAX_QUANTITY}")
    return value


def parse_text(value: object, name: str, *, required: bool, limit: int = MAX_REASON) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise InvalidInput(f"{name} must be a non-empty string of at most {limit} characters")
    if any(ord(c) < 32 for c in value):
        raise InvalidInput(f"{name} must not contain control characters")
    return value.strip()


def _optional_id(data: dict, key: str) -> int | None:
    return None if data.get(key) is None else parse_id(data[key], key)


def parse_update(data: object) -> UpdateRequest:
    """``{inventoryItemId, quantity, reason, locationId?, expectedQuantity?}``: set the quantity on hand."""
    data = _mapping(data, {"inventoryItemId", "quantity", "reason"}, {"locationId", "expectedQuantity"})
    expected = data.get("expectedQuantity")
    return UpdateRequest(
        item_id=parse_id(data["inventoryItemId"], "inventoryItemId"),
        quantity=parse_quantity(data["quantity"], "quantity", 0),
        reason=parse_text(data["reason"], "reason", required=True),
        location_id=_optional_id(data, "locationId"),
        expected_quantity=None if expected is None else parse_quantity(expected, "expectedQuantity", 0),
    )


def parse_reserve(data: object) -> ReserveRequest:
    """``{inventoryItemId, quantity, reason, locationId?, requestId?, reference?}``: hold sellable units."""
    data = _mapping(data, {"inventoryItemId", "quantity", "reason"}, {"locationId", "requestId", "reference"})
    request_id = data.get("requestId")
    if request_id is not None and (not isinstance(request_id, str) or not REQUEST_ID_RE.match(request_id)):
        raise InvalidInput("requestId must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'")
    return ReserveRequest(
        item_id=parse_id(data["inventoryItemId"], "inventoryItemId"),
        quantity=parse_quantity(data["quantity"], "quantity", 1),
        reason=parse_text(data["reason"], "reason", required=True),
        location_id=_optional_id(data, "locationId"),
        request_id=request_id,
        reference=parse_text(data.get("reference"), "reference", required=False, limit=64),
    )
