"""The event history (issue 13): order, positions, idempotency, replay, bounds and epochs.

Each behaviour runs on the in-memory twin and on real Redis (channels-redis pub/sub layer; the core
layer where it differs). Redis tests use a unique key prefix on the shared Redis; flushes and
restarts only ever happen on a private redis-server (tests/servers.py RedisProcess).
"""
import asyncio
import os
from pathlib import Path
import subprocess
import sys
import uuid

from channels.layers import InMemoryChannelLayer
from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer
import pytest
import redis as redis_lib

from django_oda_realtime.events import Event
from django_oda_realtime.history import MemoryHistory, Replay, make_history, parse_position, position_key
from django_oda_realtime.history_redis import RedisHistory
from django_oda_realtime.rooms import group_for
from tests.servers import RedisProcess

ROOT = Path(__file__).resolve().parents[2]
ROOM_A, ROOM_B, ROOM_C = "inventory:location:1", "inventory:location:2", "orders:all"


def pubsub_layer(url: str, prefix: str) -> RedisPubSubChannelLayer:
    return RedisPubSubChannelLayer(hosts=[{"address": url, "socket_timeout": 15}], prefix=prefix)


def core_layer(url: str, prefix: str) -> RedisChannelLayer:
    return RedisChannelLayer(hosts=[{"address": url, "socket_timeout": 15}], prefix=prefix,
                             channel_capacity={"test-sub.*": 100_000, "realtime-hub.*": 100_000})


def delete_keys(url: str, prefix: str) -> None:
    client = redis_lib.Redis.from_url(url)
    keys = list(client.scan_iter(f"{prefix}:history:*", count=1000))
    for i in range(0, len(keys), 500):
        client.delete(*keys[i:i + 500])
    client.close()


class Backend:
    """One way to run the history: a factory of layers sharing one history (as processes do)."""

    def __init__(self, kind: str, url: str | None = None) -> None:
        self.kind = kind
        self.url = url
        self.prefix = f"testhist{uuid.uuid4().hex[:10]}"
        self.layers: list = []
        self.histories: list = []
        self._memory = InMemoryChannelLayer(capacity=100_000) if kind == "memory" else None

    def layer(self):
        """Another layer on the same deployment (memory: the same process's layer)."""
        if self.kind == "memory":
            layer = self._memory
        elif self.kind == "pubsub":
            layer = pubsub_layer(self.url, self.prefix)
        else:
            layer = core_layer(self.url, self.prefix)
        self.layers.append(layer)
        return layer

    def history(self, layer=None, **bounds):
        """A history over ``layer`` (default: a new one), optionally with its own bounds."""
        layer = layer or self.layer()
        if bounds:
            if self.kind == "memory":
                history = MemoryHistory(layer, **bounds)
            else:
                history = RedisHistory.for_layer(layer)
                history.window, history.max_events = bounds.get("window"), bounds.get("max_events")
        else:
            history = make_history(layer)
        self.histories.append(history)
        return history

    async def close(self) -> None:
        for history in self.histories:
            if hasattr(history, "aclose"):
                await history.aclose()
        for layer in dict.fromkeys(self.layers):
            if hasattr(layer, "flush") and self.kind != "memory":
                await layer.flush()
        if self.url:
            delete_keys(self.url, self.prefix)


@pytest.fixture(params=["memory", "pubsub", "core"])
async def backend(request):
    url = request.getfixturevalue("redis_url") if request.param != "memory" else None
    b = Backend(request.param, url)
    yield b
    await b.close()


@pytest.fixture(params=["memory", "pubsub", "core"])
async def any_backend(request):
    url = request.getfixturevalue("redis_url") if request.param != "memory" else None
    b = Backend(request.param, url)
    yield b
    await b.close()


class Subscriber:
    """A hub-like reader: one channel in the groups of ``rooms``, collecting layer messages."""

    def __init__(self, layer, rooms) -> None:
        self.layer = layer
        self.rooms = rooms
        self.messages: list[dict] = []
        self.channel = None
        self._task = None

    async def start(self) -> "Subscriber":
        self.channel = await self.layer.new_channel(prefix="test-sub.")
        for room in self.rooms:
            await self.layer.group_add(group_for(room), self.channel)
        self._task = asyncio.ensure_future(self._run())
        return self

    async def _run(self) -> None:
        while True:
            self.messages.append(await self.layer.receive(self.channel))

    async def until(self, count: int, timeout: float = 20.0) -> list[dict]:
        async with asyncio.timeout(timeout):
            while len(self.messages) < count:
                await asyncio.sleep(0.01)
        return self.messages

    async def stop(self) -> None:
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass


