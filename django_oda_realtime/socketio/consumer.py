"""Socket.IO v5 on the Session core: ``/socket.io/`` is the socket of ``/ws/``, encoded differently.

``SocketIOConsumer`` runs over the virtual WebSocket of one Engine.IO session
(``engine.py``): each message it receives is one Socket.IO packet or attachment, each
frame it sends one Engine.IO message, whatever carries the session (long-polling or a
WebSocket). As a ``SocketConsumer`` it shares with the native protocol the Session (auth,
rooms, permissions, commands, payloads), delivery from the hub with one encoding per
protocol (``42["inventory:updated",{event,type,data,id,timestamp}]``) and the close codes.

Connecting (namespace ``/`` only; another gets CONNECT_ERROR ``{"message": "Invalid
namespace"}``, as every Socket.IO server answers): the token is the CONNECT packet's
auth payload (``io(url, {auth: {token}})``), else the handshake's ``Authorization``
header or ``token`` query parameter. A refusal is CONNECT_ERROR ``{"message": code,
"data": {"code", "message"}}``: the client's ``connect_error`` ``err.message`` is
``token_missing``, ``token_invalid``, ``token_expired``, ``token_revoked`` or
``user_inactive``. The Engine.IO session stays for a retry; with no namespace connected it
is closed after ``SOCKETIO_CONNECT_TIMEOUT`` seconds. Accepted: ``40{"sid": connectionId}``,
then the ``connected`` event of ``/ws/``.

Every CONNECT is an authentication (issue #11, docs/security.md): a namespace DISCONNECT
(``41``) leaves the user's rooms, so a later CONNECT on the same Engine.IO session checks
its token again exactly like a new connection (expiry, revocation, ``is_active``), the
packet's or the handshake's, which is the only part of the handshake request kept; and
each DISCONNECT re-arms the connect deadline. CONNECT and DISCONNECT count against the
rate limit, as Engine.IO pings and pongs do (``engineio.control``).

Commands: ``42["subscribe:inventory",{...}]``. With an ack id the answer is
``43<id>[{"data": result}]`` or ``43<id>[{"error": {"code", "message"}}]``; without, a
failure is the command's error event (``inventory:updateError``) and a subscription's
result the ``subscribed`` event, as on ``/ws/``.

A malformed packet closes the connection (the Socket.IO protocol's rule, checked by its
conformance suite), after an ``error`` event if ``/`` was connected. A server-side close
with a terminal code sends DISCONNECT first, so the client does not reconnect by itself.
"""
import asyncio
import logging

from .. import metrics
from ..auth import AuthResult, authenticate, token_from_scope
from ..conf import rt_settings
from ..events import CONNECTED, Event, encode_json, envelope, error_envelope
from ..exceptions import CloseCode, ConnectRefused, ProtocolError
from ..protocol import socketio as codec
from ..server.headers import bearer
from ..server.outlets import Outlet
from ..sockets.consumers import SocketConsumer, forget_handshake
from ..sockets.session import Reply
from .engine import EngineOptions

logger = logging.getLogger("realtime.socketio")

INVALID_NAMESPACE = "Invalid namespace"
# To the Engine.IO session (engine.py): whether it counts as one with no namespace connected.
PENDING = {"type": "engineio.pending", "pending": True}
NOT_PENDING = {"type": "engineio.pending", "pending": False}
# Closed while a CONNECT is handled, for these reasons the transport just closes: a CONNECT_ERROR
# would stop socket.io-client for good, these ask it to reconnect and recover (docs/socketio.md#recovery).
RECONNECT_WHILE_CONNECTING = frozenset({"slow_consumer"})
CONNECT_WAIT_FACTOR = 3  # a CONNECT still being handled keeps its session open up to this many connect deadlines
MAX_REFUSED_CONNECTS = 5  # refused CONNECTs on one connection before it is closed (each costs a token check)


