"""Socket.IO v5 over Engine.IO v4 (``/socket.io/``): a pure codec, strings in, objects out.

Parsing and encoding are python-engineio's and python-socketio's packet classes
(``engineio.packet.Packet``, ``socketio.packet.Packet``, pinned in requirements.txt:
they follow the reference implementation, binary attachments included). This module
wraps them: every failure they raise (``ValueError``, ``IndexError``, ``TypeError``,
``RecursionError``, ``binascii.Error``...) becomes ``ProtocolError`` with a stable
``code``, and it refuses what they accept too liberally (packet types out of range,
an EVENT that is not ``[name, ...args]``, attachments announced on a text packet).

Engine.IO (the transport framing): ``0`` open, ``1`` close, ``2`` ping, ``3`` pong,
``4`` message, ``5`` upgrade, ``6`` noop. A WebSocket frame is one packet and a binary
frame is a binary message; a long-polling body is packets joined by ``\\x1e``, binary
messages written ``b<base64>``.

Socket.IO (inside Engine.IO messages): ``0`` CONNECT, ``1`` DISCONNECT, ``2`` EVENT,
``3`` ACK, ``4`` CONNECT_ERROR, ``5`` BINARY_EVENT, ``6`` BINARY_ACK, written
``<type>[<attachments>-][<namespace>,][<ack id>][<JSON>]``; a binary packet is followed
by its attachments, one binary message each.

No channels, no ORM, no I/O. Never log what passes through here: a CONNECT carries the token.
"""
import binascii
from collections.abc import Iterable
from dataclasses import dataclass, field
import json
from urllib.parse import parse_qs

from django.core.serializers.json import DjangoJSONEncoder
from engineio import json as engineio_json
from engineio import packet as eio
from socketio import packet as sio

from ..events import Event, encode_json
from ..exceptions import ProtocolError
from . import MAX_DEPTH, nested_deeper_than

NAME = "socketio"
EIO_VERSION = "4"
TRANSPORTS = ("polling", "websocket")
PAYLOAD_SEPARATOR = "\x1e"
DEFAULT_NAMESPACE = "/"

# Engine.IO packet types.
OPEN, CLOSE, PING, PONG, MESSAGE, UPGRADE, NOOP = (
    eio.OPEN, eio.CLOSE, eio.PING, eio.PONG, eio.MESSAGE, eio.UPGRADE, eio.NOOP,
)
# Socket.IO packet types.
CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR, BINARY_EVENT, BINARY_ACK = (
    sio.CONNECT, sio.DISCONNECT, sio.EVENT, sio.ACK, sio.CONNECT_ERROR, sio.BINARY_EVENT, sio.BINARY_ACK,
)
# Event names a client may not emit (socket.io-parser's RESERVED_EVENTS).
RESERVED_EVENTS = frozenset({"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"})
MAX_ACK_ID = 2**53 - 1
_DECODE_ERRORS = (ValueError, IndexError, TypeError, KeyError, RecursionError, binascii.Error, UnicodeError)

# Handshake refusals: our code -> (Engine.IO error code, message), as the reference server answers them.
ENGINE_ERRORS = {
    "unknown_transport": (0, "Transport unknown"),
    "unknown_sid": (1, "Session ID unknown"),
    "bad_handshake_method": (2, "Bad handshake method"),
    "bad_request": (3, "Bad request"),
    "forbidden": (4, "Forbidden"),
    "unsupported_protocol_version": (5, "Unsupported protocol version"),
    # Ours (issue #11): a handshake refused while too many sessions have no namespace connected.
    "too_many_sessions": (6, "Too many pending sessions from this address"),
    "server_busy": (7, "Too many pending sessions; retry later"),
}


# -- Engine.IO ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnginePacket:
    """One Engine.IO packet: its type and its payload (the text after the type, or bytes)."""

    type: int
    data: str | bytes = ""

    @property
    def binary(self) -> bool:
        return isinstance(self.data, bytes)


def decode_packet(frame: str | bytes) -> EnginePacket:
    """One WebSocket frame (or one element of a polling body) -> EnginePacket."""
    if not isinstance(frame, (str, bytes)):
        raise ProtocolError("An Engine.IO packet is text or bytes", code="invalid_packet")
    try:
        packet = eio.Packet(encoded_packet=frame)
    except _DECODE_ERRORS as e:
        raise ProtocolError("Malformed Engine.IO packet", code="invalid_packet") from e
    if packet.binary:
        return EnginePacket(MESSAGE, bytes(packet.data))
    if not OPEN <= packet.packet_type <= NOOP:
        raise ProtocolError("Unknown Engine.IO packet type", code="invalid_packet")
    # engineio's Packet JSON-decodes a text payload ('4{"a":1}' -> dict); Socket.IO
    # needs the text itself, which is everything after the type character.
    return EnginePacket(packet.packet_type, frame[1:])