def event(n: int = 0, rooms=(ROOM_A,), tag: str = "") -> Event:
    return Event.build("inventory:updated", {"n": n, "tag": tag}, list(rooms))


async def ready(history, subscribers) -> None:
    """Publish a probe until every subscriber heard one: their subscriptions are live on Redis."""
    for sub in subscribers:
        sub.messages.clear()
    async with asyncio.timeout(10):
        while not all(sub.messages for sub in subscribers):
            await history.publish(event(-1, rooms=sorted({r for s in subscribers for r in s.rooms})))
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.1)
    for sub in subscribers:
        sub.messages.clear()


def keys(positions) -> list[tuple[int, int]]:
    return [position_key(p) for p in positions]


# -- positions and order ------------------------------------------------------------


async def test_positions_strictly_increase_and_the_head_follows(any_backend):
    history = any_backend.history()
    first = await history.head()
    positions = [await history.publish(event(i)) for i in range(50)]
    assert keys(positions) == sorted(set(keys(positions)))
    assert position_key(first) < position_key(positions[0])
    assert await history.head() == positions[-1]
    assert {parse_position(p)[0] for p in [first, *positions]} == {parse_position(first)[0]}


async def test_every_subscriber_gets_the_position_in_the_layer_message(any_backend):
    history = any_backend.history()
    sub = await Subscriber(any_backend.layer(), [ROOM_A]).start()
    try:
        await ready(history, [sub])
        sent = event(7)
        position = await history.publish(sent)
        (message,) = await sub.until(1)
        assert message["pos"] == position
        received = Event.from_layer(message)  # what the hub reads today, unchanged
        assert (received.id, received.rooms, received.json) == (sent.id, sent.rooms, sent.json)
    finally:
        await sub.stop()


async def test_concurrent_publishers_are_seen_in_one_order_by_every_subscriber(backend):
    """Two publishers (separate Redis connections) at once: both subscribers (separate pub/sub
    connections) receive all events in the same order, with strictly increasing positions."""
    publishers = [backend.history(), backend.history()]
    subs = [await Subscriber(backend.layer(), [ROOM_A, ROOM_B]).start() for _ in range(2)]
    try:
        await ready(publishers[0], subs)

        async def run(history, tag, room):
            for i in range(200):
                await history.publish(event(i, rooms=[room], tag=tag))

        await asyncio.gather(run(publishers[0], "p0", ROOM_A), run(publishers[1], "p1", ROOM_B))
        seen = [await sub.until(400) for sub in subs]
    finally:
        for sub in subs:
            await sub.stop()
    orders = [[(m["id"], m["pos"]) for m in messages] for messages in seen]
    assert orders[0] == orders[1]  # same order, same positions
    for messages in seen:
        assert keys(m["pos"] for m in messages) == sorted(set(keys(m["pos"] for m in messages)))
        for tag in ("p0", "p1"):
            mine = [Event.from_layer(m).json for m in messages if f'"tag":"{tag}"' in m["json"]]
            assert [int(j.split('"n":')[1].split(",")[0]) for j in mine] == list(range(200))


PUBLISHER = """
import asyncio, os, sys, time
import django
django.setup()
import redis
from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django_oda_realtime.events import Event
from django_oda_realtime.history import make_history

url, prefix, tag, count, kind = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
barrier = redis.Redis.from_url(url)
barrier.rpush(prefix + ":history:test-barrier", tag)
while barrier.llen(prefix + ":history:test-barrier") < 2:
    time.sleep(0.01)

async def main():
    hosts = [{"address": url, "socket_timeout": 15}]
    if kind == "core":
        layer = RedisChannelLayer(hosts=hosts, prefix=prefix, channel_capacity={"realtime-hub.*": 100_000})
    else:
        layer = RedisPubSubChannelLayer(hosts=hosts, prefix=prefix)
    history = make_history(layer)
    for i in range(count):
        await history.publish(Event.build("inventory:updated", {"n": i, "tag": tag}, ["inventory:location:1"]))
    await history.aclose()

asyncio.run(main())
"""


