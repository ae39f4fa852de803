"""The store of resumable sessions (issue 13): take-over, user binding, logout, bad input.

Each test runs on the in-memory twin and on real Redis (unique key prefix on the shared Redis).
"""
import uuid

from channels.layers import InMemoryChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer
import pytest
import redis as redis_lib

from django_oda_realtime.history_sessions import MemorySessions, StoredSession, make_sessions, new_pid


@pytest.fixture(params=["memory", "redis"])
async def store(request):
    if request.param == "memory":
        yield make_sessions(InMemoryChannelLayer())
        return
    url = request.getfixturevalue("redis_url")
    prefix = f"testsess{uuid.uuid4().hex[:10]}"
    layer = RedisPubSubChannelLayer(hosts=[{"address": url, "socket_timeout": 15}], prefix=prefix)
    sessions = make_sessions(layer)
    yield sessions
    await sessions.aclose()
    client = redis_lib.Redis.from_url(url)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    client.close()


def session(user_id="42", owner="conn-1", pid=None, **fields) -> StoredSession:
    return StoredSession(pid or new_pid(), user_id, owner, rooms=fields.pop("rooms", ["inventory:location:1"]),
                         connected=fields.pop("connected", {"sid": "abc"}), position=fields.pop("position", None))


def test_pids_are_unguessable():
    pids = {new_pid() for _ in range(1000)}
    assert len(pids) == 1000 and all(len(p) >= 32 for p in pids)


async def test_a_resume_takes_the_session_over_from_the_stale_connection(store):
    stored = session(position="0123456789abcdef:1-0")
    assert await store.store_session(stored, create=True)
    assert not await store.store_session(session(pid=stored.pid), create=True)  # a pid is created once
    taken = await store.take_session(stored.pid, "42", "conn-2")
    assert (taken.user_id, taken.owner, taken.rooms, taken.connected, taken.position) == (
        "42", "conn-1", ["inventory:location:1"], {"sid": "abc"}, "0123456789abcdef:1-0")
    assert taken.created == stored.created and taken.expires >= stored.expires
    # The stale connection (still open until its ping times out) can no longer write the session.
    stored.rooms = ["orders:all"]
    assert not await store.store_session(stored)
    taken.owner = "conn-2"
    taken.rooms = ["inventory:location:1", "inventory:location:2"]
    assert await store.store_session(taken)
    again = await store.take_session(stored.pid, 42, "conn-3")  # an integer user id is the same user
    assert again.rooms == ["inventory:location:1", "inventory:location:2"] and again.owner == "conn-2"


async def test_another_users_pid_recovers_nothing(store):
    stored = session(user_id="42")
    await store.store_session(stored, create=True)
    assert await store.take_session(stored.pid, "43", "conn-x") is None
    taken = await store.take_session(stored.pid, "42", "conn-2")  # still the owner's
    assert taken is not None and taken.owner == "conn-1"


async def test_logout_deletes_the_users_sessions(store):
    mine = [session(user_id="7", owner=f"conn-{i}") for i in range(3)]
    other = session(user_id="8")
    for s in [*mine, other]:
        assert await store.store_session(s, create=True)
    assert await store.delete_user_sessions("7") == 3
    for s in mine:
        assert await store.take_session(s.pid, "7", "conn-new") is None
        assert not await store.store_session(s)  # a connection closing after logout cannot revive it
    assert await store.take_session(other.pid, "8", "conn-new") is not None
    assert await store.delete_user_sessions("7") == 0


@pytest.mark.parametrize("pid", [None, 5, "", "short", "x" * 65, "a" * 31 + "!", "../" * 20, "a" * 100_000],
                         ids=lambda p: repr(p)[:20])
async def test_malformed_pids_recover_nothing(store, pid):
    assert await store.take_session(pid, "42", "conn-2") is None