def decode_payload(body: str, *, max_packets: int = 1000) -> list[EnginePacket]:
    """A long-polling request body -> its packets (at most ``max_packets``)."""
    if not isinstance(body, str) or not body:
        raise ProtocolError("Empty polling payload", code="invalid_payload")
    parts = body.split(PAYLOAD_SEPARATOR, max_packets)
    if len(parts) > max_packets:
        raise ProtocolError("Too many packets in one payload", code="invalid_payload")
    return [decode_packet(part) for part in parts]


def encode_packet(packet_type: int, data: str | bytes | None = None) -> str | bytes:
    """An Engine.IO packet as a WebSocket frame: ``2``, ``3probe``, ``4<text>``, or raw bytes."""
    return eio.Packet(packet_type, data).encode()


def message(data: str | bytes) -> str | bytes:
    """An Engine.IO MESSAGE carrying ``data`` (a Socket.IO packet or an attachment)."""
    return eio.Packet(MESSAGE, data).encode()


def encode_payload(frames: Iterable[str | bytes]) -> str:
    """Encoded packets (as from ``encode_packet``) -> a long-polling response body."""
    out = []
    for frame in frames:
        if isinstance(frame, bytes):
            frame = eio.Packet(MESSAGE, frame).encode(b64=True)
        out.append(frame)
    return PAYLOAD_SEPARATOR.join(out)


def open_packet(sid: str, *, upgrades: list[str], ping_interval: float, ping_timeout: float, max_payload: int) -> str:
    """The OPEN packet of a new session (intervals in seconds, sent in milliseconds)."""
    return eio.Packet(
        OPEN,
        {
            "sid": sid,
            "upgrades": upgrades,
            "pingInterval": int(round(ping_interval * 1000)),
            "pingTimeout": int(round(ping_timeout * 1000)),
            "maxPayload": int(max_payload),
        },
    ).encode()


@dataclass(frozen=True)
class Handshake:
    """What an Engine.IO request's query string asks for."""

    transport: str
    sid: str | None = None


def parse_query(query_string: bytes | str) -> Handshake:
    """``?EIO=4&transport=polling[&sid=...]`` -> Handshake, or ProtocolError with a code of ENGINE_ERRORS."""
    if isinstance(query_string, bytes):
        query_string = query_string.decode("latin-1")
    query = parse_qs(query_string)
    if query.get("EIO", [None])[-1] != EIO_VERSION:
        raise ProtocolError("Only Engine.IO protocol version 4 is served", code="unsupported_protocol_version")
    transport = query.get("transport", [None])[-1]
    if transport not in TRANSPORTS:
        raise ProtocolError("Unknown transport", code="unknown_transport")
    sid = query.get("sid", [None])[-1]
    return Handshake(transport, sid or None)


def engine_error(code: str) -> str:
    """The JSON body of a refused Engine.IO request: ``{"code": 1, "message": "Session ID unknown"}``."""
    number, text = ENGINE_ERRORS[code]
    return json.dumps({"code": number, "message": text})


# -- Socket.IO ---------------------------------------------------------------------------------


class _Json:
    """JSON for python-socketio's Packet: Django's encoder (dates, decimals), engineio's safe loads."""

    @staticmethod
    def dumps(obj, **kwargs):
        return json.dumps(obj, cls=DjangoJSONEncoder, ensure_ascii=False, **kwargs)

    loads = staticmethod(engineio_json.loads)


class _Packet(sio.Packet):
    json = _Json


@dataclass(frozen=True)
class SocketPacket:
    """One decoded Socket.IO packet, attachments already put back in place."""

    type: int
    namespace: str = DEFAULT_NAMESPACE
    data: object = None
    id: int | None = None
    binary: bool = field(default=False, compare=False)

    @property
    def event(self) -> str:
        """The event name of an EVENT packet."""
        return self.data[0]

    @property
    def args(self) -> list:
        """The arguments of an EVENT (after the name) or of an ACK."""
        return list(self.data[1:]) if self.type in (EVENT, BINARY_EVENT) else list(self.data or [])


