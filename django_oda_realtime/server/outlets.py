"""Outlets: how bytes reach one socket of this server, the only place that knows the server.

Each WebSocket gets one ``Outlet``, chosen once by ``outlet_for(send)`` from the ASGI
``send`` the server gave it:

- ``DaphneOutlet`` (daphne): ``send`` returns at once and Twisted buffers without
  limit (docs/design.md#daphne-backpressure), so ``backlog()`` reads the Twisted
  transport's buffer and the socket closes itself as a slow consumer past its bound;
  ``try_write(wire)`` is the fan-out fast path (below).
- ``UvicornOutlet`` (uvicorn): ``send`` awaits until the transport is writable again,
  so frames that would wait go to a bounded outbox written by a task of the socket,
  and one client that never reads cannot stall the hub's fan-out.
- ``AsgiOutlet``: a plain ASGI ``send``, for any other server, for the virtual
  WebSocket of an Engine.IO session (which has its own bounded queue) and for tests.

Every read of daphne's, Twisted's, autobahn's or uvicorn's private attributes is in this
folder (here and in ``serving.py``); each has a fallback (the plain ``AsgiOutlet``
behaviour) when the library no longer looks as expected, and a test that pins it
(tests/realtime/test_outbound.py, tests/realtime/test_outlets.py).
"""
import asyncio
from collections import deque
from collections.abc import Callable
import functools

from websockets.frames import Frame, Opcode

from .. import metrics

SLOW_CONSUMER = 4008  # exceptions.CloseCode.SLOW_CONSUMER (not imported: this layer knows no application)


class Outlet:
    """A plain ASGI ``send``: nothing is known of the server's buffers."""

    __slots__ = ("asgi_send",)
    name = "asgi"
    writes_frames = False  # whether try_write can take finished WebSocket frames

    def __init__(self, send: Callable) -> None:
        self.asgi_send = send

    async def send(self, message: dict) -> bool:
        """One ASGI message to the server; False if the client has gone (daphne raises ``Disconnected``)."""
        try:
            await self.asgi_send(message)
        except Exception:
            return False
        return True

    def backlog(self) -> int:
        """Bytes waiting to be written to this socket (0 where the server does not say)."""
        return 0

    def try_write(self, wire: bytes) -> bool:
        """A finished WebSocket frame straight to the connection; False: use ``send``."""
        return False

    async def close(self, code: int) -> None:
        """Send the close frame; never raises (the client may be gone already)."""
        await self.send({"type": "websocket.close", "code": int(code)})

    def stop(self) -> None:
        """The socket has ended: drop anything still queued."""


AsgiOutlet = Outlet


def outlet_for(send: Callable) -> Outlet:
    """The outlet for a WebSocket of the server that gave this ``send``: chosen once per connection."""
    parts = _daphne_parts(send)
    if parts is not None:
        return DaphneOutlet(send, *parts)
    transport = asyncio_transport(send)
    if transport is not None:
        return UvicornOutlet(send, transport)
    return Outlet(send)


# -- daphne ------------------------------------------------------------------------------------
#
# daphne's ``send`` for one text frame goes through ``Server.handle_reply`` ->
# ``WebSocketProtocol.serverSend`` -> autobahn's ``sendMessage``/``sendFrame``/
# ``sendData`` (which formats a debug log line, with colours, on every call even
# when debug logging is off) -> Twisted's ``transport.write``, which only buffers
# and registers the socket with the event loop; the bytes leave on the next loop
# iteration (``doWrite``) and the socket is unregistered again. Measured with
# py-spy on a 1,000-socket fan-out that path was ~80% of the server's CPU and
# made daphne's per-send cost, not ours, the limit (docs/benchmarks.md).
#
# ``try_write`` writes a finished WebSocket frame (built once per text by ``FrameMemo``)
# straight to the connection: with ``send()`` on the socket when nothing is waiting in
# Twisted's buffer (order is kept: any earlier frame still buffered means this one is
# appended behind it), else with ``transport.write``. It declines (returns False, and the
# caller uses the normal ASGI send) whenever the frame would not be exactly what autobahn
# would send: the socket is not OPEN, autobahn has its own queue, per-message compression
# or TLS is on, the payload exceeds autobahn's limit. daphne's ASGI ``send`` is
# ``partial(server.handle_reply, protocol)``: that is how the protocol is found.


