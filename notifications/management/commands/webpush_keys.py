"""``python manage.py webpush_keys``: a new VAPID key pair for Web Push (docs/notifications.md)."""
import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.management.base import BaseCommand


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Command(BaseCommand):
    help = "Print a new VAPID key pair (P-256) as environment lines for WEBPUSH_VAPID_PRIVATE_KEY/PUBLIC_KEY."

    def handle(self, *args, **options):
        key = ec.generate_private_key(ec.SECP256R1())
        private = key.private_numbers().private_value.to_bytes(32, "big")
        public = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        # Raw base64url, as browsers take the public key (applicationServerKey) and py-vapid the private one.
        self.stdout.write(f"WEBPUSH_VAPID_PRIVATE_KEY={b64url(private)}\nWEBPUSH_VAPID_PUBLIC_KEY={b64url(public)}\n")
