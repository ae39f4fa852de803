"""The sockets: the only readers and writers of a WebSocket.

``SocketConsumer`` is what both protocols share: the origin and token checks,
a ``Session``, delivery of hub events with a bounded outbound backlog, closing
with a documented code. A socket is not a channel-layer member (the process's
hub is, see ``hub.py``), and its dispatch skips channels' per-message
``close_old_connections`` thread hop (TRAPS.md): handlers that touch the ORM run
in ``database_sync_to_async``, which closes old connections itself.
"""
import logging

from channels.consumer import AsyncConsumer, get_handler_name
from channels.exceptions import StopConsumer
from channels.utils import await_many_dispatch

from .auth import AuthResult
from .conf import rt_settings
from .events import CONNECTED, ERROR, Event
from .exceptions import AuthError, CloseCode, ProtocolError
from .hub import get_hub
from .origins import origin_allowed
from .outbound import backlog_probe
from .protocol import native
from .session import Reply, Session

logger = logging.getLogger("realtime.consumers")


class SocketConsumer(AsyncConsumer):
    """Shared machinery of a realtime socket, whatever its wire protocol."""

    protocol_name = "base"

    async def __call__(self, scope, receive, send):
        self.scope = scope
        self.base_send = send
        self.session: Session | None = None
        self.closed = False
        self._pending = backlog_probe(send)
        try:
            await await_many_dispatch([receive], self.dispatch)
        except StopConsumer:
            pass
        finally:
            # Also when daphne cancels us because the client vanished without a
            # close frame: leave every room so no group membership stays behind.
            await self.end_session()

    async def dispatch(self, message):
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # -- session -------------------------------------------------------------------

    @property
    def auth(self) -> AuthResult:
        return self.scope["realtime.auth"]

    async def start_session(self, user) -> dict:
        self.session = Session(user, self, await get_hub(), self.protocol_name)
        return await self.session.open()

    async def end_session(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            await session.close()

    @property
    def connection_id(self) -> str:
        return self.session.connection_id if self.session else "-"

    # -- sending -------------------------------------------------------------------

    async def send_frame(self, frame: str) -> bool:
        """Write one text frame unless the socket is closed or too far behind."""
        if self.closed:
            return False
        if self._pending is not None and self._pending() > rt_settings.MAX_OUTBOUND_BACKLOG_BYTES:
            await self.close(CloseCode.SLOW_CONSUMER, "slow_consumer")
            return False
        try:
            await self.base_send({"type": "websocket.send", "text": frame})
        except Exception:
            # daphne raises Disconnected into send() when the client went away.
            self.closed = True
            return False
        return True

    async def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        logger.info("Closing connection %s: %s (%d)", self.connection_id, reason or "normal", code)
        try:
            await self.base_send({"type": "websocket.close", "code": int(code)})
        except Exception:
            pass
        await self.end_session()

    # -- hub interface -------------------------------------------------------------

    async def deliver(self, event: Event) -> None:
        frame = event.frames.get(self.protocol_name)
        if frame is None:
            frame = event.frames[self.protocol_name] = self.event_frame(event)
        await self.send_frame(frame)

    async def control(self, message: dict) -> None:
        """A control message from the layer, e.g. closing a revoked user's sockets."""
        if message.get("action") == "close":
            await self.send_frame(self.error_frame(ERROR, message.get("reason", "closed"), message.get("message", "")))
            await self.close(message.get("code", CloseCode.NORMAL), message.get("reason", ""))
        elif message.get("action") == "drop_rooms" and self.session is not None:
            await self.session.drop_rooms(message.get("drop", ()))

    # -- protocol hooks -----------------------------------------------------------

    def event_frame(self, event: Event) -> str:
        raise NotImplementedError

    def error_frame(self, event: str, code: str, message: str, request: object = None) -> str:
        raise NotImplementedError


class NativeConsumer(SocketConsumer):
    """``/ws/``: the native JSON protocol (docs/protocol.md)."""

    protocol_name = native.NAME

    def event_frame(self, event: Event) -> str:
        return native.event_frame(event)

    def error_frame(self, event, code, message, request=None) -> str:
        return native.encode_error(event, code, message, request)

    async def websocket_connect(self, message):
        if not origin_allowed(self.scope):
            logger.info("Refused a socket from a forbidden origin")
            self.closed = True
            await self.base_send({"type": "websocket.close"})  # HTTP 403 before the handshake
            return
        auth = self.auth
        await self.base_send({"type": "websocket.accept", "subprotocol": auth.subprotocol})
        if not auth.ok:
            await self.refuse(auth.error)
            return
        payload = await self.start_session(auth.user)
        await self.send_frame(native.encode_event(CONNECTED, payload))
        logger.info("Connected %s user=%s protocol=%s", self.connection_id, auth.user.pk, self.protocol_name)

    async def refuse(self, error: AuthError) -> None:
        logger.info("Refused a socket: %s", error.code)
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

    async def websocket_disconnect(self, message):
        self.closed = True
        await self.end_session()
        raise StopConsumer()


__all__ = ["SocketConsumer", "NativeConsumer"]