async def test_unknown_pid_and_bad_user_ids_recover_nothing(store):
    stored = session()
    await store.store_session(stored, create=True)
    assert await store.take_session(new_pid(), "42", "conn-2") is None
    for user in (None, True, "", "9" * 65, ["42"]):
        assert await store.take_session(stored.pid, user, "conn-2") is None
    assert await store.delete_user_sessions(None) == 0


@pytest.mark.parametrize("bad", [
    dict(pid="not-a-pid"), dict(user_id=""), dict(owner=""), dict(rooms=["r"] * 201),
    dict(connected={"blob": "x" * 70_000}),
], ids=lambda b: next(iter(b)))
async def test_oversized_or_malformed_sessions_are_refused(store, bad):
    stored = session(**{k: v for k, v in bad.items() if k in ("user_id", "owner", "pid")},
                     **{k: v for k, v in bad.items() if k in ("rooms", "connected")})
    with pytest.raises(ValueError):
        await store.store_session(stored, create=True)


async def test_sessions_expire_with_the_window():
    now = [1000.0]
    store = MemorySessions(clock=lambda: now[0])
    stored = session()
    await store.store_session(stored, create=True)
    now[0] += 601
    assert await store.take_session(stored.pid, "42", "conn-2") is None


@pytest.mark.redis
async def test_redis_sessions_expire_with_the_window(redis_url, settings):
    settings.REALTIME = {**settings.REALTIME, "HISTORY_WINDOW": 1}
    prefix = f"testsess{uuid.uuid4().hex[:10]}"
    layer = RedisPubSubChannelLayer(hosts=[{"address": redis_url, "socket_timeout": 15}], prefix=prefix)
    store = make_sessions(layer)
    try:
        stored = session()
        await store.store_session(stored, create=True)
        ttl = redis_lib.Redis.from_url(redis_url).ttl(f"{prefix}:history:session:{stored.pid}")
        assert 0 < ttl <= 1
    finally:
        await store.aclose()
        redis_lib.Redis.from_url(redis_url).delete(f"{prefix}:history:session:{stored.pid}",
                                                   f"{prefix}:history:user:42")


@pytest.mark.redis
async def test_an_unavailable_store_gives_a_fresh_session_and_no_exception():
    from tests.servers import RedisProcess

    server = RedisProcess().start()
    layer = RedisPubSubChannelLayer(hosts=[{"address": server.url, "socket_timeout": 15}], prefix="testsessdown")
    store = make_sessions(layer)
    try:
        stored = session()
        assert await store.store_session(stored, create=True)
        server.stop()
        assert await store.take_session(stored.pid, "42", "conn-2") is None
        assert await store.store_session(session(), create=True) is False
        assert await store.delete_user_sessions("42") == 0
    finally:
        await store.aclose()
        server.stop()


async def test_renewing_keeps_a_session_past_its_first_window_and_never_revives_a_deleted_one(store, settings):
    """An open socket's session is renewed by its process (the hub's sweeper): the window counts
    from the disconnect, not from the session's creation."""
    import asyncio

    settings.REALTIME = {**settings.REALTIME, "HISTORY_WINDOW": 2.0}
    if isinstance(store, MemorySessions):
        now = [1000.0]
        store.clock = lambda: now[0]
        wait = lambda seconds: now.__setitem__(0, now[0] + seconds) or asyncio.sleep(0)  # noqa: E731
    else:
        wait = asyncio.sleep
    kept, dropped, logged_out = session(), session(), session(user_id="7")
    for s in (kept, dropped, logged_out):
        assert await store.store_session(s, create=True)
    await store.delete_user_sessions("7")
    for _ in range(3):  # 3 s in all, renewed every second: more than the 2 s window
        await wait(1.0)
        await store.renew([(kept.pid, "42"), (logged_out.pid, "7"), ("not a pid", "42"), (new_pid(), None)])
    assert await store.take_session(kept.pid, "42", "conn-2") is not None
    assert await store.take_session(dropped.pid, "42", "conn-2") is None  # not renewed: expired
    assert await store.take_session(logged_out.pid, "7", "conn-2") is None  # deleted stays deleted
