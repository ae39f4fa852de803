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
