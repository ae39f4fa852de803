"""Connection state recovery with the real socket.io-client 4.8 (issue #13, docs/socketio.md#recovery).

A publisher sends events at ~200/s to a room the client joined; the client's TCP connection is cut
mid-stream (a forwarder drops it: no close frame, no DISCONNECT) and it reconnects by itself: every
event arrives exactly once, in order, ``socket.recovered === true``, the room still joined without
re-subscribing. Also to a second server process, and after the server was SIGKILLed and restarted.
"""
import asyncio
import contextlib
import uuid

from channels.db import database_sync_to_async
import pytest

from django_oda_realtime.publish import apublish
from tests.conftest import token_for
from tests.domain import make_level
from tests.ops.support import Forwarder
from tests.servers import free_port
from tests.socketio.conftest import socketio_server, use_layer
from tests.socketio_client.node import NodeClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

PERMS = ["inventory.view_inventorylevel", "inventory.change_inventorylevel"]
EVENTS = 1000  # at RATE/s: 5 s of publishing per test (the figures)
RATE = 200.0
RECONNECT = {"transports": ["websocket"], "reconnectionDelay": 100, "reconnectionDelayMax": 300}


@pytest.fixture
def prefix(settings, module_redis_url):
    name = f"rs{uuid.uuid4().hex[:10]}"
    use_layer(settings, module_redis_url, name)
    return name


