"""The one table of the add-on: when a user's tokens stopped counting."""
from django.conf import settings
from django.db import models


class TokenRevocation(models.Model):
    """Tokens of ``user`` issued at or before ``not_before`` are refused (logout, password change).

    simplejwt's blacklist covers single refresh tokens only, and an access token stays valid until
    it expires; so the handshake, ``auth:refresh``, the refresh endpoint and each process's periodic
    re-check compare a token's ``iat`` with this (realtime/accounts/revocation.py, docs/security.md).
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    not_before = models.DateTimeField()

    def __str__(self) -> str:
        return f"tokens of user {self.user_id} before {self.not_before:%Y-%m-%d %H:%M:%S}"
