"""Engine.IO v4 sessions: one per client, carried by long-polling and/or a WebSocket.

An ``EngineSocket`` outlives the HTTP requests and WebSockets that carry it: the
transport consumers (``django_oda_realtime/socketio/carriers.py``) hand it what they receive and it
writes to whichever transport is current. Above it runs an ordinary ASGI application
over a *virtual WebSocket*: it receives ``websocket.connect``, one ``websocket.receive``
per Engine.IO message (``text`` or ``bytes``) and a final ``websocket.disconnect``;
what it sends with ``websocket.send`` becomes Engine.IO messages and ``websocket.close``
closes the session. So Socket.IO is a Channels consumer (``SocketIOConsumer``, on the
same Session core as ``/ws/``), and the conformance server's plain Engine.IO echo is a
ten-line ASGI function.

Transports (Engine.IO v4):

- polling: a ``GET`` waits for packets (long poll), a ``POST`` brings the client's.
  One GET at a time: a second concurrent GET closes the session, as the reference
  server does. A POST is answered once the application has handled its messages (or
  after ``POST_WAIT`` seconds), so their effects are visible to the next request.
- websocket: one packet per frame.
- upgrade: a WebSocket carrying ``sid`` sends ``2probe`` and gets ``3probe``; a
  waiting GET is answered with a noop ``6``; ``5`` makes the WebSocket the transport
  and flushes what was queued for polling.

Invariants: the heartbeat pings every ``ping_interval`` and closes the session when no
pong comes within ``ping_timeout``; a POST body or frame over ``max_payload`` closes it;
more than ``max_buffer`` bytes waiting for a slow client (polling queue, or daphne's
WebSocket buffer) closes it as a slow consumer (daphne has no backpressure, docs/design.md#daphne-backpressure).

Sessions live in this process (``EngineServer.sockets``): with several server processes,
polling needs sticky sessions, as Socket.IO itself does (docs/socketio.md).

Pre-auth work is bounded (issue #11, docs/security.md): a session is *pending* from its
handshake until the application says otherwise (``{"type": "engineio.pending", "pending":
False}``, sent by ``SocketIOConsumer`` once a namespace is connected, and ``True`` again
when none is); with ``max_pending_per_address`` pending sessions from one client address
(``clientaddr.client_address``) a new handshake is refused with 429, with ``max_pending``
in all with 503. A client's pings and pongs reach the application as ``{"type":
"engineio.control"}`` so it can count them against its rate limit, and their payloads are
at most ``MAX_CONTROL_PAYLOAD`` characters.
"""
import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
import enum
import logging
import secrets
from typing import Protocol

from .. import metrics
from ..exceptions import CloseCode, PollError, ProtocolError, TooManySessions
from ..protocol import socketio as codec
from ..server.queues import Flag, ReceiveQueue
from ..server.clientaddr import client_address

logger = logging.getLogger("realtime.engineio")

POST_WAIT = 2.0  # seconds a POST waits for the application to handle its messages
UPGRADE_NOOP_DELAY = 0.1  # a GET during an upgrade gets its noop after this, as the reference server's check
INBOUND_LIMIT = 256  # messages waiting for the application before a transport waits
WRITE_BATCH_WINDOW = 0.01  # seconds between two WebSocket writes of a session when packets queue up
CLOSING_GRACE = 5.0  # seconds a closing polling session waits for the GET that takes its last packets
APP_STOP_TIMEOUT = 10.0  # seconds the application has to end after the disconnect before it is cancelled
MAX_CONTROL_PAYLOAD = 16  # characters of a client's ping or pong payload ("probe" is 5); more closes the session
CONTROL = {"type": "engineio.control"}
REFUSAL_LOG_INTERVAL = 60.0  # seconds between two log lines about refused handshakes


@dataclass(frozen=True)
class EngineOptions:
    ping_interval: float  # seconds
    ping_timeout: float  # seconds
    max_payload: int  # bytes of one POST body or WebSocket frame
    max_buffer: int  # bytes waiting to be written before the session is closed as a slow consumer
    max_pending_per_address: int | None = None  # pending sessions (see above) of one client address; None: no cap
    max_pending: int | None = None  # pending sessions of this process; None: no cap


