"""Domain signals of notifications, with explicit kwargs.

``announcement_sent(sender=Announcement, announcement)``: staff sent an announcement.
``security_alert(sender, alert, title, message, level, username, user_id, details)``:
something looks like an attack (``alert`` names it, e.g. ``failed_logins``).
"""
from django.dispatch import Signal

announcement_sent = Signal()
security_alert = Signal()
