"""The ASGI application: HTTP to Django, sockets through JWT auth to the consumers.

``/socket.io/`` is Socket.IO (docs/socketio.md): its WebSocket and its long-polling
requests both reach the Engine.IO sessions of ``socketio_engine`` (this process's).
"""
from channels.routing import ProtocolTypeRouter, URLRouter
from django.urls import path, re_path

from .auth import JWTAuthMiddleware
from .consumers import NativeConsumer
from .engineio import EngineServer
from .socketio_consumer import SocketIOConsumer, engine_options
from .transports import PollingTransport, WebSocketTransport

socketio_engine = EngineServer(SocketIOConsumer.as_asgi(), engine_options)


async def not_found(scope, receive, send):
    """Refuse a socket on an unknown path (HTTP 403 at the handshake) instead of a traceback."""
    await receive()
    await send({"type": "websocket.close"})


websocket_urlpatterns = [
    path("ws/", NativeConsumer.as_asgi()),
    path("socket.io/", WebSocketTransport.as_asgi(server=socketio_engine)),
]

http_urlpatterns = [
    path("socket.io/", PollingTransport.as_asgi(server=socketio_engine)),
]


def application_for(http_app, extra_websocket_urlpatterns=()):
    """The project's ASGI application around ``http_app`` (Django's)."""
    return ProtocolTypeRouter(
        {
            "http": URLRouter([*http_urlpatterns, re_path(r"", http_app)]),
            "websocket": JWTAuthMiddleware(
                URLRouter(
                    [*extra_websocket_urlpatterns, *websocket_urlpatterns, re_path(r"", not_found)]
                )
            ),
        }
    )
