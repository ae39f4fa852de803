"""The per-process hub: joins each room's group once and fans events out to local sockets.

The stock Channels pattern makes every connection a channel-layer member that
decodes and re-encodes each event; that costs ten times python-socketio (issue
#7). Here each server process (each event loop) has one hub with one channel:

- ``join(conn, room)`` adds the socket to the room locally and, for the room's
  first local member only, adds the hub's channel to the room's group
  (reference-counted: the last ``leave`` discards it). Redis work per event
  scales with processes, not connections. ``user:<id>`` rooms share a few
  groups (``rooms.group_for``), counted by local rooms.
- Every event arrives once per group the hub is in; the hub delivers it to the
  union of local members of the event's rooms, once per socket (duplicates from
  an event sent to several rooms are dropped by id).
- Each socket's ``deliver`` takes the frame from ``Event.frames``, encoded once
  per protocol per process.

On channels-redis' pub/sub layer the first join of a group also waits until the subscription is
live: ``group_add`` returns before Redis has applied the SUBSCRIBE, so the hub publishes a probe on
the group and waits for it to come back on a probe channel of its own, added to the group for that
time (docs/design.md#subscribe-confirmed).

If the channel layer fails (Redis restarted), the hub retries with backoff and
re-adds all its groups when it answers again, so no socket stays open but deaf;
its once-a-second sweeper also re-adds them periodically against group expiry (docs/design.md#group-expiry).
"""
import asyncio
from collections import OrderedDict
import contextlib
import logging
import random
import time
from typing import Protocol
import uuid
import weakref

from channels.layers import get_channel_layer

from . import metrics
from .conf import rt_settings
from .events import LAYER_CONTROL, LAYER_EVENT, LAYER_PROBE, Event
from .exceptions import Unavailable
from .layers import subscribes_lazily
from .locks import TransientLocks
from .presence import make_presence
from .rooms import group_for

logger = logging.getLogger("realtime.hub")

HUB_CHANNEL_PREFIX = "realtime-hub."
PROBE_CHANNEL_PREFIX = "realtime-probe."
SEEN_IDS = 4096
GROUP_REFRESH_SECONDS = 600.0
# A group's first join waits at most this long for its probe (docs/design.md#subscribe-confirmed);
# the probe is re-published after PROBE_FIRST_WAIT, then at doubling intervals up to PROBE_MAX_WAIT.
SUBSCRIBE_CONFIRM_TIMEOUT = 5.0
PROBE_FIRST_WAIT = 0.05
PROBE_MAX_WAIT = 0.5
CONFIRM_PAUSE_SECONDS = 30.0  # after an unconfirmed probe, first joins skip the probe this long


class Connection(Protocol):
    """What the hub needs of a socket."""

    connection_id: str
    protocol_name: str

    async def deliver(self, event: Event) -> bool: ...

    async def control(self, message: dict) -> None: ...

    async def tick(self, now: float) -> None: ...


