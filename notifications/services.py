"""Writes of notifications: announcements, and counting failed logins for alerts."""
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from domain_shared.users import acting_user

from . import signals
from .models import Announcement, FailedLogin

DEFAULT_FAILED_LOGIN_LIMIT = 5
DEFAULT_FAILED_LOGIN_WINDOW = 600  # seconds


def announce(message: str, *, kind: str = Announcement.Kind.EVENT, title: str = "", level: str | None = None,
             user=None) -> Announcement:
    """Store and broadcast an announcement (``system:event`` or ``system:maintenance``)."""
    if kind not in Announcement.Kind.values:
        raise ValueError(f"kind must be one of {', '.join(Announcement.Kind.values)}")
    if not message.strip():
        raise ValueError("An announcement needs a message")
    level = level or (Announcement.Level.WARNING if kind == Announcement.Kind.MAINTENANCE else Announcement.Level.INFO)
    with transaction.atomic():
        announcement = Announcement.objects.create(
            kind=kind, level=level, title=title, message=message,
            created_by=acting_user(user),
        )
        return send_announcement(announcement)


def send_announcement(announcement: Announcement) -> Announcement:
    """(Re)send a stored announcement to everyone connected."""
    with transaction.atomic():
        announcement.sent_at = timezone.now()
        announcement.times_sent += 1
        announcement.save(update_fields=["sent_at", "times_sent"])
        signals.announcement_sent.send(sender=Announcement, announcement=announcement)
    return announcement


def _limits() -> tuple[int, timedelta]:
    limit = getattr(settings, "SECURITY_FAILED_LOGIN_LIMIT", DEFAULT_FAILED_LOGIN_LIMIT)
    window = getattr(settings, "SECURITY_FAILED_LOGIN_WINDOW", DEFAULT_FAILED_LOGIN_WINDOW)
    return limit, timedelta(seconds=window)


def record_failed_login(username: str, ip_address: str | None = None, *, user_id=None) -> int:
    """Count a failed login; every ``limit``-th failure within the window raises one security alert."""
    limit, window = _limits()
    username = (username or "")[:150]
    now = timezone.now()
    with transaction.atomic():
        FailedLogin.objects.filter(created_at__lt=now - window).delete()
        FailedLogin.objects.create(username=username, ip_address=ip_address)
        count = FailedLogin.objects.filter(username=username, created_at__gte=now - window).count()
        if count % limit == 0:
            minutes = int(window.total_seconds() // 60)
            signals.security_alert.send(
                sender=FailedLogin, alert="failed_logins", level="warning", username=username, user_id=user_id,
                title=f"{count} failed logins for {username!r}",
                message=f"{count} failed login attempts for this account in the last {minutes} minutes.",
                details={"failures": count, "windowSeconds": int(window.total_seconds()), "ipAddress": ip_address},
            )
    return count


def security_alert(alert: str, title: str, message: str = "", *, level: str = "warning", username=None,
                   user_id=None, details: dict | None = None) -> None:
    """Raise a security alert from anywhere (e.g. a refused refresh-token reuse, issue #5)."""
    signals.security_alert.send(sender=None, alert=alert, title=title, message=message, level=level,
                                username=username, user_id=user_id, details=details or {})
