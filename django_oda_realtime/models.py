"""The one table of the add-on: when a user's tokens stopped counting."""
from django.conf import settings
from django.db import models


class TokenRevocation(models.Model):
    """Tokens of ``user`` issued at or before ``not_before`` are refused (logout, password change).

    simplejwt's blacklist covers single refresh tokens only, and an access token stays valid until
    it expires; so the handshake, ``auth:refresh``, the refresh endpoint and each process's periodic
    re-check compare a token's ``iat`` with this (django_oda_realtime/accounts/revocation.py, docs/security.md).
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    not_before = models.DateTimeField()

    def __str__(self) -> str:
        return f"tokens of user {self.user_id} before {self.not_before:%Y-%m-%d %H:%M:%S}"


class OutboxEvent(models.Model):
    """An event written in the transaction of the change that caused it (django_oda_realtime/outbox.py).

    The relay publishes committed rows in commit order (``seq``, set at commit on PostgreSQL;
    ``id`` on SQLite, whose writers are serialised) with the envelope stored here, so a retry
    re-sends the same event id (docs/design.md#outbox).
    """

    event = models.CharField(max_length=200)
    event_id = models.CharField(max_length=32)
    rooms = models.JSONField()
    envelope = models.TextField()
    created_at = models.DateTimeField()
    seq = models.BigIntegerField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    # The channel-layer prefix of the process that stored the row: only a relay on that prefix sends
    # it, or another deployment's once it is an orphan (OUTBOX_ORPHAN_AFTER; null: stored before this
    # column, or on a layer without one; any relay sends it). docs/design.md#outbox.
    deployment = models.TextField(null=True, blank=True)

    class Meta:
        db_table = "realtime_outbox"
        indexes = [
            models.Index(fields=["seq", "id"], name="realtime_outbox_pending",
                         condition=models.Q(published_at__isnull=True)),
            models.Index(fields=["created_at"], name="realtime_outbox_created"),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.event_id} ({'published' if self.published_at else 'pending'})"
