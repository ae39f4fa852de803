"""The offline inbox (docs/notifications.md, *Inbox*): what was published to a user, kept with
read/unread state, and broadcast notifications kept once with per-user read state.

``store()`` runs in the publisher's transaction (the receivers call it next to ``publish``), so a
notification is stored exactly when the change that caused it commits. Marking read publishes
``notifications:read`` to the user's own room, which reaches their other open sockets.
"""
from datetime import timedelta
import json

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from django_oda_realtime import publish
from django_oda_realtime.conf import rt_settings
from django_oda_realtime.events import encode_json
from django_oda_realtime.rooms import user_room

from .models import BroadcastRead, Notification

NOTIFICATIONS_READ = "notifications:read"
USER_ROOM_KINDS = ("user", "notifications")  # rooms addressed to one user: {kind}:{user id}
MAX_IDS = 500  # per mark-read request
DEFAULT_RETENTION_DAYS = 30

__all__ = ["NOTIFICATIONS_READ", "UnknownNotifications", "store", "visible", "unread", "unread_count",
           "mark_read", "mark_all_read", "prune"]


class UnknownNotifications(Exception):
    """Some ids are not notifications of this user (someone else's, or none at all): nothing was marked."""

    def __init__(self, ids: list[int]) -> None:
        super().__init__(f"No such notification(s): {', '.join(map(str, ids))}")
        self.ids = ids


def addressees(rooms) -> tuple[set[int], bool]:
    """The user ids the rooms address one by one, and whether one of them is the broadcast room."""
    users, broadcast = set(), False
    for room in rooms:
        if room == rt_settings.BROADCAST_ROOM:
            broadcast = True
            continue
        kind, _, ident = room.partition(":")
        if kind in USER_ROOM_KINDS and ident.isdigit():
            users.add(int(ident))
    return users, broadcast


def store(kind: str, data: dict, rooms) -> list[Notification]:
    """Keep a notification published to ``rooms``: one row per addressed user, or one for a broadcast."""
    users, broadcast = addressees(rooms)
    if not users and not broadcast:
        return []
    data = json.loads(encode_json(data))  # as the clients got it (datetimes as strings)
    if broadcast:
        return [Notification.objects.create(user=None, kind=kind, data=data)]
    return Notification.objects.bulk_create([Notification(user_id=uid, kind=kind, data=data) for uid in sorted(users)])


def visible(user) -> QuerySet:
    """The user's notifications: their own, and broadcasts since they joined (annotated ``broadcast_read``)."""
    broadcast = Q(user__isnull=True)
    joined = getattr(user, "date_joined", None)
    if joined is not None:
        broadcast &= Q(created_at__gte=joined)
    read_broadcast = Exists(BroadcastRead.objects.filter(notification=OuterRef("pk"), user=user))
    return Notification.objects.filter(Q(user=user) | broadcast).annotate(broadcast_read=read_broadcast)


def unread(user) -> QuerySet:
    return visible(user).filter(Q(user=user, read_at__isnull=True) | Q(user__isnull=True, broadcast_read=False))


def unread_count(user) -> int:
    return unread(user).count()


def mark_read(user, ids: list[int]) -> int:
    """Mark the user's notifications ``ids`` read (all or none); returns the unread count after."""
    ids = sorted(set(ids))
    with transaction.atomic():
        found = {n.pk: n for n in visible(user).filter(pk__in=ids)}
        missing = [i for i in ids if i not in found]
        if missing:
            raise UnknownNotifications(missing)
        _mark(user, [n for n in found.values() if n.user_id is not None], [n for n in found.values() if n.user_id is None])
        count = unread_count(user)
        publish(NOTIFICATIONS_READ, {"ids": [str(i) for i in ids], "all": False, "unreadCount": count},
                [user_room(user.pk)])
    return count


def mark_all_read(user) -> int:
    """Mark every notification of the user read; returns how many were unread."""
    with transaction.atomic():
        pending = list(unread(user))
        _mark(user, [n for n in pending if n.user_id is not None], [n for n in pending if n.user_id is None])
        publish(NOTIFICATIONS_READ, {"ids": None, "all": True, "unreadCount": unread_count(user)},
                [user_room(user.pk)])
    return len(pending)


def _mark(user, own: list[Notification], broadcast: list[Notification]) -> None:
    now = timezone.now()
    Notification.objects.filter(pk__in=[n.pk for n in own], read_at__isnull=True).update(read_at=now)
    BroadcastRead.objects.bulk_create([BroadcastRead(notification=n, user=user) for n in broadcast],
                                      ignore_conflicts=True)


def retention() -> timedelta:
    return timedelta(days=getattr(settings, "NOTIFICATIONS_RETENTION_DAYS", DEFAULT_RETENTION_DAYS))


def prune() -> int:
    """Delete notifications older than the retention (a worker job); returns how many."""
    Notification.objects.filter(created_at__lt=timezone.now() - retention()).delete()
    return 0  # a prune that deleted rows has nothing more to do: no reason to run again at once
