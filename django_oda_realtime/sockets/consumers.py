"""The sockets: the only readers and writers of a WebSocket.

``SocketConsumer`` is what both protocols share: the origin and token checks, a
``Session``, the per-user connection cap, the rate limit, the timers (token
expiry, idle), delivery of hub events with a bounded outbound backlog, and
closing with a documented code. A socket is not a channel-layer member (the
process's hub is, see ``hub.py``), and its dispatch skips channels' per-message
``close_old_connections`` thread hop (docs/design.md#thread-hop-per-message): handlers that
touch the ORM run in ``database_sync_to_async`` (``db.run_sync_db``), which closes old connections
itself. How its frames reach the client is its outlet's business (``server/outlets.py``), chosen
once per socket: the consumer keeps only the application's behaviour.
"""
import logging
import time
import uuid

from channels.exceptions import StopConsumer
from django.db import DatabaseError

from .. import metrics
from ..auth import AuthResult
from ..conf import rt_settings
from ..events import CONNECTED, ERROR, UNSUBSCRIBED, Event
from ..exceptions import AuthError, CloseCode, ProtocolError, Unavailable
from ..hub import get_hub
from ..protocol import native
from ..ratelimit import TokenBucket
from ..server.clientaddr import client_address
from ..server.outlets import FrameMemo, Outlet, outlet_for
from .dispatch import DirectConsumer
from .origins import origin_allowed
from . import resume
from .session import Reply, Session

logger = logging.getLogger("realtime.consumers")

AUTH_EXPIRING = "auth:expiring"
OVERFLOW_MESSAGE = "Too many events arrived while the missed ones were replayed; resume again from your last position"


