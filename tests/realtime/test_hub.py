"""The per-process hub (django_oda_realtime/hub.py) on its own: membership, fan-out, duplicates,
the per-user cap's presence leases and the sockets' timers.

The hub's users are sockets: here recording sockets (what ``deliver``, ``control`` and ``tick``
hand them is what a client would be sent), on channels' in-memory layer, with events sent to
the layer as ``publish()`` sends them. Fan-out through real ``/ws/`` sockets is at the end.
"""
import asyncio
import contextlib
import json
import uuid

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer
import pytest
import redis as redis_lib

from django_oda_realtime import apublish, metrics
from django_oda_realtime.events import Event
from django_oda_realtime.hub import Hub
from django_oda_realtime.rooms import group_for
from django_oda_realtime.sockets.consumers import NativeConsumer
from tests.realtime.recording import RecordingSocket as Socket, eventually, send


async def test_a_socket_gets_the_events_of_its_rooms_and_none_after_it_leaves(hub):
    a, b = Socket("a"), Socket("b")
    await hub.join(a, "inventory:all")
    await hub.join(b, "inventory:product:1")
    await send(hub, "inventory:updated", {"n": 1}, ["inventory:all"])
    await send(hub, "inventory:updated", {"n": 2}, ["inventory:product:1"])
    await eventually(lambda: a.events == [{"n": 1}] and b.events == [{"n": 2}], "each socket its own room's event")

    await hub.leave(a, "inventory:all")
    await send(hub, "inventory:updated", {"n": 3}, ["inventory:all"])
    await send(hub, "inventory:updated", {"n": 4}, ["inventory:product:1"])  # in order after n=3
    await eventually(lambda: b.events == [{"n": 2}, {"n": 4}], "b's next event")
    assert a.events == [{"n": 1}]


async def test_sockets_of_one_room_each_get_every_event_in_order_while_others_come_and_go(hub):
    stay, go = Socket("stay"), Socket("go")
    await hub.join(stay, "orders:all")
    await hub.join(go, "orders:all")
    await send(hub, "order:updated", 1, ["orders:all"])
    await eventually(lambda: go.events == [1], "both members get the first")
    await hub.leave(go, "orders:all")  # the room keeps its other member
    for n in (2, 3):
        await send(hub, "order:updated", n, ["orders:all"])
    await eventually(lambda: stay.events == [1, 2, 3], "the member that stayed gets every event")
    assert go.events == [1]
    await hub.join(go, "orders:all")
    await send(hub, "order:updated", 4, ["orders:all"])
    await eventually(lambda: go.events == [1, 4] and stay.events == [1, 2, 3, 4], "a member back gets what follows")


async def test_an_event_arrives_once_per_socket_across_rooms_and_resends(hub):
    both, one = Socket("both"), Socket("one")
    for room in ("inventory:all", "inventory:location:1", "user:7"):
        await hub.join(both, room)
    await hub.join(one, "inventory:location:1")
    event = await send(hub, "inventory:updated", {"n": 1}, ["inventory:all", "inventory:location:1", "user:7"])
    await send(hub, "inventory:updated", None, event.rooms, event=event)  # publish's retry: the same id again
    await send(hub, "inventory:updated", {"n": 2}, ["inventory:location:1"])  # a marker: the resend came before it
    await eventually(lambda: one.events[-1:] == [{"n": 2}], "the marker")
    assert both.events == [{"n": 1}, {"n": 2}]
    assert one.events == [{"n": 1}, {"n": 2}]


async def test_a_control_message_reaches_the_sockets_of_its_rooms_once(hub):
    a, b = Socket("a"), Socket("b")
    await hub.join(a, "user:1")
    await hub.join(b, "user:2")
    message = {"type": "realtime.control", "id": uuid.uuid4().hex, "rooms": ["user:1"], "action": "close"}
    await hub.layer.group_send(group_for("user:1"), message)
    await hub.layer.group_send(group_for("user:1"), message)
    await eventually(lambda: a.controls, "the control message")
    await asyncio.sleep(0.05)  # a second delivery would follow at once
    assert a.controls == [message] and b.controls == []


async def test_a_failing_socket_does_not_stop_the_fan_out_to_the_others(hub):
    class Broken(Socket):
        async def deliver(self, event):
            raise RuntimeError("boom")

    broken, fine = Broken("broken"), Socket("fine")
    await hub.join(broken, "inventory:all")
    await hub.join(fine, "inventory:all")
    await send(hub, "inventory:updated", {"n": 1}, ["inventory:all"])
    await send(hub, "inventory:updated", {"n": 2}, ["inventory:all"])
    await eventually(lambda: fine.events == [{"n": 1}, {"n": 2}], "both events for the socket that works")


