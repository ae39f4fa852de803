"""Events: the one envelope every server -> client event is wrapped in, encoded once.

``{"event": "inventory:updated", "type": "inventory:updated", "data": {...},
"id": "...", "timestamp": "2026-01-01T00:00:00.000000+00:00"}`` — ``type`` equals
``event`` except for ``notification``, where it is the notification kind.
Error events (``<domain>:<action>Error``) carry ``data = {error, code, request}``
and repeat ``error`` and ``code`` at the top level, so the original clients'
``socket.on('inventory:updateError', (data) => data.error)`` keeps working.
Pure: no channel layer, no ORM.
"""
from dataclasses import dataclass, field
from datetime import datetime, timezone
import json
import time
import uuid

from django.core.serializers.json import DjangoJSONEncoder

CONNECTED = "connected"
NOTIFICATION = "notification"
ERROR = "error"
SUBSCRIBED = "subscribed"
UNSUBSCRIBED = "unsubscribed"

# Layer message types (handled by the hub's ``realtime_<verb>``).
LAYER_EVENT = "realtime.event"
LAYER_CONTROL = "realtime.control"
# A hub's own probe on a group it just joined (hub.Hub._confirm_subscription); other hubs ignore it.
LAYER_PROBE = "realtime.probe"


def encode_json(value: object) -> str:
    """Compact JSON, the one encoder of the add-on (dates, decimals and UUIDs as strings)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, cls=DjangoJSONEncoder)


def envelope(event: str, data: object, *, type: str | None = None) -> dict:
    """The envelope of one event, with a fresh id and timestamp."""
    if not isinstance(event, str) or not event:
        raise ValueError("An event needs a name")
    return {
        "event": event,
        "type": type or event,
        "data": data if data is not None else {},
        "id": uuid.uuid4().hex,
        "timestamp": datetime.now(timezone.utc).isoformat(),
    }


def error_envelope(event: str, code: str, message: str, request: object = None) -> dict:
    """An error event: ``data = {error, code, request}``, ``error`` and ``code`` also on top."""
    env = envelope(event, {"error": message, "code": code, "request": request})
    env["error"] = message
    env["code"] = code
    return env


@dataclass
class Event:
    """A published event as it travels: its rooms and its envelope, encoded once as JSON.

    ``frames`` caches the encoding for each wire protocol in this process, so a
    fan-out to many sockets encodes once per protocol, not once per recipient.
    """

    name: str
    id: str
    rooms: tuple[str, ...]
    json: str
    published_at: float = 0.0
    position: str | None = None  # in the event history (docs/design.md#history); None if not from it
    frames: dict[str, str] = field(default_factory=dict, repr=False)
    # The position's sort key, parsed once per process when a resumed socket needs it (sockets/resume.py).
    order: tuple | None = field(default=None, repr=False, compare=False)

    @classmethod
    def build(cls, event: str, data: object, rooms, *, type: str | None = None) -> "Event":
        env = envelope(event, data, type=type)
        return cls(event, env["id"], tuple(rooms), encode_json(env), time.time())

    def to_layer(self) -> dict:
        return {
            "type": LAYER_EVENT,
            "event": self.name,
            "id": self.id,
            "rooms": list(self.rooms),
            "json": self.json,
            "ts": self.published_at,
        }

    @classmethod
    def from_layer(cls, message: dict) -> "Event":
        return cls(
            message["event"],
            message["id"],
            tuple(message["rooms"]),
            message["json"],
            message.get("ts", 0.0),
            message.get("pos"),
        )
