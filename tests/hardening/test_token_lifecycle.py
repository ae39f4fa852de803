"""Token lifecycle on live sockets, through daphne and a real client.

A socket is bound by its access token's ``exp``: ``auth:expiring`` shortly before,
close 4003 (``token_expired``, retryable) at expiry, unless the client sent a fresh
access token of the same user in-band (``auth:refresh {token}``).
"""
import asyncio
from datetime import timedelta
import time

from channels.db import database_sync_to_async
import jwt
import pytest
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from tests.hardening.support import command, connected, frames_until_close, hardened_server, receive_event

pytestmark = [
    pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

WARNING = 2.0  # REALTIME AUTH_EXPIRY_WARNING of the server


@pytest.fixture(scope="module")
def server(module_prefix):
    with hardened_server(module_prefix, AUTH_EXPIRY_WARNING=WARNING) as s:
        yield s


def short_token(user, seconds: float) -> AccessToken:
    tok = AccessToken.for_user(user)
    tok.set_exp(lifetime=timedelta(seconds=seconds))
    return tok


async def test_a_short_lived_token_is_warned_then_closed_at_expiry(server, make_user):
    user = await database_sync_to_async(make_user)()
    tok = short_token(user, 3)
    ws = await connected(server, str(tok))
    frames, code = await frames_until_close(ws, timeout=6)
    closed_at = time.time()
    names = [f.get("event") for f in frames]
    assert names[-2:] == ["auth:expiring", "error"], names
    warning, error = frames[-2], frames[-1]
    assert warning["data"]["expiresAt"] == tok["exp"]
    assert 0 < warning["data"]["expiresIn"] <= WARNING + 1
    assert error["code"] == "token_expired"
    assert code == 4003
    assert tok["exp"] - 0.05 <= closed_at < tok["exp"] + 2.5, "closed at the token's expiry, not before"


async def test_refresh_in_band_outlives_the_first_token_and_binds_to_the_new_one(server, make_user, module_layer):
    from django_oda_realtime import apublish

    user = await database_sync_to_async(make_user)()
    first = short_token(user, 3)
    ws = await connected(server, str(first))
    await receive_event(ws, "auth:expiring", timeout=4)
    second = short_token(user, 5)
    reply = await command(ws, "auth:refresh", {"token": str(second)})
    assert reply["data"] == {"expiresAt": second["exp"]}, reply

    # Past the first token's expiry the socket is open, answers and hears its events.
    await asyncio.sleep(max(0.0, first["exp"] + 1.0 - time.time()))
    assert "data" in await command(ws, "ping", ack=2)
    await apublish("test:still", {"ok": True}, [f"user:{user.pk}"])
    assert (await receive_event(ws, "test:still"))["data"] == {"ok": True}

    # Bound by the new token now: warned again, closed at its expiry.
    frames, code = await frames_until_close(ws, timeout=8)
    warnings = [f for f in frames if f.get("event") == "auth:expiring"]
    assert warnings and warnings[-1]["data"]["expiresAt"] == second["exp"], frames
    assert code == 4003
    assert time.time() >= second["exp"] - 0.05


def other_tokens(user, other) -> dict:
    """Tokens an ``auth:refresh`` must refuse, with the error code each gets."""
    from django.conf import settings

    expired = AccessToken.for_user(user)
    expired.set_exp(lifetime=-timedelta(seconds=5))
    hs512 = jwt.encode(dict(AccessToken.for_user(user).payload), settings.SIMPLE_JWT["SIGNING_KEY"], "HS512")
    return {
        "another user's token": (str(AccessToken.for_user(other)), "token_user_mismatch"),
        "garbage": ("not-a-jwt", "token_invalid"),
        "a refresh token": (str(RefreshToken.for_user(user)), "token_invalid"),
        "an expired token": (str(expired), "token_expired"),
        "HS512 with our key": (hs512, "token_invalid"),
    }


async def test_a_refused_refresh_gets_an_error_and_keeps_the_old_expiry(server, make_user):
    user = await database_sync_to_async(make_user)()
    other = await database_sync_to_async(make_user)()
    first = short_token(user, 3)
    ws = await connected(server, str(first))
    bad = await database_sync_to_async(other_tokens)(user, other)
    for ack, (label, (raw, code)) in enumerate(bad.items(), start=1):
        reply = await command(ws, "auth:refresh", {"token": raw}, ack=ack)
        assert reply.get("error", {}).get("code") == code, (label, reply)
    # Without an ack id the refusal is the ``auth:error`` event.
    await ws.send('{"event":"auth:refresh","data":{"token":"nope"}}')
    error = await receive_event(ws, "auth:error")
    assert error["code"] == "token_invalid"
    # Malformed commands: wrong types, unknown fields.
    for ack, data in enumerate([None, {"token": 5}, {"token": "x", "extra": 1}, ["x"]], start=100):
        reply = await command(ws, "auth:refresh", data, ack=ack)
        assert reply["error"]["code"] == "validation_error", (data, reply)

    frames, code = await frames_until_close(ws, timeout=6)
    assert code == 4003, "still bound by the first token"
    assert time.time() >= first["exp"] - 0.05
    assert frames[-1]["code"] == "token_expired"
