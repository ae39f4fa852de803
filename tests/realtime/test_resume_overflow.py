"""What may go wrong while a resume replays (issue #13, docs/protocol.md#resume): too many live events
held for the socket (``RESUME_MAX_BUFFERED``), a take-over by a second resume of the same session, a
Redis failure between two batches of the replay. Each time the client sees a documented error or
``recovered: false``, the socket's consumer does not crash, and a resume from the last position the
client received misses nothing and repeats nothing.

The in-process tests hold the replay's first read of the history (the socket is then registered,
in its rooms and buffering) to publish into that moment; ``test_ws_*`` drive a real
``manage.py serve`` over Redis, where a burst published during the replay of a long backlog does it.
"""
import asyncio
import json

from channels.db import database_sync_to_async
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
import websockets

from django_oda_realtime.history import make_history
from django_oda_realtime.hub import get_hub
from django_oda_realtime.publish import apublish
from tests.conftest import token_for
from tests.domain import make_level
from tests.realtime.test_resume_native import open_ws, prefix, servers  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)

PERMS = ["inventory.view_inventorylevel"]
CAP = 5


class HeldReplay:
    """Holds the first ``replay`` of the history (a resume's first batch) until ``release()``."""

    def __init__(self, history, monkeypatch) -> None:
        self.started = asyncio.Event()
        self.gate = asyncio.Event()
        self.calls = 0
        original = history.replay

        async def replay(*args, **kwargs):
            self.calls += 1
            if self.calls == 1:
                self.started.set()
                await self.gate.wait()
            return await original(*args, **kwargs)

        monkeypatch.setattr(history, "replay", replay)

    def release(self) -> None:
        self.gate.set()


async def until_closed(sock, timeout: float = 5.0) -> tuple[list[dict], int]:
    """Every frame the server sends until it closes the socket, and the close code."""
    frames = []
    async with asyncio.timeout(timeout):
        while True:
            out = await sock.comm.receive_output(timeout)
            if out["type"] == "websocket.close":
                return frames, out.get("code")
            frames.append(json.loads(out["text"]))


async def frames_until_pong(sock) -> list[dict]:
    """The frames the socket got before the answer to a ``ping`` sent now (no wait for silence)."""
    await sock.send("ping", ack=99)
    frames = []
    while True:
        frame = await sock.receive()
        if frame.get("ack") == 99:
            return frames
        frames.append(frame)


def numbers(frames: list[dict]) -> list[int]:
    return [f["data"]["n"] for f in frames if f.get("event") == "inventory:updated"]


async def receive_numbers(sock, until: int) -> list[int]:
    got = []
    async with asyncio.timeout(10):
        while not got or got[-1] != until:
            frame = await sock.receive(10)
            if frame.get("event") == "inventory:updated":
                got.append(frame["data"]["n"])
    return got + numbers(await frames_until_pong(sock))


async def away(connect, token, user, level) -> dict:
    """A socket subscribed to the level's room, closed: its ``connected`` data (session, position)."""
    sock = await connect(token(user))
    reply = await sock.command("subscribe:inventory", {"locationIds": [str(level.location_id)]})
    assert reply["data"]["rooms"] == [f"inventory:location:{level.location_id}"]
    await sock.close()
    return sock.connected_payload["data"]


def resume_query(hello: dict, position: str | None = None) -> str:
    return f"&resume={hello['sessionId']}&position={position or hello['position']}"


async def test_past_the_cap_during_the_replay_it_closes_4008_drops_the_buffer_and_a_resume_loses_nothing(
        redis_layer, connect, make_user, token, settings, monkeypatch):
    settings.REALTIME = {**settings.REALTIME, "RESUME_MAX_BUFFERED": CAP}
    user = await database_sync_to_async(make_user)(perms=PERMS)
    level = await database_sync_to_async(make_level)(available=10)
    room = f"inventory:location:{level.location_id}"
    hello = await away(connect, token, user, level)
    for n in range(3):  # missed while away
        await apublish("inventory:updated", {"n": n}, [room])
    held = HeldReplay(make_history(), monkeypatch)
    resuming = await connect(token(user) + resume_query(hello), expect_ok=False)
    await held.started.wait()
    hub = await get_hub()
    [consumer] = [c for c in hub.connections if c.user_id == str(user.pk)]
    assert consumer._buffer == []
    for n in range(3, 3 + CAP + 1):  # live while the replay runs: one more than the cap
        await apublish("inventory:updated", {"n": n}, [room])
    frames, code = await until_closed(resuming)
    assert code == 4008
    assert [(f["event"], f["code"]) for f in frames] == [("error", "slow_consumer")]  # nothing else, no `connected`
    assert consumer._buffer is None and consumer not in hub.connections  # the held events are dropped
    held.release()
    await resuming.close()  # raises what the consumer raised, if it crashed when its replay came back

    again = await connect(token(user) + resume_query(hello))
    data = again.connected_payload["data"]
    assert data["recovered"] is True and room in data["rooms"]
    assert await receive_numbers(again, 3 + CAP) == list(range(3 + CAP + 1))