class DaphneOutlet(Outlet):
    """One object per socket (slots), holding what ``_Pending`` and ``_DirectWrite`` hold."""

    __slots__ = ("protocol", "transport", "sock")
    name = "daphne"
    writes_frames = True

    def __init__(self, send: Callable, protocol, transport, sock) -> None:
        super().__init__(send)
        self.protocol = protocol
        self.transport = transport
        self.sock = sock

    def backlog(self) -> int:
        return pending_bytes(self.transport)

    def try_write(self, wire: bytes) -> bool:
        if write_frame(self.protocol, self.transport, self.sock, wire):
            metrics.DIRECT_WRITES.value += 1
            return True
        return False


def backlog_probe(send: Callable) -> Callable[[], int] | None:
    """A function returning the bytes buffered for this daphne socket, or None if unknowable."""
    if not isinstance(send, functools.partial) or not send.args:
        return None
    transport = getattr(send.args[0], "transport", None)
    if transport is None or not hasattr(transport, "dataBuffer"):
        return None
    return _Pending(transport)


class _Pending:
    """Bytes waiting in a Twisted transport's buffer. An object with slots, not a closure:
    one is kept by every socket (a closure and its cell cost ~250 bytes, this ~50)."""

    __slots__ = ("transport",)

    def __init__(self, transport) -> None:
        self.transport = transport

    def __call__(self) -> int:
        return pending_bytes(self.transport)


def pending_bytes(transport) -> int:
    """Bytes waiting in a Twisted transport's buffer."""
    return len(transport.dataBuffer) - getattr(transport, "offset", 0) + getattr(transport, "_tempDataLen", 0)


def ws_text_frame(text: str) -> bytes:
    """One unmasked, unfragmented WebSocket text frame (RFC 6455) carrying ``text``."""
    return Frame(Opcode.TEXT, text.encode("utf-8")).serialize(mask=False)


class FrameMemo:
    """``memo(text) -> bytes``: the WebSocket frame of ``prefix + text``, built once while the same
    ``text`` object comes again: the hub hands every socket of one protocol the same encoded
    event (``Event.frames``), so a fan-out frames each event once per protocol and process."""

    __slots__ = ("prefix", "text", "wire")

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.text: str | None = None
        self.wire = b""

    def __call__(self, text: str) -> bytes:
        if text is not self.text:
            self.wire = ws_text_frame(self.prefix + text if self.prefix else text)
            self.text = text  # held, so its id cannot be reused by another string
        return self.wire


def direct_writer(send: Callable) -> "_DirectWrite | None":
    """For a daphne WebSocket: ``write(frame) -> bool`` (False: use ``send``); None for any other server."""
    parts = _daphne_parts(send)
    return _DirectWrite(*parts) if parts is not None else None


def transport_gone(transport) -> bool:
    """Whether a Twisted transport's connection is closing or closed (a plain read of its flags:
    safe from the database thread, docs/design.md#auth-queue)."""
    return bool(getattr(transport, "disconnecting", False) or getattr(transport, "disconnected", False))


def gone_probe(send: Callable) -> Callable[[], bool] | None:
    """``gone()`` of a daphne WebSocket's ``send`` (also before its handshake is answered); None for
    other servers."""
    parts = _daphne_parts(send)
    return None if parts is None else functools.partial(transport_gone, parts[1])


def _daphne_parts(send: Callable) -> tuple | None:
    """(autobahn protocol, Twisted transport, socket) of a daphne WebSocket's ``send``; None for any other server."""
    if not isinstance(send, functools.partial) or not send.args:
        return None
    try:
        from daphne.ws_protocol import WebSocketProtocol
    except ImportError:  # pragma: no cover - daphne is a dependency
        return None
    protocol = send.args[0]
    transport = getattr(protocol, "transport", None)
    if not isinstance(protocol, WebSocketProtocol) or transport is None:
        return None
    sock = getattr(transport, "socket", None)
    if sock is None or not hasattr(transport, "dataBuffer") or not hasattr(transport, "_tempDataLen"):
        return None
    return protocol, transport, sock


class _DirectWrite:
    """``write(frame) -> bool`` of ``direct_writer`` (slots, not a closure: one per socket)."""

    __slots__ = ("protocol", "transport", "sock")

    def __init__(self, protocol, transport, sock) -> None:
        self.protocol = protocol
        self.transport = transport
        self.sock = sock

    def __call__(self, frame: bytes) -> bool:
        return write_frame(self.protocol, self.transport, self.sock, frame)


