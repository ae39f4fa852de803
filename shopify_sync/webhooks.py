"""Shopify webhook checks and summaries. Pure: bytes and dicts in, answers out.

The signature is ``base64(HMAC-SHA256(secret, raw body))`` in ``X-Shopify-Hmac-Sha256``:
computed over the raw bytes exactly as received (never a re-serialised body),
compared in constant time, against the current secret and, during a rotation,
the old one (docs/design.md#shopify-hmac). Anything that is not strict base64 of 32 bytes
(hex, truncated, padded wrongly) is simply not a valid signature.
"""
import base64
import binascii
import hashlib
import hmac
import re
from datetime import datetime

TOPIC_RE = re.compile(r"^[a-z0-9_]{1,50}/[a-z0-9_]{1,50}$")
HEADER_VALUE_RE = re.compile(r"^[\x21-\x7e]{1,100}$")
MAX_TEXT = 100

# Per resource (the topic's first part): summary key -> payload key. Never the whole payload, no PII.
SUMMARY_FIELDS: dict[str, dict[str, str]] = {
    "products": {"id": "id", "title": "title", "status": "status", "handle": "handle"},
    "orders": {"id": "id", "name": "name", "financialStatus": "financial_status",
               "fulfillmentStatus": "fulfillment_status", "totalPrice": "total_price", "currency": "currency"},
    "inventory_levels": {"inventoryItemId": "inventory_item_id", "locationId": "location_id",
                         "available": "available"},
    "inventory_items": {"id": "id", "sku": "sku"},
    "customers": {"id": "id", "state": "state"},
}
ID_KEYS = {"id", "inventoryItemId", "locationId"}


def signature_valid(body: bytes, header: str | None, secrets) -> bool:
    """True if ``header`` is the base64 HMAC-SHA256 of ``body`` under one of ``secrets``."""
    if not header:
        return False
    try:
        given = base64.b64decode(header.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return False
    if len(given) != hashlib.sha256().digest_size:
        return False
    valid = False
    for secret in secrets:
        if secret:
            expected = hmac.new(secret.encode(), body, hashlib.sha256).digest()
            valid |= hmac.compare_digest(expected, given)  # no early exit: same time per secret
    return valid


def sign(body: bytes, secret: str) -> str:
    """The header value Shopify would send for ``body`` (for tests and local tools)."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def clean_header(value: str | None) -> str | None:
    """A header value if it is 1-100 printable ASCII characters, else None."""
    if value is None or not HEADER_VALUE_RE.match(value):
        return None
    return value


def _short(value):
    if isinstance(value, str):
        return value[:MAX_TEXT]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return None


def summarize(topic: str, payload: object) -> dict:
    """A few identifying fields of the payload, ids as strings, texts cut to 100 characters."""
    if not isinstance(payload, dict):
        return {}
    fields = SUMMARY_FIELDS.get(topic.split("/", 1)[0], {"id": "id"})
    summary = {}
    for key, source in fields.items():
        value = _short(payload.get(source))
        if value is None:
            continue
        summary[key] = str(value) if key in ID_KEYS else value
    return summary


# -- replay (issue #11) ------------------------------------------------------------------------

# Shopify retries a failed delivery 8 times over 4 hours; a delivery triggered longer
# ago than that plus a margin (SHOPIFY_WEBHOOK_MAX_AGE, docs/shopify.md) is a replay.
RETRY_HORIZON_SECONDS = 4 * 3600
DEFAULT_MAX_AGE_MARGIN = 3600

# The keys a payload of each topic always carries (Shopify's documented shapes, API 2025-01,
# docs/shopify.md). A signed body relabelled with a topic whose shape it lacks is refused.
# orders/updated and orders/paid may carry the same body: the shape cannot tell them apart,
# which is why the replay digest includes the topic.
_ORDER = {"id", "name", "financial_status", "line_items", "updated_at"}
_PRODUCT = {"id", "title", "variants", "updated_at"}
_LOCATION = {"id", "name", "active", "updated_at"}
_CUSTOMER = {"id", "email", "first_name", "last_name", "updated_at"}
_LEVEL = {"inventory_item_id", "location_id"}
TOPIC_SHAPES: dict[str, frozenset[str]] = {
    **{f"products/{a}": frozenset(_PRODUCT) for a in ("create", "update")},
    "products/delete": frozenset({"id"}),
    "inventory_levels/update": frozenset(_LEVEL | {"available", "updated_at"}),
    "inventory_levels/connect": frozenset(_LEVEL | {"available", "updated_at"}),
    "inventory_levels/disconnect": frozenset(_LEVEL),
    **{f"locations/{a}": frozenset(_LOCATION) for a in ("create", "update")},
    "locations/delete": frozenset({"id"}),
    **{f"orders/{a}": frozenset(_ORDER) for a in ("create", "updated", "cancelled", "fulfilled", "paid")},
    **{f"customers/{a}": frozenset(_CUSTOMER) for a in ("create", "update")},
    "customers/data_request": frozenset({"shop_id", "shop_domain", "customer", "orders_requested"}),
    "customers/redact": frozenset({"shop_id", "shop_domain", "customer", "orders_to_redact"}),
    "shop/redact": frozenset({"shop_id", "shop_domain"}),
    "app/uninstalled": frozenset({"id", "name", "myshopify_domain"}),
}
# Keys a topic must NOT carry: a product's body relabelled products/delete still has a title.
TOPIC_FORBIDDEN: dict[str, frozenset[str]] = {
    "products/delete": frozenset({"title", "variants"}),
    "locations/delete": frozenset({"name"}),
    "inventory_levels/disconnect": frozenset({"available"}),
}


def digest(topic: str, body: bytes) -> str:
    """sha256 of the topic and the raw body: one key per (topic, body), whatever ids the headers carry."""
    return hashlib.sha256(topic.encode() + b"\n" + body).hexdigest()


def shape_error(topic: str, payload: dict) -> str | None:
    """Why ``payload`` cannot be a ``topic`` delivery, or None (unknown topics: no check)."""
    required = TOPIC_SHAPES.get(topic)
    if required is None:
        return None
    missing = sorted(required - payload.keys())
    if missing:
        return f"{topic} payload lacks {', '.join(missing)}"
    extra = sorted(TOPIC_FORBIDDEN.get(topic, frozenset()) & payload.keys())
    if extra:
        return f"{topic} payload has {', '.join(extra)}"
    if topic == "orders/cancelled" and not payload.get("cancelled_at"):
        return "orders/cancelled payload has no cancelled_at"
    if topic == "orders/paid" and payload.get("financial_status") != "paid":
        return "orders/paid payload is not paid"
    if topic == "orders/fulfilled" and payload.get("fulfillment_status") != "fulfilled":
        return "orders/fulfilled payload is not fulfilled"
    return None


def parse_time(value) -> datetime | None:
    """An aware datetime from Shopify's ISO 8601 text (header or payload), or None."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
