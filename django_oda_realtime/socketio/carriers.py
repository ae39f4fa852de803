"""The carriers of an Engine.IO session: the ASGI consumers of its WebSocket and its long-polling requests.

They only move Engine.IO packets between the wire and the session (``engine.py``):
the Socket.IO protocol and the Session core are above, in ``SocketIOConsumer``. A
WebSocket carrier writes through its outlet (``server/outlets.py``), which the session
asks for the frame of each message. Neither is a channel-layer member, and both skip
channels' per-message ``close_old_connections`` thread hop
(docs/design.md#thread-hop-per-message): they never touch the ORM.

Refusals: a malformed query string, an unknown transport or an Engine.IO version other
than 4 get HTTP 400 with the reference server's JSON body (``{"code": 3, "message":
"Bad request"}``); a forbidden ``Origin`` gets 403 (HTTP) or a refused handshake
(WebSocket). A session id that is unknown here (expired, or owned by another process
without sticky sessions) gets 400 ``Session ID unknown``: clients then reconnect.
"""
import logging

from channels.exceptions import StopConsumer
from channels.generic.http import AsyncHttpConsumer

from ..exceptions import CloseCode, PollError, ProtocolError, TooManySessions
from ..protocol import socketio as codec
from ..server.headers import header
from ..server.outlets import FrameMemo, outlet_for
from ..sockets.dispatch import DirectConsumer
from ..sockets.origins import origin_allowed
from .engine import EngineServer, EngineSocket

logger = logging.getLogger("realtime.transports")  # the name logs had before the move

TEXT = b"text/plain; charset=UTF-8"
JSON = b"application/json"
CORS_MAX_AGE = b"600"


class _Carrier(DirectConsumer):
    """A bare consumer: no channel layer, no thread hop per message."""

    def __init__(self, server: EngineServer) -> None:  # as_asgi(server=...)
        self.server = server

    async def begin(self, scope, receive, send) -> None:
        self.scope = scope
        self.base_send = send
        self._receive = receive
        await self.setup()

    async def end(self) -> None:
        await self.teardown()

    async def setup(self) -> None:
        pass

    async def teardown(self) -> None:
        pass

    def origin_ok(self) -> bool:
        return not self.server.check_origin or origin_allowed(self.scope)


class WebSocketCarrier(_Carrier):
    """``/socket.io/`` over WebSocket: a new session, or the upgrade of a polling one (``sid``)."""

    message_frame = FrameMemo(codec.message(""))  # an Engine.IO message's WebSocket frame, once per text

    async def setup(self) -> None:
        self.engine_socket: EngineSocket | None = None
        self.closed = False
        self.outlet = outlet_for(self.base_send)

    async def teardown(self) -> None:
        # Also when daphne cancels us because the client vanished without a close frame.
        engine_socket, self.engine_socket = self.engine_socket, None
        if engine_socket is not None:
            await engine_socket.websocket_gone(self)
        self.outlet.stop()

    async def websocket_connect(self, message):
        try:
            request = codec.parse_query(self.scope.get("query_string", b""))
            if request.transport != "websocket":
                raise ProtocolError("Use transport=websocket on a WebSocket", code="bad_request")
        except ProtocolError as e:
            logger.info("Refused an Engine.IO WebSocket: %s", e.code)
            return await self.refuse()
        if not self.origin_ok():
            logger.info("Refused an Engine.IO WebSocket from a forbidden origin")
            return await self.refuse()
        if request.sid is None:
            try:
                self.server.admit(self.scope)
            except TooManySessions as e:
                return await self.refuse(e.status, codec.engine_error(e.code))
            await self.outlet.send({"type": "websocket.accept"})
            try:
                self.engine_socket = self.server.open(self.scope, "websocket", ws=self)
            except TooManySessions:
                return await self.close(CloseCode.TOO_MANY_CONNECTIONS)  # filled up while accepting
            await self.send(self.engine_socket.open_packet())
            self.engine_socket.start()
            return
        engine_socket = self.server.get(request.sid)
        await self.outlet.send({"type": "websocket.accept"})
        if engine_socket is None or not engine_socket.can_upgrade():
            # Accept, then close: clients see a failed probe and keep polling.
            return await self.close(CloseCode.PROTOCOL_ERROR)
        self.engine_socket = engine_socket
        engine_socket.begin_upgrade(self)

    async def refuse(self, status: int = 403, body: str = "") -> None:
        """Refuse the handshake: with ``status`` and ``body`` where the server can send them
        (the ASGI ``websocket.http.response`` extension: uvicorn), else HTTP 403 (daphne)."""
        self.closed = True
        if status != 403 and "websocket.http.response" in (self.scope.get("extensions") or {}):
            await self.outlet.send({"type": "websocket.http.response.start", "status": status,
                                    "headers": [(b"content-type", JSON)]})
            await self.outlet.send({"type": "websocket.http.response.body", "body": body.encode()})
            return
        await self.outlet.send({"type": "websocket.close"})  # HTTP 403 before the handshake

    async def websocket_receive(self, message):
        engine_socket = self.engine_socket
        if self.closed or engine_socket is None:
            return
        frame = message.get("text")
        if frame is None:
            frame = message.get("bytes") or b""
        if len(frame) > engine_socket.options.max_payload:
            await engine_socket.close("message over maxPayload", code=CloseCode.MESSAGE_TOO_BIG)
            return await self.close(CloseCode.MESSAGE_TOO_BIG)
        try:
            packet = codec.decode_packet(frame)
        except ProtocolError:
            if engine_socket.ws is self:
                await engine_socket.close("malformed packet", code=CloseCode.PROTOCOL_ERROR)
            return await self.close(CloseCode.PROTOCOL_ERROR)
        if engine_socket.ws is self:
            await engine_socket.receive(packet)
        else:
            await engine_socket.probe_packet(self, packet)

    async def websocket_disconnect(self, message):
        self.closed = True
        raise StopConsumer()

    # -- engine.Carrier -------------------------------------------------------------------

    async def send(self, frame: str | bytes) -> bool:
        if self.closed:
            return False
        key = "bytes" if isinstance(frame, bytes) else "text"
        if not await self.outlet.send({"type": "websocket.send", key: frame}):
            self.closed = True  # the client went away
            return False
        return True

    def try_write_message(self, text: str) -> bool:
        """The Engine.IO message of ``text`` straight to the connection (daphne); False: use ``send``."""
        outlet = self.outlet
        return not self.closed and outlet.writes_frames and outlet.try_write(self.message_frame(text))

    def pending(self) -> int:
        return self.outlet.backlog()

    async def close(self, code: int = CloseCode.NORMAL) -> None:
        if self.closed:
            return
        self.closed = True
        await self.outlet.close(code)

