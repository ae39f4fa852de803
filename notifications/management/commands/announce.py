"""``python manage.py announce "text" --kind maintenance|event``: a notification to everyone connected."""
from django.core.management.base import BaseCommand, CommandError

from notifications import services
from notifications.models import Announcement


class Command(BaseCommand):
    help = "Broadcast a system:event or system:maintenance notification to every connected client."

    def add_arguments(self, parser):
        parser.add_argument("message")
        parser.add_argument("--kind", choices=Announcement.Kind.values, default=Announcement.Kind.EVENT)
        parser.add_argument("--title", default="")
        parser.add_argument("--level", choices=Announcement.Level.values, default=None)

    def handle(self, *args, message, kind, title, level, **options):
        try:
            announcement = services.announce(message, kind=kind, title=title, level=level)
        except ValueError as e:
            raise CommandError(str(e)) from e
        self.stdout.write(f"Sent {announcement.kind} announcement #{announcement.pk} ({announcement.level}).")
