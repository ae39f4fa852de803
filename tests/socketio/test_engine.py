"""The Engine.IO session (django_oda_realtime/socketio/engine.py) on its own, without a server.

An echo application runs over the session's virtual WebSocket; a recording carrier stands for
the WebSocket (what it was given to write, how it was closed), and polling is driven through
``poll``/``post`` as the HTTP consumer drives them. Each test asserts what a client would get:
packets, GET bodies, close codes, refusals (docs/socketio.md, Engine.IO v4).
"""
import asyncio
import json

import pytest

from django_oda_realtime.exceptions import CloseCode, PollError
from django_oda_realtime.protocol import socketio as codec
from django_oda_realtime.socketio.engine import EngineOptions, EngineServer

SEP = "\x1e"


class RecordingCarrier:
    """The WebSocket of a session: records the frames written and the close; ``backlog`` stands for
    bytes still in the server's buffer (a client that does not read)."""

    def __init__(self) -> None:
        self.frames: list[str | bytes] = []
        self.closed_with: int | None = None
        self.backlog = 0
        self.changed = asyncio.Event()

    async def send(self, frame):
        if self.closed_with is not None:
            return False
        self.frames.append(frame)
        self.changed.set()
        return True

    def try_write_message(self, text: str) -> bool:
        return False  # no direct writes: everything goes through send()

    def pending(self) -> int:
        return self.backlog

    async def close(self, code: int) -> None:
        self.closed_with = int(code)
        self.changed.set()

    async def wait_for(self, predicate, timeout: float = 2.0):
        """Until ``predicate(self)``; AssertionError with what was recorded on timeout."""
        try:
            async with asyncio.timeout(timeout):
                while not predicate(self):
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            raise AssertionError(f"carrier: frames {self.frames!r}, closed with {self.closed_with}") from None


class EchoApp:
    """An ASGI WebSocket application that echoes each text in upper case; records what it heard."""

    def __init__(self) -> None:
        self.heard: list[dict] = []

    async def __call__(self, scope, receive, send):
        while True:
            message = await receive()
            self.heard.append(message)
            if message["type"] == "websocket.disconnect":
                return
            if message["type"] == "websocket.receive" and "text" in message:
                if message["text"] == "bye":
                    await send({"type": "websocket.send", "text": "BYE"})
                    await send({"type": "websocket.close", "code": 4000})
                else:
                    await send({"type": "websocket.send", "text": message["text"].upper()})


SCOPE = {"type": "websocket", "path": "/socket.io/", "query_string": b"", "headers": [], "client": ("10.0.0.1", 5000)}


def options(**overrides) -> EngineOptions:
    values = {"ping_interval": 5.0, "ping_timeout": 5.0, "max_payload": 1000, "max_buffer": 1000}
    return EngineOptions(**{**values, **overrides})


def websocket_session(app, **opts):
    server = EngineServer(app, lambda: options(**opts))
    ws = RecordingCarrier()
    sock = server.open(SCOPE, "websocket", ws)
    sock.start()
    return server, sock, ws


def polling_session(app, **opts):
    server = EngineServer(app, lambda: options(**opts))
    sock = server.open(SCOPE, "polling")
    sock.start()
    return server, sock


async def never_disconnects():
    await asyncio.Event().wait()


def packet(text: str) -> codec.EnginePacket:
    return codec.decode_packet(text)


async def test_the_open_packet_offers_the_upgrade_only_over_polling():
    _, sock = polling_session(EchoApp(), ping_interval=1.5, ping_timeout=2.0, max_payload=500)
    opened = json.loads(sock.open_packet()[1:])
    assert sock.open_packet()[0] == "0"
    assert (opened["sid"], opened["upgrades"]) == (sock.sid, ["websocket"])
    assert (opened["pingInterval"], opened["pingTimeout"], opened["maxPayload"]) == (1500, 2000, 500)
    _, ws_sock, _ = websocket_session(EchoApp())
    assert json.loads(ws_sock.open_packet()[1:])["upgrades"] == []
    await sock.close("test")
    await ws_sock.close("test")


async def test_messages_reach_the_application_and_its_answers_reach_the_websocket():
    app = EchoApp()
    _, sock, ws = websocket_session(app)
    await sock.receive(packet("4hello"))
    await sock.receive(packet("4again"))
    await ws.wait_for(lambda w: w.frames == ["4HELLO", "4AGAIN"])
    await sock.close("test")
    assert ws.closed_with == CloseCode.NORMAL


async def test_the_application_closing_delivers_what_it_sent_first_and_closes_with_its_code():
    app = EchoApp()
    _, sock, ws = websocket_session(app)
    await sock.receive(packet("4bye"))
    await ws.wait_for(lambda w: w.closed_with is not None)
    assert ws.frames == ["4BYE"] and ws.closed_with == 4000
    assert not sock.is_open


async def test_a_client_ping_is_answered_and_a_client_close_ends_the_application():
    app = EchoApp()
    server, sock, ws = websocket_session(app)
    await sock.receive(packet("2x"))
    await ws.wait_for(lambda w: w.frames == ["3x"])
    await sock.receive(packet("1"))
    assert not sock.is_open and server.get(sock.sid) is None
    async with asyncio.timeout(2):
        while not app.heard or app.heard[-1]["type"] != "websocket.disconnect":
            await asyncio.sleep(0.01)


