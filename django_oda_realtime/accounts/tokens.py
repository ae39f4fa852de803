"""The JWTs the add-on mints: simplejwt's, with an ``iat`` precise to the microsecond.

simplejwt writes ``iat`` in whole seconds, and a revocation (``TokenRevocation.not_before``,
docs/security.md) refuses every token issued at or before its time. With whole seconds a login
right after a logout, in the same second, would get a token that is refused at once, while a
token from earlier in that second must stay refused. A JWT ``iat`` is a NumericDate, which
RFC 7519 (section 2) allows to be fractional, and PyJWT reads it with ``int()``; so the tokens of
our login, refresh and dashboard endpoints carry ``iat`` in microseconds and order exactly
against a logout. A token minted elsewhere with an integer ``iat`` still works and is judged
fail-closed: issued in the second of a logout, it counts as issued before it.
"""
from datetime import datetime

from rest_framework_simplejwt.tokens import AccessToken, RefreshToken


def precise_epoch(moment: datetime) -> float:
    """Epoch seconds of ``moment``, to the microsecond."""
    return round(moment.timestamp(), 6)


class PreciseAccessToken(AccessToken):
    def set_iat(self, claim: str = "iat", at_time: datetime | None = None) -> None:
        self.payload[claim] = precise_epoch(at_time or self.current_time)


class PreciseRefreshToken(RefreshToken):
    access_token_class = PreciseAccessToken

    def set_iat(self, claim: str = "iat", at_time: datetime | None = None) -> None:
        self.payload[claim] = precise_epoch(at_time or self.current_time)

    @property
    def access_token(self) -> PreciseAccessToken:
        """The access token, issued at this refresh token's own ``current_time``: a refresh that
        read the user's revocation time before minting hands out nothing newer than that read."""
        access = super().access_token
        access.set_iat(at_time=self.current_time)
        return access


__all__ = ["PreciseAccessToken", "PreciseRefreshToken", "precise_epoch"]
