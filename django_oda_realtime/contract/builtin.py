"""The add-on's own part of the contract: what every socket receives and may send, whatever the apps
(docs/protocol.md: ``connected``, ``subscribed``, ``unsubscribed``, ``error``, ``auth:*``).

Imported by ``Catalog.discover`` before the apps' ``schemas`` modules.
"""
from django_oda_realtime.connected import connected_fields
from django_oda_realtime.events import CONNECTED, ERROR, SUBSCRIBED, UNSUBSCRIBED
from django_oda_realtime.permissions import FORBIDDEN, TOO_MANY_ROOMS, UNKNOWN_ROOM

from .catalog import describe_command, describe_topic, register_event
from .schema import ANY, ID, array, boolean, nullable, number, obj, string

# ``data`` of every error event (``django_oda_realtime.events.error_envelope``).
ERROR_DATA = obj(
    {"error": string(description="What went wrong, for people"),
     "code": string(description="Why, for programs (docs/protocol.md, Error codes)"),
     "request": {**ANY, "description": "The data of the command that failed, or null"}},
    description="An error: error and code are repeated at the top level of the envelope",
)

# Codes any command may answer (docs/protocol.md, Error codes of commands).
COMMON_ERRORS = {
    "validation_error": "data has the wrong shape, an unknown field, or an invalid id",
    "rate_limited": "too many messages; slow down",
    "unavailable": "the database or the channel layer is unavailable; retry",
    "internal_error": "a bug on the server's side",
}

# ``error`` codes sent without a command: refusals at connect and frame-level problems.
SOCKET_ERRORS = {
    "token_missing": "no token given (close 4001)",
    "token_invalid": "malformed, wrong signature or algorithm, not an access token (close 4002)",
    "token_expired": "exp passed (close 4003): refresh the token and reconnect",
    "user_inactive": "the user is inactive or gone (close 4004)",
    "token_revoked": "logged out, password changed (close 4005)",
    "too_many_connections": "MAX_CONNECTIONS_PER_USER sockets open (close 4028)",
    "heartbeat_timeout": "nothing received for IDLE_TIMEOUT seconds (close 4013)",
    "message_too_big": "over MAX_MESSAGE_BYTES (close 4009)",
    "invalid_json": "the frame is not JSON",
    "invalid_frame": "not an object, unknown keys, nested too deep",
    "invalid_packet": "a malformed Socket.IO packet (close 4010)",
    "invalid_event": "the event name is malformed",
    "unknown_command": "no such command",
    **COMMON_ERRORS,
}

ROOMS = array(string(), description="Room names")
REFUSED = array(obj({"room": {**ANY, "description": "The room asked for"},
                     "reason": string(enum=[FORBIDDEN, UNKNOWN_ROOM, TOO_MANY_ROOMS])}))
SUBSCRIBE_RESULT = obj({"topic": string(), "rooms": ROOMS, "refused": REFUSED},
                       optional={"snapshot": obj({"position": nullable(string()), "state": ANY},
                                                 description="With snapshot: true (topics that have one): the "
                                                             "rooms' current state and the history position it is at")},
                       description="The rooms joined and the rooms refused, each with its reason")
UNSUBSCRIBE_RESULT = obj({"topic": string(), "rooms": ROOMS}, description="The rooms left")
EXPIRY = number(description="Unix time, seconds")

register_event(CONNECTED, obj(
    {"userId": ID, "username": string(), "permissions": array(string(), description="Relevant permissions held"),
     "connectionId": string(description="Equals socket.id on /socket.io/"),
     "rooms": ROOMS, "serverTime": number(description="Unix time, seconds")},
    optional={"heartbeatInterval": number(description="/ws/ only: send something this often (seconds)"),
              "recovered": boolean(description="The session was resumed: missed events follow (docs/protocol.md#resume)"),
              "sessionId": string(description="/ws/ only: resume with ?resume=<sessionId>&position=<position>"),
              "position": nullable(string(description="/ws/ only: the history position to resume from")),
              **connected_fields()},  # the apps' extra fields (django_oda_realtime/connected.py)
), direct=True, description="The first event of an accepted socket; it is already in its own user:{userId} room.")
register_event(SUBSCRIBED, SUBSCRIBE_RESULT, direct=True,
               description="A subscribe:<topic> without an ack succeeded.")
register_event(UNSUBSCRIBED, obj(
    {"rooms": ROOMS},
    optional={"topic": string(), "reason": string(enum=["permission_revoked"])},
), direct=True, description="An unsubscribe:<topic> without an ack succeeded ({topic, rooms}), or a permission "
                            "was removed and the socket left those rooms ({rooms, reason: permission_revoked}).")
register_event("auth:expiring", obj({"expiresAt": EXPIRY, "expiresIn": number(description="Seconds left")}),
               direct=True, description="The access token expires soon: send auth:refresh with a fresh one.")
register_event("auth:refreshed", obj({"expiresAt": EXPIRY}), direct=True,
               description="An auth:refresh without an ack succeeded.")
register_event("pong", obj({}), direct=True, description="/ws/ only: the answer to {\"event\": \"ping\"}.")

for name, description in [
    (ERROR, "A refusal at connect, a frame-level problem, or a failed command without its own error event."),
    ("subscribe:error", "A subscribe:<topic> without an ack failed."),
    ("unsubscribe:error", "An unsubscribe:<topic> without an ack failed."),
    ("auth:error", "An auth:refresh without an ack failed; the socket keeps its old expiry."),
]:
    register_event(name, ERROR_DATA, error=True, direct=True, description=description)

describe_command("auth:refresh", data=obj({"token": string(description="A fresh access token of the same user")}),
                 result=obj({"expiresAt": EXPIRY}),
                 errors={"token_invalid": "the token is invalid", "token_expired": "the token has expired",
                         "token_revoked": "the session was revoked", "user_inactive": "the user is inactive",
                         "token_user_mismatch": "the token is for another user"},
                 description="Extend the socket's session with a fresh access token before it expires.")
describe_command("ping", data=None, result=obj({}), description="/ws/ only: an application-level heartbeat.")

describe_topic("notifications", data=None, rooms=["notifications:{userId}", "broadcast"],
               description="Your own notifications and the announcements to everyone.")
