"""The switch from replay to live when a session resumes (issue #13 item 5, docs/design.md#history).

The replay reads the history on one Redis connection; the live copy of the same events reaches the
process's hub on another (pub/sub: the message PUBLISHed by the append script is still unread on the
hub's subscriber connection; core: the publisher ``group_send``s after its append). So an event can
be in the replay *and* still be on its way to the hub when the socket switches to live. These tests
hold the hub's receive loop while such events are published, resume, and only then let the live
copies through: each event must reach the resumed socket once, in order.
"""
import asyncio

from channels.db import database_sync_to_async
import pytest

from django_oda_realtime.hub import get_hub
from django_oda_realtime.publish import apublish
from tests.domain import make_level

pytestmark = pytest.mark.django_db(transaction=True)

PERMS = ["inventory.view_inventorylevel"]


@pytest.fixture(params=["memory", "pubsub", "core"])
def layer(request):
    if request.param == "pubsub":
        request.getfixturevalue("redis_layer")
    elif request.param == "core":
        request.getfixturevalue("redis_core_layer")
    return request.param


class HeldHub:
    """Holds the hub's receive loop: layer messages wait, as if still in flight to this process."""

    def __init__(self, hub) -> None:
        self.hub = hub
        self.gate = asyncio.Event()
        self.gate.set()
        self.waiting = 0
        self._dispatch = hub.dispatch

        async def dispatch(message):
            if not self.gate.is_set():
                self.waiting += 1
                await self.gate.wait()
            await self._dispatch(message)

        hub.dispatch = dispatch

    def hold(self) -> None:
        self.gate.clear()

    def release(self) -> None:
        self.gate.set()


async def inventory_numbers(sock, until: int, timeout: float = 5.0) -> list[tuple[int, str]]:
    """(n, position) of every ``inventory:updated`` frame until ``n == until``, then 0.3 s more."""
    got = []
    async with asyncio.timeout(timeout):
        while not got or got[-1][0] != until:
            frame = await sock.receive(timeout)
            if frame.get("event") == "inventory:updated":
                got.append((frame["data"]["n"], frame["position"]))
    while not await sock.nothing(0.3):
        frame = await sock.receive()
        if frame.get("event") == "inventory:updated":
            got.append((frame["data"]["n"], frame["position"]))
    return got


async def test_live_copies_of_replayed_events_arriving_after_the_switch_are_not_sent_again(layer, connect, make_user, token):
    user = await database_sync_to_async(make_user)(perms=PERMS)
    watcher = await database_sync_to_async(make_user)(perms=PERMS)
    level = await database_sync_to_async(make_level)(available=10)
    room = f"inventory:location:{level.location_id}"
    subscribe = {"locationIds": [str(level.location_id)]}
    # Another socket keeps this process's hub in the room's group while the first one is away.
    other = await connect(token(watcher))
    assert (await other.command("subscribe:inventory", subscribe))["data"]["rooms"] == [room]
    first = await connect(token(user))
    hello = first.connected_payload["data"]
    assert (await first.command("subscribe:inventory", subscribe))["data"]["rooms"] == [room]
    await first.close()
    for n in range(3):  # missed while away, already received by the hub
        await apublish("inventory:updated", {"n": n}, [room])
    assert [n for n, _ in await inventory_numbers(other, 2)] == [0, 1, 2]

    held = HeldHub(await get_hub())
    held.hold()
    for n in range(3, 6):  # in the history, their live copies not yet read by the hub
        await apublish("inventory:updated", {"n": n}, [room])
    resumed = await connect(token(user) + f"&resume={hello['sessionId']}&position={hello['position']}")
    data = resumed.connected_payload["data"]
    assert data["recovered"] is True and room in data["rooms"]
    replayed = []
    while len(replayed) < 6:  # the replay is complete before any live copy is let through
        frame = await resumed.receive()
        if frame.get("event") == "inventory:updated":
            replayed.append(frame["data"]["n"])
    assert replayed == list(range(6))
    assert held.waiting >= 1  # the live copies were really held back until now
    held.release()
    await apublish("inventory:updated", {"n": 6}, [room])
    got = replayed + [n for n, _ in await inventory_numbers(resumed, 6)]
    assert got == list(range(7)), got
    assert [n for n, _ in await inventory_numbers(other, 6)] == [3, 4, 5, 6]


async def test_a_socket_open_longer_than_the_window_still_resumes(connect, make_user, token, settings):
    """The window counts from the disconnect: the hub renews the sessions of its open sockets."""
    settings.REALTIME = {**settings.REALTIME, "HISTORY_WINDOW": 1.5}
    user = await database_sync_to_async(make_user)(perms=PERMS)
    level = await database_sync_to_async(make_level)(available=10)
    room = f"inventory:location:{level.location_id}"
    first = await connect(token(user))
    hello = first.connected_payload["data"]
    assert (await first.command("subscribe:inventory", {"locationIds": [str(level.location_id)]}))["data"]["rooms"] == [room]
    await asyncio.sleep(4.0)  # over twice the window, open (the hub's sweeper runs once a second)
    await first.close()
    await apublish("inventory:updated", {"n": 0}, [room])
    resumed = await connect(token(user) + f"&resume={hello['sessionId']}&position={hello['position']}")
    assert resumed.connected_payload["data"]["recovered"] is True
    assert [n for n, _ in await inventory_numbers(resumed, 0)] == [0]


async def test_a_socket_closed_while_its_resume_runs_ends_without_an_error(make_user, token, connect, monkeypatch, caplog):
    """The socket closes while its rooms are restored (a Socket.IO CONNECT slower than its connect
    timeout on a loaded machine: the session is gone when the resume returns). Before, the consumer
    read the rooms of the dropped session and crashed ("The Socket.IO application failed")."""
    from django_oda_realtime.sockets import resume

    user = await database_sync_to_async(make_user)(perms=PERMS)
    first = await connect(token(user))
    hello = first.connected_payload["data"]
    assert (await first.command("subscribe:inventory", {}))["data"]["rooms"] == ["inventory:all"]
    await first.close()
    restore = resume.restore

    async def closed_meanwhile(session, stored, offset):
        resumed = await restore(session, stored, offset)
        await session.connection.close(reason="connect_timeout")
        return resumed

    monkeypatch.setattr(resume, "restore", closed_meanwhile)
    again = await connect(token(user) + f"&resume={hello['sessionId']}&position={hello['position']}", expect_ok=False)
    assert again.accepted
    assert (await again.comm.receive_output(2))["type"] == "websocket.close"
    await again.comm.disconnect()  # re-raises the application's exception, if it had one
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
