"""Only a real password change revokes the user's tokens, not Django's re-hash at login (issue #11).

Django re-hashes a correct password at login when the preferred hasher's parameters changed
(an upgrade raising the PBKDF2 iterations); that save is not a password change and must not
refuse the token the same login has just issued.
"""
import asyncio

from channels.db import database_sync_to_async
from django.contrib.auth.hashers import PBKDF2PasswordHasher
import pytest
from rest_framework.test import APIClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

PASSWORD = "pw-123456"


class SteppedHasher(PBKDF2PasswordHasher):
    """PBKDF2 whose iterations a test raises, as a Django upgrade does."""

    iterations = 1000


@pytest.fixture
def stepped_hasher(settings, monkeypatch):
    settings.PASSWORD_HASHERS = [f"{__name__}.SteppedHasher"]
    monkeypatch.setattr(SteppedHasher, "iterations", 1000)
    return SteppedHasher


def login(username: str, password: str = PASSWORD):
    response = APIClient().post("/api/auth/token/", {"username": username, "password": password}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


async def test_a_login_that_rehashes_the_password_gives_a_token_that_works(
    stepped_hasher, redis_layer, make_user, connect
):
    user = await database_sync_to_async(make_user)()
    old_hash = user.password
    assert "$1000$" in old_hash
    stepped_hasher.iterations = 2000  # the upgrade

    tokens = await database_sync_to_async(login)(user.username)

    await database_sync_to_async(user.refresh_from_db)()
    assert user.password != old_hash and "$2000$" in user.password  # Django re-hashed it
    sock = await connect(tokens["access"])
    assert sock.connected_payload is not None, "the login's own token was refused after the re-hash"
    assert "data" in await sock.command("ping")
    refreshed = await database_sync_to_async(
        lambda: APIClient().post("/api/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json"))()
    assert refreshed.status_code == 200


async def test_a_rehash_at_login_leaves_the_users_open_sockets_open(stepped_hasher, redis_layer, make_user, connect):
    user = await database_sync_to_async(make_user)()
    before = await connect(await database_sync_to_async(lambda: login(user.username)["access"])())
    stepped_hasher.iterations = 2000
    await database_sync_to_async(login)(user.username)
    await asyncio.sleep(0.5)  # a close message would have arrived by now (the login's notification may)
    assert "data" in await before.command("ping")


def set_password(user):
    user.set_password("another-pw-987")
    user.save()


def set_unusable(user):
    user.set_unusable_password()
    user.save()


def assign_hash(user):
    from django.contrib.auth.hashers import make_password

    user.password = make_password("another-pw-987")
    user.save(update_fields=["password"])


@pytest.mark.parametrize("change", [set_password, set_unusable, assign_hash],
                         ids=["set_password", "set_unusable_password", "new_hash_assigned"])
async def test_a_real_password_change_still_revokes(change, stepped_hasher, redis_layer, make_user, connect):
    user = await database_sync_to_async(make_user)()
    tokens = await database_sync_to_async(login)(user.username)
    sock = await connect(tokens["access"])
    await database_sync_to_async(change)(user)
    frame = await sock.receive_event("error", timeout=3)
    assert frame["data"]["code"] == "password_changed"
    assert (await sock.comm.receive_output(2))["code"] == 4005
    refreshed = await database_sync_to_async(
        lambda: APIClient().post("/api/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json"))()
    assert refreshed.status_code == 401