class PacketDecoder:
    """Client messages -> Socket.IO packets, one decoder per connection.

    ``feed()`` returns a packet, or None while a binary packet waits for its attachments.
    """

    def __init__(self, *, max_attachments: int = 10) -> None:
        self.max_attachments = max_attachments
        self._pending: _Packet | None = None

    @property
    def waiting(self) -> bool:
        return self._pending is not None

    def feed(self, data: str | bytes) -> SocketPacket | None:
        if self._pending is not None:
            if not isinstance(data, bytes):
                self._pending = None
                raise ProtocolError("Text received while waiting for binary attachments", code="invalid_packet")
            return self._attach(data)
        if isinstance(data, bytes):
            raise ProtocolError("A binary message without a packet announcing it", code="invalid_packet")
        if not isinstance(data, str) or not data:
            raise ProtocolError("Empty Socket.IO packet", code="invalid_packet")
        try:
            packet = _Packet(encoded_packet=data)
        except _DECODE_ERRORS as e:
            raise ProtocolError("Malformed Socket.IO packet", code="invalid_packet") from e
        return self._checked(packet)

    def _checked(self, packet: _Packet) -> SocketPacket | None:
        kind, data = packet.packet_type, packet.data
        namespace = packet.namespace or DEFAULT_NAMESPACE
        if packet.id is not None and not 0 <= packet.id <= MAX_ACK_ID:
            raise ProtocolError("Invalid ack id", code="invalid_packet")
        binary = kind in (BINARY_EVENT, BINARY_ACK)
        if packet.attachment_count and not binary:
            raise ProtocolError("Attachments announced on a text packet", code="invalid_packet")
        if kind == CONNECT:
            valid = data is None or isinstance(data, dict)
        elif kind == DISCONNECT:
            valid = data is None
        elif kind in (EVENT, BINARY_EVENT):
            valid = isinstance(data, list) and bool(data) and isinstance(data[0], str) and data[0] not in RESERVED_EVENTS
        elif kind in (ACK, BINARY_ACK):
            valid = isinstance(data, list) and packet.id is not None
        else:  # CONNECT_ERROR is for servers to send; anything else is unknown
            valid = False
        if not valid:
            raise ProtocolError("Invalid Socket.IO packet", code="invalid_packet")
        if nested_deeper_than(data, MAX_DEPTH):
            raise ProtocolError(f"The packet is nested deeper than {MAX_DEPTH} levels", code="invalid_packet")
        if binary and packet.attachment_count:
            if packet.attachment_count > self.max_attachments:
                raise ProtocolError("Too many binary attachments", code="invalid_packet")
            packet.namespace = namespace
            self._pending = packet
            return None
        return SocketPacket(kind, namespace, data, packet.id, binary)

    def _attach(self, data: bytes) -> SocketPacket | None:
        packet = self._pending
        try:
            complete = packet.add_attachment(data)
        except _DECODE_ERRORS as e:
            self._pending = None
            raise ProtocolError("Invalid binary attachment", code="invalid_packet") from e
        if not complete:
            return None
        self._pending = None
        return SocketPacket(packet.packet_type, packet.namespace, packet.data, packet.id, True)


def encode(packet_type: int, data: object = None, *, namespace: str = DEFAULT_NAMESPACE, id: int | None = None) -> list[str | bytes]:
    """A Socket.IO packet -> its messages: the packet, then one message per binary attachment."""
    encoded = _Packet(packet_type, data, namespace=namespace, id=id).encode()
    return encoded if isinstance(encoded, list) else [encoded]


def _prefix(namespace: str) -> str:
    return "" if namespace == DEFAULT_NAMESPACE else namespace + ","


def event_message(name: str, payload_json: str, *, namespace: str = DEFAULT_NAMESPACE,
                  position: str | None = None) -> str:
    """``2["name",<payload>]`` around JSON already encoded: no decode, no second encode; with a
    ``position``, it is the last argument (the client's recovery offset)."""
    if position is not None:
        return f"{EVENT}{_prefix(namespace)}[{encode_json(name)},{payload_json},{encode_json(position)}]"
    return f"{EVENT}{_prefix(namespace)}[{encode_json(name)},{payload_json}]"


def event_frame(event: Event) -> str:
    """The message of a published event, ``2["inventory:updated",{event,type,data,id,timestamp}]``."""
    if event.position is not None:
        # Connection state recovery: the offset is the last argument (docs/socketio.md#recovery).
        return event_message(event.name, event.json, position=event.position)
    return event_message(event.name, event.json)


def encode_connect(namespace: str, sid: str, pid: str | None = None) -> str:
    """CONNECT accepted: ``0{"sid":"..."}`` (``0/custom,{"sid":"..."}``); with a resumable
    session's ``pid``: ``0{"sid":"...","pid":"..."}``."""
    body = {"sid": sid} if pid is None else {"sid": sid, "pid": pid}
    return encode(CONNECT, body, namespace=namespace)[0]


def encode_connect_error(namespace: str, message: str, data: object = None) -> str:
    """CONNECT refused: ``4{"message":"token_expired","data":{...}}``; the client's ``err.message``."""
    body: dict = {"message": message}
    if data is not None:
        body["data"] = data
    return encode(CONNECT_ERROR, body, namespace=namespace)[0]


def encode_disconnect(namespace: str = DEFAULT_NAMESPACE) -> str:
    """The server ends a namespace: the client's ``disconnect`` reason is ``io server disconnect``."""
    return encode(DISCONNECT, namespace=namespace)[0]


def encode_ack(namespace: str, id: int, args: list) -> list[str | bytes]:
    """The answer to a client's ``emit(..., callback)``: ``3<id>[...args]``."""
    return encode(ACK, list(args), namespace=namespace, id=id)


def contains_binary(value: object) -> bool:
    return sio.Packet.data_is_binary(value)


__all__ = [
    "NAME", "EnginePacket", "Handshake", "PacketDecoder", "SocketPacket",
    "decode_packet", "decode_payload", "encode_packet", "encode_payload", "message", "open_packet",
    "parse_query", "engine_error", "encode", "event_message", "event_frame", "encode_connect",
    "encode_connect_error", "encode_disconnect", "encode_ack", "contains_binary",
]
