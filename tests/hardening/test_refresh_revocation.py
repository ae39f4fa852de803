"""Logout, deactivation and a password change end the user's refresh tokens too (issue #11).

simplejwt's refresh view checks only its blacklist, so a refresh token other than the one sent
to logout, or one issued before a password change, kept refreshing. The refresh endpoint now
checks the user (deleted, inactive) and the user's revocation time against the token's ``iat``.
The tokens our endpoints mint carry ``iat`` to the microsecond (django_oda_realtime/accounts/tokens.py): a login in
the very second of a logout works, every token from before the logout stays refused.

HTTP through DRF's test client on the real views and PostgreSQL; sockets on the ASGI app.
"""
import asyncio
import math
import time

from channels.db import database_sync_to_async
from django.test import Client
import jwt
import pytest
from rest_framework.test import APIClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

PASSWORD = "pw-123456"


def login(username: str) -> dict:
    response = APIClient().post("/api/auth/token/", {"username": username, "password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def refresh(token: str):
    return APIClient().post("/api/auth/token/refresh/", {"refresh": token}, format="json")


def logout(body: dict | None, access: str | None = None):
    client = APIClient()
    if access is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client.post("/api/auth/logout/", body or {}, format="json")


def iat(token: str) -> float:
    return jwt.decode(token, options={"verify_signature": False})["iat"]


async def refused_socket(connect, access: str) -> tuple[str, int]:
    sock = await connect(access, expect_ok=False)
    frame = await sock.receive()
    closing = await sock.comm.receive_output(2)
    return frame["data"]["code"], closing["code"]


@pytest.fixture
def user(make_user):
    return make_user()


def test_after_logout_another_refresh_token_of_the_user_is_refused(user):
    phone, laptop = login(user.username), login(user.username)
    assert logout({"refresh": phone["refresh"]}, phone["access"]).status_code == 205
    response = refresh(laptop["refresh"])
    assert response.status_code == 401, response.content
    assert response.json()["code"] == "token_revoked"


def test_a_refresh_token_issued_before_a_password_change_is_refused(user):
    tokens = login(user.username)
    user.set_password("another-pw-987")
    user.save()
    response = refresh(tokens["refresh"])
    assert response.status_code == 401
    assert response.json()["code"] == "token_revoked"


@pytest.mark.parametrize("change", ["deactivate", "delete"])
def test_a_deactivated_or_deleted_users_refresh_token_is_refused(user, change):
    tokens = login(user.username)
    if change == "deactivate":
        user.is_active = False
        user.save()
    else:
        user.delete()
    response = refresh(tokens["refresh"])
    assert response.status_code == 401, response.content
    assert response.json()["code"] == "no_active_account"


def test_refresh_still_works_and_rotates(user):
    tokens = login(user.username)
    response = refresh(tokens["refresh"])
    assert response.status_code == 200
    assert refresh(response.json()["refresh"]).status_code == 200
    assert refresh(tokens["refresh"]).status_code == 401  # blacklisted after rotation


async def test_a_login_in_the_same_second_as_a_logout_works_and_every_earlier_token_is_refused(
    user, redis_layer, connect
):
    for attempt in range(3):
        await _sleep_to_next_second()
        before = await database_sync_to_async(login)(user.username)
        response = await database_sync_to_async(logout)({"refresh": before["refresh"]}, before["access"])
        assert response.status_code == 205
        after = await database_sync_to_async(login)(user.username)
        if math.floor(iat(before["access"])) == math.floor(iat(after["access"])):
            break  # all three in one second, as wanted
    else:
        pytest.fail("could not log in, out and in within one second")

    sock = await connect(after["access"])
    assert sock.connected_payload is not None
    assert (await database_sync_to_async(refresh)(after["refresh"])).status_code == 200

    assert await refused_socket(connect, before["access"]) == ("token_revoked", 4005)
    assert (await database_sync_to_async(refresh)(before["refresh"])).status_code == 401


async def _sleep_to_next_second():
    await asyncio.sleep(math.ceil(time.time()) - time.time() + 0.01)


async def test_a_logout_with_a_stale_refresh_token_still_revokes_everything(user, redis_layer, connect):
    tokens = await database_sync_to_async(login)(user.username)
    sock = await connect(tokens["access"])

    response = await database_sync_to_async(logout)({"refresh": "not-a-token"}, tokens["access"])

    assert response.status_code == 200, response.content
    assert response.json()["refresh"] == "token_invalid"
    frame = await sock.receive_event("error", timeout=3)
    assert frame["data"]["code"] == "logout"
    assert (await sock.comm.receive_output(2))["code"] == 4005
    assert await refused_socket(connect, tokens["access"]) == ("token_revoked", 4005)
    assert (await database_sync_to_async(refresh)(tokens["refresh"])).status_code == 401


def test_a_logout_with_an_already_used_refresh_token_still_revokes(user):
    tokens = login(user.username)
    rotated = refresh(tokens["refresh"]).json()
    response = logout({"refresh": tokens["refresh"]}, rotated["access"])  # blacklisted by the rotation
    assert response.status_code == 200
    assert response.json()["refresh"] == "token_invalid"
    assert refresh(rotated["refresh"]).status_code == 401


def test_a_logout_with_another_users_refresh_token_revokes_only_the_caller(user, make_user):
    other = make_user()
    mine, theirs = login(user.username), login(other.username)
    response = logout({"refresh": theirs["refresh"]}, mine["access"])
    assert response.status_code == 200
    assert response.json()["refresh"] == "token_user_mismatch"
    assert refresh(mine["refresh"]).status_code == 401
    assert refresh(theirs["refresh"]).status_code == 200


def test_a_logout_with_only_a_refresh_token_logs_its_user_out(user):
    tokens, other_device = login(user.username), login(user.username)
    assert logout({"refresh": tokens["refresh"]}).status_code == 205
    assert refresh(other_device["refresh"]).status_code == 401


def test_a_revoked_access_token_cannot_log_its_user_out_again(user):
    """Else a stolen access token could keep ending its user's new sessions until it expires."""
    stolen = login(user.username)
    assert logout({"refresh": stolen["refresh"]}, stolen["access"]).status_code == 205
    fresh = login(user.username)
    response = logout({}, stolen["access"])
    assert response.status_code == 401
    assert response.json()["code"] == "token_revoked"
    assert refresh(fresh["refresh"]).status_code == 200


def test_a_logout_with_neither_token_is_refused(user):
    assert logout({}).status_code == 401
    assert logout({"refresh": "not-a-token"}).status_code == 401


async def test_an_admin_logout_closes_the_dashboard_sockets_minted_from_its_session(make_user, redis_layer, connect):
    """The dashboard's token comes from the admin session; logging out of the admin ends it."""
    admin = await database_sync_to_async(make_user)(is_staff=True)

    def dashboard_token(client):
        response = client.post("/admin/live/token/")
        assert response.status_code == 200, response.content
        return response.json()["token"]

    browser = Client()
    await database_sync_to_async(browser.login)(username=admin.username, password=PASSWORD)
    sock = await connect(await database_sync_to_async(dashboard_token)(browser))

    response = await database_sync_to_async(browser.post)("/admin/logout/")
    assert response.status_code == 200

    frame = await sock.receive_event("error", timeout=3)
    assert frame["data"]["code"] == "logout"
    assert (await sock.comm.receive_output(2))["code"] == 4005
    # Logging in again at once gives the page a token that works.
    await database_sync_to_async(browser.login)(username=admin.username, password=PASSWORD)
    again = await connect(await database_sync_to_async(dashboard_token)(browser))
    assert again.connected_payload is not None


def test_a_revocation_time_never_moves_back(user):
    """A logout from a host whose clock is a little behind must not un-revoke tokens."""
    from datetime import timedelta

    from django.utils import timezone

    from django_oda_realtime.models import TokenRevocation
    from django_oda_realtime.accounts.revocation import revoke_tokens

    later = timezone.now() + timedelta(seconds=5)
    TokenRevocation.objects.create(user=user, not_before=later)
    revoke_tokens(user, "logout")
    assert TokenRevocation.objects.get(user=user).not_before == later
    TokenRevocation.objects.filter(user=user).update(not_before=later - timedelta(hours=1))
    revoke_tokens(user, "logout")
    assert TokenRevocation.objects.get(user=user).not_before > later - timedelta(seconds=10)


async def test_an_admin_logout_of_a_session_without_the_dashboard_leaves_the_users_sockets(
    make_user, redis_layer, connect
):
    admin = await database_sync_to_async(make_user)(is_staff=True)
    sock = await connect((await database_sync_to_async(login)(admin.username))["access"])
    browser = Client()
    await database_sync_to_async(browser.login)(username=admin.username, password=PASSWORD)
    await database_sync_to_async(browser.post)("/admin/logout/")
    await asyncio.sleep(0.5)  # a close message would have arrived by now
    assert "data" in await sock.command("ping")
