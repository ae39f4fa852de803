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
