"""Forged and malformed JWTs: each refused with its reason, at the handshake and on ``auth:refresh``.

tests/realtime/test_auth.py covers where the token may be, garbage, an expired token,
another signing key, a refresh token and a deleted or inactive user at the handshake;
here: algorithm tricks, tampering, missing or odd claims — built from a real token of
a real user, so only the forged part can be why it is refused.
"""
import base64
from datetime import timedelta
import json
import time

from channels.db import database_sync_to_async
from django.conf import settings
import jwt
import pytest
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from django_oda_realtime.exceptions import AuthError
from tests.realtime.test_auth import refused

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict, payload: dict, signature: str = "") -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}.{signature}"


def sign(payload: dict, algorithm: str = "HS256", key: str | None = None, headers: dict | None = None) -> str:
    return jwt.encode(payload, key or settings.SIMPLE_JWT["SIGNING_KEY"], algorithm, headers=headers)


def forged_tokens(user, other) -> dict[str, tuple[str, str]]:
    """label -> (token, the reason it must be refused with)."""
    good = str(AccessToken.for_user(user))
    claims = dict(AccessToken.for_user(user).payload)
    header, payload, signature = good.split(".")

    def without(*names):
        return {k: v for k, v in claims.items() if k not in names}

    def tampered(**changes):
        body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return f"{header}.{b64(json.dumps({**body, **changes}).encode())}.{signature}"

    flipped = signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")
    cases = {
        "alg none, no signature": (unsigned({"alg": "none", "typ": "JWT"}, claims), "token_invalid"),
        "alg none, original signature": (unsigned({"alg": "none", "typ": "JWT"}, claims, signature), "token_invalid"),
        "alg NONE": (unsigned({"alg": "NONE", "typ": "JWT"}, claims), "token_invalid"),
        "signature altered": (f"{header}.{payload}.{flipped}", "token_invalid"),
        "signature removed": (f"{header}.{payload}.", "token_invalid"),
        "HS512 with our key": (sign(claims, "HS512"), "token_invalid"),
        "HS384 with our key": (sign(claims, "HS384"), "token_invalid"),
        "header says HS512, HS256 signature": (
            f"{b64(json.dumps({'alg': 'HS512', 'typ': 'JWT'}).encode())}.{payload}.{signature}", "token_invalid"),
        "user_id changed to another user": (tampered(user_id=str(other.pk)), "token_invalid"),
        "exp extended": (tampered(exp=claims["exp"] + 86400), "token_invalid"),
        "token_type changed": (tampered(token_type="refresh"), "token_invalid"),
        "no exp": (sign(without("exp")), "token_invalid"),
        "exp as a string": (sign({**claims, "exp": str(claims["exp"])}), "token_invalid"),
        "exp Infinity": (sign({**claims, "exp": float("inf")}), "token_invalid"),
        "iat a string": (sign({**claims, "iat": "yesterday"}), "token_invalid"),
        "nbf in the future": (sign({**claims, "nbf": int(time.time()) + 3600}), "token_invalid"),
        "no token_type": (sign(without("token_type")), "token_invalid"),
        "token_type refresh, signed by us": (sign({**claims, "token_type": "refresh"}), "token_invalid"),
        "no jti": (sign(without("jti")), "token_invalid"),
        "a refresh token": (str(RefreshToken.for_user(user)), "token_invalid"),
        "over 4 KB": (sign({**claims, "pad": "x" * 5000}), "token_invalid"),
        "three dots": ("a.b.c.d", "token_invalid"),
        "no such user id": (sign({**claims, "user_id": "999999999"}), "user_inactive"),
        "user_id not a number": (sign({**claims, "user_id": "abc"}), "user_inactive"),
        "user_id a list": (sign({**claims, "user_id": [user.pk]}), "user_inactive"),
        "no user_id": (sign(without("user_id")), "user_inactive"),
    }
    assert all(code in AuthError.CODES for _, code in cases.values())
    return cases


@pytest.fixture
async def two_users(make_user):
    return await database_sync_to_async(make_user)(), await database_sync_to_async(make_user)()


async def test_forged_tokens_are_refused_at_the_handshake_with_their_reason(two_users, connect):
    user, other = two_users
    cases = await database_sync_to_async(forged_tokens)(user, other)
    wrong = {}
    for label, (raw, code) in cases.items():
        frame, close = await refused(connect, raw, via="header")
        if (frame["code"], close) != (code, AuthError.CODES[code][0]):
            wrong[label] = (frame["code"], close)
    assert wrong == {}


async def test_forged_tokens_are_refused_by_auth_refresh_and_the_socket_stays(two_users, connect, token):
    user, other = two_users
    cases = await database_sync_to_async(forged_tokens)(user, other)
    sock = await connect(token(user))
    for label, (raw, code) in cases.items():
        reply = await sock.command("auth:refresh", {"token": raw})
        assert reply.get("error", {}).get("code") == code, (label, reply)
    assert "data" in await sock.command("ping")
    # The genuine article still works on the same socket.
    fresh = AccessToken.for_user(user)
    fresh.set_exp(lifetime=timedelta(minutes=30))
    assert (await sock.command("auth:refresh", {"token": str(fresh)}))["data"] == {"expiresAt": fresh["exp"]}
