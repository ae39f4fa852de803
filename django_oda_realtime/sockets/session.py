"""The protocol-agnostic core of one socket: who it is, its rooms, its commands.

Both wire protocols (``/ws/`` native JSON and ``/socket.io/``) hold a Session and
only encode what it returns: one place decides auth, rooms, permissions, commands
and payloads. ``handle()`` never raises: every failure becomes a ``Reply`` with
an error, which the transport encodes as an ack or as the command's error event.

No work after close (issue #11): ``close()`` marks the session closed at once, then leaves
its rooms. Subscribe, unsubscribe, recheck and close of one session run one at a time
(``_serial``), and each checks ``closed`` after every await: a subscribe interrupted by a
close stops, and the close, which waits for it, leaves every room it had joined. So no
room, hub membership or subscription gauge outlives the socket.
"""
from dataclasses import dataclass
import inspect
import logging
import re
import time
import uuid

from django.db import DatabaseError

from .. import metrics
from ..accounts.revocation import check_access, close_message
from ..auth import authenticate, issued_at_of
from ..commands import Caller, registry
from ..conf import rt_settings
from ..connected import connected_extra
from ..locks import TransientLocks
from ..db import run_sync_db
from ..events import SUBSCRIBED, UNSUBSCRIBED, ERROR
from ..exceptions import (
    CommandError, InternalError, InvalidEvent, InvalidInput, PermissionDenied, SessionClosed, Unavailable, UnknownCommand,
)
from ..hub import Hub
from ..permissions import TOO_MANY_ROOMS, policy, relevant_permissions
from ..rooms import user_room
from ..subscriptions import check_rooms, expect_mapping, topics

logger = logging.getLogger("realtime.session")

EVENT_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(?::[A-Za-z][A-Za-z0-9_]*){0,3}$")
SUBSCRIBE, UNSUBSCRIBE = "subscribe", "unsubscribe"
AUTH_REFRESH = "auth:refresh"


@dataclass(frozen=True)
class Reply:
    """The outcome of a client command."""

    event: str
    data: object = None
    error_code: str | None = None
    error_message: str | None = None
    error_event: str = ERROR
    result_event: str | None = None
    request: object = None

    @property
    def ok(self) -> bool:
        return self.error_code is None

    def error_dict(self) -> dict:
        return {"code": self.error_code, "message": self.error_message}


_SERIAL = TransientLocks()  # sessions -> their membership lock, while one is held


