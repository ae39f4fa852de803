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
