"""Auth signals and notification signals -> one ``notification`` publish each (product saves: ``apps.py``);
those addressed to users are also kept in their inbox and queued for Web Push (docs/notifications.md)."""
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.dispatch import receiver

from django_oda_realtime import publish

from . import events, inbox, services, signals, webpush


def publish_and_keep(kind: str, data: dict, rooms: list[str]) -> None:
    """Publish a notification, and keep it for its users (inbox, and Web Push for those not connected)."""
    with transaction.atomic():  # stored and queued together; published when it commits
        publish(events.NOTIFICATION, data, rooms, type=kind)
        webpush.queue(inbox.store(kind, data, rooms))


@receiver(user_logged_in, dispatch_uid="notifications.logged_in")
def logged_in(sender, user, **kwargs) -> None:
    publish_and_keep(events.USER_ACTIVITY, events.login_payload(user, "login"), events.activity_rooms(user.pk))


@receiver(user_logged_out, dispatch_uid="notifications.logged_out")
def logged_out(sender, user=None, **kwargs) -> None:
    if user is None:
        return  # an anonymous session ended
    publish_and_keep(events.USER_ACTIVITY, events.login_payload(user, "logout"), events.activity_rooms(user.pk))


@receiver(user_login_failed, dispatch_uid="notifications.login_failed")
def login_failed(sender, credentials, request=None, **kwargs) -> None:
    """Count the failure (Django cleanses the password from ``credentials``)."""
    User = get_user_model()
    username = str(credentials.get(User.USERNAME_FIELD) or credentials.get("username") or "")
    if not username:
        return
    ip = request.META.get("REMOTE_ADDR") if request is not None else None
    user_id = User._default_manager.filter(**{User.USERNAME_FIELD: username}).values_list("pk", flat=True).first()
    services.record_failed_login(username, ip, user_id=user_id)


@receiver(signals.announcement_sent, dispatch_uid="notifications.announcement")
def announcement_sent(sender, announcement, **kwargs) -> None:
    publish_and_keep(events.ANNOUNCEMENT_TYPES[announcement.kind], events.announcement_payload(announcement),
                     events.broadcast_rooms())


@receiver(signals.security_alert, dispatch_uid="notifications.security_alert")
def security_alert(sender, alert, title, message, level, username, user_id, details, **kwargs) -> None:
    publish_and_keep(events.SECURITY_ALERT, events.security_payload(alert, title, message, level, username, details),
                     events.security_rooms(user_id))
