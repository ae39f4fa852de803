"""Real clients for the hardening tests: websockets helpers, a hand-made raw WebSocket, /proc readers."""
import asyncio
import base64
import json
import os
import socket
import struct
import threading
import time

import websockets

from tests.clients import track
from tests.realtime.test_cross_process import command, receive_event  # noqa: F401  (re-exported)


async def ws_connect(server, token: str | None = None, *, path: str = "/ws/", **kwargs):
    """A websockets client of ``server`` (a ServerProcess), token in the query string."""
    url = f"{server.ws_url}{path}" + (f"?token={token}" if token is not None else "")
    kwargs.setdefault("ping_interval", None)
    kwargs.setdefault("open_timeout", 5)
    kwargs.setdefault("close_timeout", 2)
    return track(await websockets.connect(url, proxy=None, **kwargs))


async def connected(server, token: str, **kwargs):
    """Open a socket and wait for its ``connected`` event."""
    ws = await ws_connect(server, token, **kwargs)
    ws.connected_frame = await receive_event(ws, "connected")
    return ws


async def close_code(ws, timeout: float = 5.0) -> int:
    """Read until the server closes the socket; the close code it sent (1006 without a frame)."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    except websockets.ConnectionClosed as e:
        return e.rcvd.code if e.rcvd is not None else 1006


async def frames_until_close(ws, timeout: float = 5.0) -> tuple[list[dict], int]:
    """Every frame received until the close, and the close code."""
    frames = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                frames.append(json.loads(await ws.recv()))
    except websockets.ConnectionClosed as e:
        return frames, (e.rcvd.code if e.rcvd is not None else 1006)


async def wait_for(predicate, timeout: float = 5.0, interval: float = 0.05):
    """Poll ``predicate()`` (sync) until truthy; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(interval)


def rss_mb(pid: int) -> float:
    """Resident memory of a process (VmRSS), in MB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class PeakRss(threading.Thread):
    """The highest resident memory of a process, sampled every 50 ms from creation until ``stop`` is set."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.baseline = self.peak = rss_mb(pid)
        self.stop = threading.Event()
        self.start()

    @property
    def growth(self) -> float:
        """MB from the RSS at creation to the peak."""
        return self.peak - self.baseline

    def run(self) -> None:
        while not self.stop.wait(0.05):
            try:
                self.peak = max(self.peak, rss_mb(self.pid))
            except (OSError, RuntimeError):
                return


# -- slow consumers: what may be published to a client that never reads before it is closed ---------


def kernel_send_buffer_max() -> int:
    """The most a TCP send buffer may hold on this machine (``net.ipv4.tcp_wmem``'s maximum): bytes
    the server's kernel accepts for a client that never reads, before the server sees any backlog."""
    with open("/proc/sys/net/ipv4/tcp_wmem") as f:
        return int(f.read().split()[2])


def slow_consumer_budget(bound: int, batch_bytes: int) -> int:
    """Bytes published to a never-reading client by the time it must be closed (docs/design.md,
    daphne-backpressure): the server's per-socket bound (``MAX_OUTBOUND_BACKLOG_BYTES``), what the
    kernel buffers before the server sees a backlog, the batch being published when the bound is
    crossed, and 1 MB of margin (frame headers, the client's small receive window)."""
    return bound + kernel_send_buffer_max() + batch_bytes + 1_000_000


async def flood_until_closed(room: str, closed, caught_up, *, event_bytes: int, batch: int, budget: int,
                             pause: float = 0.0) -> int:
    """Publish ``test:bulk`` events of ``event_bytes`` to ``room`` in batches until ``closed()`` or
    ``budget`` bytes; after each batch ``await caught_up(n)`` (a reading client got a marker published
    after it: the server has handled the whole batch). Bytes published."""
    from django_oda_realtime import apublish

    blob = "x" * event_bytes
    published = 0
    while not closed() and published * event_bytes < budget:
        for _ in range(batch):
            await apublish("test:bulk", {"n": published, "blob": blob}, [room])
            published += 1
        await caught_up(published)
        if pause:
            await asyncio.sleep(pause)  # pacing only (lets a keep-alive thread send meanwhile)
    return published * event_bytes


