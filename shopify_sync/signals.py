"""Domain signals of the Shopify sync, with explicit kwargs.

``sync_status(sender=SyncJob, job)``: a job started, completed or failed.
``sync_progress(sender=SyncJob, job)``: a job advanced (already throttled by ``progress``).
``webhook_received(sender=WebhookDelivery, delivery)``: a verified webhook was stored, once.
``webhook_processed(sender=WebhookDelivery, delivery)``: the worker applied, ignored or failed it
(or will retry it: ``delivery.status`` is then still ``pending``).
"""
from django.dispatch import Signal

sync_status = Signal()
sync_progress = Signal()
webhook_received = Signal()
webhook_processed = Signal()
