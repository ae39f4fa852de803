"""The ASGI application: HTTP to Django, sockets through JWT auth to the consumers.

``/socket.io/`` is Socket.IO (docs/socketio.md): its WebSocket and its long-polling
requests both reach the Engine.IO sessions of ``socketio_engine`` (this process's).

The routers here dispatch with a plain call that returns the consumer's coroutine:
channels' ``ProtocolTypeRouter``, ``URLRouter`` and ``as_asgi`` wrapper each keep a
suspended coroutine frame, and ``URLRouter`` a copy of the scope, for the whole life
of every socket (about 1.5 KiB per idle socket, docs/benchmarks.md). Only the JWT
middleware's frame stays, and the server's scope (the middleware fills it in place).
Paths other than ours, and ``extra_websocket_urlpatterns``, still go through a
``URLRouter`` (which copies the scope for them, as before).
"""
from asgiref.sync import markcoroutinefunction
from channels.routing import URLRouter
from django.urls import path, re_path

from . import outbox_relay
from .auth import JWTAuthMiddleware
from .socketio.carriers import PollingCarrier, WebSocketCarrier
from .socketio.consumer import SocketIOConsumer, engine_options
from .socketio.engine import EngineServer
from .sockets.consumers import NativeConsumer

socketio_engine = EngineServer(SocketIOConsumer.as_asgi(), engine_options)


async def not_found(scope, receive, send):
    """Refuse a socket on an unknown path (HTTP 403 at the handshake) instead of a traceback."""
    await receive()
    await send({"type": "websocket.close"})


websocket_urlpatterns = [
    path("ws/", NativeConsumer.as_asgi()),
    path("socket.io/", WebSocketCarrier.as_asgi(server=socketio_engine)),
]

http_urlpatterns = [
    path("socket.io/", PollingCarrier.as_asgi(server=socketio_engine)),
]


async def lifespan(scope, receive, send):
    """ASGI lifespan (uvicorn, hypercorn): the outbox relay starts at startup and stops at shutdown."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            outbox_relay.start()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            outbox_relay.stop()
            await send({"type": "lifespan.shutdown.complete"})
            return


class ProtocolRouter:
    """``ProtocolTypeRouter`` without a frame of its own: by ``scope["type"]`` to an application.

    Its first call starts the outbox relay of this server process (``outbox_relay.start``): after
    Django's setup, in the process that serves (docs/design.md#outbox)."""

    def __init__(self, mapping: dict) -> None:
        self.mapping = mapping

    @markcoroutinefunction  # an ASGI 3 application to daphne, uvicorn and asgiref: it returns a coroutine
    def __call__(self, scope, receive, send):
        outbox_relay.start()  # once: a dict lookup on later calls
        application = self.mapping.get(scope["type"])
        if application is None:
            raise ValueError(f"No application configured for scope type {scope['type']!r}")
        return application(scope, receive, send)


class ConsumerPaths:
    """Sockets by exact path to a consumer (an ``as_asgi()`` application), made directly;
    every other path to ``fallback``. The path is taken after ``root_path``, as ``URLRouter`` does."""

    def __init__(self, routes: dict, fallback) -> None:
        self.routes = {
            "/" + route.lstrip("/"): (app.consumer_class, app.consumer_initkwargs) for route, app in routes.items()
        }
        self.fallback = fallback

    @markcoroutinefunction
    def __call__(self, scope, receive, send):
        path_, root = scope.get("path", ""), scope.get("root_path", "")
        if root and path_.startswith(root):
            path_ = path_[len(root):]
        route = self.routes.get(path_)
        if route is None:
            return self.fallback(scope, receive, send)
        consumer_class, initkwargs = route
        return consumer_class(**initkwargs)(scope, receive, send)


def application_for(http_app, extra_websocket_urlpatterns=()):
    """The project's ASGI application around ``http_app`` (Django's).

    ``extra_websocket_urlpatterns`` (your own consumers) are matched before ours' fallback;
    ``/ws/`` and ``/socket.io/`` are always ours.
    """
    fallback = URLRouter([*extra_websocket_urlpatterns, *websocket_urlpatterns, re_path(r"", not_found)])
    ours = {str(route.pattern): route.callback for route in websocket_urlpatterns}
    return ProtocolRouter(
        {
            "http": URLRouter([*http_urlpatterns, re_path(r"", http_app)]),
            "websocket": JWTAuthMiddleware(ConsumerPaths(ours, fallback)),
            "lifespan": lifespan,
        }
    )
