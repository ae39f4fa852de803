"""Web Push (docs/notifications.md, *Web Push*): browser subscriptions, and delivery of stored
notifications to users who are not connected, by the background worker.

A notification is queued (``PushDelivery``) in the transaction that stores it, for each subscription
of its users whose push preference for the kind is on. The worker's job ``deliver_due`` sends what is
due, unless the user has a socket open (presence counts across processes, django_oda_realtime/presence.py):
then the socket delivered it. A user with a resumable session (``resumable_until``: disconnected
within ``HISTORY_WINDOW``) gets it from the replay on resume; the delivery waits until that session
has expired and is sent then only if the user did not come back. Nobody gets both. Payloads are encrypted per RFC 8291 (aes128gcm) and signed with VAPID (RFC 8292)
by pywebpush. A push service's 404/410 means the subscription is gone: it is deleted. 429, 5xx and
network errors are retried with exponential backoff, up to ``WEBPUSH_MAX_ATTEMPTS``.
"""
import base64
import binascii
from datetime import UTC, datetime, timedelta
from functools import cache
import json
import logging
import time
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.utils import timezone
import requests

from django_oda_realtime.conf import rt_settings

from .models import Notification, PushDelivery, PushPreference, PushSubscription

logger = logging.getLogger("notifications.webpush")

MAX_ENDPOINT_LENGTH = 1000  # PushSubscription.endpoint's max_length
BATCH = 50  # deliveries per worker turn
RESUME_MARGIN = timedelta(seconds=1)  # past a resumable session's expiry
GONE = (404, 410)  # RFC 8030 section 7.3: the subscription expired or was removed

__all__ = ["InvalidSubscription", "validate_subscription", "subscribe", "queue", "deliver_due",
           "has_resumable_session", "resumable_until", "open_sockets", "public_key"]


class InvalidSubscription(ValueError):
    """A subscription the browser could not have made: ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _b64url(value, field: str) -> bytes:
    if not isinstance(value, str) or not value or len(value) > 200:
        raise InvalidSubscription(field, "must be a base64url string")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as e:
        raise InvalidSubscription(field, "must be a base64url string") from e


def validate_subscription(endpoint, p256dh, auth) -> tuple[str, str, str]:
    """Check a ``PushSubscription.toJSON()``'s endpoint and keys; returns them normalised."""
    if not isinstance(endpoint, str) or not endpoint:
        raise InvalidSubscription("endpoint", "must be a URL")
    if len(endpoint) > MAX_ENDPOINT_LENGTH:
        raise InvalidSubscription("endpoint", f"must be at most {MAX_ENDPOINT_LENGTH} characters")
    parts = urlsplit(endpoint)
    schemes = ("https", "http") if getattr(settings, "WEBPUSH_ALLOW_HTTP_ENDPOINTS", False) else ("https",)
    if parts.scheme not in schemes or not parts.hostname or parts.username or parts.password:
        raise InvalidSubscription("endpoint", "must be an https:// URL of a push service")
    point = _b64url(p256dh, "keys.p256dh")
    if len(point) != 65 or point[0] != 4:
        raise InvalidSubscription("keys.p256dh", "must be an uncompressed P-256 public key (65 bytes, base64url)")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError as e:
        raise InvalidSubscription("keys.p256dh", "is not a point on the P-256 curve") from e
    if len(_b64url(auth, "keys.auth")) != 16:
        raise InvalidSubscription("keys.auth", "must be a 16-byte secret (base64url)")
    return endpoint, p256dh.rstrip("="), auth.rstrip("=")


def subscribe(user, endpoint, p256dh, auth) -> tuple[PushSubscription, bool]:
    """Register (or move to ``user`` and refresh) a subscription; returns it and whether it is new."""
    endpoint, p256dh, auth = validate_subscription(endpoint, p256dh, auth)
    return PushSubscription.objects.update_or_create(endpoint=endpoint,
                                                     defaults={"user": user, "p256dh": p256dh, "auth": auth})


def queue(notifications: list[Notification]) -> int:
    """Queue push messages for stored notifications (in the caller's transaction); returns how many."""
    now = timezone.now()
    rows = []
    for notification in notifications:
        off = PushPreference.objects.filter(kind=notification.kind, enabled=False).values("user_id")
        subs = PushSubscription.objects.exclude(user_id__in=off)
        if notification.user_id is not None:
            subs = subs.filter(user_id=notification.user_id)
        rows += [PushDelivery(subscription_id=pk, notification=notification, due_at=now)
                 for pk in subs.values_list("pk", flat=True)]
    PushDelivery.objects.bulk_create(rows)
    return len(rows)


