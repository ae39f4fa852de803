"""The contract of ``notification`` (one data schema per type) and ``subscribe:staff`` (docs/events.md,
Notifications; docs/contract.md)."""
from django_oda_realtime.contract import describe_command, describe_topic, register_event
from django_oda_realtime.contract.schema import ANY, DATETIME, ID, array, boolean, integer, mapping, nullable, obj, string

from . import events
from .commands import MAX_LIMIT, NOTIFICATIONS_UNREAD
from .inbox import NOTIFICATIONS_READ
from .models import Announcement
from .rooms import STAFF

BASE = {"title": string(), "message": string(), "level": string(enum=Announcement.Level.values)}

register_event(events.NOTIFICATION, {"oneOf": [
    obj({**BASE, "action": string(enum=["login", "logout"]), "userId": ID, "username": string()}),
    obj({**BASE, "action": string(enum=["product_created", "product_updated"]), "productId": ID,
         "productTitle": string(), "productStatus": string()}),
]}, type=events.USER_ACTIVITY, rooms=[STAFF, "user:{userId}"],
    description="A user logged in or out (also sent to their own room), or a product was created or updated.")

for kind in (events.SYSTEM_EVENT, events.SYSTEM_MAINTENANCE):
    register_event(events.NOTIFICATION, obj({
        **BASE, "announcementId": ID, "kind": string(enum=Announcement.Kind.values), "sentAt": nullable(DATETIME),
    }), type=kind, rooms=["broadcast"], description="An announcement from staff (the admin, or manage.py announce).")

register_event(events.NOTIFICATION, obj({
    **BASE, "alert": string(), "username": nullable(string()), "details": mapping(values=ANY),
}), type=events.SECURITY_ALERT, rooms=[STAFF, "notifications:{userId}"],
    description="A security alert, e.g. every 5th failed login for one username within 10 minutes.")

describe_topic(STAFF, data=None, rooms=[STAFF], description="User activity and security alerts (staff only).")

register_event(NOTIFICATIONS_READ, obj({
    "ids": nullable(array(ID)), "all": boolean(), "unreadCount": integer(minimum=0),
}), rooms=["user:{userId}"], description="Notifications were marked read (on any device of the user): "
   "ids, or all=true for every one; unreadCount is what remains (docs/notifications.md).")

describe_command(NOTIFICATIONS_UNREAD, data=obj(optional={"limit": integer(minimum=1, maximum=MAX_LIMIT)}),
                 result=obj({"unreadCount": integer(minimum=0), "notifications": array(obj({
                     "id": ID, "type": string(), "data": mapping(values=ANY), "broadcast": boolean(),
                     "createdAt": DATETIME}))}),
                 description="The newest unread notifications of the inbox (default 20, at most 100), "
                             "and the unread count (docs/notifications.md).")
