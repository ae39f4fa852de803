"""The event history: one ordered, bounded log of published events, shared by all server processes.

Every published event gets a **position** in one deployment-wide order, assigned together with its
publication (docs/design.md#history): on the channels-redis pub/sub layer one Lua script appends the
event to a Redis stream and PUBLISHes it to the rooms' groups, so two processes publishing at once
cannot deliver out of order, and every hub reads the same position in the message (``"pos"``).

A position is an opaque string ``"<epoch>:<ms>-<seq>"``: the stream id, prefixed by the history's
**epoch**. The epoch changes whenever the history may have lost events (Redis flushed, restarted
without persistence, the stream evicted; the in-memory twin: every process start), so a position of
another epoch is never "recoverable". Within an epoch a position is recoverable while no event after
it has been trimmed (older than ``HISTORY_WINDOW`` seconds, or beyond ``HISTORY_MAX_EVENTS``).

Interface (both backends, ``make_history()`` picks one for the channel layer):

- ``await history.publish(event) -> position``: append and send to the rooms' groups; idempotent by
  ``event.id`` (a retried publish returns the first position and is not delivered twice).
- ``await history.head() -> position``: the current position (for a ``connected`` reply).
- ``await history.replay(position, rooms, limit) -> Replay``: the events after ``position`` sent to
  any of ``rooms``, in order; ``replay_all`` iterates a long replay in bounded batches. A malformed,
  huge, forged, foreign-epoch or trimmed position gives ``recoverable=False``, never an exception.

Control messages (close, re-check) are not events and never enter the history. The session store
used to resume a connection is ``django_oda_realtime.history_sessions``.
"""
import asyncio
import bisect
from collections import OrderedDict
from dataclasses import dataclass, field
import itertools
import re
import secrets
import time
from typing import AsyncIterator, NamedTuple
import weakref

from .conf import rt_settings
from .events import Event
from .rooms import group_for

# "<16 hex epoch>:<ms>-<seq>": both numbers below 2**53 so that every backend compares them exactly.
POSITION_RE = re.compile(r"^([0-9a-f]{16}):([0-9]{1,15})-([0-9]{1,15})$")
MAX_POSITION_LENGTH = 64
EVENT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
REPLAY_BATCH = 500
# How long an event id is remembered against a retried publish (publish() retries at once, within
# PUBLISH_TIMEOUT): bounded on its own, as one key per event for the whole window would cost
# Redis ~100 bytes x events per window.
IDEMPOTENCY_SECONDS = 120
MAX_REPLAY_ROOMS = 1000


def new_epoch() -> str:
    return secrets.token_hex(8)


class StreamId(NamedTuple):
    ms: int
    seq: int

    def __str__(self) -> str:
        return f"{self.ms}-{self.seq}"


def parse_position(position: object) -> tuple[str, StreamId] | None:
    """``"<epoch>:<ms>-<seq>"`` -> (epoch, stream id), or None for anything else (never raises)."""
    if not isinstance(position, str) or len(position) > MAX_POSITION_LENGTH:
        return None
    match = POSITION_RE.match(position)
    if match is None:
        return None
    return match.group(1), StreamId(int(match.group(2)), int(match.group(3)))


def position_key(position: str) -> tuple[int, int]:
    """A sort key of a well-formed position of one epoch (``parse_position`` first for input)."""
    parsed = parse_position(position)
    if parsed is None:
        raise ValueError("Not a position")
    return tuple(parsed[1])


class Entry(NamedTuple):
    """One event of a replay, with its position."""

    position: str
    event: Event


@dataclass
class Replay:
    """One batch of a replay.

    ``recoverable``: every event after the asked position is still in the history (else
    ``events`` is empty and the caller starts a fresh session). ``position``: where the next batch
    starts (the last entry scanned, filtered out or not). ``complete``: the batch reached the head.
    """

    recoverable: bool
    events: list[Entry] = field(default_factory=list)
    position: str | None = None
    complete: bool = True


NOT_RECOVERABLE = Replay(False)


def check_event_id(event: Event) -> None:
    if not isinstance(event.id, str) or not EVENT_ID_RE.match(event.id):
        raise ValueError("An event id is 1-64 characters of [A-Za-z0-9_-]")


def check_rooms(rooms) -> frozenset[str]:
    """The rooms of a replay as a set; at most MAX_REPLAY_ROOMS strings (bad input: ValueError)."""
    if isinstance(rooms, str):
        rooms = [rooms]
    if not isinstance(rooms, (list, tuple, set, frozenset)):
        raise ValueError("Rooms are a list of room names")
    if len(rooms) > MAX_REPLAY_ROOMS or not all(isinstance(r, str) for r in rooms):
        raise ValueError("Too many rooms, or not room names")
    return frozenset(rooms)


def layer_message(event: Event, position: str) -> dict:
    """The layer message of an event with its position, as hubs receive it (``message["pos"]``)."""
    return {**event.to_layer(), "pos": position}


