"""Shopify sync: jobs with their progress, and every webhook delivery received, stored once."""
from django.db import models
from django.db.models import Q


class SyncJob(models.Model):
    class Resource(models.TextChoices):
        PRODUCTS = "products"
        INVENTORY = "inventory"
        ORDERS = "orders"
        CUSTOMERS = "customers"

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"

    resource = models.CharField(max_length=20, choices=Resource.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    total = models.PositiveIntegerField(null=True, blank=True)
    processed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="The last error messages (at most 50).")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.resource} sync #{self.pk} ({self.status})"

    @property
    def duration(self) -> float | None:
        if self.started_at is None:
            return None
        return ((self.finished_at or self.updated_at) - self.started_at).total_seconds()


class WebhookDelivery(models.Model):
    """A verified webhook, inserted once: the unique ids make parallel duplicates fail to insert."""

    event_id = models.CharField(max_length=100, null=True, blank=True)
    webhook_id = models.CharField(max_length=100, null=True, blank=True)
    topic = models.CharField(max_length=100, db_index=True)
    shop_domain = models.CharField(max_length=255, blank=True)
    api_version = models.CharField(max_length=20, blank=True)
    triggered_at = models.CharField(max_length=40, blank=True)
    payload = models.JSONField()
    summary = models.JSONField(default=dict)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["event_id"], condition=Q(event_id__isnull=False),
                                    name="webhook_event_id_unique"),
            models.UniqueConstraint(fields=["webhook_id"], condition=Q(webhook_id__isnull=False),
                                    name="webhook_webhook_id_unique"),
            models.CheckConstraint(condition=Q(event_id__isnull=False) | Q(webhook_id__isnull=False),
                                   name="webhook_has_an_id"),
        ]

    def __str__(self) -> str:
        return f"{self.topic} {self.event_id or self.webhook_id}"


class SyncCheckpoint(models.Model):
    """Where a pull sync job is (docs/shopify.md, "Pull sync"): written in the same transaction
    as each batch of rows, so a job that stopped (crash, kill, error) resumes after its last
    committed batch and never redoes or duplicates one."""

    class Mode(models.TextChoices):
        BULK = "bulk"
        PAGES = "pages"

    job = models.OneToOneField(SyncJob, on_delete=models.CASCADE, primary_key=True, related_name="checkpoint")
    mode = models.CharField(max_length=10, choices=Mode.choices, blank=True)
    cursor = models.TextField(blank=True, help_text="Pages: the end cursor of the last page written.")
    bulk_operation_id = models.CharField(max_length=100, blank=True)
    bulk_url = models.TextField(blank=True, help_text="The bulk result (a signed link, valid seven days).")
    line_offset = models.BigIntegerField(default=0, help_text="Bulk: JSONL lines written.")
    byte_offset = models.BigIntegerField(default=0, help_text="Bulk: bytes of the JSONL file written.")
    owner = models.CharField(max_length=200, blank=True, help_text="host:pid of the process running the job.")
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"checkpoint of job {self.job_id}"
