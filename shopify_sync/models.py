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
    """A verified webhook, inserted once: the unique ids make parallel duplicates fail to insert.

    Applied afterwards by the worker (``shopify_sync.apply``): ``pending`` -> ``processed``,
    ``ignored`` (unknown topic, or older than the data) or, after an error, ``pending`` again
    with ``next_attempt_at`` backed off, until ``failed`` after ``SHOPIFY_WEBHOOK_MAX_ATTEMPTS``.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        PROCESSED = "processed"
        IGNORED = "ignored"
        FAILED = "failed"

    event_id = models.CharField(max_length=100, null=True, blank=True)
    webhook_id = models.CharField(max_length=100, null=True, blank=True)
    topic = models.CharField(max_length=100, db_index=True)
    shop_domain = models.CharField(max_length=255, blank=True)
    api_version = models.CharField(max_length=20, blank=True)
    triggered_at = models.CharField(max_length=40, blank=True)
    digest = models.CharField(max_length=64, null=True, blank=True,
                              help_text="sha256 of topic and raw body: the same signed body is stored once per topic")
    payload = models.JSONField()
    summary = models.JSONField(default=dict)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=None)
    error = models.TextField(blank=True)
    result = models.CharField(max_length=300, blank=True, help_text="What applying it did")
    payload_pruned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        verbose_name_plural = "webhook deliveries"
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_due")]
        constraints = [
            models.UniqueConstraint(fields=["event_id"], condition=Q(event_id__isnull=False),
                                    name="webhook_event_id_unique"),
            models.UniqueConstraint(fields=["webhook_id"], condition=Q(webhook_id__isnull=False),
                                    name="webhook_webhook_id_unique"),
            models.UniqueConstraint(fields=["digest"], condition=Q(digest__isnull=False),
                                    name="webhook_digest_unique"),
            models.CheckConstraint(condition=Q(status__in=["pending", "processed", "ignored", "failed"]),
                                   name="webhook_status_valid"),
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


class Tombstone(models.Model):
    """A Shopify resource deleted at ``deleted_at``: an older create/update arriving later is ignored."""

    resource = models.CharField(max_length=30)
    key = models.CharField(max_length=60)
    deleted_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["resource", "key"], name="tombstone_resource_key_unique")]

    def __str__(self) -> str:
        return f"{self.resource} {self.key} deleted {self.deleted_at}"