async def test_a_second_resume_takes_over_a_session_whose_first_resume_is_still_replaying(
        redis_layer, connect, make_user, token, monkeypatch):
    user = await database_sync_to_async(make_user)(perms=PERMS)
    level = await database_sync_to_async(make_level)(available=10)
    room = f"inventory:location:{level.location_id}"
    hello = await away(connect, token, user, level)
    for n in range(3):
        await apublish("inventory:updated", {"n": n}, [room])
    held = HeldReplay(make_history(), monkeypatch)
    first = await connect(token(user) + resume_query(hello), expect_ok=False)
    await held.started.wait()
    second = await connect(token(user) + resume_query(hello))  # its replay is not held
    data = second.connected_payload["data"]
    assert data["recovered"] is True and data["sessionId"] == hello["sessionId"] and room in data["rooms"]
    assert await receive_numbers(second, 2) == [0, 1, 2]
    frames, code = await until_closed(first)
    assert code == 1000 and [(f["event"], f["code"]) for f in frames] == [("error", "session_resumed")]
    held.release()
    await first.close()  # raises what the first consumer raised, if it crashed when its replay came back
    await apublish("inventory:updated", {"n": 3}, [room])
    assert await receive_numbers(second, 3) == [3]
    # The stored session is still the second's (the first, closed, stored nothing): it resumes again.
    await second.close()
    await apublish("inventory:updated", {"n": 4}, [room])
    third = await connect(token(user) + resume_query(hello, data["position"]))
    assert third.connected_payload["data"]["recovered"] is True
    assert await receive_numbers(third, 4) == [0, 1, 2, 3, 4]


async def test_a_redis_failure_between_two_batches_of_the_replay_is_a_fresh_session_with_no_gap(
        redis_layer, connect, make_user, token, monkeypatch, caplog):
    from django_oda_realtime.history import REPLAY_BATCH

    user = await database_sync_to_async(make_user)(perms=PERMS)
    level = await database_sync_to_async(make_level)(available=10)
    room = f"inventory:location:{level.location_id}"
    hello = await away(connect, token, user, level)
    for n in range(REPLAY_BATCH + 10):  # two batches
        await apublish("inventory:updated", {"n": n}, [room])
    history = make_history()
    original, replays = history._run, []

    async def run(script, keys, args):
        if script is history._replay:
            replays.append(args)
            if len(replays) == 2:
                raise RedisConnectionError("Connection reset by peer")
        return await original(script, keys, args)

    monkeypatch.setattr(history, "_run", run)
    resumed = await connect(token(user) + resume_query(hello))
    data = resumed.connected_payload["data"]
    assert len(replays) == 2  # the first batch was read, the second failed
    assert data["recovered"] is False and data["rooms"] == [f"user:{user.pk}"] and data["sessionId"] != hello["sessionId"]
    assert numbers(await frames_until_pong(resumed)) == []  # not the first batch without the second
    assert "Event history unavailable for a replay: ConnectionError" in caplog.text


BACKLOG = 2000  # missed events: their replay (4 batches) is long enough for a burst to pass the cap


class Burst:
    """Publishes numbered events to ``room`` as fast as it can, from ``start``, until ``stop()``."""

    def __init__(self, room: str, start: int) -> None:
        self.room, self.count = room, start
        self.stopped = False
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while not self.stopped:
            await apublish("inventory:updated", {"n": self.count}, [self.room])
            self.count += 1

    async def stop(self) -> int:
        """Stop after the publish under way (never cancelled half-way); how many events were
        published in all (numbered from 0)."""
        self.stopped = True
        await self.task
        return self.count


