"""Revocation does not depend on one message arriving, nor on when it lands (issue #11).

- Redis down at the moment of logout (or deactivation): the close message is lost, and the
  sockets on both server processes are still closed, by each process's periodic re-check
  (``REVOCATION_RECHECK_INTERVAL``, short here).
- A change no signal announces (``QuerySet.update``) is caught by the same re-check.
- A logout or deactivation that lands between the handshake's token check and the join of the
  user's room (its close message sent before the socket could hear it) is caught by the check
  ``Session.open`` makes after the join: the socket never gets ``connected``.
"""
import asyncio

from channels.db import database_sync_to_async
from channels.layers import channel_layers
from django.contrib.auth import get_user_model
import pytest

from django_oda_realtime.hub import Hub
from django_oda_realtime.accounts.revocation import revoke_tokens
from django_oda_realtime.rooms import user_room
from django_oda_realtime.accounts.tokens import PreciseRefreshToken
from tests.hardening.support import connected, frames_until_close, http
from tests.servers import RedisProcess, ServerProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

PASSWORD = "pw-123456"
RECHECK = 2  # seconds, REALTIME_REVOCATION_RECHECK_INTERVAL of the servers


def use_layer(settings, url: str, prefix: str) -> None:
    """Publish from this process on the servers' Redis (the receivers of a change made here)."""
    host = {"address": url, "socket_timeout": 2, "socket_connect_timeout": 1}
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                                           "CONFIG": {"hosts": [host], "prefix": prefix}}}
    channel_layers.backends.clear()


def deactivate(user):
    user.is_active = False
    user.save()


@pytest.mark.parametrize("change", ["logout", "deactivate"])
async def test_with_redis_down_at_logout_the_sockets_on_every_process_still_close(
    change, settings, layer_prefix, make_user
):
    user = await database_sync_to_async(make_user)()
    redis = RedisProcess().start()
    env = {"REALTIME_REVOCATION_RECHECK_INTERVAL": str(RECHECK), "REALTIME_PRESENCE_PREFIX": f'"{layer_prefix}"'}
    a = ServerProcess(redis_url=redis.url, layer_prefix=layer_prefix, env=env)
    b = ServerProcess(redis_url=redis.url, layer_prefix=layer_prefix, env=env)
    try:
        a.start()
        b.start()
        use_layer(settings, redis.url, layer_prefix)
        refresh = await database_sync_to_async(PreciseRefreshToken.for_user)(user)  # as the login view mints
        tokens = {"refresh": str(refresh), "access": str(refresh.access_token)}
        sockets = [await connected(a, tokens["access"]), await connected(b, tokens["access"])]

        redis.stop()
        if change == "logout":
            status, _ = await http("POST", f"{b.url}/api/auth/logout/", {"refresh": tokens["refresh"]},
                                   {"Authorization": f"Bearer {tokens['access']}"})
            assert status == 205
        else:
            await database_sync_to_async(deactivate)(user)  # its close message is lost too
        redis.start()

        results = await asyncio.gather(*(frames_until_close(ws, timeout=RECHECK * 5 + 5) for ws in sockets))
        expected = ("token_revoked", 4005) if change == "logout" else ("user_inactive", 4004)
        for frames, code in results:
            assert (frames[-1]["data"]["code"] if frames else None, code) == expected, (frames, code)
    finally:
        a.stop()
        b.stop()
        redis.stop()


async def test_a_deactivation_no_signal_announces_closes_the_socket(settings, redis_layer, make_user, token, connect):
    settings.REALTIME = {**getattr(settings, "REALTIME", {}), "REVOCATION_RECHECK_INTERVAL": 1}
    user = await database_sync_to_async(make_user)()
    sock = await connect(token(user))
    await database_sync_to_async(get_user_model().objects.filter(pk=user.pk).update)(is_active=False)
    frame = await sock.receive_event("error", timeout=5)
    assert frame["data"]["code"] == "user_inactive"
    assert (await sock.comm.receive_output(2))["code"] == 4004


async def test_a_revocation_written_without_its_message_closes_the_socket(settings, redis_layer, make_user, token, connect):
    """A ``TokenRevocation`` row whose close message never went out (Redis down, another tool)."""
    from django.utils import timezone

    from django_oda_realtime.models import TokenRevocation

    settings.REALTIME = {**getattr(settings, "REALTIME", {}), "REVOCATION_RECHECK_INTERVAL": 1}
    user = await database_sync_to_async(make_user)()
    sock = await connect(token(user))
    other = await connect(token(await database_sync_to_async(make_user)()))
    await database_sync_to_async(TokenRevocation.objects.create)(user=user, not_before=timezone.now())
    frame = await sock.receive_event("error", timeout=5)
    assert frame["data"]["code"] == "token_revoked"
    assert (await sock.comm.receive_output(2))["code"] == 4005
    assert "data" in await other.command("ping")  # another user's socket stays