class State(enum.Enum):
    OPEN = "open"
    UPGRADING = "upgrading"  # a WebSocket sent its probe; polling still carries the session
    CLOSING = "closing"  # closed by the application; the last packets wait for their GET
    CLOSED = "closed"


class Carrier(Protocol):
    """What a session needs of the WebSocket that carries it (``carriers.WebSocketCarrier``)."""

    async def send(self, frame: str | bytes) -> bool: ...

    def try_write_message(self, text: str) -> bool: ...

    def pending(self) -> int: ...

    async def close(self, code: int) -> None: ...


class EngineServer:
    """The Engine.IO sessions of one application in this process, by sid."""

    def __init__(self, app, options: Callable[[], EngineOptions], *, check_origin: bool = True) -> None:
        self.app = app
        self.options = options  # read for each new session: settings may change (tests)
        self.check_origin = check_origin
        self.sockets: dict[str, "EngineSocket"] = {}
        self.pending: dict[str, int] = {}  # client address -> its pending sessions (none: no key)
        self.pending_total = 0
        self._refusal_logged = float("-inf")

    def admit(self, scope: dict) -> str:
        """The client address of a handshake, or TooManySessions if that address, or the
        process, has too many pending sessions."""
        options = self.options()
        address = client_address(scope)
        if options.max_pending is not None and self.pending_total >= options.max_pending:
            self._refuse(503, "server_busy")
        if options.max_pending_per_address is not None and self.pending.get(address, 0) >= options.max_pending_per_address:
            self._refuse(429, "too_many_sessions")
        return address

    def open(self, scope: dict, transport: str, ws: Carrier | None = None) -> "EngineSocket":
        """A new session; the caller sends its OPEN packet, then calls ``start()``.

        TooManySessions if the client's address, or the process, has too many pending sessions.
        """
        options = self.options()
        address = self.admit(scope)
        sid = secrets.token_urlsafe(15)
        sock = EngineSocket(self, sid, scope, options, transport, ws, address)
        self.sockets[sid] = sock
        self.count_pending(address, 1)
        return sock

    def _refuse(self, status: int, code: str) -> None:
        metrics.REFUSALS.labels(code).inc()
        loop = asyncio.get_running_loop()
        if loop.time() - self._refusal_logged > REFUSAL_LOG_INTERVAL:
            # Once a minute at most: a flood of handshakes must not flood the log too.
            self._refusal_logged = loop.time()
            logger.warning("Refusing Engine.IO handshakes: %s (%d pending sessions)", code, self.pending_total)
        raise TooManySessions(status, code)

    def count_pending(self, address: str, delta: int) -> None:
        count = self.pending.get(address, 0) + delta
        if count > 0:
            self.pending[address] = count
        else:
            self.pending.pop(address, None)
        self.pending_total += delta

    def get(self, sid: str | None) -> "EngineSocket | None":
        return self.sockets.get(sid) if sid else None

    def forget(self, sock: "EngineSocket") -> None:
        if self.sockets.get(sock.sid) is sock:
            del self.sockets[sock.sid]


def app_scope(scope: dict, sid: str, transport: str) -> dict:
    """The virtual WebSocket's scope: the handshake request's, as a WebSocket."""
    out = {k: v for k, v in scope.items() if k not in ("method", "body")}
    secure = scope.get("scheme") in ("https", "wss")
    out.update(type="websocket", scheme="wss" if secure else "ws", subprotocols=[])
    out["engineio"] = {"sid": sid, "transport": transport}
    return out


