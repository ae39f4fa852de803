"""The AsyncAPI 3.0 document of the project, generated from the registries and the catalog.

The document describes the server: it ``send`` s events to rooms (one channel per room kind of
``django_oda_realtime.permissions.policy``, with who may join it) and to one socket (the ``socket`` channel:
replies and notices), and ``receive`` s commands on the socket, each with its ``reply`` (the ack)
and its error codes. Every message's payload is the whole envelope of ``django_oda_realtime.events``, its
``data`` being the schema declared in the catalog. See docs/contract.md.
"""
import json
import re

from django_oda_realtime.commands import registry as commands
from django_oda_realtime.permissions import policy
from django_oda_realtime.subscriptions import topics

from .builtin import COMMON_ERRORS, ERROR_DATA, SUBSCRIBE_RESULT, UNSUBSCRIBE_RESULT
from .catalog import CommandSpec, EventSpec, catalog
from .schema import ANY, DATETIME, obj, string

SOCKET = "socket"
NO_ARGUMENT = {"anyOf": [{"type": "null"}, {"type": "object", "maxProperties": 0}],
               "description": "No argument (or null, or {})"}


def key(*names: str) -> str:
    """A component key (``[A-Za-z0-9_.-]``) for event, room and command names."""
    return "_".join(re.sub(r"[^A-Za-z0-9_.-]", ".", name) for name in names)


def envelope_schema(spec: EventSpec) -> dict:
    """The JSON Schema of the whole envelope of ``spec``."""
    properties = {"event": {"const": spec.name}, "type": {"const": spec.type}, "data": spec.schema,
                  "id": string(description="Unique per event"), "timestamp": DATETIME}
    if spec.error:
        properties |= {"error": string(), "code": string()}
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def events() -> list[EventSpec]:
    """Every event: the catalog's, plus an error event for each registered command that lacks one."""
    found = dict(catalog.discover().events)
    for name in commands.names():
        error_event = commands.get(name).error_event
        found.setdefault((error_event, error_event), EventSpec(
            error_event, ERROR_DATA, error_event, error=True, direct=True,
            description=f"{name} without an ack failed."))
    return [found[k] for k in sorted(found)]


def command_specs() -> list[CommandSpec]:
    """Every command a client may send: ``subscribe:``/``unsubscribe:`` per topic, then registered ones."""
    catalog.discover()
    specs = []
    for topic in topics.names():
        declared = catalog.topics.get(topic)
        data = ANY if declared is None else declared.data
        rooms = ", ".join(declared.rooms) if declared else ""
        about = f"{declared.description} Rooms: {rooms}." if declared else ""
        specs.append(CommandSpec(f"subscribe:{topic}", data, SUBSCRIBE_RESULT, {}, f"Join rooms. {about}".strip()))
        specs.append(CommandSpec(f"unsubscribe:{topic}", data, UNSUBSCRIBE_RESULT, {}, "Leave those rooms."))
    names = set(commands.names()) | {"auth:refresh", "ping"}
    for name in sorted(names):
        specs.append(catalog.commands.get(name) or CommandSpec(name, ANY, ANY, {}, ""))
    return specs


def error_event_of(name: str) -> str:
    if name.startswith(("subscribe:", "unsubscribe:")):
        return name.split(":", 1)[0] + ":error"
    if name == "auth:refresh":
        return "auth:error"
    command = commands.get(name)
    return command.error_event if command else "error"


def ack_schema(spec: CommandSpec) -> dict:
    codes = sorted({**COMMON_ERRORS, **spec.errors})
    return {"oneOf": [
        obj({"data": spec.result}),
        obj({"error": obj({"code": string(enum=codes), "message": string()})}),
    ]}


def room_kind_of(pattern: str) -> str | None:
    """``inventory:location:{locationId}`` -> ``inventory:location`` (a registered kind), else None."""
    kinds = {kind.name: kind for kind in policy.kinds()}
    if pattern in kinds and not kinds[pattern].has_id:
        return pattern
    prefix, _, last = pattern.rpartition(":")
    if re.fullmatch(r"\{\w+\}", last) and prefix in kinds and kinds[prefix].has_id:
        return prefix
    return None


def problems() -> list[str]:
    """Declarations the document cannot place: rooms of no registered kind, commands without a contract."""
    found = []
    for spec in events():
        for pattern in spec.rooms:
            if room_kind_of(pattern) is None:
                found.append(f"{spec.name} ({spec.type}): room {pattern!r} is not a registered room kind")
        if not spec.rooms and not spec.direct:
            found.append(f"{spec.name} ({spec.type}): neither rooms nor direct")
    declared = set(catalog.commands)
    found += [f"command {name!r} has no describe_command()" for name in commands.names() if name not in declared]
    found += [f"topic {name!r} has no describe_topic()" for name in topics.names() if name not in catalog.topics]
    return found


def _rule_text(rule) -> str:
    doc = (rule.__doc__ or "").strip().splitlines()
    text = doc[0] if doc else getattr(rule, "__qualname__", repr(rule))
    return text.removeprefix("A rule: ")