# -- a WebSocket client by hand, on a plain socket -----------------------------------------------


def client_frame(text: str | bytes, opcode: int = 0x1) -> bytes:
    """One masked client frame (RFC 6455 5.2)."""
    payload = text.encode() if isinstance(text, str) else text
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


def raw_websocket(port: int, path: str, *, rcvbuf: int | None = None, headers: dict | None = None,
                  timeout: float = 5.0) -> tuple[socket.socket, bytes]:
    """Do the HTTP upgrade by hand; the socket and whatever was read past the response headers.

    ``rcvbuf`` shrinks the kernel's receive buffer (set before connecting so the
    window is small): a client that then never reads stalls the server quickly.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
    ]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"closed during the handshake: {buf!r}")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        sock.close()
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
    return sock, rest


async def read_until(sock: socket.socket, needle: bytes, timeout: float = 5.0, *, seen: bytes = b"") -> bytes:
    """Read a raw socket until ``needle`` is in what was read (server frames are unmasked, so a
    reply's text appears as is), ``seen`` being what was read already; what was read.
    AssertionError naming the needle on timeout."""
    got = seen
    deadline = time.monotonic() + timeout
    sock.setblocking(False)
    try:
        while needle not in got:
            try:
                chunk = sock.recv(65536)
            except BlockingIOError:
                assert time.monotonic() < deadline, f"no {needle!r} from the server within {timeout}s: {got[-300:]!r}"
                await asyncio.sleep(0.02)
                continue
            assert chunk, f"the server closed before sending {needle!r}: {got[-300:]!r}"
            got += chunk
    finally:
        sock.setblocking(True)
    return got


def peer_gone(sock: socket.socket) -> bool:
    """True once the server has closed or reset the connection (EOF/RST seen by a non-reading client).

    Reads without consuming more than needed; a socket still open with unread data is not gone.
    """
    sock.setblocking(False)
    try:
        while True:
            data = sock.recv(1 << 20)
            if not data:
                return True
    except BlockingIOError:
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True
    finally:
        sock.setblocking(True)


def hardened_server(prefix: str, redis_url: str | None = None, **env) -> "ServerProcess":
    """A daphne subprocess on Redis with layer prefix ``prefix`` and its own presence keys.

    ``env`` values are realtime settings (``IDLE_TIMEOUT=3`` -> ``REALTIME_IDLE_TIMEOUT=3``)
    or, when spelled in capitals with an underscore prefix already, raw variables.
    """
    from django.conf import settings

    from tests.servers import ServerProcess

    variables = {"REALTIME_PRESENCE_PREFIX": json.dumps(prefix)}
    for name, value in env.items():
        key = name if name.startswith(("REALTIME_", "DJANGO_", "JWT_", "DATABASE_")) else f"REALTIME_{name}"
        variables[key] = value if isinstance(value, str) else json.dumps(value)
    return ServerProcess(redis_url=redis_url or settings.TEST_REDIS_URL, layer_prefix=prefix, env=variables)


def pubsub_layer_settings(redis_url: str, prefix: str) -> dict:
    return {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": redis_url, "socket_timeout": 15}], "prefix": prefix},
        }
    }


async def http(method: str, url: str, body: dict | None = None, headers: dict | None = None,
               timeout: float = 10.0) -> tuple[int, dict | str]:
    """A real HTTP request (urllib, in a thread): (status, JSON body or text)."""
    import urllib.error
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "application/json", **(headers or {}),
    })
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call():
        try:
            with opener.open(request, timeout=timeout) as res:
                status, raw = res.status, res.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        try:
            return status, json.loads(raw) if raw else ""
        except ValueError:
            return status, raw.decode(errors="replace")

    return await asyncio.to_thread(call)
