"""A JWT login and logout through the API are user activity, like an admin login."""
from channels.db import database_sync_to_async
from django.test import AsyncClient
import pytest

pytestmark = pytest.mark.django_db(transaction=True)


async def test_api_login_and_logout_reach_staff_as_user_activity(make_user, token, connect):
    staff = await database_sync_to_async(make_user)("watcher", is_staff=True)
    await database_sync_to_async(make_user)("erin", password="erin-pass-123")
    sock = await connect(token(staff))
    assert (await sock.command("subscribe:staff"))["data"]["rooms"] == ["staff"]

    client = AsyncClient()
    res = await client.post("/api/auth/token/", {"username": "erin", "password": "erin-pass-123"})
    assert res.status_code == 200
    frame = await sock.receive_event("notification")
    assert frame["type"] == "user:activity"
    assert frame["data"]["username"] == "erin" and frame["data"]["action"] == "login"

    tokens = res.json()
    res = await client.post(
        "/api/auth/logout/", {"refresh": tokens["refresh"]}, headers={"Authorization": f"Bearer {tokens['access']}"}
    )
    assert res.status_code == 205
    frame = await sock.receive_event("notification")
    assert (frame["type"], frame["data"]["action"]) == ("user:activity", "logout")


async def test_a_failed_api_login_sends_no_login_activity(make_user, token, connect):
    staff = await database_sync_to_async(make_user)("watcher", is_staff=True)
    await database_sync_to_async(make_user)("erin", password="erin-pass-123")
    sock = await connect(token(staff))
    await sock.command("subscribe:staff")
    res = await AsyncClient().post("/api/auth/token/", {"username": "erin", "password": "nope"})
    assert res.status_code == 401
    assert await sock.nothing(0.3)
