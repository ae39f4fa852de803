"""Socket authentication: where the token may be, and each refusal with its reason."""
from datetime import timedelta
import json

from channels.db import database_sync_to_async
import pytest
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from django_oda_realtime.exceptions import CloseCode

pytestmark = pytest.mark.django_db(transaction=True)


async def refused(connect, token=None, **kwargs):
    """Connect, expect the error frame and the close; return (error frame, close code)."""
    sock = await connect(token, expect_ok=False, **kwargs)
    assert sock.accepted, "auth refusals are sent over the socket so clients can read the reason"
    frame = json.loads(await sock.comm.receive_from(2))
    closing = await sock.comm.receive_output(2)
    assert closing["type"] == "websocket.close"
    return frame, closing["code"]


@pytest.mark.parametrize("via", ["header", "query", "subprotocol"])
async def test_a_valid_access_token_is_accepted_from_each_place(via, make_user, token, connect):
    user = await database_sync_to_async(make_user)("alice")
    raw = token(user)
    sock = await connect(raw, via=via)
    data = sock.connected_payload["data"]
    assert data["userId"] == str(user.pk)
    assert data["username"] == "alice"
    assert data["rooms"] == [f"user:{user.pk}"]
    assert data["connectionId"]
    if via == "subprotocol":
        assert sock.subprotocol == f"bearer.{raw}"


async def test_the_header_wins_over_the_query_string(make_user, token, connect):
    alice = await database_sync_to_async(make_user)("alice")
    bob = await database_sync_to_async(make_user)("bob")
    sock = await connect(
        token(bob), via="query", headers=[(b"authorization", f"Bearer {token(alice)}".encode())]
    )
    assert sock.connected_payload["data"]["username"] == "alice"


async def test_missing_token(connect):
    frame, code = await refused(connect)
    assert (frame["event"], frame["code"], code) == ("error", "token_missing", CloseCode.AUTH_MISSING)


@pytest.mark.parametrize("bad", ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJ1c2VyX2lkIjoxfQ."])
async def test_invalid_token(bad, connect):
    frame, code = await refused(connect, bad)
    assert (frame["code"], code) == ("token_invalid", CloseCode.AUTH_INVALID)


async def test_expired_token(make_user, connect):
    user = await database_sync_to_async(make_user)()
    tok = AccessToken.for_user(user)
    tok.set_exp(lifetime=-timedelta(seconds=5))
    frame, code = await refused(connect, str(tok))
    assert (frame["code"], code) == ("token_expired", CloseCode.AUTH_EXPIRED)
    assert CloseCode(code).retryable


async def test_refresh_token_is_not_an_access_token(make_user, connect):
    user = await database_sync_to_async(make_user)()
    refresh = await database_sync_to_async(RefreshToken.for_user)(user)
    frame, code = await refused(connect, str(refresh))
    assert (frame["code"], code) == ("token_invalid", CloseCode.AUTH_INVALID)


async def test_inactive_user(make_user, token, connect):
    user = await database_sync_to_async(make_user)(is_active=False)
    frame, code = await refused(connect, token(user))
    assert (frame["code"], code) == ("user_inactive", CloseCode.USER_INACTIVE)


async def test_deleted_user(make_user, token, connect):
    user = await database_sync_to_async(make_user)()
    raw = token(user)
    await database_sync_to_async(user.delete)()
    frame, code = await refused(connect, raw)
    assert (frame["code"], code) == ("user_inactive", CloseCode.USER_INACTIVE)


async def test_token_signed_with_another_key_is_invalid(make_user, connect):
    import jwt

    user = await database_sync_to_async(make_user)()
    forged = jwt.encode(
        {"token_type": "access", "user_id": str(user.pk), "exp": 4102444800, "jti": "x"}, "not-our-key-" * 4, "HS256"
    )
    frame, code = await refused(connect, forged)
    assert frame["code"] == "token_invalid"


def test_token_endpoints_issue_and_refresh(client, make_user):
    make_user("carol", password="s3cret-pass")
    res = client.post("/api/auth/token/", {"username": "carol", "password": "s3cret-pass"})
    assert res.status_code == 200
    body = res.json()
    assert AccessToken(body["access"])["user_id"]
    res = client.post("/api/auth/token/refresh/", {"refresh": body["refresh"]})
    assert res.status_code == 200 and res.json()["access"]
    assert client.post("/api/auth/token/", {"username": "carol", "password": "wrong"}).status_code == 401
