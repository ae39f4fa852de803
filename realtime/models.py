"""The one table of the add-on: when a user's tokens stopped counting."""
from django.conf import settings
from django.db import models


class TokenRevocation(models.Model):
    """Access tokens of ``user`` issued before ``not_before`` are refused (logout, password change).

    simplejwt's blacklist covers refresh tokens only (TRAPS.md); an access token stays valid until
    it expires, so sockets check this at connect and on ``auth:refresh``.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    not_before = models.DateTimeField()

    def __str__(self) -> str:
        return f"tokens of user {self.user_id} before {self.not_before:%Y-%m-%d %H:%M:%S}"