@pytest.fixture
async def servers(module_redis_url, prefix):
    started = []

    def start(**kwargs):
        server = socketio_server(module_redis_url, prefix, **kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()



@pytest.fixture
async def clients():
    started: list[NodeClient] = []

    async def start(url, options=None, **kwargs) -> NodeClient:
        client = await NodeClient(url, options, **kwargs).start()
        started.append(client)
        return client

    yield start
    for client in started:
        await client.close()


async def subscribed_client(clients, url, user, level) -> NodeClient:
    client = await clients(url, {"auth": {"token": token_for(user)}, **RECONNECT})
    connect = await client.next("connect")
    assert connect["recovered"] is False and connect["pid"]
    welcome = await client.next("event", "connected")
    assert isinstance(welcome["args"][-1], str)  # an offset early: a client that got no event still recovers
    reply = await client.emit("subscribe:inventory", {"locationIds": [str(level.location_id)]}, ack=True)
    assert reply["data"]["rooms"] == [room_of(level)]
    return client


async def keep_away(balancer: Forwarder, client: NodeClient) -> None:
    """Cut the client's connection and keep it away: nothing listens behind the forwarder, the
    client retries meanwhile (``balancer.target = server.port`` lets it back)."""
    balancer.target = free_port()
    balancer.cut()
    await client.next("disconnect")


@contextlib.asynccontextmanager
async def kept_away(server, clients, make_user):
    """A client subscribed to a level's room through a forwarder, then cut and kept away
    (``keep_away``): (user, level, forwarder, client)."""
    user = await database_sync_to_async(make_user)(perms=PERMS)
    level = await database_sync_to_async(make_level)(available=10)
    balancer = await Forwarder(server.port).start()
    try:
        client = await subscribed_client(clients, balancer.url, user, level)
        await keep_away(balancer, client)
        yield user, level, balancer, client
    finally:
        await balancer.stop()


def room_of(level) -> str:
    return f"inventory:location:{level.location_id}"


async def publish_stream(room: str, count: int, *, during=None, at: int = 0):
    """``count`` events at ~RATE/s; ``during()`` is awaited once, after event ``at``."""
    for n in range(count):
        await apublish("inventory:updated", {"n": n}, [room])
        if during is not None and n == at:
            await during()
        await asyncio.sleep(1 / RATE)


async def received(client: NodeClient, count: int = EVENTS, timeout: float = 30.0) -> list[dict]:
    async with asyncio.timeout(timeout):
        while True:
            events = [m for m in client.seen if m["type"] == "event" and m["event"] == "inventory:updated"]
            if len(events) >= count:
                await asyncio.sleep(0.3)  # anything more would be a duplicate
                return [m for m in client.seen if m["type"] == "event" and m["event"] == "inventory:updated"]
            await client._read()


def assert_exactly_once_in_order(events: list[dict], count: int = EVENTS) -> None:
    numbers = [e["args"][0]["data"]["n"] for e in events]
    assert numbers == list(range(count)), f"missing/duplicated: {sorted(set(range(EVENTS)) ^ set(numbers))[:20]}"
    offsets = [e["args"][-1] for e in events]
    assert all(isinstance(o, str) for o in offsets) and len(set(offsets)) == len(offsets)


@pytest.mark.slow
async def test_cut_connection_recovers_every_event_once_in_order(servers, clients, make_user):
    server = servers()
    user = await database_sync_to_async(make_user)(perms=PERMS)
    level = await database_sync_to_async(make_level)(available=10)
    balancer = await Forwarder(server.port).start()
    try:
        client = await subscribed_client(clients, balancer.url, user, level)

        async def cut():
            balancer.cut()

        await publish_stream(room_of(level), EVENTS, during=cut, at=EVENTS // 3)
        assert_exactly_once_in_order(await received(client, EVENTS))
        assert (await client.next("disconnect"))["reason"] == "transport close"
        reconnect = await client.next("connect")
        assert reconnect["recovered"] is True
        assert not [m for m in client.seen if m["type"] == "resubscribed"]  # the app emitted nothing again
    finally:
        await balancer.stop()


@pytest.mark.slow
async def test_recovers_on_a_second_server_process(servers, clients, make_user):
    first, second = servers(), servers()
    user = await database_sync_to_async(make_user)(perms=PERMS)
    level = await database_sync_to_async(make_level)(available=10)
    balancer = await Forwarder(first.port).start()
    try:
        client = await subscribed_client(clients, balancer.url, user, level)

        async def move():
            balancer.target = second.port
            balancer.cut()

        await publish_stream(room_of(level), EVENTS, during=move, at=EVENTS // 3)
        assert_exactly_once_in_order(await received(client, EVENTS))
        assert (await client.next("connect"))["recovered"] is True
    finally:
        await balancer.stop()


@pytest.mark.slow
async def test_recovers_after_its_server_process_is_killed_and_restarted(servers, clients, make_user):
    port = free_port()
    server = servers(port=port)
    user = await database_sync_to_async(make_user)(perms=PERMS)
    level = await database_sync_to_async(make_level)(available=10)
    client = await subscribed_client(clients, server.url, user, level)

    async def kill_and_restart():
        server.proc.kill()  # SIGKILL: no drain, no close frame
        server.proc.wait()
        await asyncio.to_thread(servers, port=port)

    await publish_stream(room_of(level), EVENTS, during=kill_and_restart, at=EVENTS // 3)
    got = await received(client, EVENTS, timeout=45)
    assert_exactly_once_in_order(got)
    assert (await client.next("connect"))["recovered"] is True


@pytest.mark.parametrize("forged", [
    {"pid": "x" * 40},  # unknown
    {"pid": "not a pid!"},
    {"pid": "y" * 5000, "offset": "z" * 5000},  # huge
    {"pid": 12, "offset": {"a": 1}},
    {"offset": "0000000000000000:1-0"},  # another epoch
])
async def test_a_forged_or_unknown_pid_gets_a_fresh_session(servers, clients, make_user, forged):
    server = servers()
    user = await database_sync_to_async(make_user)(perms=PERMS)
    client = await clients(server.url, {"auth": {"token": token_for(user), **forged}, **RECONNECT})
    connect = await client.next("connect")
    welcome = (await client.next("event", "connected"))["args"][0]["data"]
    assert welcome["recovered"] is False and welcome["rooms"] == [f"user:{user.pk}"]
    assert connect["pid"] and connect["pid"] != forged.get("pid")


async def test_another_users_pid_recovers_nothing_of_theirs(servers, clients, make_user):
    server = servers()
    owner = await database_sync_to_async(make_user)(perms=PERMS)
    other = await database_sync_to_async(make_user)(perms=PERMS)
    level = await database_sync_to_async(make_level)(available=10)
    victim = await subscribed_client(clients, server.url, owner, level)
    pid = victim.seen[[m["type"] for m in victim.seen].index("connect")]["pid"]
    offset = victim.seen[[m.get("event") for m in victim.seen].index("connected")]["args"][-1]
    await apublish("inventory:updated", {"n": 0}, [room_of(level)])
    thief = await clients(server.url, {"auth": {"token": token_for(other), "pid": pid, "offset": offset}, **RECONNECT})
    assert (await thief.next("connect"))["pid"] != pid
    welcome = (await thief.next("event", "connected"))["args"][0]["data"]
    assert welcome["recovered"] is False and welcome["rooms"] == [f"user:{other.pk}"]
    await asyncio.sleep(0.5)
    assert not [m for m in thief.seen if m.get("event") == "inventory:updated"]
    # The owner's session is still the owner's: it goes on receiving.
    await apublish("inventory:updated", {"n": 1}, [room_of(level)])
    assert (await victim.next("event", "inventory:updated"))["args"][0]["data"]["n"] == 0


async def test_a_revoked_token_is_refused_on_resume(servers, clients, make_user):
    from django_oda_realtime.accounts.revocation import revoke_tokens

    server = servers()
    async with kept_away(server, clients, make_user) as (user, level, balancer, client):
        await database_sync_to_async(revoke_tokens)(user)
        await apublish("inventory:updated", {"n": 0}, [room_of(level)])
        balancer.target = server.port
        error = await client.next("connect_error", timeout=15)
        while error["data"] is None:  # a retry that found nothing listening while it was away
            error = await client.next("connect_error", timeout=15)
        assert error["data"]["code"] == "token_revoked"
        assert not [m for m in client.seen if m.get("event") == "inventory:updated"]


@pytest.mark.parametrize("bound", ["window", "count"])
async def test_beyond_the_window_or_the_history_count_it_is_a_fresh_session(servers, clients, make_user, bound):
    server = servers(realtime={"HISTORY_WINDOW": 1.0} if bound == "window" else {"HISTORY_MAX_EVENTS": 5})
    async with kept_away(server, clients, make_user) as (user, level, balancer, client):
        if bound == "window":
            await asyncio.sleep(2.5)  # the window (and the stored session) has passed
        else:
            for n in range(8):  # 8 missed events, 5 kept: the first 3 are trimmed, inside the window
                await apublish("inventory:updated", {"n": n}, [room_of(level)])
        balancer.target = server.port
        assert (await client.next("connect", timeout=15))["recovered"] is False
        welcome = (await client.next("event", "connected"))["args"][0]["data"]
        assert welcome["recovered"] is False and welcome["rooms"] == [f"user:{user.pk}"]
        await asyncio.sleep(0.3)
        assert not [m for m in client.seen if m.get("event") == "inventory:updated"]  # nothing replayed


async def test_after_redis_is_flushed_nothing_is_recovered(clients, make_user, settings):
    import redis.asyncio as aioredis

    from tests.servers import RedisProcess

    private = RedisProcess().start()
    name = f"rf{uuid.uuid4().hex[:10]}"
    use_layer(settings, private.url, name)
    server = socketio_server(private.url, name).start()
    balancer = await Forwarder(server.port).start()
    try:
        user = await database_sync_to_async(make_user)(perms=PERMS)
        level = await database_sync_to_async(make_level)(available=10)
        client = await subscribed_client(clients, balancer.url, user, level)
        await apublish("inventory:updated", {"n": 0}, [room_of(level)])
        await client.next("event", "inventory:updated")
        await keep_away(balancer, client)
        async with aioredis.from_url(private.url) as r:
            await r.flushall()
        balancer.target = server.port
        assert (await client.next("connect", timeout=15))["recovered"] is False
        welcome = (await client.next("event", "connected"))["args"][0]["data"]
        assert welcome["recovered"] is False and welcome["rooms"] == [f"user:{user.pk}"]
    finally:
        await balancer.stop()
        server.stop()
        private.stop()


async def test_a_cut_polling_transport_recovers_every_event_once_in_order(servers, clients, make_user):
    server = servers()
    user = await database_sync_to_async(make_user)(perms=PERMS)
    level = await database_sync_to_async(make_level)(available=10)
    balancer = await Forwarder(server.port).start()
    count = 300
    try:
        client = await clients(balancer.url, {"auth": {"token": token_for(user)}, **RECONNECT, "transports": ["polling"]})
        assert (await client.next("connect"))["recovered"] is False
        await client.next("event", "connected")
        reply = await client.emit("subscribe:inventory", {"locationIds": [str(level.location_id)]}, ack=True)
        assert reply["data"]["rooms"] == [room_of(level)]

        for n in range(count):
            await apublish("inventory:updated", {"n": n}, [room_of(level)])
            if n == count // 3:
                # The long-poll GET in flight ends with no response and the next requests find
                # nothing listening (a cut idle keep-alive connection alone goes unnoticed).
                balancer.target = free_port()
                balancer.cut()
            if n == count // 2:
                balancer.target = server.port
            await asyncio.sleep(1 / RATE)
        assert_exactly_once_in_order(await received(client, count), count)
        assert (await client.next("disconnect"))["reason"] == "transport error"
        assert (await client.next("connect"))["recovered"] is True
    finally:
        await balancer.stop()


async def test_subscribe_with_a_snapshot_over_socketio(servers, clients, make_user):
    server = servers()
    user = await database_sync_to_async(make_user)(perms=PERMS)
    level = await database_sync_to_async(make_level)(available=7)
    client = await clients(server.url, {"auth": {"token": token_for(user)}, **RECONNECT})
    await client.next("connect")
    await client.next("event", "connected")
    reply = await client.emit("subscribe:inventory", {"locationIds": [str(level.location_id)], "snapshot": True}, ack=True)
    assert reply["data"]["rooms"] == [room_of(level)]
    snapshot = reply["data"]["snapshot"]
    assert snapshot["state"]["levels"] == [
        {"item_id": level.item_id, "location_id": level.location_id, "available": 7, "reserved": 0}]
    # The position is the history's, as the offsets of the events that follow it.
    await apublish("inventory:updated", {"n": 0}, [room_of(level)])
    event = await client.next("event", "inventory:updated")
    epoch = snapshot["position"].split(":")[0]
    assert event["args"][-1].split(":")[0] == epoch and event["args"][-1] > snapshot["position"]
    bad = await client.emit("subscribe:inventory", {"locationIds": [str(level.location_id)], "snapshot": 1}, ack=True)
    assert bad["error"]["code"] == "validation_error"


async def test_a_burst_during_a_long_replay_closes_the_transport_and_the_client_recovers_every_event(
        servers, clients, make_user):
    """Past ``RESUME_MAX_BUFFERED`` live events held while a recovery replays (docs/socketio.md#recovery):
    the transport is closed (4008), while the CONNECT is handled with no ``connect_error`` (which
    would stop the client for good), and the client reconnects by itself, recovering from its last
    offset until the burst is over: every event once, in order."""
    from tests.realtime.test_resume_overflow import BACKLOG, Burst

    server = servers(realtime={"RESUME_MAX_BUFFERED": 5})
    async with kept_away(server, clients, make_user) as (user, level, balancer, client):
        for n in range(BACKLOG):
            await apublish("inventory:updated", {"n": n}, [room_of(level)])
        burst = Burst(room_of(level), BACKLOG)
        try:
            balancer.target = server.port
            async with asyncio.timeout(30):
                while "slow_consumer (4008)" not in server.output():
                    await asyncio.sleep(0.1)
        finally:
            total = await burst.stop()
        assert_exactly_once_in_order(await received(client, total, timeout=60), total)
        connects = [m for m in client.seen if m["type"] == "connect"]
        assert connects[-1]["recovered"] is True and len(connects) >= 2
        assert [m for m in client.seen if m["type"] == "connect_error" and m["data"] is not None] == []