@pytest.mark.parametrize("change", ["logout", "deactivate"])
async def test_a_logout_racing_the_handshake_is_not_missed(change, redis_layer, make_user, token, connect, monkeypatch):
    """The change lands after the token check, just before the socket joins ``user:{id}``:
    its close message finds no socket of the user in the room."""
    user = await database_sync_to_async(make_user)()
    raw = token(user)
    own_room = user_room(user.pk)
    join = Hub.join

    def end_access():
        if change == "logout":
            revoke_tokens(user, "logout")
        else:
            deactivate(get_user_model().objects.get(pk=user.pk))

    async def join_after_the_change(hub, conn, room):
        if room == own_room:
            await database_sync_to_async(end_access)()
        return await join(hub, conn, room)

    monkeypatch.setattr(Hub, "join", join_after_the_change)
    sock = await connect(raw, expect_ok=False)
    frame = await sock.receive()
    assert frame["event"] == "error", frame  # not "connected"
    expected = ("token_revoked", 4005) if change == "logout" else ("user_inactive", 4004)
    assert (frame["data"]["code"], (await sock.comm.receive_output(2))["code"]) == expected


async def test_a_refreshed_socket_is_judged_by_its_new_token(settings, redis_layer, make_user, connect):
    """``auth:refresh`` moves the socket's issue time: a later re-check keeps it open."""
    from rest_framework.test import APIClient

    user = await database_sync_to_async(make_user)()

    def login():
        return APIClient().post("/api/auth/token/", {"username": user.username, "password": PASSWORD},
                                format="json").json()

    first = await database_sync_to_async(login)()
    sock = await connect(first["access"])
    # A revocation row written without a message, then a fresh login and auth:refresh on the socket
    # before the re-check runs: the socket now holds a token issued after the revocation.
    from django.utils import timezone

    from django_oda_realtime.models import TokenRevocation

    await database_sync_to_async(TokenRevocation.objects.create)(user=user, not_before=timezone.now())
    second = await database_sync_to_async(login)()
    reply = await sock.command("auth:refresh", {"token": second["access"]})
    assert "data" in reply, reply
    settings.REALTIME = {**getattr(settings, "REALTIME", {}), "REVOCATION_RECHECK_INTERVAL": 1}
    await asyncio.sleep(2.5)  # the re-checks start now (at the default interval none ran yet)
    assert "data" in await sock.command("ping")


def test_the_periodic_recheck_reads_all_users_in_one_query_per_batch(make_user, django_assert_num_queries, monkeypatch):
    """Bounded cost: one query per ``RECHECK_BATCH`` distinct users, whatever the number of sockets."""
    from django.utils import timezone

    from django_oda_realtime.accounts import revocation
    from django_oda_realtime.models import TokenRevocation

    users = [make_user() for _ in range(5)]
    users[1].is_active = False
    users[1].save()
    TokenRevocation.objects.create(user=users[2], not_before=timezone.now())
    ids = [str(u.pk) for u in users] * 3 + ["999999"]  # three sockets each, and a deleted user
    with django_assert_num_queries(1):
        state = revocation.access_state(ids)
    monkeypatch.setattr(revocation, "RECHECK_BATCH", 2)
    with django_assert_num_queries(3):
        assert revocation.access_state(ids) == state
    now = timezone.now().timestamp()
    verdicts = [revocation.verdict(state, pk, now - 60) for pk in [*(str(u.pk) for u in users), "999999"]]
    assert verdicts == [None, revocation.INACTIVE, revocation.REVOKED, None, None, revocation.INACTIVE]
    assert revocation.verdict(state, str(users[2].pk), now + 1) is None  # a token issued after the revocation


async def test_the_periodic_recheck_queries_per_batch_of_sockets_and_closes_the_right_ones(make_user, monkeypatch):
    """Bounded memory: ``recheck_sockets`` holds one ``RECHECK_BATCH`` of sockets at a time, and
    every batch is checked (a revoked user's socket in the last batch is closed too)."""
    import time

    from django_oda_realtime.accounts import revocation

    users = [await database_sync_to_async(make_user)() for _ in range(5)]
    users[1].is_active = False
    await database_sync_to_async(users[1].save)()
    await database_sync_to_async(revoke_tokens)(users[4])

    class Session:
        def __init__(self, user):
            self.user, self.issued_at = user, time.time() - 60

    class Conn:
        closed = False

        def __init__(self, user):
            self.session, self.got = Session(user), []

        async def control(self, message):
            self.got.append(message["reason"])

    conns = [Conn(u) for u in users]
    asked = []
    read = revocation.access_state
    monkeypatch.setattr(revocation, "RECHECK_BATCH", 2)
    monkeypatch.setattr(revocation, "access_state", lambda ids: asked.append(len(ids)) or read(ids))
    assert await revocation.recheck_sockets(conns) == 2
    assert [c.got for c in conns] == [[], ["user_inactive"], [], [], ["token_revoked"]]
    assert asked == [2, 2, 1]