class SocketIOConsumer(SocketConsumer):
    """One Socket.IO client (one Engine.IO session) of the product: namespace ``/`` on a Session."""

    protocol_name = codec.NAME
    namespaces = frozenset({codec.DEFAULT_NAMESPACE})

    async def begin(self, scope, receive, send) -> None:
        self.decoder = codec.PacketDecoder()
        self.connected: dict[str, str] = {}  # namespace -> the Socket.IO sid given in its CONNECT
        self.connecting: str | None = None  # the namespace whose CONNECT is being handled
        self.refused = 0
        self._welcome: dict | None = None
        self._resumed = None  # sockets/resume.Resumed, from connect_namespace to namespace_connected
        self._deadline: asyncio.Task | None = None  # alive only while no namespace is connected
        self._token: str | None = None  # the handshake's token, checked again at each CONNECT without one
        await super().begin(scope, receive, send)

    async def end(self) -> None:
        try:
            await super().end()
        finally:
            if self._deadline is not None:
                self._deadline.cancel()

    def make_outlet(self, send) -> Outlet:
        # Its send is the Engine.IO session's (``engine.py``), which has its own bounded queue and
        # asks its carrier's outlet how to write each message.
        return Outlet(send)

    # -- configuration hooks (the conformance server overrides them) ----------------------

    def message_limit(self) -> int | None:
        """Largest Socket.IO packet accepted, in characters (the Engine.IO maxPayload also applies)."""
        return rt_settings.MAX_MESSAGE_BYTES

    def connect_timeout(self) -> float:
        return float(rt_settings.SOCKETIO_CONNECT_TIMEOUT)

    @property
    def idle_timeout(self) -> float:
        # Liveness is Engine.IO's heartbeat (ping/pong never reach this consumer).
        return float("inf")

    # -- the virtual WebSocket -----------------------------------------------------------

    async def websocket_connect(self, message):
        # The handshake's token is kept (to be checked again at each CONNECT); the rest of the
        # request (headers, cookies, query string) and any authentication made from it are
        # dropped: the scope lives as long as the session (docs/security.md).
        self._token = token_from_scope(self.scope)[0]
        forget_handshake(self.scope)
        self.scope.pop("realtime.auth", None)
        self.scope.pop("user", None)
        await self.outlet.send({"type": "websocket.accept"})
        self._arm_deadline()

    def _arm_deadline(self) -> None:
        """Close the session if no namespace is connected ``connect_timeout()`` from now."""
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = asyncio.ensure_future(self._close_unless_connected(self.connect_timeout()))

    def _disarm_deadline(self) -> None:
        deadline, self._deadline = self._deadline, None
        if deadline is not None and deadline is not asyncio.current_task():
            deadline.cancel()

    async def _close_unless_connected(self, delay: float) -> None:
        await asyncio.sleep(delay)
        if self.connecting is not None and not self.connected and not self.closed:
            # The client sent its CONNECT; it is being handled (its authentication waits its turn
            # in the database thread in a burst of reconnections, then rooms and replay,
            # docs/design.md#auth-queue): closing it now would only make it retry behind the same
            # queue. Closed if that CONNECT fails, or after CONNECT_WAIT_FACTOR deadlines in all.
            logger.info("A Socket.IO CONNECT still being handled at the connect deadline: kept open",
                        extra=self.log_fields("connect_wait", reason="connecting"))
            loop = asyncio.get_running_loop()
            give_up = loop.time() + delay * (CONNECT_WAIT_FACTOR - 1)
            while self.connecting is not None and not self.connected and not self.closed and loop.time() < give_up:
                await asyncio.sleep(1.0)
        if not self.connected:
            logger.info("Closing a Socket.IO connection that connected no namespace",
                        extra=self.log_fields("disconnect", reason="connect_timeout"))
            await self.close(CloseCode.PROTOCOL_ERROR, "connect_timeout")

    async def websocket_receive(self, message):
        if self.closed:
            return
        data = message.get("text")
        if data is None:
            data = message.get("bytes") or b""
        limit = self.message_limit()
        if limit is not None and len(data) > limit:
            return await self.fail("message_too_big", "The message is too big", CloseCode.MESSAGE_TOO_BIG)
        try:
            packet = self.decoder.feed(data)
        except ProtocolError as e:
            return await self.fail(e.code, e.message, CloseCode.PROTOCOL_ERROR)
        if packet is None:
            return  # a binary packet waiting for its attachments
        namespace = packet.namespace
        if packet.type == codec.CONNECT:
            if namespace in self.connected:
                return await self.fail("invalid_state", "Namespace already connected", CloseCode.PROTOCOL_ERROR)
            if not await self.admit():
                # Each CONNECT costs a token check (a database query) and a Redis round trip.
                if not self.closed:
                    await self.send_frame(codec.encode_connect_error(
                        namespace, "rate_limited", {"code": "rate_limited", "message": "Too many messages; slow down"}))
                    await self.count_refusal()
                return
            return await self.on_connect(namespace, packet.data)
        if namespace not in self.connected:
            return await self.fail("invalid_state", "Namespace not connected", CloseCode.PROTOCOL_ERROR)
        if packet.type == codec.DISCONNECT:
            del self.connected[namespace]
            await self.disconnect_namespace(namespace)
            if not self.connected and not self.closed:
                await self.outlet.send(PENDING)
                self._arm_deadline()
            await self.admit()  # counted after it is done: a DISCONNECT is never refused
            return
        if packet.type in (codec.EVENT, codec.BINARY_EVENT):
            return await self.handle_event(namespace, packet.event, packet.args, packet.id)
        # ACK: the server emits nothing with a callback, so there is nothing to match.

    async def engineio_control(self, message):
        """An Engine.IO ping or pong from the client (engine.py): counted like any message."""
        if not self.closed:
            await self.admit()

    async def admit(self) -> bool:
        if codec.DEFAULT_NAMESPACE in self.connected:
            return await super().admit()
        # No namespace connected: no ``error`` event to send (a refused CONNECT says why).
        return await self.spend()

    async def on_connect(self, namespace: str, auth: object) -> None:
        if namespace not in self.namespaces:
            await self.send_frame(codec.encode_connect_error(namespace, INVALID_NAMESPACE))
            return
        self.connecting = namespace
        try:
            sid = await self.connect_namespace(namespace, auth)
        except ConnectRefused as e:
            await self.send_frame(codec.encode_connect_error(namespace, e.message, e.data))
            await self.count_refusal()
            return
        finally:
            self.connecting = None
        if sid is None or self.closed:
            return
        self.connected[namespace] = sid
        self._disarm_deadline()
        await self.outlet.send(NOT_PENDING)
        await self.send_frame(codec.encode_connect(namespace, sid, self.pid))
        await self.namespace_connected(namespace, auth)

    async def count_refusal(self) -> None:
        self.refused += 1
        if self.refused >= MAX_REFUSED_CONNECTS:
            await self.close(CloseCode.RATE_LIMITED, "too_many_refused_connects")

    async def fail(self, code: str, message: str, close_code: CloseCode) -> None:
        """Bad input at the protocol level: say why (if we can), then close."""
        logger.info("Closing connection %s: %s", self.connection_id, code, extra=self.log_fields("fail", reason=code))
        await self.close_with_error(code, message, close_code)

    def may_send_events(self) -> bool:
        return codec.DEFAULT_NAMESPACE in self.connected

    async def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        if self.closed:
            return
        try:
            terminal = not CloseCode(code).retryable
        except ValueError:
            terminal = True
        if self.connecting is not None and reason not in RECONNECT_WHILE_CONNECTING:
            # Closed while connecting (e.g. too many sockets for the user): say so in the client's terms.
            await self.send_frame(codec.encode_connect_error(self.connecting, reason or "closed", {"code": reason or "closed"}))
        if terminal:
            # "io server disconnect": the client does not reconnect on its own.
            for namespace in list(self.connected):
                await self.send_frame(codec.encode_disconnect(namespace))
        self.connected.clear()
        await super().close(code, reason)

    async def send_messages(self, messages: list[str | bytes]) -> None:
        for msg in messages:
            if isinstance(msg, str):
                await self.send_frame(msg)
            elif not self.closed:
                await self.outlet.send({"type": "websocket.send", "bytes": msg})

    # -- encodings of the Session's frames -------------------------------------------------

    def event_frame(self, event: Event) -> str:
        return codec.event_frame(event)

    def error_frame(self, event, code, message, request=None) -> str:
        return codec.event_message(event, encode_json(error_envelope(event, code, message, request)))

    @staticmethod
    def event_message(name: str, data: object) -> str:
        return codec.event_message(name, encode_json(envelope(name, data)))

    # -- the product's namespace "/" --------------------------------------------------------

    async def connect_namespace(self, namespace: str, auth: object) -> str | None:
        """Authenticate and open the Session; the Socket.IO sid (the connection id), None if refused."""
        result = await self.authenticate_connect(auth)
        if not result.ok:
            logger.info("Refused connection %s: %s", self.connection_id, result.error.code,
                        extra=self.log_fields("refuse", reason=result.error.code))
            metrics.REFUSALS.labels(result.error.code).inc()
            error = result.error
            raise ConnectRefused(error.code, {"code": error.code, "message": error.message})
        pid = auth.get("pid") if isinstance(auth, dict) else None
        offset = auth.get("offset") if isinstance(auth, dict) else None
        opened = await self.open_resumable(result.user, result.expires_at, pid, offset)
        if opened is None:
            return None  # refused and closed by start_session (too many sockets)
        self._welcome, self._resumed = opened
        return self.session.connection_id

    async def namespace_connected(self, namespace: str, auth: object) -> None:
        welcome, self._welcome = self._welcome, None
        resumed, self._resumed = self._resumed, None
        # The connected event carries an offset (the client's own when recovered, else the head),
        # so a client that received no event before a drop can still recover (docs/socketio.md#recovery).
        await self.send_frame(codec.event_message(CONNECTED, encode_json(envelope(CONNECTED, welcome)),
                                                  position=resumed.offset))
        await self.flush_resumed(resumed)
        logger.info("Connected %s user=%s protocol=%s", self.connection_id, self.user_id, self.protocol_name,
                    extra=self.log_fields("connect"))

    async def authenticate_connect(self, auth: object) -> AuthResult:
        """The CONNECT auth payload's token, else the handshake request's (header or query),
        checked now: never an authentication remembered from the handshake or an earlier CONNECT."""
        token = auth.get("token") if isinstance(auth, dict) else None
        if token is None:
            token = self._token
        if isinstance(token, str) and bearer(token) is not None:
            token = bearer(token)
        return await authenticate(token, gone=self.engine_gone)

    def engine_gone(self) -> bool:
        """Whether this consumer's Engine.IO session has closed (its client left, or the server
        closed it): read in the database thread by ``authenticate`` (docs/design.md#auth-queue)."""
        engine = getattr(self.outlet.asgi_send, "__self__", None)
        return engine is not None and getattr(engine, "is_open", True) is False

    async def handle_event(self, namespace: str, name: str, args: list, ack: int | None) -> None:
        if not await self.admit():
            if ack is not None and not self.closed:
                await self.send_messages(self.reply_messages(Reply(name, None, "rate_limited", "Too many messages; slow down"), ack))
            return
        if codec.contains_binary(args):
            reply = Reply(name, None, "binary_not_supported", "Binary arguments are not supported; send JSON")
        elif len(args) > 1:
            reply = Reply(name, None, "validation_error", "A command takes one argument", request=args)
        else:
            reply = await self.session.handle(name, args[0] if args else None)
        await self.send_messages(self.reply_messages(reply, ack))

    def reply_messages(self, reply: Reply, ack: int | None) -> list[str | bytes]:
        if ack is not None:
            body = {"data": reply.data} if reply.ok else {"error": reply.error_dict()}
            return codec.encode_ack(codec.DEFAULT_NAMESPACE, ack, [body])
        if not reply.ok:
            return [self.error_frame(reply.error_event, reply.error_code, reply.error_message, reply.request)]
        if reply.result_event:
            return [self.event_message(reply.result_event, reply.data)]
        return []

    async def disconnect_namespace(self, namespace: str) -> None:
        await self.end_session()


def engine_options() -> EngineOptions:
    """The product's Engine.IO options, from ``REALTIME`` settings."""
    return EngineOptions(
        ping_interval=float(rt_settings.PING_INTERVAL),
        ping_timeout=float(rt_settings.PING_TIMEOUT),
        max_payload=int(rt_settings.SOCKETIO_MAX_PAYLOAD),
        max_buffer=int(rt_settings.MAX_OUTBOUND_BACKLOG_BYTES),
        max_pending_per_address=_cap(rt_settings.SOCKETIO_MAX_PENDING_PER_ADDRESS),
        max_pending=_cap(rt_settings.SOCKETIO_MAX_PENDING),
    )


def _cap(value) -> int | None:
    return None if value is None else int(value)


__all__ = ["SocketIOConsumer", "engine_options"]
