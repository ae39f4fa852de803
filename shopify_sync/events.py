"""Shopify event names, rooms and payloads (docs/events.md). Pure."""
from .rooms import ALL

SYNC_STATUS = "shopify:syncStatus"
WEBHOOK_RECEIVED = "shopify:webhook:received"
WEBHOOK_PROCESSED = "shopify:webhook:processed"

# The resource of a job -> the singular of its progress event (``shopify:product:progress``).
SINGULAR = {"products": "product", "inventory": "inventory", "orders": "order", "customers": "customer"}


def progress_event(resource: str) -> str:
    return f"shopify:{SINGULAR[resource]}:progress"


def rooms() -> list[str]:
    return [ALL]


def _percent(job) -> float | None:
    if not job.total:
        return None
    return round(min(100.0, 100.0 * job.processed / job.total), 1)


def progress_payload(job) -> dict:
    return {
        "jobId": str(job.pk),
        "resource": job.resource,
        "status": job.status,
        "processed": job.processed,
        "failed": job.failed,
        "total": job.total,
        "percent": _percent(job),
    }


def status_payload(job) -> dict:
    return {
        **progress_payload(job),
        "startedAt": job.started_at,
        "finishedAt": job.finished_at,
        "durationSeconds": None if job.duration is None else round(job.duration, 3),
        "errors": list(job.errors[-5:]),
    }


def webhook_payload(delivery) -> dict:
    return {
        "webhookId": delivery.webhook_id,
        "eventId": delivery.event_id,
        "topic": delivery.topic,
        "shop": delivery.shop_domain,
        "apiVersion": delivery.api_version,
        "receivedAt": delivery.received_at,
        "summary": delivery.summary,
    }


def processed_payload(delivery) -> dict:
    return {
        "webhookId": delivery.webhook_id,
        "eventId": delivery.event_id,
        "topic": delivery.topic,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "result": delivery.result,
        "error": delivery.error[:300],
        "nextAttemptAt": delivery.next_attempt_at,
    }