def write_frame(protocol, transport, sock, frame: bytes) -> bool:
    """``frame`` straight to a daphne connection, behind anything Twisted still buffers; False (nothing
    written) whenever autobahn would not send exactly this frame."""
    if (
        protocol.state != protocol.STATE_OPEN
        or protocol.send_queue
        or protocol._perMessageCompress is not None
        or 0 < protocol.maxMessagePayloadSize < len(frame)
        or getattr(transport, "TLS", False)
        or not transport.connected
        or transport.disconnecting
    ):
        return False
    if not transport._tempDataLen and len(transport.dataBuffer) == transport.offset:
        try:
            sent = sock.send(frame)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            sent = 0  # Twisted's own write path meets the error and closes the connection
        if sent == len(frame):
            return True
        frame = frame[sent:]
    transport.write(frame)
    return True


# -- uvicorn -----------------------------------------------------------------------------------
#
# uvicorn's ``send`` awaits until the transport is writable again, ``websocket.close``
# included: a client that never reads never gets a close frame, and uvicorn's own
# keep-alive timeout only calls ``transport.close()``, which waits for the buffer to
# flush, so the connection would stay. So frames that would wait are queued in the
# outbox, the close frame too (after them, never awaited), and a socket closed as a
# slow consumer is aborted (RST) once a short grace period has passed without the
# close completing.

SLOW_CLOSE_GRACE = 2.0  # seconds


def asyncio_transport(send: Callable):
    """uvicorn: ``send`` is a bound method of the connection's protocol; its asyncio transport, else None."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if not all(hasattr(transport, name) for name in ("abort", "is_closing", "get_write_buffer_size")):
        return None
    return transport


def transport_aborter(send: Callable) -> Callable[[], None] | None:
    """For uvicorn: a function aborting the connection unless it closed already; else None."""
    transport = asyncio_transport(send)
    if transport is None:
        return None
    return functools.partial(_abort_unless_closed, transport)


def _abort_unless_closed(transport) -> None:
    if not transport.is_closing() or transport.get_write_buffer_size():
        transport.abort()


class UvicornOutlet(Outlet):
    __slots__ = ("transport", "low_water", "outbox", "outbox_bytes", "writer", "gone")
    name = "uvicorn"

    def __init__(self, send: Callable, transport) -> None:
        super().__init__(send)
        self.transport = transport
        # While the transport's buffer is at most the low-water mark, send writes at once.
        self.low_water = transport.get_write_buffer_limits()[0]
        self.outbox: deque | None = None  # (ASGI message, size) waiting for the writer task; made when needed
        self.outbox_bytes = 0
        self.writer: asyncio.Task | None = None  # alive only while the outbox is not empty
        self.gone = False

    async def send(self, message: dict) -> bool:
        if self.gone:
            return False
        if self.writer is None and self.transport.get_write_buffer_size() <= self.low_water:
            if not await super().send(message):
                self.gone = True
                return False
            return True
        self._post(message, len(message.get("text") or message.get("bytes") or ""))
        return True

    def backlog(self) -> int:
        return self.outbox_bytes + self.transport.get_write_buffer_size()

    async def close(self, code: int) -> None:
        if code == SLOW_CONSUMER:
            self.stop()
            asyncio.get_running_loop().call_later(SLOW_CLOSE_GRACE, _abort_unless_closed, self.transport)
        self._post({"type": "websocket.close", "code": int(code)}, 0)

    def _post(self, message: dict, size: int) -> None:
        if self.outbox is None:
            self.outbox = deque()
        self.outbox.append((message, size))
        self.outbox_bytes += size
        if self.writer is None:
            self.writer = asyncio.get_running_loop().create_task(self._write_outbox())

    async def _write_outbox(self) -> None:
        outbox = self.outbox
        try:
            while outbox:
                message, size = outbox[0]
                try:
                    await self.asgi_send(message)
                except Exception:
                    self.gone = True  # the client went away: nothing more can be written
                    outbox.clear()
                    self.outbox_bytes = 0
                    return
                outbox.popleft()
                self.outbox_bytes -= size
        finally:
            if self.writer is asyncio.current_task():
                self.writer = None

    def stop(self) -> None:
        writer, self.writer = self.writer, None
        if writer is not None:
            writer.cancel()
        self.outbox = None
        self.outbox_bytes = 0


__all__ = ["Outlet", "AsgiOutlet", "DaphneOutlet", "UvicornOutlet", "FrameMemo", "outlet_for", "ws_text_frame"]
