"""The ASGI application: HTTP to Django, sockets through JWT auth to the consumers."""
from channels.routing import ProtocolTypeRouter, URLRouter
from django.urls import path, re_path

from .auth import JWTAuthMiddleware
from .consumers import NativeConsumer


async def not_found(scope, receive, send):
    """Refuse a socket on an unknown path (HTTP 403 at the handshake) instead of a traceback."""
    await receive()
    await send({"type": "websocket.close"})


websocket_urlpatterns = [
    path("ws/", NativeConsumer.as_asgi()),
]


def application_for(http_app, extra_websocket_urlpatterns=()):
    """The project's ASGI application around ``http_app`` (Django's)."""
    return ProtocolTypeRouter(
        {
            "http": http_app,
            "websocket": JWTAuthMiddleware(
                URLRouter(
                    [*extra_websocket_urlpatterns, *websocket_urlpatterns, re_path(r"", not_found)]
                )
            ),
        }
    )
