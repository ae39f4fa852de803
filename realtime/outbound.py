"""How many bytes a socket has waiting to be written, and the fan-out fast path on daphne.

daphne has no outbound backpressure (TRAPS.md, django/daphne#170): ``send()``
returns at once and Twisted buffers without limit for a client that never reads.
Its ASGI ``send`` is ``partial(server.handle_reply, protocol)``, so the Twisted
transport's buffer can be read; a connection past the bound is closed as a slow
consumer. Servers that apply backpressure themselves (uvicorn awaits the drain)
need no probe: ``backlog_probe`` returns None for them.
"""
from collections.abc import Callable
import functools

from websockets.frames import Frame, Opcode


def backlog_probe(send: Callable) -> Callable[[], int] | None:
    """A function returning the bytes buffered for this socket, or None if unknowable."""
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
        transport = self.transport
        return (
            len(transport.dataBuffer)
            - getattr(transport, "offset", 0)
            + getattr(transport, "_tempDataLen", 0)
        )


# -- the fan-out fast path on daphne -------------------------------------------------------
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
# ``direct_writer`` writes a finished WebSocket frame (built once per event per
# protocol by ``ws_text_frame``) straight to the connection: with ``send()`` on
# the socket when nothing is waiting in Twisted's buffer (order is kept: any
# earlier frame still buffered means this one is appended behind it), else with
# ``transport.write``. It declines (returns False, and the caller uses the normal
# ASGI send) whenever the frame would not be exactly what autobahn would send:
# the socket is not OPEN, autobahn has its own queue, per-message compression or
# TLS is on, the payload exceeds autobahn's limit.


def ws_text_frame(text: str) -> bytes:
    """One unmasked, unfragmented WebSocket text frame (RFC 6455) carrying ``text``."""
    return Frame(Opcode.TEXT, text.encode("utf-8")).serialize(mask=False)


def direct_writer(send: Callable) -> Callable[[bytes], bool] | None:
    """For a daphne WebSocket: ``write(frame) -> bool`` (False: use ``send``); None for any other server."""
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
    return _DirectWrite(protocol, transport, sock)


class _DirectWrite:
    """``write(frame) -> bool`` of ``direct_writer`` (slots, not a closure: one per socket)."""

    __slots__ = ("protocol", "transport", "sock")

    def __init__(self, protocol, transport, sock) -> None:
        self.protocol = protocol
        self.transport = transport
        self.sock = sock

    def __call__(self, frame: bytes) -> bool:
        protocol, transport = self.protocol, self.transport
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
                sent = self.sock.send(frame)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                sent = 0  # Twisted's own write path meets the error and closes the connection
            if sent == len(frame):
                return True
            frame = frame[sent:]
        transport.write(frame)
        return True


# -- servers whose send can block (uvicorn) ------------------------------------------------
#
# uvicorn's ``send`` awaits until the transport is writable again, ``websocket.close``
# included: a client that never reads never gets a close frame, and uvicorn's own
# keep-alive timeout only calls ``transport.close()``, which waits for the buffer to
# flush, so the connection would stay. A socket closed as a slow consumer is therefore
# aborted (RST) once a short grace period has passed without the close completing.

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
    abort = transport.abort

    def aborter() -> None:
        if not transport.is_closing() or transport.get_write_buffer_size():
            abort()

    return aborter