@pytest.mark.redis
@pytest.mark.parametrize("kind", ["pubsub", "core"])
async def test_two_os_processes_publishing_at_once_are_seen_in_one_order(redis_url, kind):
    """Two publisher processes at once: two subscribers see every event in position order
    (core layer: the append script does the group_send, docs/design.md#history)."""
    b = Backend(kind, redis_url)
    subs = [await Subscriber(b.layer(), [ROOM_A]).start() for _ in range(2)]
    try:
        await ready(b.history(), subs)
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}
        procs = [await asyncio.create_subprocess_exec(sys.executable, "-c", PUBLISHER, redis_url, b.prefix, tag,
                                                      "300", kind, cwd=ROOT, env=env, stderr=subprocess.PIPE)
                 for tag in ("a", "b")]
        for proc in procs:
            _, err = await proc.communicate()
            assert proc.returncode == 0, err.decode()
        seen = [await sub.until(600) for sub in subs]
    finally:
        for sub in subs:
            await sub.stop()
        await b.close()
    assert [(m["id"], m["pos"]) for m in seen[0]] == [(m["id"], m["pos"]) for m in seen[1]]
    positions = keys(m["pos"] for m in seen[0])
    assert positions == sorted(set(positions))


async def test_a_retried_publish_keeps_its_position_and_is_delivered_once(backend):
    history, retrier = backend.history(), backend.history()
    sub = await Subscriber(backend.layer(), [ROOM_A]).start()
    try:
        await ready(history, [sub])
        start = await history.head()
        first, second = event(1), event(2)
        position = await history.publish(first)
        assert await retrier.publish(first) == position  # another process retrying the same id
        after = await history.publish(second)
        messages = await sub.until(2)
        await asyncio.sleep(0.2)  # room for a duplicate to arrive
    finally:
        await sub.stop()
    assert [(m["id"], m["pos"]) for m in messages] == [(first.id, position), (second.id, after)]
    replay = await history.replay(start, [ROOM_A])
    assert [e.event.id for e in replay.events] == [first.id, second.id]


async def test_core_layer_retry_keeps_the_position_and_the_history_holds_it_once(redis_url):
    b = Backend("core", redis_url)
    try:
        history = b.history()
        start = await history.head()
        sent = event(1)
        assert await history.publish(sent) == await history.publish(sent)
        replay = await history.replay(start, [ROOM_A])
        assert [e.event.id for e in replay.events] == [sent.id]
    finally:
        await b.close()


# -- replay ---------------------------------------------------------------------------


async def test_replay_returns_the_events_of_the_given_rooms_in_order(any_backend):
    history = any_backend.history()
    start = await history.head()
    sent = [event(0, [ROOM_A]), event(1, [ROOM_B]), event(2, [ROOM_B, ROOM_C]), event(3, [ROOM_A, ROOM_C]),
            event(4, [ROOM_C])]
    positions = [await history.publish(e) for e in sent]
    replay = await history.replay(start, [ROOM_A, ROOM_B])
    assert replay.recoverable and replay.complete
    assert [(e.position, e.event.id) for e in replay.events] == [(positions[i], sent[i].id) for i in (0, 1, 2, 3)]
    assert [e.event.json for e in replay.events] == [sent[i].json for i in (0, 1, 2, 3)]
    assert replay.events[2].event.rooms == (ROOM_B, ROOM_C)
    after_second = await history.replay(positions[1], [ROOM_C])
    assert [e.event.id for e in after_second.events] == [sent[2].id, sent[3].id, sent[4].id]
    at_head = await history.replay(positions[-1], [ROOM_A])
    assert at_head == Replay(True, [], positions[-1], True)


async def test_a_long_replay_comes_in_bounded_batches(any_backend):
    history = any_backend.history()
    start = await history.head()
    sent = [await history.publish(event(i, [ROOM_A if i % 3 else ROOM_B])) for i in range(25)]
    batches = [batch async for batch in history.replay_all(start, [ROOM_A], batch=10)]
    assert all(b.recoverable for b in batches) and len(batches) == 3
    assert [b.complete for b in batches] == [False, False, True]
    assert [e.position for b in batches for e in b.events] == [p for i, p in enumerate(sent) if i % 3]


# -- bounds and epochs ----------------------------------------------------------------


async def test_positions_beyond_the_count_bound_are_not_recoverable(any_backend):
    history = any_backend.history(max_events=5)
    positions = [await history.publish(event(i)) for i in range(10)]
    assert (await history.replay(positions[3], [ROOM_A])).recoverable is False  # the 5th event is gone
    kept = await history.replay(positions[4], [ROOM_A])
    assert kept.recoverable and [e.position for e in kept.events] == positions[5:]


