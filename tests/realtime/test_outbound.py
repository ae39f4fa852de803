"""The outbound fast path on daphne: ready-framed events written straight to the connection.

``direct_writer`` relies on daphne/autobahn/Twisted internals (the ASGI ``send``
is ``partial(server.handle_reply, protocol)``; the Twisted transport's buffer
fields; autobahn's state, queue and compression attributes). These tests build
those real objects over a real socket pair, so an upgrade that renames one fails
here instead of silently falling back to the slow path. End to end over a real
daphne the path is exercised by tests/test_scale.py and the slow-consumer tests.
"""
from collections import deque
import functools
import socket

from daphne.ws_protocol import WebSocketProtocol
import pytest
from twisted.internet import tcp
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from django_oda_realtime.server.outlets import backlog_probe, direct_writer, ws_text_frame


def parse_frames(data: bytes) -> list[Frame]:
    """Server frames (unmasked) in ``data``, parsed by the websockets library."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    frames = []
    while not run(reader.at_eof()):
        frames.append(run(Frame.parse(reader.read_exact, mask=False, max_size=None)))
    return frames


def run(generator):
    """The value of one of websockets' sans-I/O parsing generators over data already fed in full."""
    try:
        next(generator)
    except StopIteration as done:
        return done.value
    raise AssertionError("the data ended inside a frame")


@pytest.mark.parametrize("size", [1, 125, 126, 65_535, 65_536, 300_000])
def test_ws_text_frame_is_one_final_text_frame_a_websocket_parser_reads_back(size):
    text = ("é" * size)[:size] if size % 2 else "x" * size
    [frame] = parse_frames(ws_text_frame(text))
    assert frame.opcode is Opcode.TEXT and frame.fin
    assert frame.data.decode() == text


class NoLoopReactor:
    """What a Twisted transport needs of a reactor when nobody runs the loop: writers are noted."""

    def __init__(self) -> None:
        self.writers: set = set()

    def addWriter(self, writer) -> None:
        self.writers.add(writer)

    def removeWriter(self, writer) -> None:
        self.writers.discard(writer)


@pytest.fixture
def daphne_socket():
    """(ASGI send of an OPEN daphne WebSocket on a real Twisted TCP transport, the peer socket, the transport)."""
    ours, peer = socket.socketpair()
    protocol = WebSocketProtocol()
    transport = tcp.Connection(ours, protocol, NoLoopReactor())
    transport.connected = 1
    protocol.transport = transport
    protocol.state = WebSocketProtocol.STATE_OPEN
    protocol.send_queue = deque()
    protocol._perMessageCompress = None
    protocol.maxMessagePayloadSize = 1024 * 1024

    def handle_reply(protocol, message):  # daphne's Server.handle_reply has this shape
        raise AssertionError("the fast path must not use the ASGI send")

    yield functools.partial(handle_reply, protocol), peer, transport
    ours.close()
    peer.close()


def read_all(peer: socket.socket) -> bytes:
    peer.setblocking(False)
    chunks = []
    while True:
        try:
            chunk = peer.recv(1 << 20)
        except BlockingIOError:
            return b"".join(chunks)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def test_a_frame_goes_straight_to_the_socket_without_touching_twisteds_buffer(daphne_socket):
    send, peer, transport = daphne_socket
    write = direct_writer(send)
    assert write is not None, "daphne's internals changed: the fan-out fast path is off"
    frame = ws_text_frame('{"event":"inventory:updated"}')
    assert write(frame) is True
    assert read_all(peer) == frame
    assert transport.reactor.writers == set()  # nothing left for the event loop to write


def test_behind_a_full_socket_frames_queue_in_twisted_in_order_and_arrive_intact(daphne_socket):
    send, peer, transport = daphne_socket
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    write = direct_writer(send)
    pending = backlog_probe(send)
    texts = [f'{{"n":{i},"blob":"{"y" * 50_000}"}}' for i in range(80)]
    for text in texts[:60]:
        assert write(ws_text_frame(text))
    assert pending() > 0, "the kernel buffers never filled: the test did not reach the buffered path"
    assert transport.reactor.writers == {transport}
    # The client reads, so the socket has room again, while Twisted still holds older frames:
    # newer frames must queue behind them, not jump ahead into the socket.
    received = bytearray(read_all(peer))
    for text in texts[60:]:
        assert write(ws_text_frame(text))
    while transport.reactor.writers or pending():
        received += read_all(peer)
        transport.doWrite()
    received += read_all(peer)
    frames = parse_frames(bytes(received))
    assert [f.data.decode() for f in frames] == texts


@pytest.mark.parametrize("change", ["closing", "autobahn_queue", "compression", "too_big", "disconnecting"])
def test_it_declines_whenever_autobahn_would_send_something_else(daphne_socket, change):
    send, peer, transport = daphne_socket
    protocol = send.args[0]
    frame = ws_text_frame("x" * 1000)
    if change == "closing":
        protocol.state = WebSocketProtocol.STATE_CLOSING
    elif change == "autobahn_queue":
        protocol.send_queue.append((b"earlier", True))
    elif change == "compression":
        protocol._perMessageCompress = object()
    elif change == "too_big":
        protocol.maxMessagePayloadSize = 100
    elif change == "disconnecting":
        transport.disconnecting = True
    assert direct_writer(send)(frame) is False
    assert read_all(peer) == b""


def test_other_servers_get_no_fast_path():
    async def uvicorn_like_send(message):
        return None

    assert direct_writer(uvicorn_like_send) is None
    assert direct_writer(functools.partial(uvicorn_like_send)) is None
    assert direct_writer(functools.partial(print, object())) is None