class EngineSocket:
    def __init__(self, server: EngineServer, sid: str, scope: dict, options: EngineOptions,
                 transport: str, ws: Carrier | None, address: str = "unknown") -> None:
        self.server = server
        self.sid = sid
        self.address = address  # the client's (clientaddr), for the pending-session caps and log lines
        self.pending = True  # no namespace connected yet (counted in server.pending)
        self.options = options
        self.scope = app_scope(scope, sid, transport)
        self.transport = transport
        self.state = State.OPEN
        self.ws = ws  # the WebSocket carrying the session, once it is the transport
        self.probe: Carrier | None = None  # a WebSocket being upgraded to
        self.close_code: int = CloseCode.NORMAL
        self.queue: list[str | bytes] = []  # packets waiting for a GET, or for the WebSocket to drain (a list: 56 bytes, a deque 600)
        self.queued_bytes = 0
        self._flusher: asyncio.Task | None = None
        self._last_write = 0.0  # loop time of the last WebSocket write
        self._poll: asyncio.Future | None = None  # the waiting GET; result: a last packet or None
        self._posting = False
        self._inbound = ReceiveQueue()  # asyncio.Queue's interface at 1/40 of its memory
        self._fed = self._taken = self._done = 0
        self._progress = Flag()
        self._pong = Flag()
        self._pong_deadline: float | None = None
        self._app_task: asyncio.Task | None = None
        self._tasks: list[asyncio.Task] = []  # heartbeat, closing grace
        self._app_stopped = False

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._feed({"type": "websocket.connect"})
        self._app_task = asyncio.ensure_future(self._run_app())
        self._tasks.append(asyncio.ensure_future(self._heartbeat()))

    def log_fields(self, action: str, reason: str) -> dict:
        """``extra=`` of a log line about this session: the connection id of its Socket.IO consumer
        (set in the scope by ``SocketConsumer``), the client's address; never the sid (it is the session's key)."""
        return {"action": action, "reason": reason, "connection_id": self.scope.get("connection_id"),
                "protocol": "engineio", "transport": self.transport, "client": self.address}

    @property
    def is_open(self) -> bool:
        return self.state in (State.OPEN, State.UPGRADING)

    def open_packet(self) -> str:
        upgrades = ["websocket"] if self.transport == "polling" else []
        o = self.options
        return codec.open_packet(self.sid, upgrades=upgrades, ping_interval=o.ping_interval,
                                 ping_timeout=o.ping_timeout, max_payload=o.max_payload)

    async def close(self, reason: str, *, code: int = CloseCode.NORMAL, by_client: bool = False,
                    graceful: bool = False) -> None:
        """End the session. ``graceful``: deliver what is queued first (the application closed it)."""
        if self.state in (State.CLOSING, State.CLOSED):
            return
        logger.info("Engine.IO session closed (%s, %s)", reason, self.transport, extra=self.log_fields("close", reason))
        self.close_code = code
        if graceful and self.ws is None and self.queue and self._poll is None:
            # Polling with packets queued and no GET to take them: wait for the next one.
            self.state = State.CLOSING
            self._tasks.append(asyncio.ensure_future(self._close_after_grace()))
            self._stop_app()
            return
        await self._finish(by_client)

    async def _close_after_grace(self) -> None:
        await asyncio.sleep(CLOSING_GRACE)
        await self._finish(False)

    def set_pending(self, pending: bool) -> None:
        if pending != self.pending:
            self.pending = pending
            self.server.count_pending(self.address, 1 if pending else -1)

    async def _finish(self, by_client: bool) -> None:
        if self.state is State.CLOSED:
            return
        self.state = State.CLOSED
        self.server.forget(self)
        self.set_pending(False)
        current = asyncio.current_task()
        for task in (*self._tasks, self._flusher):
            if task is not None and task is not current:
                task.cancel()
        if self._poll is not None and not self._poll.done():
            # A waiting GET ends cleanly: noop if the client closed, else the close packet.
            self._poll.set_result(codec.encode_packet(codec.NOOP if by_client else codec.CLOSE))
        if self.ws is not None and self.queue and not by_client and self.close_code != CloseCode.SLOW_CONSUMER:
            await self._write_queue()  # what the application sent before closing (a slow consumer would not read it)
        for ws in (self.ws, self.probe):
            if ws is not None:
                await ws.close(self.close_code)
        self.probe = None
        self._stop_app()

    def _stop_app(self) -> None:
        """Messages not yet handled are dropped; the application hears the disconnect next."""
        if self._app_stopped:
            return
        self._app_stopped = True
        while not self._inbound.empty():
            self._inbound.get_nowait()
        self._inbound.put_nowait({"type": "websocket.disconnect", "code": int(self.close_code)})
        self._progress.set()
        app = self._app_task
        if app is not None and not app.done():
            # It leaves its rooms on the disconnect; one stuck in a command is cancelled later.
            asyncio.get_running_loop().call_later(APP_STOP_TIMEOUT, app.cancel)

    # -- the application (virtual WebSocket) ----------------------------------------------

    async def _run_app(self) -> None:
        try:
            await self.server.app(self.scope, self.app_receive, self.app_send)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("The Socket.IO application failed (session closed)",
                             extra=self.log_fields("error", "application_failed"))
        finally:
            self._fed = self._done = self._taken  # nothing more will be handled
            self._progress.set()
        await self.close("application ended", code=CloseCode.NORMAL, graceful=True)

    def _feed(self, message: dict) -> None:
        self._fed += 1
        self._inbound.put_nowait(message)

    async def app_receive(self) -> dict:
        # Called again only once the previous message is handled (SocketConsumer.__call__).
        self._done = self._taken
        self._progress.set()
        message = await self._inbound.get()
        self._taken += 1
        return message

    async def app_send(self, message: dict) -> None:
        kind = message["type"]
        if kind == "websocket.send":
            text, ws = message.get("text"), self.ws
            if text is None:
                await self.send(codec.message(message.get("bytes") or b""))
            elif not (ws is not None and self.is_open and not self.queue and ws.pending() == 0
                      and ws.try_write_message(text)):
                # Not written straight to the connection by the carrier's outlet (daphne only).
                await self.send(codec.message(text))
        elif kind == "websocket.close":
            await self.close("closed by the server", code=message.get("code") or CloseCode.NORMAL, graceful=True)
        elif kind == "engineio.pending":
            if self.state is not State.CLOSED:
                self.set_pending(bool(message.get("pending")))
        # websocket.accept: the session is open already

    async def _handled(self, target: int, timeout: float | None) -> None:
        """Wait until the application has handled the first ``target`` messages fed to it."""
        try:
            async with asyncio.timeout(timeout):
                while self._done < target and self.is_open:
                    self._progress.clear()
                    await self._progress.wait()
        except TimeoutError:
            pass

    # -- outbound ----------------------------------------------------------------------

    async def send(self, frame: str | bytes) -> bool:
        """Write one encoded Engine.IO packet to the current transport.

        On a WebSocket, like the reference server (which writes again only once the
        previous write has drained), a packet is written at once if no earlier write
        is still in the server's buffer and nothing waits; otherwise it joins the queue,
        written in one go once the socket has drained and ``WRITE_BATCH_WINDOW`` has
        passed since the last write. A burst costs one write, and a packet that follows
        another at once reaches the client in a read of its own.
        """
        if not self.is_open:
            return False
        ws = self.ws
        if ws is not None and not self.queue and ws.pending() == 0:
            self._last_write = asyncio.get_running_loop().time()
            if not await ws.send(frame):
                await self.close("transport error", code=CloseCode.NORMAL, by_client=True)
                return False
            return True
        self.queue.append(frame)
        self.queued_bytes += len(frame)
        if self.queued_bytes + (ws.pending() if ws is not None else 0) > self.options.max_buffer:
            await self.close("slow consumer", code=CloseCode.SLOW_CONSUMER)
            return False
        if ws is not None:
            if self._flusher is None or self._flusher.done():
                self._flusher = asyncio.ensure_future(self._drain())
        elif self._poll is not None and not self._poll.done():
            self._poll.set_result(None)  # the GET takes the whole queue when it resumes
        return True

    async def _drain(self) -> None:
        """Write the queue to the WebSocket after the batch window, once earlier writes have left."""
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(0.0, self._last_write + WRITE_BATCH_WINDOW - loop.time()))
        waits = 0
        while self.ws is not None and self.ws.pending() > 0 and self.is_open:
            # A slow client: back off while the server's buffer empties (or overflows: send()).
            await asyncio.sleep(min(0.05, 0.001 * 2**waits))
            waits += 1
        self._last_write = loop.time()
        await self._write_queue()

    async def _write_queue(self) -> None:
        ws = self.ws
        if ws is None:
            return
        frames = list(self.queue)
        self.queue.clear()
        self.queued_bytes = 0
        for frame in frames:
            if not await ws.send(frame):
                await self.close("transport error", code=CloseCode.NORMAL, by_client=True)
                return

    def _take_queue(self, last: str | None = None) -> str:
        frames = list(self.queue)
        self.queue.clear()
        self.queued_bytes = 0
        if last is not None:
            frames.append(last)
        return codec.encode_payload(frames)

    # -- inbound -------------------------------------------------------------------------

    async def receive(self, packet: codec.EnginePacket) -> None:
        """A packet from the current transport."""
        if not self.is_open or await self.timed_out():
            return
        kind = packet.type
        if kind == codec.MESSAGE:
            self._feed({"type": "websocket.receive", "bytes": packet.data} if packet.binary
                       else {"type": "websocket.receive", "text": packet.data})
            if self._fed - self._done > INBOUND_LIMIT:
                await self._handled(self._fed - INBOUND_LIMIT, None)
        elif kind in (codec.PONG, codec.PING):
            if packet.data is not None and len(packet.data) > MAX_CONTROL_PAYLOAD:
                await self.close("ping payload too big", code=CloseCode.PROTOCOL_ERROR)
                return
            self._feed(CONTROL)  # the application counts it (rate limit)
            if kind == codec.PONG:
                self._pong.set()
            else:
                # Engine.IO v4 servers ping; answer a client's ping anyway, as python-engineio does.
                await self.send(codec.encode_packet(codec.PONG, packet.data))
            if self._fed - self._done > INBOUND_LIMIT:
                await self._handled(self._fed - INBOUND_LIMIT, None)
        elif kind == codec.CLOSE:
            await self.close("closed by the client", by_client=True)
        elif kind != codec.NOOP:
            await self.close("unexpected packet", code=CloseCode.PROTOCOL_ERROR)

    async def _heartbeat(self) -> None:
        """Ping ``ping_interval`` after the open or the last pong; no pong by the deadline: close."""
        loop = asyncio.get_running_loop()
        interval, timeout = self.options.ping_interval, self.options.ping_timeout
        due = loop.time() + interval
        while self.is_open:
            await asyncio.sleep(max(0.0, due - loop.time()))
            self._pong.clear()
            # From the scheduled time, not the actual one: a busy loop must not extend the grace.
            self._pong_deadline = due + timeout
            await self.send(codec.encode_packet(codec.PING))
            try:
                async with asyncio.timeout_at(self._pong_deadline):
                    await self._pong.wait()
            except TimeoutError:
                await self.close("ping timeout", code=CloseCode.HEARTBEAT_TIMEOUT)
                return
            self._pong_deadline = None
            due = loop.time() + interval

    async def timed_out(self) -> bool:
        """True (and the session closed) if the pong deadline has passed, even if its timer is late."""
        deadline = self._pong_deadline
        if deadline is not None and not self._pong.is_set() and asyncio.get_running_loop().time() >= deadline:
            await self.close("ping timeout", code=CloseCode.HEARTBEAT_TIMEOUT)
            return True
        return False

    # -- long-polling --------------------------------------------------------------------

    async def poll(self, receive: Callable[[], Awaitable[dict]]) -> str | None:
        """A GET: the queued packets, waiting for some if there are none. None: the client left.

        ``receive`` is the request's ASGI receive: while the GET waits, its next message can
        only be ``http.disconnect``.
        """
        if self.state is State.CLOSING:
            body = self._take_queue(codec.encode_packet(codec.CLOSE))
            await self._finish(False)
            return body
        if self.transport != "polling" or not self.is_open or await self.timed_out():
            raise PollError("bad_request")
        if self._poll is not None:
            # Two GETs at once: a broken or hostile client. The waiting one gets the close packet.
            await self.close("overlapping polls", code=CloseCode.PROTOCOL_ERROR)
            raise PollError("bad_request")
        if self.queue:
            return self._take_queue()
        self._poll = waiter = asyncio.get_running_loop().create_future()
        gone = asyncio.ensure_future(receive())
        timer = None
        if self.state is State.UPGRADING:
            timer = asyncio.get_running_loop().call_later(UPGRADE_NOOP_DELAY, self._noop_poll)
        metrics.POLLS_WAITING.inc()
        try:
            await asyncio.wait({waiter, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            metrics.POLLS_WAITING.dec()
            self._poll = None
            gone.cancel()
            if timer is not None:
                timer.cancel()
        if not waiter.done():
            waiter.cancel()
            await self.close("poll aborted by the client", by_client=True)
            return None
        last = waiter.result()
        if last is None and self.transport != "polling":
            # Upgraded while this GET waited (a client pauses polling before it sends "5",
            # so only a stray GET gets here): polling is over for this session.
            raise PollError("bad_request")
        return self._take_queue(last)

    def _noop_poll(self) -> None:
        if self._poll is not None and not self._poll.done():
            self._poll.set_result(codec.encode_packet(codec.NOOP))

    async def post(self, body: bytes) -> None:
        """A POST's packets; PollError if the session refuses them (and is then closed)."""
        if self.state is State.CLOSING:
            return  # the application closed the session; what the client says now is moot
        if self.transport != "polling" or not self.is_open or await self.timed_out():
            raise PollError("bad_request")
        if self._posting:
            await self.close("overlapping posts", code=CloseCode.PROTOCOL_ERROR)
            raise PollError("bad_request")
        self._posting = True
        try:
            try:
                packets = codec.decode_payload(body.decode("utf-8"))
            except (UnicodeDecodeError, ProtocolError):
                await self.close("malformed payload", code=CloseCode.PROTOCOL_ERROR)
                raise PollError("bad_request") from None
            for packet in packets:
                await self.receive(packet)
            await self._handled(self._fed, POST_WAIT)
        finally:
            self._posting = False

    # -- WebSocket ----------------------------------------------------------------------

    def can_upgrade(self) -> bool:
        return self.transport == "polling" and self.state is State.OPEN and self.probe is None

    def begin_upgrade(self, ws: Carrier) -> None:
        self.probe = ws

    async def probe_packet(self, ws: Carrier, packet: codec.EnginePacket) -> None:
        """A packet on the WebSocket being upgraded to: ``2probe``, then ``5``."""
        if ws is not self.probe or not self.is_open:
            await ws.close(CloseCode.PROTOCOL_ERROR)
            return
        if packet.type == codec.PING and packet.data == "probe" and self.state is State.OPEN:
            await ws.send(codec.encode_packet(codec.PONG, "probe"))
            self.state = State.UPGRADING
            self._noop_poll()  # the waiting GET returns, so the client can pause polling
        elif packet.type == codec.UPGRADE and self.state is State.UPGRADING:
            self.probe, self.ws, self.transport = None, ws, "websocket"
            self.state = State.OPEN
            self.scope["engineio"]["transport"] = "websocket"
            if self.queue:
                await self._write_queue()
            if self._poll is not None and not self._poll.done():
                self._poll.set_result(None)
        else:
            self.probe = None
            if self.state is State.UPGRADING:
                self.state = State.OPEN
            await ws.close(CloseCode.PROTOCOL_ERROR)

    async def websocket_gone(self, ws: Carrier) -> None:
        """The client closed a WebSocket of this session."""
        if ws is self.probe:
            self.probe = None
            if self.state is State.UPGRADING:
                self.state = State.OPEN
        elif ws is self.ws:
            self.ws = None
            await self.close("transport closed", by_client=True)