class PollingCarrier(_Carrier, AsyncHttpConsumer):
    """``/socket.io/`` over HTTP long-polling: the handshake ``GET``, then ``GET``/``POST`` with ``sid``."""

    async def setup(self) -> None:
        self.body = []
        self.size = 0
        self.too_big = False
        self.allowed = False  # the Origin passed: only then the CORS headers

    async def http_request(self, message):
        chunk = message.get("body", b"")
        self.size += len(chunk)
        if self.size > self.server.options().max_payload:
            self.too_big = True  # keep reading (and dropping) the body; answer 413 at its end
        elif chunk:
            self.body.append(chunk)
        if not message.get("more_body"):
            try:
                await self.handle(b"".join(self.body))
            finally:
                await self.disconnect()
            raise StopConsumer()

    async def handle(self, body: bytes) -> None:
        method = self.scope["method"]
        self.allowed = self.origin_ok()
        if not self.allowed:
            return await self.reply(403, codec.engine_error("forbidden"), JSON)
        if method == "OPTIONS":
            return await self.preflight()
        try:
            request = codec.parse_query(self.scope.get("query_string", b""))
            if request.transport != "polling":
                raise ProtocolError("A WebSocket transport needs a WebSocket", code="bad_request")
        except ProtocolError as e:
            return await self.reply(400, codec.engine_error(e.code), JSON)
        if request.sid is None:
            if method != "GET":
                return await self.reply(400, codec.engine_error("bad_handshake_method"), JSON)
            try:
                engine_socket = self.server.open(self.scope, "polling")
            except TooManySessions as e:
                return await self.reply(e.status, codec.engine_error(e.code), JSON)
            engine_socket.start()
            return await self.reply(200, engine_socket.open_packet())
        engine_socket = self.server.get(request.sid)
        if engine_socket is None:
            return await self.reply(400, codec.engine_error("unknown_sid"), JSON)
        try:
            if self.too_big:
                await engine_socket.close("payload over maxPayload", code=CloseCode.MESSAGE_TOO_BIG)
                return await self.reply(413, codec.engine_error("bad_request"), JSON)
            if method == "GET":
                payload = await engine_socket.poll(self._receive)
                if payload is not None:
                    await self.reply(200, payload)
            elif method == "POST":
                await engine_socket.post(body)
                await self.reply(200, "ok")
            else:
                await self.reply(400, codec.engine_error("bad_request"), JSON)
        except PollError as e:
            await self.reply(400, codec.engine_error(e.code), JSON)

    async def preflight(self) -> None:
        headers = [(b"access-control-allow-methods", b"GET, POST, OPTIONS"), (b"access-control-max-age", CORS_MAX_AGE)]
        requested = header(self.scope, b"access-control-request-headers")
        if requested:
            headers.append((b"access-control-allow-headers", requested.encode("latin-1")))
        await self.send_response(204, b"", headers=self._cors() + headers)

    def _cors(self) -> list[tuple[bytes, bytes]]:
        """Cross-origin access for an allowed browser origin (checked by ``origin_ok``)."""
        origin = header(self.scope, b"origin")
        if origin is None or not self.allowed:
            return []
        return [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-allow-credentials", b"true"),
            (b"vary", b"Origin"),
        ]

    async def reply(self, status: int, body: str, content_type: bytes = TEXT) -> None:
        headers = [(b"content-type", content_type), (b"cache-control", b"no-store"), *self._cors()]
        try:
            await self.send_response(status, body.encode("utf-8"), headers=headers)
        except Exception:
            # daphne raises Disconnected when the client went away meanwhile.
            logger.debug("Polling response not delivered: the client left")

    async def http_disconnect(self, message):
        raise StopConsumer()


__all__ = ["PollingCarrier", "WebSocketCarrier"]