async def test_the_server_pings_and_closes_4013_without_a_pong():
    _, sock, ws = websocket_session(EchoApp(), ping_interval=0.05, ping_timeout=0.1)
    await ws.wait_for(lambda w: "2" in w.frames)
    await sock.receive(packet("3"))  # the pong: the session lives on, and is pinged again
    await ws.wait_for(lambda w: w.frames.count("2") == 2)
    await ws.wait_for(lambda w: w.closed_with is not None)  # no pong this time
    assert ws.closed_with == CloseCode.HEARTBEAT_TIMEOUT


@pytest.mark.parametrize("frame", ["6", "0", "5", "2" + "x" * 17], ids=["noop-is-harmless", "open-from-client", "upgrade-on-a-websocket", "long-ping"])
async def test_bad_packets_close_the_session_4010(frame):
    _, sock, ws = websocket_session(EchoApp())
    await sock.receive(packet(frame))
    if frame == "6":
        assert sock.is_open and ws.closed_with is None
        await sock.close("test")
        return
    assert ws.closed_with == CloseCode.PROTOCOL_ERROR and not sock.is_open


async def test_a_websocket_client_that_does_not_read_is_closed_4008_past_max_buffer():
    app = EchoApp()
    _, sock, ws = websocket_session(app, max_buffer=100)
    ws.backlog = 60  # earlier frames still in the server's buffer: new packets queue
    await sock.receive(packet("4" + "a" * 30))
    await asyncio.sleep(0)
    assert sock.is_open and ws.frames == []  # 31 + 60 bytes: under the bound, waiting
    await sock.receive(packet("4" + "b" * 30))
    await ws.wait_for(lambda w: w.closed_with is not None)
    assert ws.closed_with == CloseCode.SLOW_CONSUMER
    assert ws.frames == []  # a slow consumer is not sent what it could not read


async def test_queued_packets_are_written_once_the_client_reads_again():
    _, sock, ws = websocket_session(EchoApp(), max_buffer=1000)
    ws.backlog = 10
    for word in ("one", "two", "three"):
        await sock.receive(packet("4" + word))
    await asyncio.sleep(0.05)
    assert ws.frames == []
    ws.backlog = 0
    await ws.wait_for(lambda w: w.frames == ["4ONE", "4TWO", "4THREE"])  # in order
    await sock.close("test")


async def test_polling_a_get_takes_every_queued_packet_and_a_post_is_answered_once_handled():
    _, sock = polling_session(EchoApp())
    await sock.post(SEP.join(["4a", "4b"]).encode())  # returns once the application handled both
    assert await sock.poll(never_disconnects) == SEP.join(["4A", "4B"])
    waiting = asyncio.ensure_future(sock.poll(never_disconnects))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # nothing queued: the GET waits
    await sock.post(b"4c")
    assert await waiting == "4C"
    await sock.close("test")


async def test_polling_refusals_close_the_session():
    _, sock = polling_session(EchoApp())
    with pytest.raises(PollError):
        await sock.post(b"abc")  # malformed payload
    assert not sock.is_open
    with pytest.raises(PollError):
        await sock.poll(never_disconnects)

    _, sock = polling_session(EchoApp())
    first = asyncio.ensure_future(sock.poll(never_disconnects))
    await asyncio.sleep(0.01)
    with pytest.raises(PollError):
        await sock.poll(never_disconnects)  # a second GET at once
    assert await first == "1"  # the waiting GET ends with the close packet


async def test_a_polling_client_that_stops_polling_is_closed_past_max_buffer():
    _, sock = polling_session(EchoApp(), max_buffer=50)
    await sock.post(b"4" + b"x" * 30)
    assert sock.is_open
    await sock.post(b"4" + b"y" * 30)  # 62 bytes queued for nobody
    assert not sock.is_open and sock.close_code == CloseCode.SLOW_CONSUMER


async def test_upgrade_from_polling_to_websocket_keeps_the_session_and_flushes_the_queue():
    _, sock = polling_session(EchoApp())
    waiting = asyncio.ensure_future(sock.poll(never_disconnects))
    await asyncio.sleep(0.01)
    ws = RecordingCarrier()
    assert sock.can_upgrade()
    sock.begin_upgrade(ws)
    await sock.probe_packet(ws, packet("2probe"))
    assert ws.frames == ["3probe"]
    assert await waiting == "6"  # the waiting GET ends with a noop
    await sock.post(b"4queued")  # still over polling while the upgrade runs
    await sock.probe_packet(ws, packet("5"))
    await ws.wait_for(lambda w: w.frames[1:] == ["4QUEUED"])
    with pytest.raises(PollError):
        await sock.poll(never_disconnects)  # polling is over
    await sock.receive(packet("4after"))
    await ws.wait_for(lambda w: w.frames[-1] == "4AFTER")
    await sock.close("test")
    assert ws.closed_with == CloseCode.NORMAL


async def test_a_probe_that_is_not_the_protocol_is_closed_and_polling_goes_on():
    _, sock = polling_session(EchoApp())
    ws = RecordingCarrier()
    sock.begin_upgrade(ws)
    await sock.probe_packet(ws, packet("5"))  # upgrade before the probe
    assert ws.closed_with == CloseCode.PROTOCOL_ERROR
    await sock.post(b"4still")
    assert await sock.poll(never_disconnects) == "4STILL"
    await sock.close("test")