class Session:
    def __init__(self, user, connection, hub: Hub, protocol: str, expires_at: float | None = None,
                 connection_id: str | None = None) -> None:
        self.user = user
        self.connection = connection
        self.hub = hub
        self.protocol = protocol
        self.connection_id = connection_id or uuid.uuid4().hex
        self.rooms: set[str] = set()
        self.expires_at = expires_at  # the access token's exp; ``auth:refresh`` extends it
        self.expiry_warned = False
        self.closed = False  # set by close(): work in flight stops at its next await

    @property
    def caller(self) -> Caller:
        """Who runs a command, for its handler (made per command: nothing more kept per socket)."""
        return Caller(self.user, self.connection_id, self.protocol)

    # -- lifecycle ---------------------------------------------------------------

    async def open(self) -> dict | None:
        """Join the user's own room and return the ``connected`` payload; None if access ended
        meanwhile (the socket is then closed, 4004 or 4005)."""
        # The token's iat, for the periodic revocation re-check (revocation.recheck_sockets): one
        # float per socket, from the user instance realtime.auth stamped it on (``recheck``
        # reloads the user, the session keeps it).
        self.issued_at = issued_at_of(self.user)
        own = user_room(self.user.pk)
        await self.hub.join(self.connection, own)
        self._joined(own)
        # Revocation and is_active checked again now that the user's room is joined: a logout or
        # deactivation that landed since the token was checked sent its close message before this
        # socket could hear it (issue #11); any later one reaches it through the room.
        permissions, why, extra = await run_sync_db(_permissions_and_access, self.user, self.issued_at)
        if why is not None:
            await self.connection.control(close_message(why))
            return None
        if getattr(self.connection, "closed", False):
            return None  # closed by a control message while the check ran
        return {
            "userId": str(self.user.pk),
            "username": self.user.get_username(),
            "permissions": permissions,
            "connectionId": self.connection_id,
            "rooms": sorted(self.rooms),
            "serverTime": time.time(),
            **extra,  # fields apps registered (django_oda_realtime/connected.py), e.g. unreadCount
        }

    async def close(self) -> None:
        """Leave every room. Closes at once for work in flight, which stops at its next await;
        safe to call again (it leaves whatever was joined since, e.g. by an ``open`` that raced it)."""
        self.closed = True
        async with self._serial():
            rooms, self.rooms = set(self.rooms), set()
            await self.hub.leave_all(self.connection, rooms)
            for room in rooms:
                metrics.SUBSCRIPTIONS.labels(policy.kind_of(room) or "unknown").dec()

    def _serial(self):
        """One membership change of this session at a time; no lock is kept at rest (an idle
        socket keeps none: per-socket memory, docs/benchmarks.md)."""
        return _SERIAL.hold(self)

    async def _rooms_changed(self) -> None:
        """Tell the socket its rooms changed (it stores them for a resume, sockets/resume.py)."""
        changed = getattr(self.connection, "rooms_changed", None)
        if changed is not None and not self.closed:
            await changed()

    def _joined(self, room: str) -> None:
        self.rooms.add(room)
        metrics.SUBSCRIPTIONS.labels(policy.kind_of(room) or "unknown").inc()

    def _left(self, room: str) -> None:
        self.rooms.discard(room)
        metrics.SUBSCRIPTIONS.labels(policy.kind_of(room) or "unknown").dec()

    # -- commands ----------------------------------------------------------------

    async def handle(self, event: object, data: object) -> Reply:
        """Run one client command; never raises."""
        name = event if isinstance(event, str) else ""
        reply = await self._handle(name, data)
        label = name if (registry.get(name) or name == AUTH_REFRESH or reply.result_event) else "unknown"
        metrics.COMMANDS.labels(label, "ok" if reply.ok else reply.error_code).inc()
        return reply

    async def _handle(self, name: str, data: object) -> Reply:
        error_event = ERROR
        try:
            if self.closed:
                raise SessionClosed()
            if not EVENT_NAME_RE.match(name):
                raise InvalidEvent()
            if name == AUTH_REFRESH:
                error_event = "auth:error"
                return Reply(name, await self.refresh_token(data), result_event="auth:refreshed")
            verb, _, topic = name.partition(":")
            if verb in (SUBSCRIBE, UNSUBSCRIBE) and topics.get(topic) is not None:
                error_event = f"{verb}:error"
                if verb == SUBSCRIBE:
                    result = await self.subscribe(topic, data)
                    return Reply(name, result, result_event=SUBSCRIBED)
                result = await self.unsubscribe(topic, data)
                return Reply(name, result, result_event=UNSUBSCRIBED)
            command = registry.get(name)
            if command is None:
                raise UnknownCommand(f"Unknown command: {name}")
            error_event = command.error_event
            result = await self._run(command.handler, data)
            return Reply(name, result, result_event=command.result_event, error_event=error_event)
        except CommandError as e:
            return Reply(name, None, e.code, e.message, error_event, request=data)
        except DatabaseError:
            metrics.ERRORS.labels("command_database").inc()
            logger.error("Database error in command %s (connection %s)", name, self.connection_id,
                         extra=self._log_fields(name))
            return Reply(name, None, Unavailable.code, Unavailable.default_message, error_event, request=data)
        except Exception:
            metrics.ERRORS.labels("command").inc()
            logger.exception("Command %s failed (connection %s)", name, self.connection_id, extra=self._log_fields(name))
            return Reply(name, None, InternalError.code, InternalError.default_message, error_event, request=data)

    def _log_fields(self, command: str) -> dict:
        return {"action": "error", "connection_id": self.connection_id, "user_id": str(self.user.pk),
                "protocol": self.protocol, "command": command}

    async def _run(self, handler, data):
        try:
            if inspect.iscoroutinefunction(handler):
                return await handler(self.caller, data)
            return await run_sync_db(handler, self.caller, data)
        finally:
            forget_permissions(self.user)  # a handler may have checked them on the session's user

    async def subscribe(self, topic: str, data: object) -> dict:
        want_snapshot = False
        if isinstance(data, dict) and "snapshot" in data and topics.snapshot(topic) is not None:
            data = dict(data)
            want_snapshot = data.pop("snapshot")
            if not isinstance(want_snapshot, bool):
                raise InvalidInput("snapshot must be true or false")
        result = await self._subscribe(topic, data)
        if want_snapshot and result["rooms"]:
            result["snapshot"] = await self._snapshot(topic, result["rooms"])
        return result

    async def _snapshot(self, topic: str, rooms: list[str]) -> dict:
        """The current state of ``rooms`` and the history position read BEFORE it, after the rooms
        were joined: every event after that position is delivered live (state may already include it)."""
        from ..history import make_history

        try:
            position = await make_history().head()
        except Exception:
            position = None
        state = await run_sync_db(topics.snapshot(topic), self.user, rooms)
        return {"position": position, "state": state}

    async def _subscribe(self, topic: str, data: object) -> dict:
        rooms = topics.get(topic)(self.user, data)
        async with self._serial():
            if self.closed:
                raise SessionClosed()
            allowed, refused = await run_sync_db(uncached(check_rooms), self.user, rooms)
            joined = []
            changed = False
            for room in allowed:
                if self.closed:
                    # Closed meanwhile: stop; the close (waiting for us) leaves what was joined.
                    raise SessionClosed()
                if room in self.rooms:
                    joined.append(room)
                    continue
                if len(self.rooms) >= rt_settings.MAX_ROOMS_PER_CONNECTION:
                    refused.append({"room": room, "reason": TOO_MANY_ROOMS})
                    continue
                await self.hub.join(self.connection, room)
                self._joined(room)
                joined.append(room)
                changed = True
            if changed:
                await self._rooms_changed()
        return {"topic": topic, "rooms": joined, "refused": refused}

    async def unsubscribe(self, topic: str, data: object) -> dict:
        rooms = topics.get(topic)(self.user, data)
        left = []
        async with self._serial():
            for room in dict.fromkeys(rooms):
                if self.closed:
                    raise SessionClosed()
                if room in self.rooms and room != user_room(self.user.pk):
                    await self.hub.leave(self.connection, room)
                    self._left(room)
                    left.append(room)
            if left:
                await self._rooms_changed()
        return {"topic": topic, "rooms": left}

    async def refresh_token(self, data: object) -> dict:
        """``auth:refresh {token}``: a fresh access token for the same user extends the session."""
        data = expect_mapping(data, {"token"})
        if not isinstance(data.get("token"), str):
            raise InvalidInput("token must be a string")
        result = await authenticate(data["token"])
        if not result.ok:
            raise CommandError(result.error.message, code=result.error.code)
        if result.user.pk != self.user.pk:
            raise PermissionDenied("The token is for another user", code="token_user_mismatch")
        self.user = result.user
        self.issued_at = result.issued_at
        self.expires_at = result.expires_at
        self.expiry_warned = False
        return {"expiresAt": self.expires_at}

    async def recheck(self) -> list[str]:
        """Reload the user and leave the rooms they may no longer join; returns the rooms left.

        After any subscribe in flight (``_serial``), so a room joined under a permission
        removed meanwhile is checked too; nothing once the session is closed."""
        async with self._serial():
            if self.closed:
                return []
            user = await run_sync_db(_reload_user, self.user)
            if user is None or self.closed:
                return []
            self.user = user
            own = user_room(user.pk)
            others = [room for room in self.rooms if room != own]
            _, refused = await run_sync_db(uncached(check_rooms), user, others)
            dropped = []
            for r in refused:
                room = r["room"]
                if self.closed:
                    break  # the close leaves the rest
                if room in self.rooms:
                    await self.hub.leave(self.connection, room)
                    self._left(room)
                    dropped.append(room)
            if dropped:
                await self._rooms_changed()
            return dropped


PERMISSION_CACHES = ("_perm_cache", "_user_perm_cache", "_group_perm_cache")


def uncached(check):
    """``check(user, ...)`` that leaves no permission cache on the user it was given.

    Django's ``ModelBackend`` caches a user's permissions on the instance; the session
    keeps its user for the socket's life, so the caches would stay with every idle socket
    (~0.5 KiB) and hide a permission revoked since. Each check reads them afresh.
    """

    def run(user, *args):
        try:
            return check(user, *args)
        finally:
            forget_permissions(user)

    return run


def forget_permissions(user) -> None:
    """Drop the permission caches Django's ``ModelBackend`` left on ``user``."""
    for name in PERMISSION_CACHES:
        user.__dict__.pop(name, None)


def _permissions_and_access(user, issued_at):
    """The ``connected`` payload's permissions, and why the socket must close (or None): one thread hop."""
    return uncached(relevant_permissions)(user), check_access(user.pk, issued_at), connected_extra(user)


def _reload_user(user):
    try:
        return type(user).objects.get(pk=user.pk)
    except type(user).DoesNotExist:
        return None


__all__ = ["Reply", "Session"]
