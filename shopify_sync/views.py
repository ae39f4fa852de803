"""``POST /shopify/webhooks/``: verify, store once, broadcast, answer at once.

Statuses: 405 not POST, 413 body over ``SHOPIFY_WEBHOOK_MAX_BYTES``, 415 not
JSON, 401 bad or missing signature (nothing stored), 400 invalid JSON or
headers, 400 ``stale_delivery`` when ``X-Shopify-Triggered-At`` is older than
``SHOPIFY_WEBHOOK_MAX_AGE``, 400 ``topic_mismatch`` when the payload lacks the
topic's shape, 200 stored (``accepted``) or already seen (``duplicate``, nothing
sent again). Deduplication is the unique insert itself, on the event id, the
webhook id and the digest of topic and body: two identical deliveries in
parallel make one row and one event, and the same signed body under new ids is
a duplicate (docs/shopify.md; docs/design.md#shopify-dedupe: no check-then-insert).
"""
import json
import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, transaction
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from . import signals
from .models import WebhookDelivery
from .webhooks import (
    DEFAULT_MAX_AGE_MARGIN, RETRY_HORIZON_SECONDS, TOPIC_RE, clean_header, digest, parse_time, shape_error,
    signature_valid, summarize,
)

logger = logging.getLogger("shopify_sync.webhooks")
DEFAULT_MAX_BYTES = 1024 * 1024


def _refuse(status: int, error: str) -> JsonResponse:
    return JsonResponse({"error": error}, status=status)


def _max_bytes() -> int:
    return getattr(settings, "SHOPIFY_WEBHOOK_MAX_BYTES", DEFAULT_MAX_BYTES)


def max_age() -> int:
    """Seconds after which a delivery is a replay: Shopify's retry horizon plus a margin."""
    return getattr(settings, "SHOPIFY_WEBHOOK_MAX_AGE", RETRY_HORIZON_SECONDS + DEFAULT_MAX_AGE_MARGIN)


def _read_body(request) -> bytes | None:
    """The raw body, or None when it is over the limit (by its header or its length)."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > _max_bytes():
        return None
    try:
        body = request.body
    except RequestDataTooBig:
        return None
    return body if len(body) <= _max_bytes() else None


@csrf_exempt
def webhook(request):
    if request.method != "POST":
        response = _refuse(405, "method_not_allowed")
        response["Allow"] = "POST"
        return response
    body = _read_body(request)
    if body is None:
        return _refuse(413, "payload_too_large")
    if request.content_type != "application/json":
        return _refuse(415, "unsupported_media_type")
    secrets = (settings.SHOPIFY_WEBHOOK_SECRET, getattr(settings, "SHOPIFY_WEBHOOK_OLD_SECRET", ""))
    if not any(secrets):
        logger.error("SHOPIFY_WEBHOOK_SECRET is not set: refusing every webhook")
    if not signature_valid(body, request.headers.get("X-Shopify-Hmac-Sha256"), secrets):
        logger.warning("Refused a webhook with a bad or missing signature")
        return _refuse(401, "invalid_signature")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return _refuse(400, "invalid_json")
    if not isinstance(payload, dict):
        return _refuse(400, "invalid_json")
    topic = request.headers.get("X-Shopify-Topic") or ""
    event_id = clean_header(request.headers.get("X-Shopify-Event-Id"))
    webhook_id = clean_header(request.headers.get("X-Shopify-Webhook-Id"))
    triggered_text = clean_header(request.headers.get("X-Shopify-Triggered-At"))
    triggered_at = parse_time(triggered_text)
    if not TOPIC_RE.match(topic) or (event_id is None and webhook_id is None) or triggered_at is None:
        return _refuse(400, "invalid_headers")
    if (timezone.now() - triggered_at).total_seconds() > max_age():
        logger.warning("Refused a stale webhook %s triggered at %s (replay?)", topic, triggered_text)
        return _refuse(400, "stale_delivery")
    mismatch = shape_error(topic, payload)
    if mismatch is not None:
        logger.warning("Refused a webhook whose payload does not fit its topic: %s", mismatch)
        return _refuse(400, "topic_mismatch")
    try:
        with transaction.atomic():
            delivery = WebhookDelivery.objects.create(
                event_id=event_id, webhook_id=webhook_id, topic=topic,
                shop_domain=clean_header(request.headers.get("X-Shopify-Shop-Domain")) or "",
                api_version=(clean_header(request.headers.get("X-Shopify-API-Version")) or "")[:20],
                triggered_at=triggered_text, digest=digest(topic, body),
                payload=payload, summary=summarize(topic, payload),
            )
            signals.webhook_received.send(sender=WebhookDelivery, delivery=delivery)
    except IntegrityError:
        logger.info("Duplicate webhook %s (event %s, webhook %s)", topic, event_id, webhook_id)
        return JsonResponse({"status": "duplicate"})
    logger.info("Webhook %s stored (event %s, webhook %s)", topic, event_id, webhook_id)
    return JsonResponse({"status": "accepted"})