class Hub:
    def __init__(self, layer) -> None:
        self.layer = layer
        self.channel: str | None = None
        self.rooms: dict[str, set[Connection]] = {}  # room -> its local members
        self.groups: dict[str, int] = {}  # group the hub is in -> its local rooms (rooms.group_for)
        self._group_locks = TransientLocks()  # joins and leaves of one group, one at a time
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._task: asyncio.Task | None = None
        self._sweeper: asyncio.Task | None = None
        self._recheck: asyncio.Task | None = None  # the running revocation re-check, if any
        self.connections: set[Connection] = set()
        self.presence = make_presence()
        self.healthy = True
        self._confirms = subscribes_lazily(layer)  # first joins wait for their probe
        self._probes: dict[str, asyncio.Future] = {}  # probe id -> its waiting join
        self._probe_channel: str | None = None
        self._prober: asyncio.Task | None = None  # reads the probe channel
        self._confirms_paused_until = 0.0  # loop time: after an unconfirmed probe, joins skip the probe until then

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        self.channel = await self.layer.new_channel(prefix=HUB_CHANNEL_PREFIX)
        if self._confirms:
            self._probe_channel = await self.layer.new_channel(prefix=PROBE_CHANNEL_PREFIX)
            self._prober = asyncio.ensure_future(self._read_probes())
        self._task = asyncio.ensure_future(self._run())
        self._sweeper = asyncio.ensure_future(self._sweep())
        metrics.LAYER_UP.set(1)

    async def stop(self) -> None:
        for task in (self._task, self._sweeper, self._recheck, self._prober):
            if task is not None:
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
        self._task = self._sweeper = self._recheck = self._prober = None
        await self.presence.close()

    # -- connections ----------------------------------------------------------------

    async def register(self, conn: Connection, user_id: str) -> bool:
        """Count ``conn`` against its user's cap; False if the user has too many sockets."""
        if not await self.presence.acquire(user_id, conn.connection_id, rt_settings.MAX_CONNECTIONS_PER_USER):
            return False
        self.connections.add(conn)
        return True

    async def unregister(self, conn: Connection, user_id: str) -> None:
        if conn in self.connections:
            self.connections.discard(conn)
            await self.presence.release(user_id, conn.connection_id)

    async def _sweep(self) -> None:
        """Once a second: each socket's timers (token expiry, idle); presence leases; the resumable
        sessions every ``HISTORY_WINDOW / 3``; and every ``REVOCATION_RECHECK_INTERVAL`` the
        revocation re-check of all open sockets."""
        last_renew = last_refresh = last_recheck = last_sessions = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            if time.monotonic() - last_recheck >= rt_settings.REVOCATION_RECHECK_INTERVAL:
                last_recheck = time.monotonic()
                self._start_recheck()
            if time.monotonic() - last_refresh > GROUP_REFRESH_SECONDS:
                # Here, not in ``_run``: a process that hears nothing must still re-join before
                # its groups expire (core layer ``group_expiry``), or its sockets go deaf.
                last_refresh = time.monotonic()
                await self._rejoin_all()
            now = time.time()
            for conn in list(self.connections):
                try:
                    await conn.tick(now)
                except Exception:
                    metrics.ERRORS.labels("timer").inc()
                    logger.exception("Timer of connection %s failed", conn.connection_id, extra=_log_fields(conn))
            if time.monotonic() - last_renew > rt_settings.PRESENCE_LEASE / 3:
                last_renew = time.monotonic()
                await self.presence.renew([(c.user_id, c.connection_id) for c in self.connections])
            if time.monotonic() - last_sessions > rt_settings.HISTORY_WINDOW / 3:
                last_sessions = time.monotonic()
                await self._renew_sessions()

    async def _renew_sessions(self) -> None:
        """Keep the resumable sessions of the open sockets alive (django_oda_realtime/history_sessions.py):
        the recovery window counts from a socket's disconnect, not from its session's last write."""
        from .history_sessions import make_sessions

        sessions = [(c.pid, c.user_id) for c in self.connections if getattr(c, "pid", None)]
        if not sessions:
            return
        try:
            await make_sessions(self.layer).renew(sessions)
        except Exception as e:
            metrics.ERRORS.labels("session_renew").inc()
            logger.error("Renewing the resumable sessions failed: %s", type(e).__name__)

    def _start_recheck(self) -> None:
        """Re-check revocation and ``is_active`` for every open socket, in a task of its own so a
        slow database does not hold up the timers; one at a time (docs/security.md)."""
        if self._recheck is not None and not self._recheck.done():
            return
        from .accounts.revocation import recheck_sockets

        self._recheck = asyncio.ensure_future(recheck_sockets(list(self.connections)))
        self._recheck.add_done_callback(_recheck_done)

    # -- membership ----------------------------------------------------------------

    def members(self, room: str) -> set[Connection]:
        return self.rooms.get(room, set())

    async def join(self, conn: Connection, room: str) -> None:
        """Add ``conn`` to ``room``; the process joins the room's group with its first local room."""
        group = group_for(room)
        async with self._group_locks.hold(group):
            members = self.rooms.get(room)
            if members is None:
                if group not in self.groups:
                    try:
                        await self.layer.group_add(group, self.channel)
                    except Exception as e:
                        # Redis is down: the socket is not in the room (it may retry); no traceback.
                        metrics.ERRORS.labels("channel_layer").inc()
                        logger.error("Could not join the group of a %s room: %s", room.split(":")[0], type(e).__name__)
                        raise Unavailable() from e
                    if self._confirms and asyncio.get_running_loop().time() >= self._confirms_paused_until:
                        try:
                            await self._confirm_subscription(group, room)
                        except BaseException:
                            # Cancelled while waiting (the socket's task ended): the group is not
                            # tracked yet, so leave it now or nothing ever would.
                            await asyncio.shield(self._discard_untracked(group))
                            raise
                self.groups[group] = self.groups.get(group, 0) + 1
                members = self.rooms[room] = set()
            members.add(conn)

    async def _confirm_subscription(self, group: str, room: str) -> bool:
        """Wait until a probe published on ``group`` comes back on the hub's probe channel.

        channels-redis' pub/sub ``group_add`` writes SUBSCRIBE and returns without Redis' reply, and
        a PUBLISH on another connection may be applied first: an event published right after the
        subscribe was acknowledged would reach no socket here (docs/design.md#subscribe-confirmed).
        A probe published before the SUBSCRIBE is applied is lost too, so it is published again
        until one arrives. The probe channel is in the group only meanwhile (the group's Redis
        subscription is the hub channel's: adding it sends no SUBSCRIBE), and has a reader of its
        own, so a receive loop busy with a delivery (or held by a test) does not delay the join.
        Bounded by ``SUBSCRIBE_CONFIRM_TIMEOUT``: unconfirmed, the join goes on (the SUBSCRIBE is
        sent; Redis may be slow), counted and logged."""
        ident = uuid.uuid4().hex
        arrived = self._probes[ident] = asyncio.get_running_loop().create_future()
        wait = PROBE_FIRST_WAIT
        try:
            async with asyncio.timeout(SUBSCRIBE_CONFIRM_TIMEOUT):
                await self.layer.group_add(group, self._probe_channel)
                while True:
                    await self.layer.group_send(group, {"type": LAYER_PROBE, "id": ident})
                    done, _ = await asyncio.wait({arrived}, timeout=wait)
                    if done:
                        return True
                    wait = min(wait * 2, PROBE_MAX_WAIT)
        except Exception as e:  # noqa: BLE001  timed out, or the layer failed: the join goes on
            # Redis' subscriber connection is slow or stalled: later first joins (e.g. a resume
            # restoring 200 rooms one by one) go on without a probe for a while rather than each
            # waiting the whole timeout under their group's lock.
            self._confirms_paused_until = asyncio.get_running_loop().time() + CONFIRM_PAUSE_SECONDS
            metrics.ERRORS.labels("subscribe_unconfirmed").inc()
            logger.warning("The subscription to the group of a %s room was not confirmed: %s",
                           room.split(":")[0], type(e).__name__)
            return False
        finally:
            self._probes.pop(ident, None)
            with contextlib.suppress(Exception):
                await self.layer.group_discard(group, self._probe_channel)

    async def _discard_untracked(self, group: str) -> None:
        if group not in self.groups:
            with contextlib.suppress(Exception):
                await self.layer.group_discard(group, self.channel)

    async def _read_probes(self) -> None:
        """Resolve the joins waiting for their probe; other messages on the probe channel (events
        of a group while it is in it, other hubs' probes) are dropped."""
        while True:
            try:
                message = await self.layer.receive(self._probe_channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001  the layer failed: the joins waiting time out, counted
                await asyncio.sleep(0.1)
                continue
            if message.get("type") == LAYER_PROBE:
                waiter = self._probes.get(message.get("id"))
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)

    async def leave(self, conn: Connection, room: str) -> None:
        """Remove ``conn`` from ``room``; the process leaves the group with its last local room."""
        group = group_for(room)
        async with self._group_locks.hold(group):
            members = self.rooms.get(room)
            if members is None or conn not in members:
                return
            members.discard(conn)
            if members:
                return
            del self.rooms[room]
            if self.groups[group] > 1:
                self.groups[group] -= 1
                return
            del self.groups[group]
            try:
                await self.layer.group_discard(group, self.channel)
            except Exception:
                # The layer is down: the membership is gone with it, or is
                # dropped when the group expires. The local state is right.
                logger.warning("Could not leave group for room kind %s", room.split(":")[0])

    async def drain(self, seconds: float, message: dict) -> None:
        """Close every local socket with the close control ``message``, each at a random moment
        within ``seconds``, so its clients do not all reconnect at once (django_oda_realtime/server/drain.py)."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        for at, conn in sorted(((random.uniform(0, seconds), conn) for conn in self.connections), key=lambda p: p[0]):
            await asyncio.sleep(max(0.0, start + at - loop.time()))
            if conn in self.connections:
                try:
                    await conn.control(message)
                except Exception:
                    logger.exception("Closing connection %s for the shutdown failed", conn.connection_id,
                                     extra=_log_fields(conn))

    async def leave_all(self, conn: Connection, rooms) -> None:
        for room in list(rooms):
            await self.leave(conn, room)

    # -- receiving -----------------------------------------------------------------

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.healthy = False
                metrics.LAYER_UP.set(0)
                metrics.ERRORS.labels("channel_layer").inc()
                logger.error("Channel layer receive failed; retrying in %.1fs", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                if await self._rejoin_all():
                    backoff = 0.1
                continue
            if not self.healthy:
                self.healthy = True
            try:
                await self.dispatch(message)
            except Exception:
                metrics.ERRORS.labels("dispatch").inc()
                logger.exception("Failed to dispatch a layer message of type %s", message.get("type"))

    async def _rejoin_all(self) -> bool:
        """Re-add the hub to every group it should be in. True if the layer answered."""
        try:
            for group in list(self.groups):
                await self.layer.group_add(group, self.channel)
        except Exception:
            return False
        if not self.healthy:
            logger.warning("Channel layer is back; re-joined %d groups", len(self.groups))
        self.healthy = True
        metrics.LAYER_UP.set(1)
        return True

    async def dispatch(self, message: dict) -> None:
        kind = message.get("type")
        if kind == LAYER_EVENT:
            await self.realtime_event(message)
        elif kind == LAYER_CONTROL:
            await self.realtime_control(message)
        elif kind == LAYER_PROBE:
            pass  # a hub's probe on one of its groups (read by its _read_probes)
        else:
            logger.warning("Ignoring a layer message of unknown type")

    def _first_time(self, ident: str) -> bool:
        if ident in self._seen:
            return False
        self._seen[ident] = None
        if len(self._seen) > SEEN_IDS:
            self._seen.popitem(last=False)
        return True

    def _targets(self, rooms) -> list[Connection]:
        if len(rooms) == 1:
            return list(self.rooms.get(rooms[0], ()))
        targets: dict[Connection, None] = {}
        for room in rooms:
            for conn in self.rooms.get(room, ()):
                targets[conn] = None
        return list(targets)

    async def realtime_event(self, message: dict) -> None:
        if not self._first_time(message["id"]):
            return
        event = Event.from_layer(message)
        metrics.EVENTS_RECEIVED.labels(event.name).inc()
        delivered: dict[str, int] = {}
        for conn in self._targets(event.rooms):
            try:
                if await conn.deliver(event):
                    delivered[conn.protocol_name] = delivered.get(conn.protocol_name, 0) + 1
            except Exception:
                metrics.ERRORS.labels("delivery").inc()
                logger.exception("Delivery to connection %s failed", conn.connection_id, extra=_log_fields(conn))
        for protocol, count in delivered.items():
            metrics.DELIVERIES.labels(protocol).inc(count)
        if delivered and event.published_at:
            metrics.LATENCY.observe(max(0.0, time.time() - event.published_at))

    async def realtime_control(self, message: dict) -> None:
        if not self._first_time(message["id"]):
            return
        for conn in self._targets(message["rooms"]):
            try:
                await conn.control(message)
            except Exception:
                metrics.ERRORS.labels("control").inc()
                logger.exception("Control message to connection %s failed", conn.connection_id, extra=_log_fields(conn))


def _recheck_done(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        metrics.ERRORS.labels("revocation_recheck").inc()
        logger.error("Revocation re-check failed", exc_info=task.exception())


def _log_fields(conn: Connection) -> dict:
    """``extra=`` of an error log line about one socket."""
    return {"action": "error", "connection_id": conn.connection_id, "user_id": getattr(conn, "user_id", None),
            "protocol": conn.protocol_name}


_hubs: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub]" = weakref.WeakKeyDictionary()
_hub_locks: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]" = weakref.WeakKeyDictionary()


async def get_hub() -> Hub:
    """The hub of the running event loop, started on first use."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is not None:
        return hub
    lock = _hub_locks.setdefault(loop, asyncio.Lock())
    async with lock:
        hub = _hubs.get(loop)
        if hub is None:
            hub = Hub(get_channel_layer())
            try:
                await hub.start()
            except Exception as e:
                metrics.ERRORS.labels("channel_layer").inc()
                logger.error("Could not start the hub, the channel layer failed: %s", type(e).__name__)
                raise Unavailable() from e
            _hubs[loop] = hub
    return hub


def current_hub() -> Hub | None:
    """The running loop's hub if one was started (for metrics and tests)."""
    try:
        return _hubs.get(asyncio.get_running_loop())
    except RuntimeError:
        return None