async def test_positions_beyond_the_window_are_not_recoverable(any_backend):
    history = any_backend.history(window=0.3)
    old = await history.publish(event(1))
    idle = await history.publish(event(2))
    assert (await history.replay(old, [ROOM_A])).recoverable  # nothing after it is gone yet
    await asyncio.sleep(0.5)
    latest = await history.publish(event(3))  # trims what is older than the window
    assert (await history.replay(old, [ROOM_A])).recoverable is False
    # An idle client whose last event is old but who missed nothing trimmed still recovers.
    recovered = await history.replay(idle, [ROOM_A])
    assert recovered.recoverable and [e.position for e in recovered.events] == [latest]


@pytest.mark.parametrize("position", [
    None, 17, b"abc", "", "x" * 100_000, "abc", "0-0", ":1-1", "0123456789abcdef:1-1", "0123456789ABCDEF:1-1",
    "EPOCH:1-1", "EPOCH:0-0", "EPOCH:99999999999999-0", "EPOCH:1", "EPOCH:-1-0", "EPOCH:1-1\n", "EPOCH:1-1:2",
    "EPOCH:1234567890123456-0", "EPOCH:1-99999999999999999999", "EPOCH:\u0661-0", "EPOCH:1-1 ",
], ids=lambda p: repr(p)[:30])
async def test_malformed_or_forged_positions_are_not_recoverable(any_backend, position):
    history = any_backend.history()
    head = await history.publish(event(0))
    epoch = head.split(":")[0]
    if isinstance(position, str):
        position = position.replace("EPOCH", epoch)
    assert await history.replay(position, [ROOM_A]) == Replay(False, [], None, True)
    assert (await history.replay(head, [ROOM_A])).recoverable


@pytest.mark.parametrize("rooms", [None, 5, [None], [b"x"], ["inventory:all"] * 1001], ids=str)
async def test_bad_rooms_are_not_recoverable(backend, rooms):
    history = backend.history()
    head = await history.publish(event(0))
    assert (await history.replay(head, rooms)).recoverable is False


async def test_a_position_of_another_deployment_reads_nothing(any_backend):
    history = any_backend.history()
    other = Backend(any_backend.kind, any_backend.url)
    try:
        foreign = other.history()
        theirs = await foreign.publish(event(0))
        await history.publish(event(1))
        assert (await history.replay(theirs, [ROOM_A])).recoverable is False
    finally:
        await other.close()


async def test_the_in_memory_twin_stays_bounded_and_exact_over_many_trims():
    history = MemoryHistory(InMemoryChannelLayer(), max_events=10)
    positions = [await history.publish(event(i)) for i in range(3000)]
    assert len(history._entries) - history._first == 10 and len(history._entries) < 3000
    assert (await history.replay(positions[-12], [ROOM_A])).recoverable is False
    replay = await history.replay(positions[-11], [ROOM_A], limit=4)
    assert [e.position for e in replay.events] == positions[-10:-6] and not replay.complete


async def test_a_new_process_is_a_new_epoch_in_memory():
    layer = InMemoryChannelLayer()
    position = await MemoryHistory(layer).publish(event(0))
    restarted = MemoryHistory(layer)
    await restarted.publish(event(1))
    assert (await restarted.replay(position, [ROOM_A])).recoverable is False


@pytest.fixture
def private_redis():
    server = RedisProcess().start()
    yield server
    server.stop()


@pytest.mark.redis
@pytest.mark.parametrize("kind", ["pubsub", "core"])
async def test_a_flushed_redis_is_a_new_epoch(private_redis, kind):
    b = Backend(kind, private_redis.url)
    try:
        history = b.history()
        position = await history.publish(event(0))
        assert (await history.replay(position, [ROOM_A])).recoverable
        redis_lib.Redis.from_url(private_redis.url).flushall()  # the private server only
        assert (await history.replay(position, [ROOM_A])).recoverable is False
        after = await history.publish(event(1))
        assert after.split(":")[0] != position.split(":")[0]
        assert (await history.replay(position, [ROOM_A])).recoverable is False
        assert (await history.replay(after, [ROOM_A])).recoverable
    finally:
        await b.close()


@pytest.mark.redis
async def test_a_redis_restart_without_persistence_is_a_new_epoch(private_redis):
    b = Backend("pubsub", private_redis.url)
    try:
        history = b.history()
        position = await history.publish(event(0))
        private_redis.stop()
        private_redis.start()
        for _ in range(3):  # each pooled connection fails once after a restart
            try:
                head = await history.head()
                break
            except redis_lib.ConnectionError:
                continue
        assert head.split(":")[0] != position.split(":")[0]
        assert (await history.replay(position, [ROOM_A])).recoverable is False
    finally:
        await b.close()


