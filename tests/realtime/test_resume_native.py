"""Resuming a ``/ws/`` session (issue #13, docs/protocol.md#resume), with a real server and a
Python ``websockets`` client: ``?resume=<sessionId>&position=<position>`` after a cut TCP
connection, on the same process and on another; a forged or another user's session id: a fresh one."""
import asyncio
import json
import uuid

from channels.db import database_sync_to_async
from django.conf import settings as django_settings
import pytest
import websockets

from django_oda_realtime.publish import apublish
from tests.conftest import require_redis, token_for
from tests.domain import make_level
from tests.ops.support import Forwarder
from tests.servers import free_port
from tests.socketio.conftest import socketio_server, use_layer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

PERMS = ["inventory.view_inventorylevel"]
EVENTS = 1000  # at ~200/s (the figures)


@pytest.fixture
def prefix(settings):
    require_redis(django_settings.TEST_REDIS_URL)
    name = f"rn{uuid.uuid4().hex[:10]}"
    use_layer(settings, django_settings.TEST_REDIS_URL, name)
    return name


@pytest.fixture
def servers(prefix):
    started = []

    def start(**kwargs):
        server = socketio_server(django_settings.TEST_REDIS_URL, prefix, **kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


async def open_ws(port: int, query: str):
    ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws/?{query}", proxy=None, open_timeout=5, ping_interval=None)
    connected = json.loads(await ws.recv())
    assert connected["event"] == "connected", connected
    return ws, connected["data"]


async def stream_through_a_drop(port: int, user, level, during, timeout: float = 40) -> tuple[list[int], dict, str]:
    """A subscribed /ws/ client on ``port`` while EVENTS events are published at ~200/s;
    ``during()`` is awaited after a third of them (it drops the connection somehow). The client
    resumes by itself after each drop (retrying while nothing listens). Returns (the numbers
    received, the last resume's ``connected`` data, the first session id)."""
    room = f"inventory:location:{level.location_id}"
    token = token_for(user)
    ws, hello = await open_ws(port, f"token={token}")
    assert hello["recovered"] is False and hello["sessionId"] and hello["position"]
    await ws.send(json.dumps({"event": "subscribe:inventory", "data": {"locationIds": [str(level.location_id)]}, "ack": 1}))
    assert json.loads(await ws.recv())["data"]["rooms"] == [room]

    async def publisher():
        for n in range(EVENTS):
            await apublish("inventory:updated", {"n": n}, [room])
            if n == EVENTS // 3:
                await during()
            await asyncio.sleep(0.005)

    task = asyncio.ensure_future(publisher())
    numbers, position, session = [], hello["position"], hello["sessionId"]
    resumed = None
    try:
        async with asyncio.timeout(timeout):
            while len(numbers) < EVENTS:
                try:
                    frame = json.loads(await ws.recv())
                except websockets.ConnectionClosed:
                    await asyncio.sleep(0.1)
                    try:
                        ws, resumed = await open_ws(port, f"token={token}&resume={session}&position={position}")
                    except (OSError, websockets.InvalidHandshake, TimeoutError):
                        continue  # nothing listens yet (a restart): retry, as clients do
                    continue
                if frame.get("event") == "inventory:updated":
                    numbers.append(frame["data"]["n"])
                    position = frame["position"]
        await task
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                numbers.append(json.loads(await ws.recv()))  # nothing more may come
    finally:
        task.cancel()
        await ws.close()
    return numbers, resumed, session


@pytest.mark.slow
async def test_ws_resume_after_a_cut_delivers_every_event_once_in_order_on_any_process(servers, make_user):
    first, second = servers(), servers()
    user = await database_sync_to_async(make_user)(perms=PERMS)
    level = await database_sync_to_async(make_level)(available=10)
    balancer = await Forwarder(first.port).start()

    async def move():
        balancer.target = second.port
        balancer.cut()

    try:
        numbers, resumed, session = await stream_through_a_drop(balancer.port, user, level, move)
    finally:
        await balancer.stop()
    assert numbers == list(range(EVENTS))
    assert resumed is not None and resumed["recovered"] is True
    assert f"inventory:location:{level.location_id}" in resumed["rooms"] and resumed["sessionId"] == session


@pytest.mark.slow
async def test_ws_resume_after_its_server_process_is_killed_and_restarted(servers, make_user):
    port = free_port()
    server = servers(port=port)
    user = await database_sync_to_async(make_user)(perms=PERMS)
    level = await database_sync_to_async(make_level)(available=10)

    async def kill_and_restart():
        server.proc.kill()  # SIGKILL: no close frame
        server.proc.wait()
        await asyncio.to_thread(servers, port=port)

    numbers, resumed, session = await stream_through_a_drop(port, user, level, kill_and_restart, timeout=60)
    assert numbers == list(range(EVENTS))
    assert resumed is not None and resumed["recovered"] is True and resumed["sessionId"] == session


@pytest.mark.parametrize("query", ["resume=" + "x" * 40, "resume=%00%ff&position=1", "resume=" + "y" * 5000 + "&position=" + "z" * 3000,
                                   "resume=&position=0000000000000000:1-0"])
async def test_ws_a_forged_session_id_or_position_gets_a_fresh_session(servers, make_user, query):
    server = servers()
    user = await database_sync_to_async(make_user)(perms=PERMS)
    ws, hello = await open_ws(server.port, f"token={token_for(user)}&{query}")
    assert hello["recovered"] is False and hello["rooms"] == [f"user:{user.pk}"]
    await ws.close()


async def test_ws_another_users_session_id_recovers_nothing(servers, make_user):
    server = servers()
    owner = await database_sync_to_async(make_user)(perms=PERMS)
    thief = await database_sync_to_async(make_user)(perms=PERMS)
    level = await database_sync_to_async(make_level)(available=10)
    ws, hello = await open_ws(server.port, f"token={token_for(owner)}")
    await ws.send(json.dumps({"event": "subscribe:inventory", "data": {"locationIds": [str(level.location_id)]}, "ack": 1}))
    await ws.recv()
    await ws.close()
    await apublish("inventory:updated", {"n": 0}, [f"inventory:location:{level.location_id}"])
    other, got = await open_ws(server.port, f"token={token_for(thief)}&resume={hello['sessionId']}&position={hello['position']}")
    assert got["recovered"] is False and got["sessionId"] != hello["sessionId"] and got["rooms"] == [f"user:{thief.pk}"]
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            await other.recv()
    await other.close()


async def test_subscribe_with_snapshot_returns_current_levels_and_their_position(servers, make_user):
    server = servers()
    user = await database_sync_to_async(make_user)(perms=PERMS)
    level = await database_sync_to_async(make_level)(available=7)
    ws, hello = await open_ws(server.port, f"token={token_for(user)}")
    await ws.send(json.dumps({"event": "subscribe:inventory",
                              "data": {"locationIds": [str(level.location_id)], "snapshot": True}, "ack": 1}))
    reply = json.loads(await ws.recv())["data"]
    snapshot = reply["snapshot"]
    assert snapshot["position"] and snapshot["state"]["levels"] == [
        {"item_id": level.item_id, "location_id": level.location_id, "available": 7, "reserved": 0}]
    await ws.send(json.dumps({"event": "subscribe:inventory", "data": {"snapshot": "yes"}, "ack": 2}))
    assert json.loads(await ws.recv())["error"]["code"] == "validation_error"
    await ws.close()


async def test_ws_a_resumed_session_takes_over_its_stale_connection_without_counting_twice(servers, make_user):
    """The stale connection is still open on the server (its client vanished, no TCP close):
    the resume is not refused by the per-user cap (3 in these servers), the stale one no longer
    counts, and it is closed."""
    server = servers()
    user = await database_sync_to_async(make_user)(perms=PERMS)
    level = await database_sync_to_async(make_level)(available=10)
    room = f"inventory:location:{level.location_id}"
    token = token_for(user)
    balancer = await Forwarder(server.port).start()
    stale, hello = await open_ws(balancer.port, f"token={token}")
    await stale.send(json.dumps({"event": "subscribe:inventory", "data": {"locationIds": [str(level.location_id)]}, "ack": 1}))
    assert json.loads(await stale.recv())["data"]["rooms"] == [room]
    others = [(await open_ws(server.port, f"token={token}"))[0] for _ in range(2)]  # at the cap now
    balancer.cut(keep_upstream=True)  # the server still holds the stale connection open
    await apublish("inventory:updated", {"n": 0}, [room])
    try:
        resumed, got = await open_ws(server.port, f"token={token}&resume={hello['sessionId']}&position={hello['position']}")
        assert got["recovered"] is True and room in got["rooms"]
        assert json.loads(await resumed.recv())["data"]["n"] == 0
        # The resumed connection counts once: a fourth one is refused ...
        extra = await websockets.connect(f"ws://127.0.0.1:{server.port}/ws/?token={token}", proxy=None, ping_interval=None)
        assert json.loads(await extra.recv())["code"] == "too_many_connections"
        await extra.close()
        # ... and the stale one not at all: with one of the others closed, a new one is accepted.
        await others.pop().close()
        async with asyncio.timeout(10):
            while True:
                ws = await websockets.connect(f"ws://127.0.0.1:{server.port}/ws/?token={token}", proxy=None, ping_interval=None)
                first = json.loads(await ws.recv())
                if first.get("event") == "connected":
                    others.append(ws)
                    break
                await ws.close()  # the close of the other is still being counted down: retry
                await asyncio.sleep(0.1)
        # The stale connection was told to close by the resume (on whichever process holds it).
        async with asyncio.timeout(10):
            while server.output().count("session_resumed") == 0:
                await asyncio.sleep(0.1)
        await resumed.close()
    finally:
        for ws in others:
            await ws.close()
        await balancer.stop()


async def test_ws_resumes_piling_up_on_a_stalled_redis_all_recover_through_a_small_pool(make_user, settings):
    """More resumes waiting on Redis at once than the server's pools have connections (a private
    Redis paused with CLIENT PAUSE while they arrive, REDIS_POOL_SIZE 2; 1,000 clients after a
    restart against 100 by default in bench/resume.py): they wait for a free connection, none is
    turned into a fresh session (``recovered: false`` after redis-py 8's MaxConnectionsError), and
    every client gets what it missed."""
    import redis.asyncio as aioredis

    from tests.servers import RedisProcess

    private = RedisProcess().start()
    name = f"rp{uuid.uuid4().hex[:10]}"
    use_layer(settings, private.url, name)
    server = socketio_server(private.url, name, realtime={"REDIS_POOL_SIZE": 2}).start()
    try:
        level = await database_sync_to_async(make_level)(available=10)
        room = f"inventory:location:{level.location_id}"
        sessions = []
        for _ in range(12):
            token = token_for(await database_sync_to_async(make_user)(perms=PERMS))
            ws, hello = await open_ws(server.port, f"token={token}")
            await ws.send(json.dumps({"event": "subscribe:inventory", "data": {"locationIds": [str(level.location_id)]},
                                      "ack": 1}))
            assert json.loads(await ws.recv())["data"]["rooms"] == [room]
            sessions.append((token, hello["sessionId"], hello["position"]))
            await ws.close()
        for n in range(3):
            await apublish("inventory:updated", {"n": n}, [room])

        async def resume(token: str, session: str, position: str) -> tuple[dict, list[int]]:
            ws, hello = await open_ws(server.port, f"token={token}&resume={session}&position={position}")
            numbers = []
            try:
                if hello["recovered"]:
                    async with asyncio.timeout(30):
                        while len(numbers) < 3:
                            numbers.append(json.loads(await ws.recv())["data"]["n"])
            finally:
                await ws.close()
            return hello, numbers

        async with aioredis.from_url(private.url) as r:
            await r.execute_command("CLIENT", "PAUSE", 2000, "ALL")  # the resumes' Redis calls pile up
        results = await asyncio.gather(*(resume(*s) for s in sessions))
        assert [hello["recovered"] for hello, _ in results] == [True] * len(sessions), server.output()[-3000:]
        assert all(room in hello["rooms"] for hello, _ in results)
        assert [numbers for _, numbers in results] == [[0, 1, 2]] * len(sessions)
        assert "MaxConnectionsError" not in server.output()
    finally:
        server.stop()
        private.stop()
