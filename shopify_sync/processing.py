"""The worker's jobs for webhooks: apply due deliveries, retry failures with backoff, prune payloads.

One delivery, one transaction: the row is claimed with ``SELECT ... FOR UPDATE SKIP LOCKED``
(several workers never apply the same delivery), applied in a savepoint, and its outcome
recorded in the same transaction. A failing applier rolls its savepoint back: nothing of it
is written and none of its events is sent (``publish`` sends on commit, and Django drops the
on-commit callbacks of a rolled-back savepoint). Settings (docs/shopify.md, getattr defaults):

``SHOPIFY_WEBHOOK_MAX_ATTEMPTS`` (8): attempts before a delivery is ``failed``;
``SHOPIFY_WEBHOOK_RETRY_BASE`` (30 s) doubling per attempt, at most ``SHOPIFY_WEBHOOK_RETRY_MAX`` (1 h);
``SHOPIFY_WEBHOOK_RETENTION_DAYS`` (30): payloads of finished deliveries older than that are
pruned (the row, its ids and digest stay, so a replay is still a duplicate).
"""
from datetime import datetime, timedelta
import logging

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone

from . import signals
from .apply import APPLIERS, Malformed, NotYet, Stale
from .models import WebhookDelivery

logger = logging.getLogger("shopify_sync.apply")
Status = WebhookDelivery.Status


def max_attempts() -> int:
    return getattr(settings, "SHOPIFY_WEBHOOK_MAX_ATTEMPTS", 8)


def backoff(attempts: int) -> timedelta:
    """The wait before attempt ``attempts + 1``: base * 2^(attempts-1), capped."""
    base = getattr(settings, "SHOPIFY_WEBHOOK_RETRY_BASE", 30)
    cap = getattr(settings, "SHOPIFY_WEBHOOK_RETRY_MAX", 3600)
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


def _claim(now: datetime) -> WebhookDelivery | None:
    return (WebhookDelivery.objects.select_for_update(skip_locked=True)
            .filter(status=Status.PENDING).filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
            .order_by("received_at", "pk").first())


def _outcome(delivery: WebhookDelivery) -> tuple[str, str, str]:
    """(status, result, error) of applying ``delivery`` inside a savepoint."""
    applier = APPLIERS.get(delivery.topic)
    if applier is None:
        return Status.IGNORED, f"no applier for {delivery.topic}", ""
    if delivery.payload_pruned_at is not None:
        return Status.IGNORED, "payload pruned before it was applied", ""
    try:
        with transaction.atomic():
            return Status.PROCESSED, applier(delivery, delivery.payload)[:300], ""
    except Stale as e:
        return Status.IGNORED, f"stale: {e}"[:300], ""
    except Malformed as e:
        return Status.FAILED, "", f"malformed: {e}"
    except NotYet as e:
        return Status.PENDING, "", f"not yet: {e}"
    except DatabaseError as e:  # a constraint hit by out-of-order data, a lock timeout: retried
        # First line only: PostgreSQL's DETAIL line quotes the values (an email), and the
        # error is shown in the admin, the log and shopify:webhook:processed.
        error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        logger.warning("Applying webhook %s (%s) failed: %s", delivery.pk, delivery.topic, error)
        return Status.PENDING, "", error
    except Exception as e:  # noqa: BLE001  a bug: recorded and retried, never lost
        logger.exception("Applying webhook %s (%s) failed", delivery.pk, delivery.topic)
        return Status.PENDING, "", f"{type(e).__name__}: {e}"


def process_one(now: datetime | None = None) -> WebhookDelivery | None:
    """Apply the oldest due delivery; None when none is due."""
    now = now or timezone.now()
    with transaction.atomic():
        delivery = _claim(now)
        if delivery is None:
            return None
        status, result, error = _outcome(delivery)
        delivery.attempts += 1
        if status == Status.PENDING and delivery.attempts >= max_attempts():
            status = Status.FAILED
        delivery.status, delivery.result, delivery.error = status, result, error[:2000]
        delivery.next_attempt_at = now + backoff(delivery.attempts) if status == Status.PENDING else None
        delivery.processed_at = timezone.now() if status in (Status.PROCESSED, Status.IGNORED) else None
        delivery.save(update_fields=["attempts", "status", "result", "error", "next_attempt_at", "processed_at"])
        signals.webhook_processed.send(sender=WebhookDelivery, delivery=delivery)
    return delivery


def process_due(now: datetime | None = None, limit: int = 200) -> int:
    """Apply up to ``limit`` due deliveries; returns how many were handled."""
    done = 0
    while done < limit and process_one(now) is not None:
        done += 1
    return done


def retry(queryset) -> int:
    """Make deliveries due now again (the admin's action); their attempts start over."""
    return queryset.exclude(status=Status.PROCESSED).update(status=Status.PENDING, next_attempt_at=None, attempts=0)


def prune(now: datetime | None = None) -> int:
    """Drop the payloads of finished deliveries older than the retention (rows, ids and digests stay)."""
    days = getattr(settings, "SHOPIFY_WEBHOOK_RETENTION_DAYS", 30)
    cutoff = (now or timezone.now()) - timedelta(days=days)
    return (WebhookDelivery.objects.filter(received_at__lt=cutoff, payload_pruned_at__isnull=True)
            .exclude(status=Status.PENDING).update(payload={}, payload_pruned_at=timezone.now()))