async def ws_frames_until_closed(port: int, query: str, received: list[tuple[int, str]], *, until: int | None = None):
    """Resume on ``/ws/``, appending (n, position) of each event to ``received``, until the server
    closes the socket (returns its (close code, reason) and the frames that were not events) or
    event ``until`` came (closed by the client: None and the frames)."""
    ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws/?{query}", proxy=None, open_timeout=5,
                                  ping_interval=None, max_queue=None)
    others = []
    try:
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("event") == "inventory:updated":
                received.append((frame["data"]["n"], frame["position"]))
                if until is not None and frame["data"]["n"] >= until:
                    return None, others
            else:
                others.append(frame)
    except websockets.ConnectionClosed as e:
        return (e.rcvd.code, e.rcvd.reason) if e.rcvd else (None, ""), others
    finally:
        await ws.close()


@pytest.mark.redis
async def test_ws_a_burst_during_a_long_replay_closes_4008_and_resuming_again_misses_nothing(servers, make_user):
    server = servers(realtime={"RESUME_MAX_BUFFERED": CAP})
    user = await database_sync_to_async(make_user)(perms=PERMS)
    level = await database_sync_to_async(make_level)(available=10)
    room = f"inventory:location:{level.location_id}"
    token = token_for(user)
    ws, hello = await open_ws(server.port, f"token={token}")
    await ws.send(json.dumps({"event": "subscribe:inventory", "data": {"locationIds": [str(level.location_id)]}, "ack": 1}))
    assert json.loads(await ws.recv())["data"]["rooms"] == [room]
    await ws.close()
    for n in range(BACKLOG):
        await apublish("inventory:updated", {"n": n}, [room])
    received: list[tuple[int, str]] = []
    burst = Burst(room, BACKLOG)
    try:
        async with asyncio.timeout(60):
            closes = []
            while not any(close is not None and close[0] == 4008 for close, _ in closes):
                # Resume while the burst goes on; a resume that got through (not seen so far) is
                # left once live, and another one is tried after a new backlog has piled up.
                position = received[-1][1] if received else hello["position"]
                live = burst.count
                close, others = await ws_frames_until_closed(
                    server.port, f"token={token}&resume={hello['sessionId']}&position={position}", received, until=live + CAP)
                closes.append((close, others))
                while close is None and burst.count < live + BACKLOG:
                    await asyncio.sleep(0.05)
    finally:
        total = await burst.stop()
    close, others = closes[-1]
    assert others[-1]["event"] == "error" and others[-1]["code"] == "slow_consumer", others
    # What came before the close is the start of the stream, in order, each once.
    got = [n for n, _ in received]
    assert got == list(range(len(got)))
    again, hello_again = await open_ws(server.port, f"token={token}&resume={hello['sessionId']}&position="
                                                   f"{received[-1][1] if received else hello['position']}")
    assert hello_again["recovered"] is True and room in hello_again["rooms"]
    try:
        async with asyncio.timeout(30):
            while not received or received[-1][0] < total - 1:
                frame = json.loads(await again.recv())
                if frame.get("event") == "inventory:updated":
                    received.append((frame["data"]["n"], frame["position"]))
        await again.send(json.dumps({"event": "ping", "ack": 7}))
        while (frame := json.loads(await again.recv())).get("ack") != 7:
            received.append((frame["data"]["n"], frame["position"]))  # nothing more may come
    finally:
        await again.close()
    assert [n for n, _ in received] == list(range(total))
    assert "slow_consumer (4008)" in server.output()


async def test_a_resume_that_recovers_nothing_sends_no_live_event_of_the_rooms_it_left(
        redis_layer, connect, make_user, token, settings, monkeypatch):
    """Events published while the replay runs are held; if the position turns out unrecoverable
    (here trimmed by those very events) the restored rooms are left: their held events are not sent
    after ``connected`` says ``recovered: false`` and lists ``user:{id}`` only."""
    settings.REALTIME = {**settings.REALTIME, "HISTORY_MAX_EVENTS": 3}
    user = await database_sync_to_async(make_user)(perms=PERMS)
    level = await database_sync_to_async(make_level)(available=10)
    room = f"inventory:location:{level.location_id}"
    hello = await away(connect, token, user, level)
    held = HeldReplay(make_history(), monkeypatch)
    resuming = await connect(token(user) + resume_query(hello), expect_ok=False)
    await held.started.wait()
    for n in range(5):  # held for the socket, and they trim the history past its position
        await apublish("inventory:updated", {"n": n}, [room])
    held.release()
    data = (await resuming.receive_event("connected"))["data"]
    assert data["recovered"] is False and data["rooms"] == [f"user:{user.pk}"]
    assert numbers(await frames_until_pong(resuming)) == []