class SocketConsumer(DirectConsumer):
    """Shared machinery of a realtime socket, whatever its wire protocol."""

    protocol_name = "base"
    frame_memo = FrameMemo()  # per protocol: a fan-out frames each event once (NativeConsumer has its own)
    pid: str | None = None  # the resumable session's id (docs/design.md#history), once connected
    _buffer: list | None = None  # live events held while a resume replays (sockets/resume.py)
    _last_position: str | None = None  # of the last event sent to a resumable socket
    _horizon: tuple | None = None  # key of the last history entry a resume replayed (sockets/resume.py)

    def make_outlet(self, send) -> Outlet:
        """How this socket's frames reach the client: the server's outlet (``outlet_for``)."""
        return outlet_for(send)

    async def begin(self, scope, receive, send) -> None:
        self.scope = scope
        self.outlet = self.make_outlet(send)
        self.session: Session | None = None
        self.hub = None
        self.user_id = "-"
        # Known before the session opens, so refusals are logged with it too.
        self.connection_id = uuid.uuid4().hex
        # For its log lines: read now, the scope's headers are emptied once the socket is authenticated.
        self.client = client_address(scope)
        if "engineio" in scope:
            scope["connection_id"] = self.connection_id  # the Engine.IO session's log lines carry it too
        self.closed = False
        self.last_seen = time.time()
        self.bucket = TokenBucket(rt_settings.RATE_LIMIT_RATE, rt_settings.RATE_LIMIT_BURST)
        self.strikes = 0

    async def end(self) -> None:
        # Also when daphne cancels us because the client vanished without a
        # close frame: leave every room so no group membership stays behind.
        if self.session is not None and not self.closed:
            metrics.DISCONNECTS.labels("gone").inc()
            logger.info("Connection %s user=%s gone", self.connection_id, self.user_id,
                        extra=self.log_fields("disconnect", reason="gone"))
        await self.end_session()
        self.outlet.stop()

    async def websocket_disconnect(self, message):
        if not self.closed:
            metrics.DISCONNECTS.labels("client").inc()
            logger.info("Connection %s user=%s closed by the client (%s)", self.connection_id, self.user_id,
                        message.get("code"), extra=self.log_fields("disconnect", reason="client", code=message.get("code")))
        self.closed = True
        await self.end_session()
        raise StopConsumer()

    # -- session -------------------------------------------------------------------

    @property
    def auth(self) -> AuthResult:
        return self.scope["realtime.auth"]

    def log_fields(self, action: str, **fields) -> dict:
        """``extra=`` of a structured log line about this socket (docs/observability.md); never a token."""
        return {"action": action, "connection_id": self.connection_id, "user_id": self.user_id,
                "protocol": self.protocol_name, "client": self.client, **fields}

    async def start_session(self, user, expires_at: float | None = None) -> dict | None:
        """Open the session; None (and the socket closed) if the user has too many sockets,
        or if Redis or the database does not answer (``unavailable``, 4012: retry)."""
        try:
            self.hub = await get_hub()
        except Unavailable:
            return await self.refuse_unavailable()
        self.session = Session(user, self, self.hub, self.protocol_name, expires_at, connection_id=self.connection_id)
        self.user_id = str(user.pk)
        if not await self.hub.register(self, self.user_id):
            self.session = None
            metrics.REFUSALS.labels("too_many_connections").inc()
            logger.info("Refused connection %s user=%s: too_many_connections", self.connection_id, self.user_id,
                        extra=self.log_fields("refuse", reason="too_many_connections"))
            await self.send_frame(self.error_frame(ERROR, "too_many_connections", "Too many open connections for this user"))
            await self.close(CloseCode.TOO_MANY_CONNECTIONS, "too_many_connections")
            return None
        metrics.CONNECTS.labels(self.protocol_name).inc()
        metrics.CONNECTIONS.labels(self.protocol_name).inc()
        session = self.session
        try:
            payload = await session.open()
        except (Unavailable, DatabaseError):
            return await self.refuse_unavailable()
        if session.closed:
            # Closed while opening (a timer, a revocation): leave what open() joined after the close.
            await session.close()
            return None
        return payload

    async def open_resumable(self, user, expires_at: float | None, pid: object, offset: object):
        """``start_session`` with a resumable session (sockets/resume.py): (connected payload,
        Resumed), or None if refused. Live events are buffered until ``flush_resumed``."""
        self._buffer = []
        stored = await resume.take(pid, user, self.connection_id) if pid is not None else None
        if stored is not None and stored.owner != self.connection_id:
            await self.take_over(str(user.pk), stored.owner)
        payload = await self.start_session(user, expires_at)
        session = self.session
        if payload is None or session is None:
            self._buffer = None
            return None
        resumed = await resume.restore(session, stored, offset)
        if not resumed.recovered:
            resumed.offset = await resume.head()
        if self.gone_while_opening(session):
            # Closed while the replay ran (too many live events held, ``overflow``; a take-over by
            # another resume of the session; a revocation; a Socket.IO CONNECT slower than its
            # connect timeout): nothing was sent and the stored session is left as it was, so the
            # client resumes again from its position (docs/protocol.md#resume).
            return None
        self.pid = resumed.pid
        await resume.remember(session, self.pid, create=not resumed.recovered)
        if self.gone_while_opening(session):
            return None
        payload["rooms"] = sorted(session.rooms)
        payload["recovered"] = resumed.recovered
        return payload, resumed

    def gone_while_opening(self, session: Session) -> bool:
        """Whether the socket was closed while its resume ran (its client went away, or a newer
        connection took the session over and told this one to close): nothing more to open, and
        its rooms are not stored (a closed session has left them)."""
        if self.closed or self.session is not session:
            self._buffer = None
            return True
        return False

    async def flush_resumed(self, resumed) -> None:
        """Send the replay, then the buffered live events, by position and each once; then live."""
        last = resumed.offset if resumed.recovered else None
        pending = resumed.entries
        while self._buffer is not None:
            buffered, self._buffer = self._buffer, []
            buffered = self._in_rooms(buffered)
            events = resume.merge(pending, buffered, last)
            pending = []
            if not events:
                break  # nothing awaited since the swap: the (empty) buffer holds nothing new
            for event in events:
                await self.send_frame(self.encoded(event))
                if event.position is not None:
                    last = self._last_position = event.position
        # Live copies of replayed events may still be on their way to the hub: dropped in deliver.
        self._horizon = resume.key_of(resumed.horizon) if resumed.recovered else None
        self._buffer = None

    def _in_rooms(self, events: list) -> list:
        """The held events of a room the socket is in now: a resume that recovered nothing left the
        rooms it had restored, and a permission re-check during the replay may have left one; their
        events held meanwhile are not sent, as a live socket that left a room gets none."""
        rooms = self.session.rooms if self.session is not None else set()
        return [event for event in events if not rooms.isdisjoint(event.rooms)]

    async def overflow(self) -> None:
        """More than ``RESUME_MAX_BUFFERED`` live events arrived while a resume's replay ran: drop
        them, say why and close (4008, retryable). What the client got is the start of its stream, in
        order, so it resumes again from the last position it received and misses nothing
        (docs/protocol.md#resume)."""
        dropped, self._buffer = self._buffer, None
        metrics.DROPPED.labels("slow_consumer").inc(len(dropped or ()) + 1)
        await self.close_with_error("slow_consumer", OVERFLOW_MESSAGE, CloseCode.SLOW_CONSUMER)

    async def take_over(self, user_id: str, stale: str) -> None:
        """The stale connection of a resumed session: no longer counted against the user's cap,
        and told to close, on whichever process holds it."""
        from ..publish import _send_to_rooms, control_message
        from ..rooms import user_room

        try:
            hub = await get_hub()
            await hub.presence.release(user_id, stale)
        except Exception as e:
            logger.warning("Could not release a resumed session's stale connection: %s", type(e).__name__)
        message = control_message([user_room(user_id)], "close", reason="session_resumed", code=int(CloseCode.NORMAL),
                                  message="The session was resumed by another connection", connection=stale)
        await _send_to_rooms(message, message["rooms"], "control:close")

    async def rooms_changed(self) -> None:
        """The session's rooms changed: store them for a resume (one write per change)."""
        if self.pid is not None and self.session is not None and not self.closed:
            await resume.remember(self.session, self.pid)

    async def refuse_unavailable(self) -> None:
        metrics.REFUSALS.labels("unavailable").inc()
        await self.send_frame(self.error_frame(ERROR, "unavailable", Unavailable.default_message))
        await self.close(CloseCode.SERVER_RESTART, "unavailable")
        return None

    async def end_session(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            metrics.CONNECTIONS.labels(self.protocol_name).dec()
            await self.hub.unregister(self, self.user_id)
            await session.close()

    # -- receiving -----------------------------------------------------------------

    async def admit(self) -> bool:
        """Count one client message against the rate limit; False if it must be dropped."""
        self.last_seen = time.time()
        if await self.spend():
            return True
        if not self.closed and (self.strikes == 1 or self.strikes % 10 == 0):
            await self.send_frame(self.error_frame(ERROR, "rate_limited", "Too many messages; slow down"))
        return False

    async def spend(self) -> bool:
        """Take one message from the bucket; after RATE_LIMIT_CLOSE_AFTER refusals in a row, close (4029)."""
        if self.bucket.take():
            self.strikes = 0
            return True
        self.strikes += 1
        metrics.RATE_LIMITED.labels(self.protocol_name).inc()
        if self.strikes >= rt_settings.RATE_LIMIT_CLOSE_AFTER:
            await self.close(CloseCode.RATE_LIMITED, "rate_limited")
        return False

    # -- sending -------------------------------------------------------------------

    async def send_frame(self, frame: str) -> bool:
        """Write one text frame unless the socket is closed or too far behind."""
        if self.closed:
            return False
        outlet = self.outlet
        if outlet.backlog() > rt_settings.MAX_OUTBOUND_BACKLOG_BYTES:
            metrics.DROPPED.labels("slow_consumer").inc()
            await self.close(CloseCode.SLOW_CONSUMER, "slow_consumer")
            return False
        if outlet.writes_frames and outlet.try_write(self.frame_memo(frame)):
            return True
        if not await outlet.send({"type": "websocket.send", "text": frame}):
            self.closed = True  # the client went away
            return False
        return True

    async def send_event(self, name: str, data: object) -> bool:
        """Send one event to this socket only, in its protocol's encoding."""
        return await self.send_frame(self.event_frame(Event.build(name, data, ())))

    def may_send_events(self) -> bool:
        """Whether an ``error`` frame may be sent now (Socket.IO: not before its namespace is connected)."""
        return True

    async def close_with_error(self, code: str, message: str, close_code: int) -> None:
        """Say why (an ``error`` frame with ``code``, where the protocol allows one now), then close."""
        if self.may_send_events():
            await self.send_frame(self.error_frame(ERROR, code, message))
        await self.close(close_code, code)

    async def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        self._buffer = None  # live events held for a resume: never sent now
        metrics.DISCONNECTS.labels(reason or "normal").inc()
        logger.info("Closing connection %s user=%s: %s (%d)", self.connection_id, self.user_id, reason or "normal", code,
                    extra=self.log_fields("disconnect", reason=reason or "normal", code=int(code)))
        await self.outlet.close(code)
        await self.end_session()

    # -- hub interface -------------------------------------------------------------

    def encoded(self, event: Event) -> str:
        """The event in this socket's protocol, encoded once per protocol per process."""
        frame = event.frames.get(self.protocol_name)
        if frame is None:
            frame = event.frames[self.protocol_name] = self.event_frame(event)
        return frame

    async def deliver(self, event: Event) -> bool:
        """An event from the hub, in this socket's protocol (its outlet writes the frame once per event)."""
        if self.closed:
            metrics.DROPPED.labels("closed").inc()
            return False
        buffer = self._buffer
        if buffer is not None:
            if len(buffer) >= rt_settings.RESUME_MAX_BUFFERED:
                await self.overflow()
                return False
            buffer.append(event)
            return True
        position = event.position
        if position is not None and self.pid is not None:
            horizon = self._horizon
            if horizon is not None and resume.at_or_before(resume.event_key(event), horizon):
                metrics.DROPPED.labels("replayed").inc()
                return True  # the live copy of an event the resume replayed (sockets/resume.py, step 5)
            if position == self._last_position:
                # Defence only: no known path repeats a position (docs/design.md#history); if one
                # appears, it is counted and logged rather than sent twice.
                metrics.DROPPED.labels("duplicate").inc()
                logger.warning("Connection %s: position %s delivered twice, sent once", self.connection_id, position,
                               extra=self.log_fields("duplicate", position=position))
                return True
            self._last_position = position
        return await self.send_frame(self.encoded(event))

    async def control(self, message: dict) -> None:
        """A control message from any process: close this user's socket, or re-check its rooms."""
        action = message.get("action")
        target = message.get("connection")
        if target is not None and target != self.connection_id:
            return  # for another socket of the user (a resumed session's stale one)
        if action == "close":
            reason = message.get("reason", "closed")
            await self.close_with_error(reason, message.get("message", "The connection was closed"),
                                        message.get("code", CloseCode.NORMAL))
        elif action == "recheck" and self.session is not None:
            dropped = await self.session.recheck()
            if dropped:
                await self.send_event(UNSUBSCRIBED, {"rooms": dropped, "reason": "permission_revoked"})

    @property
    def idle_timeout(self) -> float:
        return rt_settings.IDLE_TIMEOUT

    async def tick(self, now: float) -> None:
        """Called about once a second by the hub: token expiry and idle timers."""
        session = self.session
        if session is None or self.closed:
            return
        expires_at = session.expires_at
        if expires_at is not None:
            if now >= expires_at:
                await self.close_with_error("token_expired", "The access token has expired", CloseCode.AUTH_EXPIRED)
                return
            if not session.expiry_warned and now >= expires_at - rt_settings.AUTH_EXPIRY_WARNING:
                session.expiry_warned = True
                await self.send_event(AUTH_EXPIRING, {"expiresAt": expires_at, "expiresIn": round(expires_at - now, 3)})
        if now - self.last_seen > self.idle_timeout:
            await self.close_with_error("heartbeat_timeout", "No message from the client in time",
                                        CloseCode.HEARTBEAT_TIMEOUT)

    # -- protocol hooks -----------------------------------------------------------

    def event_frame(self, event: Event) -> str:
        raise NotImplementedError

    def error_frame(self, event: str, code: str, message: str, request: object = None) -> str:
        raise NotImplementedError


def resume_query(scope: dict) -> tuple[str | None, str | None]:
    """``?resume=<sessionId>&position=<position>`` of a ``/ws/`` handshake (docs/protocol.md#resume);
    checked by the resume itself (a bad one is a fresh session)."""
    from urllib.parse import parse_qs

    query = parse_qs(scope.get("query_string", b"").decode("latin-1"), max_num_fields=20)
    pid = query.get("resume", [None])[0]
    position = query.get("position", [None])[0]
    return pid, position


EMPTIED_AFTER_AUTH = {"headers": (), "query_string": b""}


def forget_handshake(scope: dict) -> None:
    """Empty what only the handshake reads (origin check, token) from a socket's scope, in place.

    The scope stays as long as the socket; its headers and query string hold the token,
    cookies and the like (~1 KiB for a browser), which nothing needs once the socket is
    authenticated, and which should not be in an error report of a later failure.
    """
    scope.update(EMPTIED_AFTER_AUTH)


class NativeConsumer(SocketConsumer):
    """``/ws/``: the native JSON protocol (docs/protocol.md)."""

    protocol_name = native.NAME
    frame_memo = FrameMemo()

    def event_frame(self, event: Event) -> str:
        return native.event_frame(event)

    def error_frame(self, event, code, message, request=None) -> str:
        return native.encode_error(event, code, message, request)

    async def websocket_connect(self, message):
        if not origin_allowed(self.scope):
            logger.info("Refused connection %s: forbidden_origin", self.connection_id,
                        extra=self.log_fields("refuse", reason="forbidden_origin"))
            metrics.REFUSALS.labels("forbidden_origin").inc()
            self.closed = True
            await self.outlet.send({"type": "websocket.close"})  # HTTP 403 before the handshake
            return
        auth = self.auth
        pid, position = resume_query(self.scope)
        forget_handshake(self.scope)
        await self.outlet.send({"type": "websocket.accept", "subprotocol": auth.subprotocol})
        if not auth.ok:
            await self.refuse(auth.error)
            return
        opened = await self.open_resumable(auth.user, auth.expires_at, pid, position)
        if opened is None:
            return
        payload, resumed = opened
        payload["heartbeatInterval"] = self.idle_timeout / 2
        # docs/protocol.md#resume: the session id and the position to resume from.
        payload["sessionId"] = self.pid
        payload["position"] = resumed.offset
        await self.send_frame(native.encode_event(CONNECTED, payload))
        await self.flush_resumed(resumed)
        logger.info("Connected %s user=%s protocol=%s", self.connection_id, self.user_id, self.protocol_name,
                    extra=self.log_fields("connect"))

    async def refuse(self, error: AuthError) -> None:
        logger.info("Refused connection %s: %s", self.connection_id, error.code,
                    extra=self.log_fields("refuse", reason=error.code))
        metrics.REFUSALS.labels(error.code).inc()
        await self.send_frame(native.encode_error(ERROR, error.code, error.message))
        await self.close(error.close_code, error.code)

    async def websocket_receive(self, message):
        if self.closed or self.session is None:
            return
        text = message.get("text")
        size = len(text.encode("utf-8")) if text is not None else len(message.get("bytes") or b"")
        if size > rt_settings.MAX_MESSAGE_BYTES:
            await self.send_frame(native.encode_error(ERROR, "message_too_big", "The message is too big"))
            await self.close(CloseCode.MESSAGE_TOO_BIG, "message_too_big")
            return
        if not await self.admit():
            return
        try:
            msg = native.decode(text if text is not None else message.get("bytes", b""))
        except ProtocolError as e:
            await self.send_frame(native.encode_error(ERROR, e.code, e.message))
            return
        if msg.event == "ping":
            await self.send_frame(native.encode_ack("pong", msg.ack, data={}) if msg.ack is not None else native.encode_event("pong", {}))
            return
        reply = await self.session.handle(msg.event, msg.data)
        frame = self.reply_frame(reply, msg.ack)
        if frame is not None:
            await self.send_frame(frame)

    @staticmethod
    def reply_frame(reply: Reply, ack: int | None) -> str | None:
        if ack is not None:
            if reply.ok:
                return native.encode_ack(reply.event, ack, data=reply.data)
            return native.encode_ack(reply.event, ack, error=reply.error_dict())
        if not reply.ok:
            return native.encode_error(reply.error_event, reply.error_code, reply.error_message, reply.request)
        if reply.result_event:
            return native.encode_event(reply.result_event, reply.data)
        return None


__all__ = ["SocketConsumer", "NativeConsumer"]
