"""Graceful drain of a server process (issue #17; docs/deployment.md).

On SIGTERM or SIGINT ``manage.py serve`` (``serving.SlimServer``) calls ``drain()``
before it stops:

1. the process is *draining*: ``GET /readyz`` answers 503 at once (a balancer's active
   check takes it out), and ``DrainGate`` refuses new sockets: a ``/ws/`` handshake is
   accepted and closed with ``server_shutdown`` / 4012 (retryable), a new Engine.IO
   session gets HTTP 503 (polling) or a refused handshake (WebSocket). Plain HTTP, and
   the polling requests of sessions already open, are still served;
2. every open socket is closed at a random moment within ``REALTIME["DRAIN_SECONDS"]``
   (jitter, so its clients do not all reconnect in the same instant): an ``error`` frame
   with code ``server_shutdown``, then close code 4012. Socket.IO gets a transport close
   and no namespace DISCONNECT, so ``socket.io-client`` reconnects by itself (4012 is
   retryable, docs/socketio.md). Each close is logged and counted with reason
   ``server_shutdown`` (``<prefix>disconnects_total``);
3. Engine.IO sessions that never connected a namespace are closed, the close frames
   get ``DRAIN_GRACE`` seconds to leave, and the process exits (daphne cancels what is left).

The process exits within ``DRAIN_SECONDS + DRAIN_GRACE`` plus daphne's own shutdown.
"""
import asyncio
import logging

from asgiref.sync import markcoroutinefunction

from .. import metrics
from ..conf import rt_settings
from ..events import ERROR
from ..exceptions import CloseCode
from ..protocol import native

logger = logging.getLogger("realtime.drain")

REASON = "server_shutdown"
MESSAGE = "The server is restarting; reconnect"
DRAIN_GRACE = 1.0  # seconds the last close frames get before the process stops
CLOSE_CONTROL = {"action": "close", "code": int(CloseCode.SERVER_RESTART), "reason": REASON, "message": MESSAGE}

_draining = False


def is_draining() -> bool:
    """True once this process has begun to shut down."""
    return _draining


def begin() -> None:
    """Mark the process as draining: readiness fails and new sockets are refused from now on."""
    global _draining
    _draining = True


def _reset() -> None:
    """Tests only: the process is serving again."""
    global _draining
    _draining = False


async def drain(seconds: float | None = None) -> int:
    """Close every socket of this process over ``seconds`` (default ``DRAIN_SECONDS``); how many were open."""
    from ..hub import current_hub
    from ..routing import socketio_engine

    begin()
    seconds = float(rt_settings.DRAIN_SECONDS if seconds is None else seconds)
    hub = current_hub()  # the event loop's hub: one loop, one hub under manage.py serve
    hubs = [hub] if hub is not None else []
    total = sum(len(hub.connections) for hub in hubs)
    logger.info("Draining %d connections over %.1f s (%s)", total, seconds, REASON,
                extra={"action": "drain", "reason": REASON, "connections": total, "drain_seconds": seconds})
    await asyncio.gather(*(hub.drain(seconds, CLOSE_CONTROL) for hub in hubs))
    for sock in list(socketio_engine.sockets.values()):
        await sock.close(REASON, code=CloseCode.SERVER_RESTART)  # no namespace connected: nothing to say first
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DRAIN_GRACE
    while loop.time() < deadline and any(hub.connections for hub in hubs):
        await asyncio.sleep(0.05)
    await asyncio.sleep(max(0.0, min(0.2, deadline - loop.time())))  # the close frames leave the buffers
    logger.info("Drained; stopping (%s)", REASON, extra={"action": "drained", "reason": REASON})
    return total


class DrainGate:
    """ASGI middleware: while the process drains, refuse what would open a new socket (module docstring)."""

    def __init__(self, app) -> None:
        self.app = app

    @markcoroutinefunction  # an ASGI 3 application: it returns a coroutine (as routing.ProtocolRouter)
    def __call__(self, scope, receive, send):
        if _draining:
            kind = scope.get("type")
            if kind == "websocket":
                return self._refuse_socket(scope, receive, send)
            if kind == "http" and _opens_engineio_session(scope):
                return self._refuse_handshake(send)
        return self.app(scope, receive, send)

    async def _refuse_socket(self, scope, receive, send) -> None:
        await receive()  # websocket.connect
        metrics.REFUSALS.labels(REASON).inc()
        if scope.get("path", "").rstrip("/").endswith("/ws"):
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": native.encode_error(ERROR, REASON, MESSAGE)})
            await send({"type": "websocket.close", "code": int(CloseCode.SERVER_RESTART)})
        else:
            await send({"type": "websocket.close"})  # HTTP 403 at the handshake: Socket.IO clients retry

    async def _refuse_handshake(self, send) -> None:
        metrics.REFUSALS.labels(REASON).inc()
        await send({"type": "http.response.start", "status": 503,
                    "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1")]})
        await send({"type": "http.response.body", "body": b'{"code":"server_shutdown","message":"Server shutting down"}'})


def _opens_engineio_session(scope: dict) -> bool:
    """A ``/socket.io/`` request without ``sid``: the handshake of a new Engine.IO session."""
    return "/socket.io" in scope.get("path", "") and b"sid=" not in scope.get("query_string", b"")


__all__ = ["DrainGate", "drain", "is_draining", "begin", "REASON"]