def document(*, host: str = "localhost:8000", secure: bool = False, title: str = "Realtime API",
             version: str = "1.0.0") -> dict:
    """The AsyncAPI 3.0 document, as a dict ready for JSON or YAML."""
    all_events = events()
    messages: dict[str, dict] = {}
    channels: dict[str, dict] = {}
    operations: dict[str, dict] = {}

    def message_ref(channel: str, message: str) -> dict:
        return {"$ref": f"#/channels/{channel}/messages/{message}"}

    # Events
    event_keys: dict[tuple[str, str], str] = {}
    for spec in all_events:
        k = event_keys[(spec.name, spec.type)] = key(spec.name) if spec.type == spec.name else key(spec.name, spec.type)
        messages[k] = {
            "name": spec.name, "title": spec.name if spec.type == spec.name else f"{spec.name} ({spec.type})",
            "summary": spec.description or spec.name, "contentType": "application/json",
            "payload": envelope_schema(spec),
            **({"x-rooms": list(spec.rooms)} if spec.rooms else {}),
        }

    # Rooms: one channel per registered kind, with who may join and what is sent there
    topic_rooms = {name: spec.rooms for name, spec in catalog.topics.items()}
    for kind in sorted(policy.kinds(), key=lambda kind: kind.name):
        ck = key("room", kind.name)
        sent = [event_keys[(s.name, s.type)] for s in all_events
                if any(room_kind_of(p) == kind.name for p in s.rooms)]
        via = [f"subscribe:{t}" for t, rooms in sorted(topic_rooms.items())
               if any(room_kind_of(p) == kind.name for p in rooms)]
        channel = {
            "address": f"{kind.name}:{{id}}" if kind.has_id else kind.name,
            "title": kind.name,
            "description": f"Who may join: {_rule_text(kind.rule)}" + (f" Joined with {', '.join(via)}." if via else ""),
            "messages": {m: {"$ref": f"#/components/messages/{m}"} for m in sent},
            "x-join-rule": _rule_text(kind.rule),
        }
        if kind.has_id:
            channel["parameters"] = {"id": {"description": "1-64 characters of [A-Za-z0-9_-]"}}
        channels[ck] = channel
        if sent:
            operations[key("send", "room", kind.name)] = {
                "action": "send", "channel": {"$ref": f"#/channels/{ck}"},
                "summary": f"Events sent to {channel['address']}",
                "messages": [message_ref(ck, m) for m in sent],
            }

    # The socket: notices and replies to one connection, and the commands it sends
    direct = [event_keys[(s.name, s.type)] for s in all_events if s.direct]
    socket_messages = {m: {"$ref": f"#/components/messages/{m}"} for m in direct}
    for spec in command_specs():
        ck, ak = key("command", spec.name), key("ack", spec.name)
        codes = {**COMMON_ERRORS, **spec.errors}
        messages[ck] = {"name": spec.name, "title": spec.name, "summary": spec.description or spec.name,
                        "contentType": "application/json",
                        "payload": NO_ARGUMENT if spec.data is None else spec.data}
        messages[ak] = {"name": spec.name, "title": f"{spec.name} ack",
                        "summary": "The ack of a command sent with one: {data} or {error: {code, message}}",
                        "contentType": "application/json", "payload": ack_schema(spec)}
        socket_messages[ck] = {"$ref": f"#/components/messages/{ck}"}
        socket_messages[ak] = {"$ref": f"#/components/messages/{ak}"}
        operations[key("receive", spec.name)] = {
            "action": "receive", "channel": {"$ref": f"#/channels/{SOCKET}"},
            "summary": spec.description or spec.name,
            "description": "Without an ack, a failure is the error event "
                           f"`{error_event_of(spec.name)}`. Error codes: "
                           + "; ".join(f"`{c}`: {d}" for c, d in sorted(codes.items())),
            "messages": [message_ref(SOCKET, ck)],
            "reply": {"channel": {"$ref": f"#/channels/{SOCKET}"}, "messages": [message_ref(SOCKET, ak)]},
            "x-error-event": error_event_of(spec.name),
            "x-error-codes": codes,
        }
    channels[SOCKET] = {"address": None, "title": "the socket",
                        "description": "One connection: its notices and replies, and the commands it sends.",
                        "messages": socket_messages}
    operations[key("send", SOCKET)] = {"action": "send", "channel": {"$ref": f"#/channels/{SOCKET}"},
                                       "summary": "Notices and replies sent to one socket",
                                       "messages": [message_ref(SOCKET, m) for m in direct]}

    protocol = "wss" if secure else "ws"
    security = [{"$ref": "#/components/securitySchemes/bearer"}, {"$ref": "#/components/securitySchemes/token"}]
    return {
        "asyncapi": "3.0.0",
        "info": {"title": title, "version": version,
                 "description": "Live events over WebSocket, generated from the server's registries. "
                                "Every event is the envelope {event, type, data, id, timestamp}."},
        "defaultContentType": "application/json",
        "servers": {
            "ws": {"host": host, "protocol": protocol, "pathname": "/ws/", "security": security,
                   "description": "The native protocol: JSON text frames {event, data?, ack?}; "
                                  "acked replies are {event, ack, data} or {event, ack, error}."},
            "socketio": {"host": host, "protocol": protocol, "pathname": "/socket.io/", "security": security,
                         "description": "Socket.IO v5 over Engine.IO v4 (socket.io-client 3.x/4.x): an event is "
                                        "an EVENT packet whose one argument is the envelope; a command is "
                                        "emit(name, data, ack?); the token may also be in the CONNECT auth "
                                        "payload {token}."},
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                           "description": "A simplejwt access token in the Authorization header"},
                "token": {"type": "httpApiKey", "name": "token", "in": "query",
                          "description": "The access token in the token query parameter (browsers)"},
            },
        },
    }


def render(doc: dict, format: str = "json") -> str:
    """The document as JSON (indented) or YAML (needs PyYAML)."""
    if format == "yaml":
        try:
            import yaml
        except ImportError as e:
            raise RuntimeError("YAML output needs PyYAML (pip install PyYAML); JSON needs nothing") from e
        # Through JSON first: shared sub-schemas would otherwise become YAML anchors and aliases.
        return yaml.safe_dump(json.loads(json.dumps(doc)), sort_keys=False, allow_unicode=True, width=120)
    if format != "json":
        raise ValueError(f"Unknown format {format!r}: json or yaml")
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
