"""Domain signals of the Shopify sync, with explicit kwargs.

``sync_status(sender=SyncJob, job)``: a job started, completed or failed.
``sync_progress(sender=SyncJob, job)``: a job advanced (already throttled by ``progress``).
``webhook_received(sender=WebhookDelivery, delivery)``: a verified webhook was stored, once.
"""
from django.dispatch import Signal

sync_status = Signal()
sync_progress = Signal()
webhook_received = Signal()
