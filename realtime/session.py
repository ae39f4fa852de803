"""The protocol-agnostic core of one socket: who it is, its rooms, its commands.

Both wire protocols (``/ws/`` native JSON and ``/socket.io/``) hold a Session and
only encode what it returns: one place decides auth, rooms, permissions, commands
and payloads. ``handle()`` never raises: every failure becomes a ``Reply`` with
an error, which the transport encodes as an ack or as the command's error event.
"""
from dataclasses import dataclass
import inspect
import logging
import re
import time
import uuid

from channels.db import database_sync_to_async
from django.db import DatabaseError

from .commands import Caller, registry
from .conf import rt_settings
from .events import SUBSCRIBED, UNSUBSCRIBED, ERROR
from .exceptions import CommandError, InvalidInput, UnknownCommand
from .hub import Hub
from .permissions import relevant_permissions
from .rooms import user_room
from .subscriptions import check_rooms, topics

logger = logging.getLogger("realtime.session")

EVENT_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(?::[A-Za-z][A-Za-z0-9_]*){0,3}$")
SUBSCRIBE, UNSUBSCRIBE = "subscribe", "unsubscribe"


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


class Session:
    def __init__(self, user, connection, hub: Hub, protocol: str) -> None:
        self.user = user
        self.connection = connection
        self.hub = hub
        self.protocol = protocol
        self.connection_id = uuid.uuid4().hex
        self.rooms: set[str] = set()
        self.caller = Caller(user, self.connection_id, protocol)

    # -- lifecycle ---------------------------------------------------------------

    async def open(self) -> dict:
        """Join the user's own room and return the ``connected`` payload."""
        permissions = await database_sync_to_async(relevant_permissions)(self.user)
        own = user_room(self.user.pk)
        await self.hub.join(self.connection, own)
        self.rooms.add(own)
        return {
            "userId": str(self.user.pk),
            "username": self.user.get_username(),
            "permissions": permissions,
            "connectionId": self.connection_id,
            "rooms": sorted(self.rooms),
            "serverTime": time.time(),
        }

    async def close(self) -> None:
        await self.hub.leave_all(self.connection, self.rooms)
        self.rooms.clear()

    # -- commands ----------------------------------------------------------------

    async def handle(self, event: object, data: object) -> Reply:
        """Run one client command; never raises."""
        name = event if isinstance(event, str) else ""
        error_event = ERROR
        try:
            if not EVENT_NAME_RE.match(name):
                raise InvalidInput("Invalid event name", code="invalid_event")
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
            logger.error("Database error in command %s (connection %s)", name, self.connection_id)
            return Reply(name, None, "unavailable", "The service is temporarily unavailable", error_event, request=data)
        except Exception:
            logger.exception("Command %s failed (connection %s)", name, self.connection_id)
            return Reply(name, None, "internal_error", "Internal error", error_event, request=data)

    async def _run(self, handler, data):
        if inspect.iscoroutinefunction(handler):
            return await handler(self.caller, data)
        return await database_sync_to_async(handler)(self.caller, data)

    async def subscribe(self, topic: str, data: object) -> dict:
        rooms = topics.get(topic)(self.user, data)
        allowed, refused = await database_sync_to_async(check_rooms)(self.user, rooms)
        joined = []
        for room in allowed:
            if room in self.rooms:
                joined.append(room)
                continue
            if len(self.rooms) >= rt_settings.MAX_ROOMS_PER_CONNECTION:
                refused.append({"room": room, "reason": "too_many_rooms"})
                continue
            await self.hub.join(self.connection, room)
            self.rooms.add(room)
            joined.append(room)
        return {"topic": topic, "rooms": joined, "refused": refused}

    async def unsubscribe(self, topic: str, data: object) -> dict:
        rooms = topics.get(topic)(self.user, data)
        left = []
        for room in dict.fromkeys(rooms):
            if room in self.rooms and room != user_room(self.user.pk):
                await self.hub.leave(self.connection, room)
                self.rooms.discard(room)
                left.append(room)
        return {"topic": topic, "rooms": left}

    async def drop_rooms(self, rooms) -> None:
        """Leave rooms the user may no longer be in (after a permission change)."""
        for room in list(rooms):
            if room in self.rooms:
                await self.hub.leave(self.connection, room)
                self.rooms.discard(room)


__all__ = ["Reply", "Session"]
