"""The native protocol of ``/ws/``: JSON text frames (docs/protocol.md). Pure codec.

Client -> server: ``{"event": "subscribe:inventory", "data": {...}, "ack": 7}``
(``data`` and ``ack`` optional; no other keys). Server -> client: event
envelopes (``django_oda_realtime.events``), and replies to acked commands:
``{"event": "subscribe:inventory", "ack": 7, "data": {...}}`` or
``{"event": ..., "ack": 7, "error": {"code": ..., "message": ...}}``.
"""
from dataclasses import dataclass
import json

from ..events import Event, encode_json, envelope, error_envelope
from ..exceptions import ProtocolError
from . import MAX_DEPTH, nested_deeper_than

NAME = "native"
MAX_ACK = 2**53 - 1
ALLOWED_KEYS = {"event", "data", "ack"}


@dataclass(frozen=True)
class ClientMessage:
    event: str
    data: object = None
    ack: int | None = None


def decode(text: str | bytes) -> ClientMessage:
    """One client frame -> ClientMessage, or ProtocolError saying what is wrong."""
    if isinstance(text, bytes):
        raise ProtocolError("Binary frames are not supported; send JSON text", code="binary_frame")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise ProtocolError("The frame is not valid JSON", code="invalid_json") from e
    if not isinstance(value, dict):
        raise ProtocolError("The frame must be a JSON object", code="invalid_frame")
    if nested_deeper_than(value, MAX_DEPTH):
        raise ProtocolError(f"The frame is nested deeper than {MAX_DEPTH} levels", code="invalid_frame")
    unknown = set(value) - ALLOWED_KEYS
    if unknown:
        raise ProtocolError("Unknown key(s) in frame: " + ", ".join(sorted(unknown))[:200], code="invalid_frame")
    event = value.get("event")
    if not isinstance(event, str) or not event or len(event) > 100:
        raise ProtocolError("The frame needs an 'event' string", code="invalid_frame")
    ack = value.get("ack")
    if ack is not None and (isinstance(ack, bool) or not isinstance(ack, int) or not 0 <= ack <= MAX_ACK):
        raise ProtocolError("'ack' must be a non-negative integer", code="invalid_frame")
    return ClientMessage(event, value.get("data"), ack)


def event_frame(event: Event) -> str:
    """The frame of a published event: its JSON, already encoded once at publish time; an event
    from the history also carries its ``position`` (to resume from, docs/protocol.md#resume)."""
    if event.position is not None and event.json.endswith("}"):
        return f'{event.json[:-1]},"position":{encode_json(event.position)}}}'
    return event.json


def encode_event(name: str, data: object, *, type: str | None = None) -> str:
    return encode_json(envelope(name, data, type=type))


def encode_error(event: str, code: str, message: str, request: object = None) -> str:
    return encode_json(error_envelope(event, code, message, request))


def encode_ack(event: str, ack: int, *, data: object = None, error: dict | None = None) -> str:
    reply: dict = {"event": event, "ack": ack}
    if error is not None:
        reply["error"] = error
    else:
        reply["data"] = data
    return encode_json(reply)
