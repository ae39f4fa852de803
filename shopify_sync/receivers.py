"""Sync and webhook signals -> one ``publish`` each, to ``shopify:all``."""
from django.dispatch import receiver

from django_oda_realtime import publish

from . import events, signals


@receiver(signals.sync_status, dispatch_uid="shopify.publish_status")
def publish_status(sender, job, **kwargs) -> None:
    publish(events.SYNC_STATUS, events.status_payload(job), events.rooms())


@receiver(signals.sync_progress, dispatch_uid="shopify.publish_progress")
def publish_progress(sender, job, **kwargs) -> None:
    publish(events.progress_event(job.resource), events.progress_payload(job), events.rooms())


@receiver(signals.webhook_received, dispatch_uid="shopify.publish_webhook")
def publish_webhook(sender, delivery, **kwargs) -> None:
    publish(events.WEBHOOK_RECEIVED, events.webhook_payload(delivery), events.rooms())


@receiver(signals.webhook_processed, dispatch_uid="shopify.publish_processed")
def publish_processed(sender, delivery, **kwargs) -> None:
    publish(events.WEBHOOK_PROCESSED, events.processed_payload(delivery), events.rooms())
