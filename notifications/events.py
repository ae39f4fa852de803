"""Notification kinds, rooms and payloads (docs/events.md). Pure.

Every notification is the event ``notification``; its envelope ``type`` is the kind.
"""
from django_oda_realtime.conf import rt_settings
from django_oda_realtime.events import NOTIFICATION
from django_oda_realtime.rooms import notifications_room, user_room

from .rooms import STAFF

USER_ACTIVITY = "user:activity"
SYSTEM_EVENT = "system:event"
SYSTEM_MAINTENANCE = "system:maintenance"
SECURITY_ALERT = "security:alert"

__all__ = ["NOTIFICATION", "USER_ACTIVITY", "SYSTEM_EVENT", "SYSTEM_MAINTENANCE", "SECURITY_ALERT"]

ANNOUNCEMENT_TYPES = {"event": SYSTEM_EVENT, "maintenance": SYSTEM_MAINTENANCE}


def notification(title: str, message: str = "", *, level: str = "info", **fields) -> dict:
    """The data of a notification: ``title``, ``message``, ``level`` and kind-specific fields."""
    return {"title": title, "message": message, "level": level, **fields}


def activity_rooms(user_id=None) -> list[str]:
    """User activity goes to staff, and to the acting user's own room when there is one."""
    return [STAFF] if user_id is None else [STAFF, user_room(user_id)]


def broadcast_rooms() -> list[str]:
    return [rt_settings.BROADCAST_ROOM]


def security_rooms(user_id=None) -> list[str]:
    """Security alerts go to staff, and to the account's owner through their notifications room."""
    return [STAFF] if user_id is None else [STAFF, notifications_room(user_id)]


def login_payload(user, action: str) -> dict:
    verb = "logged in" if action == "login" else "logged out"
    name = user.get_username()
    return notification(f"{name} {verb}", action=action, userId=str(user.pk), username=name)


def product_payload(product, created: bool) -> dict:
    action = "product_created" if created else "product_updated"
    verb = "created" if created else "updated"
    return notification(f"Product {verb}: {product.title}"[:200], action=action, productId=str(product.pk),
                        productTitle=product.title, productStatus=product.status)


def announcement_payload(announcement) -> dict:
    level = announcement.level
    return notification(announcement.title or announcement.get_kind_display(), announcement.message,
                        level=level, announcementId=str(announcement.pk), kind=announcement.kind,
                        sentAt=announcement.sent_at)


def security_payload(alert: str, title: str, message: str, level: str, username: str | None, details: dict) -> dict:
    return notification(title, message, level=level, alert=alert, username=username, details=details)
