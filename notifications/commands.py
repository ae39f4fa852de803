"""The client command ``notifications:unread`` (registered in ``apps.ready``): the unread notifications
of the caller's inbox over the socket, like ``GET /api/notifications/?unread=true`` (docs/notifications.md)."""
from django_oda_realtime import commands
from django_oda_realtime.exceptions import InvalidInput

from . import inbox

NOTIFICATIONS_UNREAD = "notifications:unread"
DEFAULT_LIMIT, MAX_LIMIT = 20, 100


def unread(caller, data) -> dict:
    """The newest unread notifications (``limit``, default 20, at most 100) and the unread count."""
    if data is None:
        data = {}
    if not isinstance(data, dict) or set(data) - {"limit"}:
        raise InvalidInput("data must be {} or {limit}")
    limit = data.get("limit", DEFAULT_LIMIT)
    if type(limit) is not int or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be an integer from 1 to {MAX_LIMIT}")
    rows = list(inbox.unread(caller.user)[:limit])
    return {"unreadCount": inbox.unread_count(caller.user), "notifications": [
        {"id": str(n.pk), "type": n.kind, "data": n.data, "broadcast": n.user_id is None, "createdAt": n.created_at}
        for n in rows]}


def register() -> None:
    commands.register(NOTIFICATIONS_UNREAD, unread)
