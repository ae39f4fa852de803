"""Notifications keep two small tables: announcements staff sent (what, when, by whom),
and recent failed logins, counted across every server process for security alerts."""
from django.conf import settings
from django.db import models


class Announcement(models.Model):
    class Kind(models.TextChoices):
        EVENT = "event", "System event"
        MAINTENANCE = "maintenance", "Maintenance"

    class Level(models.TextChoices):
        INFO = "info"
        WARNING = "warning"
        CRITICAL = "critical"

    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.EVENT)
    level = models.CharField(max_length=10, choices=Level.choices, default=Level.INFO)
    title = models.CharField(max_length=120, blank=True)
    message = models.TextField(max_length=1000)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    times_sent = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title or self.message[:60]


class FailedLogin(models.Model):
    username = models.CharField(max_length=150, db_index=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.username} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class Notification(models.Model):
    """One stored notification (docs/notifications.md, *Inbox*): ``user`` set for one addressed to a
    user (read state in ``read_at``), null for a broadcast one (read state per user in ``BroadcastRead``)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="notifications")
    kind = models.CharField(max_length=40)  # the envelope type: security:alert, system:maintenance...
    data = models.JSONField()  # the event's data, as published
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at"], name="notif_user_read")]

    @property
    def broadcast(self) -> bool:
        return self.user_id is None

    def __str__(self) -> str:
        return f"{self.kind}: {self.data.get('title', '') if isinstance(self.data, dict) else ''}"


class BroadcastRead(models.Model):
    """A user read a broadcast notification (stored once for everyone)."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="reads")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    read_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["notification", "user"], name="broadcast_read_once")]


class PushSubscription(models.Model):
    """A browser Push API subscription (``PushSubscription.toJSON()``: endpoint and keys)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="push_subscriptions")
    endpoint = models.URLField(max_length=1000, unique=True)
    p256dh = models.CharField(max_length=100)  # base64url, uncompressed P-256 point (65 bytes)
    auth = models.CharField(max_length=30)  # base64url, 16-byte secret
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.user_id}: {self.endpoint[:60]}"


class PushPreference(models.Model):
    """Push turned off (or back on) for one kind of notification; no row means on."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="push_preferences")
    kind = models.CharField(max_length=40)
    enabled = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "kind"], name="push_preference_once")]


class PushDelivery(models.Model):
    """A Web Push message waiting for the worker (sent, retried with backoff, or dropped)."""

    subscription = models.ForeignKey(PushSubscription, on_delete=models.CASCADE, related_name="deliveries")
    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="+")
    attempts = models.PositiveIntegerField(default=0)
    due_at = models.DateTimeField(db_index=True)
    last_error = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["due_at", "id"]
