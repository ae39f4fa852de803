"""Resuming a connection: restore its rooms and replay what it missed, exactly once (docs/design.md#history).

Both protocols use this one sequence (``SocketConsumer.open_resumable``):

1. The token presented now is authenticated (by the caller, exactly as for a new connection).
2. ``take_session(pid, user, this connection)``: the stored session becomes this connection's; its
   stale connection (still open until its ping times out, maybe on another process) no longer
   counts against the user's cap and is told to close. Unknown, expired or another user's pid:
   a fresh session (``recovered: false``).
3. The stored rooms are filtered by ``can_join`` now, and joined in the hub while live events for
   this socket are **buffered** (``SocketConsumer.deliver``): at most ``RESUME_MAX_BUFFERED``; one
   more and the socket is closed as a slow consumer (``SocketConsumer.overflow``, 4008) having sent
   at most a prefix of its stream, so the client resumes again from its last position.
4. The history is replayed from the client's position, for those rooms only, so a room the user
   may no longer see is never replayed; then the buffer, merged by position: anything at or below
   the last position sent is dropped. Then live.
5. After the switch to live, live events at or below the replay's **horizon** (the last history
   entry it read) are dropped: the replay reads the history on one Redis connection while the live
   copies of the same events reach the hub on another (pub/sub: still unread on the hub's
   subscriber connection; core layer: still in the hub's sorted set until its next pop), so a live
   copy of a replayed event may arrive after the buffer was switched off. Exactly once across the
   switch (tests/realtime/test_resume_handover.py).

A position that is malformed, of another epoch, or trimmed (window or count exceeded, Redis
flushed) is not recoverable: a fresh session, ``recovered: false``, the extra rooms left.
"""
from dataclasses import dataclass, field
import logging

from ..conf import rt_settings
from ..db import run_sync_db
from ..history import Entry, make_history, parse_position, position_key
from ..history_sessions import StoredSession, make_sessions, new_pid
from ..rooms import user_room
from ..subscriptions import check_rooms

logger = logging.getLogger("realtime.resume")


@dataclass
class Resumed:
    pid: str
    recovered: bool = False
    entries: list[Entry] = field(default_factory=list)  # the replay, in order
    offset: str | None = None  # the client's position (recovered) or the head (fresh)
    horizon: str | None = None  # the last history entry the replay read (recovered only)


def key_of(position: str | None):
    """Sort key of a position for the merge; None (an event not from the history) sorts last."""
    parsed = parse_position(position)
    return None if parsed is None else (parsed[0], tuple(parsed[1]))


async def take(pid: object, user, connection_id: str):
    """The stored session ``pid`` of ``user``, now this connection's; None for a fresh session."""
    try:
        return await make_sessions().take_session(pid, user.pk, connection_id)
    except Exception as e:  # a store failure is a fresh session, never a refused connection
        logger.error("Session store failed on resume: %s", type(e).__name__)
        return None


async def restore(session, stored, offset: object) -> Resumed:
    """Join the stored rooms the user may still join and replay the missed events (the socket
    buffers live ones meanwhile). Not recoverable: the rooms joined here are left again."""
    from .session import uncached

    if stored is None:
        return Resumed(new_pid())
    own = user_room(session.user.pk)
    wanted = [room for room in dict.fromkeys(stored.rooms) if isinstance(room, str) and room != own]
    allowed, _ = await run_sync_db(uncached(check_rooms), session.user, wanted)
    joined = []
    async with session._serial():
        for room in allowed:
            if session.closed or len(session.rooms) >= rt_settings.MAX_ROOMS_PER_CONNECTION:
                break
            if room not in session.rooms:
                await session.hub.join(session.connection, room)
                session._joined(room)
                joined.append(room)
    history = make_history()
    entries: list[Entry] = []
    recovered = isinstance(offset, str) and parse_position(offset) is not None
    horizon = offset
    if recovered:
        try:
            async for chunk in history.replay_all(offset, sorted(session.rooms)):
                if not chunk.recoverable:
                    recovered = False
                    break
                entries.extend(chunk.events)
                horizon = chunk.position or horizon
                if len(entries) > rt_settings.HISTORY_MAX_EVENTS:
                    recovered = False
                    break
        except Exception as e:
            logger.error("History replay failed: %s", type(e).__name__)
            recovered = False
    if not recovered:
        async with session._serial():
            for room in joined:
                if room in session.rooms:
                    await session.hub.leave(session.connection, room)
                    session._left(room)
        return Resumed(new_pid())
    return Resumed(stored.pid, True, entries, offset, horizon)


async def remember(session, pid: str, *, create: bool = False) -> None:
    """Store the session's rooms under ``pid`` (one write per change of its rooms)."""
    try:
        await make_sessions().store_session(
            StoredSession(pid, str(session.user.pk), session.connection_id, sorted(session.rooms)), create=create)
    except Exception as e:
        logger.error("Session store failed; this connection may not resume: %s", type(e).__name__)


async def head() -> str | None:
    try:
        return await make_history().head()
    except Exception as e:
        logger.error("History unavailable: %s", type(e).__name__)
        return None


def event_key(event):
    """``key_of(event.position)``, parsed once per event per process (``Event.order``)."""
    key = event.order
    if key is None and event.position is not None:
        key = event.order = key_of(event.position)
    return key


def at_or_before(key, horizon) -> bool:
    """Whether position key ``key`` is at or before ``horizon`` (a key), in the same epoch."""
    return key is not None and horizon is not None and key[0] == horizon[0] and key[1] <= horizon[1]


def merge(entries: list[Entry], buffered: list, last: str | None) -> list:
    """The events to send after position ``last``: the replay then the buffered live events, by
    position, each once; events with no position (not from the history) kept, in arrival order."""
    out = []
    last_key = key_of(last)
    seen_ids = set()
    for entry in entries:
        entry.event.position = entry.position
    for event in [entry.event for entry in entries] + sorted(
            buffered, key=lambda e: (key_of(e.position) is None, position_key(e.position) if key_of(e.position) else (0, 0))):
        key = key_of(event.position)
        if event.id in seen_ids:
            continue
        if key is not None and last_key is not None and key[0] == last_key[0] and key[1] <= last_key[1]:
            continue
        seen_ids.add(event.id)
        if key is not None:
            last_key = key
        out.append(event)
    return out


__all__ = ["Resumed", "at_or_before", "event_key", "head", "key_of", "merge", "remember", "restore", "take"]