async def test_registered_sockets_get_their_timer_tick_every_second_until_unregistered(hub):
    a, b = Socket("a"), Socket("b")
    assert await hub.register(a, a.user_id) and await hub.register(b, b.user_id)
    await eventually(lambda: a.ticks >= 1 and b.ticks >= 1, "a tick for each socket", timeout=3)
    await hub.unregister(b, b.user_id)
    ticks = b.ticks
    await eventually(lambda: a.ticks >= 2, "a's next tick", timeout=3)
    assert b.ticks == ticks


async def test_the_per_user_cap_counts_open_sockets_and_frees_a_place_on_close(hub, settings):
    settings.REALTIME = {**settings.REALTIME, "MAX_CONNECTIONS_PER_USER": 2}
    first, second, third = Socket("1", "u"), Socket("2", "u"), Socket("3", "u")
    assert await hub.register(first, "u") and await hub.register(second, "u")
    assert not await hub.register(third, "u")
    assert await hub.register(Socket("other", "v"), "v")  # another user is not counted with them
    await hub.unregister(first, "u")
    assert await hub.register(third, "u")


@pytest.mark.redis
async def test_presence_leases_keep_open_sockets_counted_and_free_those_of_a_dead_process(
    settings, redis_url, layer_prefix
):
    lease = 1.5
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.REALTIME = {**settings.REALTIME, "MAX_CONNECTIONS_PER_USER": 2, "PRESENCE_REDIS_URL": redis_url,
                         "PRESENCE_PREFIX": layer_prefix, "PRESENCE_LEASE": lease}
    alive, dead = Hub(get_channel_layer()), Hub(get_channel_layer())
    await alive.start()
    await dead.start()
    try:
        assert await alive.register(Socket("open", "u"), "u")
        assert await dead.register(Socket("orphan", "u"), "u")
        await dead.stop()  # a process that died: its socket is never unregistered, its lease never renewed
        assert not await alive.register(Socket("refused", "u"), "u")
        await asyncio.sleep(2 * lease)  # time itself is the condition: two leases pass
        # The live hub renewed its socket's lease; the dead one's ran out, so there is a place again.
        assert await alive.register(Socket("back", "u"), "u")
        assert not await alive.register(Socket("third", "u"), "u")
    finally:
        await alive.stop()
        await dead.stop()
        r = redis_lib.Redis.from_url(redis_url)
        keys = r.keys(f"{layer_prefix}*")
        if keys:
            r.delete(*keys)


@pytest.mark.redis
async def test_presence_renewal_renews_every_lease_in_batches(settings, redis_url, layer_prefix):
    """A round renews in pipelines of ``batch`` leases (bounded memory), and every lease is renewed."""
    from django_oda_realtime.presence import RedisPresence

    settings.REALTIME = {**settings.REALTIME, "PRESENCE_LEASE": 60.0}
    presence = RedisPresence(redis_url, layer_prefix)
    leases = [(f"u{i}", f"c{i}") for i in range(5)]
    r = redis_lib.Redis.from_url(redis_url)
    try:
        for user_id, conn_id in leases:
            assert await presence.acquire(user_id, conn_id, 10)
            r.zadd(presence.key(user_id), {conn_id: 1})  # a lease long run out
        await presence.renew(leases, batch=2)
        for user_id, conn_id in leases:
            assert r.zscore(presence.key(user_id), conn_id) > 1
            assert r.ttl(presence.key(user_id)) > 60
    finally:
        await presence.close()
        keys = r.keys(f"{layer_prefix}*")
        if keys:
            r.delete(*keys)
        r.close()


# -- through real /ws/ sockets --------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_a_fan_out_encodes_each_event_once_for_all_its_sockets(make_user, token, connect, monkeypatch):
    encoded = []
    original = NativeConsumer.event_frame

    def counting(self, event):
        encoded.append(event.id)
        return original(self, event)

    monkeypatch.setattr(NativeConsumer, "event_frame", counting)
    user = await database_sync_to_async(make_user)(perms=["inventory.view_inventorylevel"])
    sockets = [await connect(token(user)) for _ in range(3)]
    for sock in sockets:
        assert (await sock.command("subscribe:inventory"))["data"]["rooms"] == ["inventory:all"]
    event = await apublish("inventory:updated", {"available": 3}, ["inventory:all"])
    frames = [await sock.comm.receive_from(2) for sock in sockets]
    assert len(set(frames)) == 1 and json.loads(frames[0])["data"] == {"available": 3}
    assert encoded == [event.id]


# -- on channels-redis' pub/sub layer, through real Redis -----------------------------------------


