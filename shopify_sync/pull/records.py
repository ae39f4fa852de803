"""Shopify records -> our field values. Pure: dicts in, plain values out.

The rules (docs/shopify.md, "Pull sync"):
- ids: ``gid://shopify/Product/123`` -> ``("Product", 123)``, stored in ``shopify_id``;
- a variant without a SKU, or whose SKU another item already has, gets ``shopify-<inventory item id>``;
- a customer without an email, or whose email another customer already has, gets
  ``shopify-<customer id>@customers.shopify.invalid``; an order without a customer belongs to
  the one guest customer ``guest@customers.shopify.invalid``;
- a Shopify order ``#1001`` is our order ``SHOP-1001`` (local numbers never start with ``SHOP-``);
  ``SHOP-ID<order id>`` when that number is taken or the order has no name;
- stock: Shopify's ``available`` is what can be sold, ours counts reserved units too, so
  ``available = max(0, shopify_available) + reserved``;
- Shopify's order states map to the lifecycle as in ``FINANCIAL`` / ``FULFILLMENT`` / ``order_status``.
"""
from decimal import Decimal, InvalidOperation
import re

GID_RE = re.compile(r"^gid://shopify/([A-Za-z]+)/(\d{1,19})(?:\?.*)?$")
GUEST_EMAIL = "guest@customers.shopify.invalid"
ORDER_PREFIX = "SHOP-"


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


def sku_fallback(inventory_item_id: int) -> str:
    return f"shopify-{inventory_item_id}"


def email_fallback(customer_id: int) -> str:
    return f"shopify-{customer_id}@customers.shopify.invalid"


def handle_fallback(handle: str, product_id: int) -> str:
    return f"{handle[:170]}-shopify-{product_id}"


def customer_name(record: dict, customer_id: int) -> str:
    name = " ".join(p for p in (text(record.get("firstName"), 100), text(record.get("lastName"), 100)) if p)
    return (name or text(record.get("email"), 200) or f"Shopify customer {customer_id}")[:200]


def order_number(name: object, order_id: int) -> str:
    base = text(name, 40).lstrip("#").strip()
    return f"{ORDER_PREFIX}{base}"[:32] if base else order_number_fallback(order_id)


def order_number_fallback(order_id: int) -> str:
    """For an order without a name, or whose number is taken: never equal to a ``SHOP-<name>``."""
    return f"{ORDER_PREFIX}ID{order_id}"


def shopify_available(level: dict) -> int:
    for quantity in level.get("quantities") or []:
        if isinstance(quantity, dict) and quantity.get("name") == "available":
            value = quantity.get("quantity")
            if isinstance(value, int) and not isinstance(value, bool):
                return value
    raise BadRecord("inventory level without an 'available' quantity")


def local_available(shopify_value: int, reserved: int) -> int:
    """Our on-hand count: Shopify's sellable units (an oversold, negative count is 0) plus our reserved units."""
    return max(0, shopify_value) + reserved


# displayFinancialStatus -> payment_status
FINANCIAL = {
    "PENDING": "pending", "PARTIALLY_PAID": "pending", "AUTHORIZED": "authorized", "PAID": "paid",
    "PARTIALLY_REFUNDED": "partially_refunded", "REFUNDED": "refunded", "VOIDED": "voided", "EXPIRED": "voided",
}
# displayFulfillmentStatus -> fulfillment_status
FULFILLMENT = {"FULFILLED": "fulfilled", "PARTIALLY_FULFILLED": "partial", "RESTOCKED": "returned"}


def order_states(record: dict) -> tuple[str, str, str]:
    """(status, payment_status, fulfillment_status) of a Shopify order."""
    payment = FINANCIAL.get(record.get("displayFinancialStatus"), "pending")
    fulfillment = FULFILLMENT.get(record.get("displayFulfillmentStatus"), "unfulfilled")
    if record.get("cancelledAt"):
        status = "refunded" if payment == "refunded" else "cancelled"
    elif payment == "refunded":
        status = "refunded" if fulfillment == "fulfilled" else "cancelled"
    elif fulfillment == "fulfilled":
        status = "delivered" if record.get("closedAt") else "shipped"
    elif fulfillment == "partial" or record.get("displayFulfillmentStatus") == "IN_PROGRESS":
        status = "processing"
    elif payment in ("paid", "authorized", "partially_refunded"):
        status = "confirmed"
    else:
        status = "pending"
    return status, payment, fulfillment