def resumable_until(user_id):
    """When the user's last resumable session expires (an aware datetime), None if none is left.

    Read from the resume session store (django_oda_realtime/history_sessions.py, docs/design.md#history),
    shared by every process on Redis. None also when the store does not answer: then the push is
    sent (a duplicate beats a loss)."""
    from asgiref.sync import async_to_sync

    from django_oda_realtime.history_sessions import make_sessions

    try:
        until = async_to_sync(make_sessions().resumable_until)(user_id)
    except Exception as e:  # noqa: BLE001  Redis down: unknown
        logger.warning("Resume sessions unavailable (%s); pushing", type(e).__name__)
        return None
    return None if until is None else datetime.fromtimestamp(until, UTC)


def has_resumable_session(user_id) -> bool:
    """Can the user still resume a session (disconnected within ``HISTORY_WINDOW``)? Then the replay
    on resume delivers the notification, not a push."""
    return resumable_until(user_id) is not None


@cache
def _presence():
    from django_oda_realtime.presence import RedisPresence, make_presence

    presence = make_presence()
    if not isinstance(presence, RedisPresence):
        return None
    import redis

    return presence, redis.Redis.from_url(rt_settings.PRESENCE_REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def open_sockets(user_id) -> int | None:
    """Live sockets of the user across processes (unexpired presence leases), None when unknown:
    presence is counted per process without ``PRESENCE_REDIS_URL``, or Redis did not answer."""
    found = _presence()
    if found is None:
        return None
    presence, client = found
    try:
        return client.zcount(presence.key(str(user_id)), time.time(), "+inf")
    except Exception as e:  # noqa: BLE001  unknown: the push is sent (a duplicate beats a loss)
        logger.warning("Presence unavailable (%s); pushing", type(e).__name__)
        return None


def public_key() -> str:
    return getattr(settings, "WEBPUSH_VAPID_PUBLIC_KEY", "")


def _payload(notification: Notification) -> str:
    return json.dumps({"event": "notification", "type": notification.kind, "id": str(notification.pk),
                       "data": notification.data}, separators=(",", ":"))


def _backoff(attempts: int) -> timedelta:
    base = getattr(settings, "WEBPUSH_RETRY_BASE_SECONDS", 30.0)
    return timedelta(seconds=min(base * 2 ** (attempts - 1), 6 * 3600))


def _send(delivery: PushDelivery):
    from pywebpush import webpush

    sub = delivery.subscription
    return webpush(
        {"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}},
        data=_payload(delivery.notification),
        vapid_private_key=settings.WEBPUSH_VAPID_PRIVATE_KEY,
        vapid_claims={"sub": settings.WEBPUSH_VAPID_SUBJECT},
        ttl=getattr(settings, "WEBPUSH_TTL", 86400), timeout=10,
    )


def deliver_due() -> int:
    """Send the due push messages (a worker job); returns how many were handled."""
    if not getattr(settings, "WEBPUSH_VAPID_PRIVATE_KEY", ""):
        return 0  # push not configured: deliveries wait (docs/notifications.md, *Web Push*)
    from pywebpush import WebPushException

    due = list(PushDelivery.objects.filter(due_at__lte=timezone.now())
               .select_related("subscription", "notification")[:BATCH])
    for delivery in due:
        user_id = delivery.subscription.user_id
        if (open_sockets(user_id) or 0) > 0:
            delivery.delete()  # delivered by the socket
            continue
        until = resumable_until(user_id)
        if until is not None:
            # A resume replays it; if the session expires unresumed, the push goes then.
            delivery.due_at = until + RESUME_MARGIN
            delivery.save(update_fields=["due_at"])
            continue
        try:
            _send(delivery)
        except WebPushException as e:
            status = getattr(e.response, "status_code", None)
            if status in GONE:
                logger.info("Push subscription %s gone (%s): deleted", delivery.subscription_id, status)
                PushSubscription.objects.filter(pk=delivery.subscription_id).delete()
                continue
            _retry(delivery, f"HTTP {status}" if status else type(e).__name__, _retry_after(e.response))
        except requests.RequestException as e:
            _retry(delivery, type(e).__name__)
        else:
            delivery.delete()
    return len(due)


def _retry_after(response) -> float:
    """Seconds from a 429/503's ``Retry-After`` (RFC 8030 section 8.4), 0 when absent or a date."""
    value = getattr(response, "headers", {}).get("Retry-After", "") if response is not None else ""
    return min(float(value), 6 * 3600.0) if value.strip().isdigit() else 0.0


def _retry(delivery: PushDelivery, error: str, after: float = 0.0) -> None:
    delivery.attempts += 1
    if delivery.attempts >= getattr(settings, "WEBPUSH_MAX_ATTEMPTS", 8):
        logger.warning("Push to subscription %s dropped after %s attempts (%s)",
                       delivery.subscription_id, delivery.attempts, error)
        delivery.delete()
        return
    delivery.due_at = timezone.now() + max(_backoff(delivery.attempts), timedelta(seconds=after))
    delivery.last_error = error[:200]
    delivery.save(update_fields=["attempts", "due_at", "last_error"])

