"""JWT authentication of sockets: simplejwt access token -> user, in ASGI middleware.

The token is read, in order, from the ``Authorization: Bearer`` header, the
``token`` query parameter (browsers cannot set headers on a WebSocket), and a
``Sec-WebSocket-Protocol`` value ``bearer.<token>`` (the consumer echoes it).
Only access tokens count (``AccessToken`` checks ``token_type``; simplejwt's
``UntypedToken`` would accept a refresh token, docs/design.md#untyped-token), the algorithm is
pinned by ``SIMPLE_JWT["ALGORITHM"]`` and ``exp`` must be present and future.

The middleware never raises and never logs a token: it puts an ``AuthResult``
in the scope (``scope["realtime.auth"]``) and the consumer refuses the socket
with the result's code. Socket.IO may authenticate later, from its CONNECT
packet, with ``authenticate()``.
"""
from dataclasses import dataclass
import logging
from urllib.parse import parse_qs

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, ExpiredTokenError, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken

from .db import run_sync_db
from .exceptions import AuthError
from .server.headers import bearer, header
from .server.outlets import gone_probe

SUBPROTOCOL_PREFIX = "bearer."
ISSUED_AT = "token_issued_at"  # set on the authenticated user instance (user_for_token)

logger = logging.getLogger("realtime.auth")


@dataclass(frozen=True)
class AuthResult:
    user: object
    error: AuthError | None = None
    expires_at: float | None = None  # the token's exp, epoch seconds
    subprotocol: str | None = None  # to echo on accept
    token_id: str | None = None  # jti, for revocation checks
    issued_at: float | None = None  # the token's iat, epoch seconds (django_oda_realtime/accounts/tokens.py: to the microsecond)

    @property
    def ok(self) -> bool:
        return self.error is None


def token_from_scope(scope: dict) -> tuple[str | None, str | None]:
    """(token, subprotocol to echo) from the header, the query string or a subprotocol."""
    authorization = header(scope, b"authorization")
    token = bearer(authorization) if authorization else None
    if token:
        return token, None
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if query.get("token") and query["token"][0]:
        return query["token"][0], None
    for proto in scope.get("subprotocols", ()) or ():
        if proto.startswith(SUBPROTOCOL_PREFIX) and len(proto) > len(SUBPROTOCOL_PREFIX):
            return proto[len(SUBPROTOCOL_PREFIX):], proto
    return None, None


def validate_token(raw: object) -> AccessToken:
    """A verified access token, or AuthError with the reason."""
    if not raw or not isinstance(raw, str):
        raise AuthError("token_missing")
    if len(raw) > 4096:
        raise AuthError("token_invalid")
    try:
        return AccessToken(raw)
    except ExpiredTokenError as e:
        raise AuthError("token_expired") from e
    except TokenError as e:
        raise AuthError("token_invalid") from e
    except (TypeError, ValueError, OverflowError) as e:
        # A signed token with claims of the wrong type (``"exp": "1700000000"``, ``Infinity``):
        # PyJWT lets some through and simplejwt then fails on them.
        raise AuthError("token_invalid") from e


def user_for_token(token: AccessToken):
    """The active user a token names, or AuthError('user_inactive')."""
    user_id = token.payload.get(api_settings.USER_ID_CLAIM)
    User = get_user_model()
    try:
        user = User.objects.get(**{api_settings.USER_ID_FIELD: user_id})
    except (User.DoesNotExist, ValueError, TypeError) as e:
        raise AuthError("user_inactive") from e
    if not user.is_active:
        raise AuthError("user_inactive")
    from .models import TokenRevocation
    from .accounts.revocation import is_revoked

    issued_at = token.payload.get("iat")
    revoked = TokenRevocation.objects.filter(user_id=user.pk).values_list("not_before", flat=True).first()
    if is_revoked(issued_at, revoked):
        raise AuthError("token_revoked")
    # On the user instance, as Django's ``authenticate()`` sets ``user.backend``: whoever opens a
    # session with this user learns when its token was issued (``Session.open`` keeps it, to
    # re-check revocation later; docs/security.md).
    numeric = isinstance(issued_at, (int, float)) and not isinstance(issued_at, bool)
    setattr(user, ISSUED_AT, float(issued_at) if numeric else None)
    return user


def issued_at_of(user) -> float | None:
    """The ``iat`` of the token that authenticated ``user`` (None if not known)."""
    return getattr(user, ISSUED_AT, None)


def authenticate_sync(raw: object, subprotocol: str | None = None, gone=None) -> AuthResult:
    """``gone()`` (optional) says whether the client has left meanwhile: then nothing is looked up."""
    if gone is not None and gone():
        return AuthResult(AnonymousUser(), AuthError("client_gone"), subprotocol=subprotocol)
    try:
        token = validate_token(raw)
        user = user_for_token(token)
    except AuthError as e:
        return AuthResult(AnonymousUser(), e, subprotocol=subprotocol)
    except DatabaseError as e:
        # The database is down: a retryable refusal (4012), not a traceback and an HTTP 500.
        logger.error("Database error while authenticating a socket: %s", type(e).__name__)
        return AuthResult(AnonymousUser(), AuthError("unavailable"), subprotocol=subprotocol)
    return AuthResult(
        user,
        None,
        expires_at=float(token.payload["exp"]),
        subprotocol=subprotocol,
        token_id=str(token.payload.get(api_settings.JTI_CLAIM, "")),
        issued_at=getattr(user, ISSUED_AT),
    )


async def authenticate(raw: object, subprotocol: str | None = None, gone=None) -> AuthResult:
    """``authenticate_sync`` from async code. The lookups run in the one database thread, after the
    calls queued before; ``gone()``, checked there when this call's turn comes, skips them for a
    client that has left meanwhile (docs/design.md#auth-queue)."""
    return await run_sync_db(authenticate_sync, raw, subprotocol, gone)


class RevocationAwareJWTAuthentication(JWTAuthentication):
    """DRF's simplejwt authentication that also refuses an access token issued at or before the
    user's revocation time (logout, password change), as the sockets do (docs/security.md)."""

    def get_user(self, validated_token):
        from .models import TokenRevocation
        from .accounts.revocation import is_revoked

        user = super().get_user(validated_token)
        not_before = TokenRevocation.objects.filter(user_id=user.pk).values_list("not_before", flat=True).first()
        if is_revoked(validated_token.get("iat"), not_before):
            raise AuthenticationFailed("The session was revoked; log in again", code="token_revoked")
        return user


class JWTAuthMiddleware:
    """ASGI middleware: fills ``scope["user"]`` and ``scope["realtime.auth"]`` for sockets."""

    def __init__(self, inner) -> None:
        self.inner = inner

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            await authenticate_scope(scope, gone=gone_probe(send))
        return await self.inner(scope, receive, send)


async def authenticate_scope(scope: dict, gone=None) -> None:
    """Set ``scope["user"]`` and ``scope["realtime.auth"]`` from the socket's token.

    In place, not on a copy: a socket's scope is built by the server for that one connection
    and read by nobody above this middleware, while a copy would stay for the socket's life
    (~0.45 KiB per idle socket). The raw token is not kept, only its ``AuthResult``.
    """
    raw, subprotocol = token_from_scope(scope)
    if raw is None:
        # No database trip for the common refusal. Socket.IO may still send
        # its token in the CONNECT packet and authenticate then.
        result = AuthResult(AnonymousUser(), AuthError("token_missing"))
    else:
        result = await authenticate(raw, subprotocol, gone)
    scope["realtime.auth"] = result
    scope["user"] = result.user
