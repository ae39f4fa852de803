"""A benchmark client process: K real WebSocket clients on one event loop.

Driven by the orchestrator (``bench/run.py``) over stdin/stdout, one JSON
object per line. Commands:

- ``{"cmd": "connect"}``: open the K sockets (bounded concurrency), each joined
  to the room; replies ``{"connected": n, "failed": m, "errors": [...]}``.
- ``{"cmd": "expect", "seqs": [a, b], "mode": "round"|"flood"}``: start
  counting deliveries of sequence numbers ``a..b-1``; the process writes
  ``{"done": b}`` as soon as each of its sockets has every one of them.
- ``{"cmd": "stats"}``: per-sequence delivery counts and first/last arrival
  times, latencies (round mode), duplicates, sockets closed by the server.
- ``{"cmd": "quit"}``: close the sockets and exit.

The clients must cost far less than the servers they measure, so each socket
is a plain ``asyncio.Protocol`` driving websockets' sans-I/O ``ClientProtocol``
(the library does the handshake, framing, masking and ping/pong): no task or
future per message, only a callback. Three wire protocols:

- ``native`` (our ``/ws/?token=``): wait for ``connected``, send
  ``subscribe:inventory`` with an ack id, wait for the ack reply, then send
  ``{"event":"ping"}`` every ``heartbeatInterval`` as the server asks;
- ``socketio`` (the baseline's python-socketio; raw Engine.IO 4 / Socket.IO 5
  over WebSocket): ``0{...}`` open, ``40`` connect, ``421["join",room]`` and its
  ``431[...]`` ack, ``2`` -> ``3`` pings, ``42[...]`` events;
- ``ours-socketio`` (our ``/socket.io/``, docs/socketio.md): the same Engine.IO
  framing; the token goes in the CONNECT packet's auth payload
  (``40{"token":"..."}``), answered by ``40{"sid":...}`` and the ``connected``
  event (``42["connected",{...}]``); the join is the ``subscribe:inventory``
  command with an ack id (``421["subscribe:inventory",{}]`` answered by
  ``431[{"data":{...}}]``, or ``431[{"error":{...}}]``); events are
  ``42["inventory:updated",{"event":..,"type":..,"data":{"seq":..,"sentAt":..},..}]``,
  the envelope of ``/ws/``.

Every event carries ``seq`` and ``sentAt`` (``time.time()`` of the publisher;
one machine, one clock).
"""
import argparse
import asyncio
import json
import re
import sys
import time
from urllib.parse import urlsplit

from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

EVENT = "inventory:updated"
SUBSCRIBE = '{"event":"subscribe:inventory","data":{},"ack":1}'
SIO_SUBSCRIBE = '421["subscribe:inventory",{}]'  # Socket.IO EVENT with ack id 1, on our /socket.io/
PING = '{"event":"ping"}'
CONNECT_TIMEOUT = 60.0
# Fast path: every server keeps the publisher's key order, {"seq": .., "sentAt": ..}, compact
# JSON (ours: django_oda_realtime.events.encode_json, also inside the Socket.IO envelope).
SEQ_RE = re.compile(r'"seq":(\d+),"sentAt":([0-9.eE+-]+)')


class Tally:
    """What this process saw, for the sequence numbers it was told to expect."""

    def __init__(self) -> None:
        self.reset(0, 0, "round")
        self.closed = 0
        self.close_codes: dict[str, int] = {}

    def reset(self, first: int, end: int, mode: str) -> None:
        self.first, self.end, self.mode = first, end, mode
        self.count: dict[int, int] = {}
        self.first_at: dict[int, float] = {}
        self.last_at: dict[int, float] = {}
        self.latencies: list[float] = []
        self.total = 0
        self.unexpected = 0
        self.duplicates = 0
        self.reported = False


