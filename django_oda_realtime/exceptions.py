"""Errors of the realtime add-on.

RealtimeError
├── AuthError            the handshake's token is missing, invalid, expired, or its user inactive
├── CommandError         a client command failed: sent back as an error event, the socket stays
│   ├── InvalidInput     the message or its data is malformed
│   │   └── InvalidEvent the event name is not a valid name
│   ├── UnknownCommand   no handler is registered for the event name
│   ├── PermissionDenied the user may not do this
│   ├── NotFound         an object the command names does not exist
│   ├── SessionClosed    the socket closed while the command waited
│   ├── InternalError    the command failed on the server (logged; the client learns nothing more)
│   └── Unavailable      the channel layer (Redis) did not answer: retry later
│       ├── NoChannelLayer    ``CHANNEL_LAYERS`` has no default layer (``/readyz``)
│       └── HubNotReceiving   this process's hub cannot receive from the layer (``/readyz``)
├── ProtocolError        a frame could not be decoded
├── ConnectRefused       a Socket.IO namespace CONNECT refused (``err.message`` for the client)
└── EngineIOError        an Engine.IO request refused with an HTTP status
    ├── PollError        a polling request the session refuses: HTTP 400
    └── TooManySessions  a handshake refused: too many pending sessions (429 or 503)

Domain apps keep their own errors (``inventory/errors.py``) and map them to ``CommandError``
where their command handlers are registered (``inventory/commands.py``).

Every error has a stable ``code`` (a string clients can switch on) and, where it
ends the connection, a ``close_code`` from ``CloseCode``.
"""
from enum import IntEnum


class CloseCode(IntEnum):
    """WebSocket close codes sent by the server. daphne allows only 1000 and 3000-4999."""

    NORMAL = 1000
    AUTH_MISSING = 4001  # terminal: log in and connect with a token
    AUTH_INVALID = 4002  # terminal
    AUTH_EXPIRED = 4003  # retry with a fresh access token
    USER_INACTIVE = 4004  # terminal
    TOKEN_REVOKED = 4005  # terminal: logged out, password changed
    FORBIDDEN_ORIGIN = 4006  # terminal
    SLOW_CONSUMER = 4008  # retry: the client did not read fast enough
    MESSAGE_TOO_BIG = 4009  # terminal for that message
    PROTOCOL_ERROR = 4010  # terminal
    SERVER_RESTART = 4012  # retry: the server lost its channel layer or database, or is shutting down
    HEARTBEAT_TIMEOUT = 4013  # retry
    TOO_MANY_CONNECTIONS = 4028  # retry later
    RATE_LIMITED = 4029  # retry later

    @property
    def retryable(self) -> bool:
        return self in _RETRYABLE


_RETRYABLE = {
    CloseCode.AUTH_EXPIRED,
    CloseCode.SLOW_CONSUMER,
    CloseCode.SERVER_RESTART,
    CloseCode.HEARTBEAT_TIMEOUT,
    CloseCode.TOO_MANY_CONNECTIONS,
    CloseCode.RATE_LIMITED,
}


class RealtimeError(Exception):
    code = "error"
    close_code: CloseCode | None = None
    default_message = "Realtime error"

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        self.message = message or self.default_message
        if code is not None:
            self.code = code
        super().__init__(self.message)


class AuthError(RealtimeError):
    """The handshake could not be authenticated; ``code`` says why."""

    CODES = {
        "token_missing": (CloseCode.AUTH_MISSING, "No access token was given"),
        "token_invalid": (CloseCode.AUTH_INVALID, "The access token is invalid"),
        "token_expired": (CloseCode.AUTH_EXPIRED, "The access token has expired"),
        "user_inactive": (CloseCode.USER_INACTIVE, "The user is inactive or does not exist"),
        "token_revoked": (CloseCode.TOKEN_REVOKED, "The session was revoked"),
        # Not the client's fault: the database could not be reached. Retryable (4012).
        "unavailable": (CloseCode.SERVER_RESTART, "The service is temporarily unavailable"),
        # The client left while its authentication waited for the database thread: nothing was
        # looked up (nobody reads the answer; docs/design.md#auth-queue).
        "client_gone": (CloseCode.SERVER_RESTART, "The client left before it was authenticated"),
    }

    def __init__(self, code: str, message: str | None = None) -> None:
        close_code, default = self.CODES[code]
        self.close_code = close_code
        super().__init__(message or default, code=code)


class CommandError(RealtimeError):
    code = "command_error"
    default_message = "The command failed"


class InvalidInput(CommandError):
    code = "validation_error"
    default_message = "The message is not valid"


class UnknownCommand(CommandError):
    code = "unknown_command"
    default_message = "Unknown command"


class PermissionDenied(CommandError):
    code = "permission_denied"
    default_message = "You do not have permission to do this"


class NotFound(CommandError):
    code = "not_found"
    default_message = "Not found"


class Unavailable(CommandError):
    """A backing service (the channel layer) did not answer; nothing was done. Retryable."""

    code = "unavailable"
    default_message = "The service is temporarily unavailable"


class InvalidEvent(InvalidInput):
    code = "invalid_event"
    default_message = "Invalid event name"


class SessionClosed(CommandError):
    code = "connection_closed"
    default_message = "The connection is closed"


class InternalError(CommandError):
    code = "internal_error"
    default_message = "Internal error"


class NoChannelLayer(Unavailable):
    """CHANNEL_LAYERS has no default layer."""


class HubNotReceiving(Unavailable):
    """This process's hub failed to receive from the channel layer and has not recovered yet."""


class ConnectRefused(RealtimeError):
    """A Socket.IO namespace CONNECT refused: ``message`` becomes the client's ``err.message``."""

    code = "connect_refused"

    def __init__(self, message: str, data: dict | None = None) -> None:
        self.data = data
        super().__init__(message)


class EngineIOError(RealtimeError):
    """An Engine.IO request refused: HTTP ``status`` with the reference server's error body for ``code``."""

    status = 400


class PollError(EngineIOError):
    """A polling request the session refuses: HTTP 400 with an Engine.IO error body."""

    def __init__(self, code: str = "bad_request") -> None:
        super().__init__(code, code=code)


class TooManySessions(EngineIOError):
    """A handshake refused because too many sessions are pending: HTTP ``status`` (429 or 503)."""

    def __init__(self, status: int, code: str) -> None:
        self.status = status
        super().__init__(code, code=code)


class ProtocolError(RealtimeError):
    code = "protocol_error"
    close_code = CloseCode.PROTOCOL_ERROR
    default_message = "The frame could not be decoded"
