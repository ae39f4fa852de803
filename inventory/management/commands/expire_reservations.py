"""``python manage.py expire_reservations``: expire reservations past their expiry (run it every minute)."""
from django.core.management.base import BaseCommand

from inventory import services


class Command(BaseCommand):
    help = "Expire active reservations whose expiry has passed, giving their units back (one event each)."

    def handle(self, *args, **options):
        count = services.expire_reservations()
        self.stdout.write(f"Expired {count} reservation(s).")