class SlowSubscribes:
    """A TCP proxy to Redis that holds every client chunk carrying a SUBSCRIBE for ``delay`` seconds
    (and what follows it on that connection): Redis applies the subscription late, as on a loaded
    machine, while other connections' commands go straight through."""

    def __init__(self, redis_port: int, delay: float) -> None:
        self.redis_port = redis_port
        self.delay = delay
        self.held = 0
        self.tasks: set[asyncio.Task] = set()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return f"redis://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/0"

    async def _handle(self, reader, writer) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.redis_port)
        pumps = {asyncio.ensure_future(self._pump(reader, up_writer, slow=True)),
                 asyncio.ensure_future(self._pump(up_reader, writer, slow=False))}
        self.tasks |= pumps
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for task in pumps:
            task.cancel()
        writer.close()
        up_writer.close()

    async def _pump(self, reader, writer, *, slow: bool) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                if slow and b"SUBSCRIBE" in data.upper():
                    self.held += 1
                    await asyncio.sleep(self.delay)  # the slowness simulated, not a wait before asserting
                writer.write(data)
                await writer.drain()

    async def stop(self) -> None:
        self.server.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@contextlib.asynccontextmanager
async def hub_behind_slow_subscribes(settings, redis_url, layer_prefix, delay: float):
    """A started hub whose channel layer reaches Redis through ``SlowSubscribes``, and a publisher
    on the same prefix that does not."""
    proxy = SlowSubscribes(redis_lib.Redis.from_url(redis_url).connection_pool.connection_kwargs["port"], delay=delay)
    slow_url = await proxy.start()
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                                           "CONFIG": {"hosts": [{"address": slow_url}], "prefix": layer_prefix}}}
    publisher = RedisPubSubChannelLayer(hosts=[{"address": redis_url}], prefix=layer_prefix)
    hub = Hub(get_channel_layer())
    await hub.start()
    try:
        yield hub, proxy, publisher
    finally:
        await hub.stop()
        await get_channel_layer().flush()
        await publisher.flush()
        await proxy.stop()


def unconfirmed_count() -> float:
    return metrics.ERRORS.labels("subscribe_unconfirmed")._value.get()


@pytest.mark.redis
async def test_on_the_pubsub_layer_a_join_returns_once_redis_applied_the_subscription(settings, redis_url, layer_prefix):
    """An event published right after a subscribe was acknowledged reaches the socket, even when
    Redis applies the SUBSCRIBE late (docs/design.md#subscribe-confirmed). Without the probe the
    join returns while the SUBSCRIBE is still held, the event is published to no subscriber and
    never arrives."""
    before = unconfirmed_count()
    async with hub_behind_slow_subscribes(settings, redis_url, layer_prefix, delay=1.0) as (hub, proxy, publisher):
        socket = Socket("late")
        await hub.join(socket, "inventory:all")
        event = Event.build("inventory:updated", {"n": 1}, ["inventory:all"])
        await publisher.group_send(group_for("inventory:all"), event.to_layer())  # as publish() sends it
        await eventually(lambda: socket.events == [{"n": 1}], "the event published right after the join")
        assert proxy.held >= 1 and unconfirmed_count() == before  # confirmed through the slow path


@pytest.mark.redis
async def test_a_join_cancelled_while_it_waits_for_its_probe_leaves_the_group(settings, redis_url, layer_prefix):
    """The socket's task ends (its client left) while the first join of a group waits for Redis:
    the hub does not stay in a group it does not track, which no leave would ever drop."""
    async with hub_behind_slow_subscribes(settings, redis_url, layer_prefix, delay=1.0) as (hub, proxy, publisher):
        join = asyncio.ensure_future(hub.join(Socket("gone"), "inventory:all"))
        await eventually(lambda: proxy.held >= 1, "the SUBSCRIBE reached the proxy")
        join.cancel()
        with pytest.raises(asyncio.CancelledError):
            await join
        group_channel = hub.layer._get_group_channel_name(group_for("inventory:all"))
        assert hub.groups == {} and hub.rooms == {}
        assert hub.channel not in hub.layer.groups.get(group_channel, set())  # channels-redis' local membership


@pytest.mark.redis
async def test_after_an_unconfirmed_probe_first_joins_skip_the_probe_for_a_while(settings, redis_url, layer_prefix,
                                                                                 monkeypatch):
    """Redis' subscriber connection stalls: one join waits out the probe's timeout; the joins after it
    (a resume restoring many rooms) do not each wait it again under their group's lock."""
    from django_oda_realtime import hub as hub_module

    monkeypatch.setattr(hub_module, "SUBSCRIBE_CONFIRM_TIMEOUT", 0.3)
    before = unconfirmed_count()
    async with hub_behind_slow_subscribes(settings, redis_url, layer_prefix, delay=2.0) as (hub, proxy, publisher):
        await hub.join(Socket("a"), "inventory:all")
        assert unconfirmed_count() == before + 1
        for n in range(3):
            await hub.join(Socket(f"b{n}"), f"inventory:product:{n}")
        assert unconfirmed_count() == before + 1  # no probe, so no second timeout
        assert len(hub.groups) == 4