class PersistentRedis(RedisProcess):
    """A private redis-server that writes every command to its append-only file."""

    def __init__(self, directory) -> None:
        super().__init__()
        self.directory = str(directory)

    def start(self) -> "PersistentRedis":
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", self.directory,
             "--save", "", "--appendonly", "yes", "--appendfsync", "always"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        from tests.servers import wait_for_port

        wait_for_port(self.port, proc=self.proc)
        return self


@pytest.mark.redis
async def test_a_redis_restart_with_persistence_is_a_new_epoch_too(tmp_path):
    """The stream survives the restart, but a snapshot may lack the last writes before a crash:
    no position from before the restart is trusted."""
    server = PersistentRedis(tmp_path).start()
    b = Backend("pubsub", server.url)
    try:
        history = b.history()
        position = await history.head()
        await history.publish(event(0))
        assert (await history.replay(position, [ROOM_A])).recoverable
        server.stop()
        server.start()
        assert redis_lib.Redis.from_url(server.url).exists(f"{b.prefix}:history:stream")  # it persisted
        for _ in range(3):  # each pooled connection fails once after a restart
            try:
                await history.clients.get().ping()
                break
            except redis_lib.ConnectionError:
                continue
        assert (await history.replay(position, [ROOM_A])).recoverable is False
        assert (await history.head()).split(":")[0] != position.split(":")[0]
    finally:
        b.url = None
        await b.close()
        server.stop()


@pytest.mark.redis
async def test_an_evicted_stream_is_a_new_epoch(redis_url):
    b = Backend("pubsub", redis_url)
    try:
        history = b.history()
        position = await history.publish(event(0))
        redis_lib.Redis.from_url(redis_url).delete(f"{b.prefix}:history:stream")
        await history.publish(event(1))
        assert (await history.replay(position, [ROOM_A])).recoverable is False
    finally:
        await b.close()


def test_several_redis_hosts_are_refused():
    from django.core.exceptions import ImproperlyConfigured

    layer = RedisPubSubChannelLayer(hosts=["redis://127.0.0.1:6379/0", "redis://127.0.0.1:6380/0"])
    with pytest.raises(ImproperlyConfigured):
        RedisHistory.for_layer(layer)


@pytest.mark.redis
async def test_an_unavailable_redis_is_not_recoverable_and_no_exception(private_redis):
    b = Backend("pubsub", private_redis.url)
    try:
        history = b.history()
        position = await history.publish(event(0))
        private_redis.stop()
        assert await history.replay(position, [ROOM_A]) == Replay(False, [], None, True)
        with pytest.raises(redis_lib.RedisError):  # publish() bounds, counts and retries (idempotent)
            await history.publish(event(1))
    finally:
        b.url = None  # a stopped private server: nothing to clean
        await b.close()


@pytest.mark.redis
def test_sync_code_publishes_on_a_fresh_loop_each_time(redis_url):
    """``publish()`` from sync code runs each send on a new event loop (async_to_sync): each gets
    its own Redis connection, closed with its loop."""
    from asgiref.sync import async_to_sync

    b = Backend("pubsub", redis_url)
    history = b.history()
    try:
        positions = [async_to_sync(history.publish)(event(i)) for i in range(3)]
        assert keys(positions) == sorted(set(keys(positions)))
        replay = async_to_sync(history.replay)(positions[0], [ROOM_A])
        assert [e.position for e in replay.events] == positions[1:]
    finally:
        b.histories.clear()
        async_to_sync(b.close)()


@pytest.mark.redis
async def test_an_encrypted_pubsub_layer_falls_back_to_append_then_send(redis_url):
    """The script cannot add the position to an encrypted message: it appends, the process sends."""
    prefix = f"testhist{uuid.uuid4().hex[:10]}"
    layer = RedisPubSubChannelLayer(hosts=[{"address": redis_url, "socket_timeout": 15}], prefix=prefix,
                                    symmetric_encryption_keys=["test-key"])
    history = RedisHistory.for_layer(layer)
    assert history.atomic_publish is False
    sub = await Subscriber(layer, [ROOM_A]).start()
    try:
        await ready(history, [sub])
        position = await history.publish(event(1))
        (message,) = await sub.until(1)
        assert message["pos"] == position
    finally:
        await sub.stop()
        await history.aclose()
        await layer.flush()
        delete_keys(redis_url, prefix)