class _Base:
    async def replay_all(self, position: str, rooms, batch: int = REPLAY_BATCH) -> AsyncIterator[Replay]:
        """Every batch of the replay after ``position``; stops after the first unrecoverable or
        complete batch. The caller checks ``recoverable`` on each (the history may be trimmed
        while a long replay runs)."""
        while True:
            chunk = await self.replay(position, rooms, batch)
            yield chunk
            if not chunk.recoverable or chunk.complete:
                return
            position = chunk.position


class MemoryHistory(_Base):
    """The in-memory twin, for the in-memory channel layer: one process, epoch per instance."""

    def __init__(self, layer, *, window: float | None = None, max_events: int | None = None,
                 clock=time.time) -> None:
        self.layer = layer
        self.epoch = new_epoch()
        self.window = window
        self.max_events = max_events
        self.clock = clock
        self._entries: list[tuple[StreamId, Event]] = []  # live from index _first on
        self._first = 0
        # The epoch starts now; a position before it was never given out: as if trimmed.
        self._last = self._max_deleted = StreamId(int(clock() * 1000), 0)
        self._ids: OrderedDict[str, tuple[str, float]] = OrderedDict()  # event id -> (position, expiry)
        self._locks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def _window(self) -> float:
        return float(self.window if self.window is not None else rt_settings.HISTORY_WINDOW)

    def _max(self) -> int:
        return int(self.max_events if self.max_events is not None else rt_settings.HISTORY_MAX_EVENTS)

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    def _next_id(self) -> StreamId:
        ms = int(self.clock() * 1000)
        if ms > self._last.ms:
            return StreamId(ms, 0)
        return StreamId(self._last.ms, self._last.seq + 1)

    def _trim(self, now_ms: int) -> None:
        min_ms = now_ms - int(self._window() * 1000)
        limit = self._max()
        entries = self._entries
        while self._first < len(entries) and (
                len(entries) - self._first > limit or entries[self._first][0].ms < min_ms):
            self._max_deleted = entries[self._first][0]
            entries[self._first] = None
            self._first += 1
        if self._first > 1024 and self._first * 2 > len(entries):
            del entries[:self._first]
            self._first = 0
        now = now_ms / 1000
        while self._ids and next(iter(self._ids.values()))[1] < now:
            self._ids.popitem(last=False)

    def _position(self, sid: StreamId) -> str:
        return f"{self.epoch}:{sid}"

    async def publish(self, event: Event) -> str:
        """Append ``event`` and send it to its rooms' groups, in position order; idempotent by id."""
        check_event_id(event)
        groups = list(dict.fromkeys(group_for(room) for room in event.rooms))
        async with self._lock():
            seen = self._ids.get(event.id)
            if seen is not None:
                return seen[0]
            sid = self._next_id()
            self._last = sid
            self._entries.append((sid, event))
            position = self._position(sid)
            self._ids[event.id] = (position, self.clock() + min(self._window(), IDEMPOTENCY_SECONDS))
            self._trim(sid.ms)
            message = layer_message(event, position)
            for group in groups:
                await self.layer.group_send(group, message)
        return position

    async def head(self) -> str:
        return self._position(self._last)

    async def replay(self, position: str, rooms, limit: int = REPLAY_BATCH) -> Replay:
        parsed = parse_position(position)
        if parsed is None or parsed[0] != self.epoch:
            return NOT_RECOVERABLE
        try:
            wanted = check_rooms(rooms)
        except ValueError:
            return NOT_RECOVERABLE
        start = parsed[1]
        self._trim(int(self.clock() * 1000))
        if start > self._last or start < self._max_deleted:
            return NOT_RECOVERABLE
        limit = max(1, min(int(limit), 10 * REPLAY_BATCH))
        events: list[Entry] = []
        scanned = 0
        last = start
        at = bisect.bisect_right(self._entries, start, lo=self._first, key=lambda entry: entry[0])
        for sid, event in itertools.islice(self._entries, at, None):
            if scanned == limit:
                return Replay(True, events, self._position(last), complete=False)
            scanned += 1
            last = sid
            if wanted.intersection(event.rooms):
                events.append(Entry(self._position(sid), event))
        return Replay(True, events, self._position(last), complete=True)


_memory: "weakref.WeakKeyDictionary[object, MemoryHistory]" = weakref.WeakKeyDictionary()
_redis: "weakref.WeakKeyDictionary[object, object]" = weakref.WeakKeyDictionary()


def make_history(layer=None, *, prefix: str | None = None):
    """The history of ``layer`` (default: the default channel layer), one per layer instance:
    Redis for channels-redis layers, the in-memory twin otherwise."""
    if layer is None:
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
    from .history_redis import RedisHistory, is_redis_layer

    if is_redis_layer(layer):
        history = _redis.get(layer)
        if history is None:
            history = _redis[layer] = RedisHistory.for_layer(layer, prefix=prefix)
        return history
    history = _memory.get(layer)
    if history is None:
        history = _memory[layer] = MemoryHistory(layer)
    return history
