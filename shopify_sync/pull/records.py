"""Shopify records -> our field values. Pure: dicts in, plain values out.

The rules (docs/shopify.md, "Pull sync"):
- ids: ``gid://shopify/Product/123`` -> ``("Product", 123)``, stored in ``shopify_id``;
- numbers, states, stock, missing emails and SKUs, guests: ``shopify_sync.mapping``, the rules
  the webhooks use too (one row per Shopify resource, whichever path wrote it).
"""
from decimal import Decimal, InvalidOperation
import re

from .. import mapping

GID_RE = re.compile(r"^gid://shopify/([A-Za-z]+)/(\d{1,19})(?:\?.*)?$")


class BadRecord(ValueError):
    """A record we cannot store (counted as failed, with this message)."""


def parse_gid(gid: object) -> tuple[str, int]:
    match = GID_RE.match(gid) if isinstance(gid, str) else None
    if not match:
        raise BadRecord(f"not a Shopify id: {str(gid)[:80]!r}")
    return match.group(1), int(match.group(2))


def shopify_id(gid: object) -> int:
    return parse_gid(gid)[1]


def text(value: object, limit: int) -> str:
    return value.strip()[:limit] if isinstance(value, str) else ""


def money(value: object) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise BadRecord(f"not an amount: {str(value)[:40]!r}") from None
    if not amount.is_finite() or amount < 0:
        raise BadRecord(f"not an amount: {str(value)[:40]!r}")
    return amount.quantize(Decimal("0.01"))


def product_status(value: object) -> str:
    # UNLISTED products can still be bought (by link): active for us.
    return {"ACTIVE": "active", "DRAFT": "draft", "ARCHIVED": "archived", "UNLISTED": "active"}.get(value, "draft")


def handle_fallback(handle: str, product_id: int) -> str:
    return f"{handle[:170]}-shopify-{product_id}"


def customer_name(record: dict, customer_id: int) -> str:
    name = " ".join(p for p in (text(record.get("firstName"), 100), text(record.get("lastName"), 100)) if p)
    return (name or text(record.get("email"), 200) or f"Shopify customer {customer_id}")[:200]


def shopify_available(level: dict) -> int:
    for quantity in level.get("quantities") or []:
        if isinstance(quantity, dict) and quantity.get("name") == "available":
            value = quantity.get("quantity")
            if isinstance(value, int) and not isinstance(value, bool):
                return value
    raise BadRecord("inventory level without an 'available' quantity")


def order_states(record: dict) -> tuple[str, str, str]:
    """(status, payment_status, fulfillment_status) of a Shopify order record (``shopify_sync.mapping``)."""
    payment = mapping.payment(record.get("displayFinancialStatus")) or "pending"
    fulfillment = mapping.fulfillment(record.get("displayFulfillmentStatus")) or "unfulfilled"
    return mapping.order_status(payment, fulfillment, bool(record.get("cancelledAt"))), payment, fulfillment