class Socket(asyncio.Protocol):
    """One WebSocket client; text frames go to ``on_text`` (a queue until it has joined).

    Once joined, whole unfragmented text frames and pings (all a server sends
    in a run) are cut from the byte stream here, with no parser generator per
    frame, since the clients' CPU per delivery must stay well below the servers'.
    The first frame of any other kind hands the stream back to the library for
    good (``self.simple = False``); the library never saw the frames cut here,
    and its parser was idle between frames when they started.
    """

    def __init__(self, runner: "Runner", url: str) -> None:
        self.runner = runner
        self.ws = ClientProtocol(parse_uri(url), max_size=2**20)
        self.transport: asyncio.Transport | None = None
        self.opened = asyncio.get_running_loop().create_future()
        self.inbox: asyncio.Queue | None = asyncio.Queue()
        self.last_seq = -1
        self.fragments: list[bytes] = []
        self.lost = False
        self.simple = False  # cutting frames here (see the class docstring)
        self.pending = b""  # the start of a frame not received in full yet, in simple mode

    # asyncio.Protocol

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.ws.send_request(self.ws.connect())
        self.flush()

    def data_received(self, data: bytes) -> None:
        if self.simple:
            data = self.cut_frames(self.pending + data if self.pending else data)
            if not data:
                return
        ws = self.ws
        ws.receive_data(data)
        for event in ws.events_received():
            if isinstance(event, Response):
                if not self.opened.done():
                    if ws.handshake_exc is not None:
                        self.opened.set_exception(ws.handshake_exc)
                    else:
                        self.opened.set_result(None)
                continue
            opcode = event.opcode
            if opcode is Opcode.TEXT or opcode is Opcode.CONT:
                if not event.fin:
                    self.fragments.append(event.data)
                    continue
                data_ = b"".join([*self.fragments, event.data]) if self.fragments else event.data
                self.fragments = []
                text = data_.decode()
                if self.inbox is not None:
                    self.inbox.put_nowait(text)
                else:
                    self.runner.on_text(self, text)
        self.flush()  # pings answered, closes acknowledged by the library

    def cut_frames(self, buf: bytes) -> bytes:
        """Handle the simple frames at the start of ``buf``; return what the library must parse."""
        i, n = 0, len(buf)
        while n - i >= 2:
            b0, b1 = buf[i], buf[i + 1]
            if b0 not in (0x81, 0x89) or b1 & 0x80:  # not a final text frame or ping, or masked
                self.simple = False
                self.pending = b""
                return buf[i:]
            length, start = b1, i + 2
            if length == 126:
                length, start = int.from_bytes(buf[start:start + 2], "big"), start + 2
            elif length == 127:
                length, start = int.from_bytes(buf[start:start + 8], "big"), start + 8
            end = start + length
            if end > n:
                break
            if b0 == 0x81:
                self.runner.on_text(self, buf[start:end].decode())
            else:
                self.ws.send_pong(buf[start:end])
                self.flush()
            i = end
        self.pending = buf[i:]
        return b""

    def start_cutting(self) -> None:
        """Joined: cut frames here from now on, if the library holds no partial frame."""
        self.simple = not self.ws.reader.buffer and not self.fragments

    def eof_received(self):
        self.ws.receive_eof()
        return None

    def connection_lost(self, exc) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("connection lost during the handshake"))
        if self.inbox is not None:
            self.inbox.put_nowait(None)
        if not self.runner.quitting:
            self.runner.closed(self)

    # sending

    def flush(self) -> None:
        for chunk in self.ws.data_to_send():
            if chunk:
                self.transport.write(chunk)
            elif self.transport.can_write_eof():
                self.transport.write_eof()
        if self.ws.close_expected() and self.transport is not None:
            self.transport.close()

    def send(self, text: str) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.ws.send_text(text.encode())
        self.flush()

    async def recv(self) -> str:
        text = await self.inbox.get()
        if text is None:
            raise ConnectionError(f"closed by the server ({self.ws.close_code})")
        return text

    def close(self) -> None:
        try:
            self.ws.send_close()
            self.flush()
        except Exception:
            pass
        if self.transport is not None:
            self.transport.close()


