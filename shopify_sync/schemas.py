"""The contract of the Shopify sync events (docs/events.md, Shopify sync; docs/contract.md)."""
from django_oda_realtime.contract import describe_topic, register_event
from django_oda_realtime.contract.schema import DATETIME, ID, array, integer, mapping, nullable, number, obj, string

from . import events
from .models import SyncJob
from .rooms import ALL

ROOMS = [ALL]
PROGRESS = {
    "jobId": ID, "resource": string(enum=SyncJob.Resource.values), "status": string(enum=SyncJob.Status.values),
    "processed": integer(minimum=0), "failed": integer(minimum=0), "total": nullable(integer(minimum=0)),
    "percent": nullable(number(minimum=0, maximum=100)),
}

register_event(events.SYNC_STATUS, obj({
    **PROGRESS, "startedAt": nullable(DATETIME), "finishedAt": nullable(DATETIME),
    "durationSeconds": nullable(number()), "errors": array(string(), maxItems=5, description="The last 5 errors"),
}), rooms=ROOMS, description="A sync job started, completed or failed.")

for resource in SyncJob.Resource.values:
    register_event(events.progress_event(resource), obj(PROGRESS), rooms=ROOMS,
                   description=f"Progress of a {resource} sync: at most 4 a second per job, and its final state.")

register_event(events.WEBHOOK_RECEIVED, obj({
    "webhookId": nullable(string()), "eventId": nullable(string()), "topic": string(), "shop": string(),
    "apiVersion": string(), "receivedAt": DATETIME,
    "summary": mapping(values={"type": ["string", "number"]},
                       description="A few identifying fields by topic (docs/events.md), never personal data"),
}), rooms=ROOMS, description="A verified webhook was stored for the first time.")

register_event(events.WEBHOOK_PROCESSED, obj({
    "webhookId": nullable(string()), "eventId": nullable(string()), "topic": string(),
    "status": string(enum=["pending", "processed", "ignored", "failed"]), "attempts": integer(minimum=0),
    "result": string(), "error": string(maxLength=300), "nextAttemptAt": nullable(DATETIME),
}), rooms=ROOMS, description="The worker applied, ignored, failed or will retry a stored webhook.")

describe_topic("shopify", data=None, rooms=ROOMS, description="Sync jobs and webhooks (shopify_sync.view_syncjob).")