class Runner:
    def __init__(self, url: str, protocol: str, tokens: list[str], concurrency: int, room: str) -> None:
        self.url = url
        self.protocol = protocol
        self.tokens = tokens
        self.concurrency = concurrency
        self.room = room
        self.tally = Tally()
        self.sockets: list[Socket] = []
        self.heartbeat = 0.0
        self._heartbeats: asyncio.Task | None = None
        self.quitting = False

    @staticmethod
    def emit(obj: dict) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    # -- connecting ----------------------------------------------------------------

    async def open_one(self, token: str) -> Socket:
        url = self.url.replace("{token}", token)
        parts = urlsplit(url)
        loop = asyncio.get_running_loop()
        _, sock = await loop.create_connection(lambda: Socket(self, url), parts.hostname, parts.port)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await sock.opened
                if self.protocol == "native":
                    await self.join_native(sock)
                elif self.protocol == "ours-socketio":
                    await self.join_ours_socketio(sock, token)
                else:
                    await self.join_socketio(sock)
        except BaseException:
            sock.close()
            raise
        sock.inbox = None  # from now on frames go straight to on_text
        sock.start_cutting()
        if self.protocol == "native" and self.heartbeat > 0 and self._heartbeats is None:
            self._heartbeats = asyncio.ensure_future(self.heartbeats())
        return sock

    async def join_native(self, sock: Socket) -> None:
        frame = json.loads(await sock.recv())
        if frame.get("event") != "connected":
            raise RuntimeError(f"expected 'connected', got {str(frame)[:200]}")
        self.heartbeat = float((frame.get("data") or {}).get("heartbeatInterval") or 0)
        sock.send(SUBSCRIBE)
        while True:
            frame = json.loads(await sock.recv())
            if frame.get("ack") == 1:
                if "error" in frame:
                    raise RuntimeError(f"subscribe refused: {frame['error']}")
                return

    async def join_socketio(self, sock: Socket) -> None:
        opened = await sock.recv()
        if not opened.startswith("0{"):
            raise RuntimeError(f"expected an Engine.IO open packet, got {opened[:200]}")
        sock.send("40")
        while True:
            packet = await sock.recv()
            if packet.startswith("40"):
                break
            if packet.startswith("44"):
                raise RuntimeError(f"Socket.IO connect refused: {packet[:200]}")
        sock.send("421" + json.dumps(["join", self.room]))
        while True:
            packet = await sock.recv()
            if packet == "2":
                sock.send("3")
            elif packet.startswith("431"):
                return

    async def join_ours_socketio(self, sock: Socket, token: str) -> None:
        """Our ``/socket.io/``: the token in CONNECT's auth, then ``subscribe:inventory`` with an ack."""
        opened = await sock.recv()
        if not opened.startswith("0{"):
            raise RuntimeError(f"expected an Engine.IO open packet, got {opened[:200]}")
        sock.send("40" + json.dumps({"token": token}, separators=(",", ":")))
        connected = False
        while not connected:
            packet = await sock.recv()
            if packet == "2":
                sock.send("3")
            elif packet.startswith("44"):
                raise RuntimeError(f"Socket.IO connect refused: {packet[:200]}")
            elif packet.startswith('42["connected"'):  # after 40{"sid":...}
                connected = True
        sock.send(SIO_SUBSCRIBE)
        while True:
            packet = await sock.recv()
            if packet == "2":
                sock.send("3")
            elif packet.startswith("431["):
                reply = json.loads(packet[3:])
                if not reply or not isinstance(reply[0], dict) or "data" not in reply[0]:
                    raise RuntimeError(f"subscribe refused: {packet[:200]}")
                return

    async def connect_all(self) -> dict:
        sem = asyncio.Semaphore(self.concurrency)
        errors: list[str] = []

        async def one(token: str):
            async with sem:
                try:
                    sock = await self.open_one(token)
                except Exception as e:
                    errors.append(f"{type(e).__name__}: {e}"[:200])
                    return
                self.sockets.append(sock)

        started = time.monotonic()
        await asyncio.gather(*(one(t) for t in self.tokens))
        elapsed = time.monotonic() - started
        return {"connected": len(self.sockets), "failed": len(errors), "errors": errors[:5], "seconds": elapsed}

    async def heartbeats(self) -> None:
        """Each socket (as soon as it has joined) pings every ``heartbeatInterval`` the server asked for."""
        period = max(1.0, self.heartbeat)
        slots = max(1, int(period))
        tick = 0
        while not self.quitting:
            await asyncio.sleep(1.0)
            tick += 1
            for i in range(tick % slots, len(self.sockets), slots):
                self.sockets[i].send(PING)

    # -- receiving -----------------------------------------------------------------

    def on_text(self, sock: Socket, text: str) -> None:
        if self.protocol == "native":
            if not text.startswith('{"event":"inventory:updated"'):
                return
        elif text == "2":
            sock.send("3")
            return
        elif not text.startswith('42["inventory:updated"'):
            return
        match = SEQ_RE.search(text)
        if match is not None:
            seq, sent_at = int(match.group(1)), float(match.group(2))
        else:
            if self.protocol == "native":
                data = json.loads(text)["data"]
            elif self.protocol == "ours-socketio":
                data = json.loads(text[2:])[1]["data"]  # the /ws/ envelope is the event's one argument
            else:
                data = json.loads(text[2:])[1]
            seq, sent_at = data["seq"], data["sentAt"]
        self.record(sock, seq, sent_at)

    def record(self, sock: Socket, seq: int, sent_at: float) -> None:
        now = time.time()
        t = self.tally
        if not t.first <= seq < t.end:
            t.unexpected += 1
            return
        if seq <= sock.last_seq:
            t.duplicates += 1  # or out of order: either way not a new delivery
            return
        sock.last_seq = seq
        n = t.count.get(seq, 0) + 1
        t.count[seq] = n
        if n == 1:
            t.first_at[seq] = now
        t.last_at[seq] = now
        t.total += 1
        if t.mode == "round":
            t.latencies.append(now - sent_at)
        if not t.reported and t.total >= len(self.sockets) * (t.end - t.first):
            t.reported = True
            self.emit({"done": t.end})

    def closed(self, sock: Socket) -> None:
        if sock.lost:
            return
        sock.lost = True
        self.tally.closed += 1
        code = str(sock.ws.close_code)
        self.tally.close_codes[code] = self.tally.close_codes.get(code, 0) + 1

    # -- commands ------------------------------------------------------------------

    def stats(self) -> dict:
        t = self.tally
        return {
            "sockets": len(self.sockets),
            "total": t.total,
            "count": t.count,
            "first_at": t.first_at,
            "last_at": t.last_at,
            "latencies": t.latencies,
            "unexpected": t.unexpected,
            "duplicates": t.duplicates,
            "closed": t.closed,
            "close_codes": t.close_codes,
        }

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=2**20)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        self.emit({"ready": True})
        while True:
            line = await reader.readline()
            if not line:
                break
            cmd = json.loads(line)
            name = cmd["cmd"]
            if name == "connect":
                self.emit(await self.connect_all())
            elif name == "expect":
                first, end = cmd["seqs"]
                self.tally.reset(first, end, cmd.get("mode", "round"))
                self.emit({"expecting": end})
            elif name == "stats":
                self.emit(self.stats())
            elif name == "quit":
                break
        self.quitting = True
        for sock in self.sockets:
            sock.close()
        await asyncio.sleep(0.3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help='ws:// URL; "{token}" is replaced by each socket\'s token')
    parser.add_argument("--protocol", choices=["native", "socketio", "ours-socketio"], required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--tokens", default=None, help="file of access tokens, one a line (one per socket)")
    parser.add_argument("--offset", type=int, default=0, help="first line of --tokens for this process")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--room", default="inventory:all")
    args = parser.parse_args()
    tokens = [""] * args.count
    if args.tokens:
        with open(args.tokens) as f:
            lines = f.read().split()
        tokens = lines[args.offset:args.offset + args.count]
        if len(tokens) < args.count:
            raise SystemExit(f"{args.tokens} has too few tokens for offset {args.offset} + {args.count}")
    try:
        import uvloop
    except ImportError:  # the clients' own CPU is reported either way
        run = asyncio.run
    else:
        run = uvloop.run
    run(Runner(args.url, args.protocol, tokens, args.concurrency, args.room).serve())


if __name__ == "__main__":
    main()
