"""``manage.py conformance_server --port 3000``: the server the official protocol test suites expect.

The suites of socketio/engine.io-protocol and socketio/socket.io-protocol
(``test-suite/test-suite.js``) run against ``http://localhost:3000`` and expect the
reference test server: ``/engine.io/`` a plain Engine.IO echo, ``/socket.io/`` without
authentication, ``pingInterval`` 300 ms, ``pingTimeout`` 200 ms, ``maxPayload`` 1,000,000,
namespaces ``/`` and ``/custom``, on connect an ``auth`` event echoing the handshake
payload, ``message`` echoed as ``message-back`` and ``message-with-ack`` acknowledged
with its own arguments (binary attachments included).

It runs the product's protocol code (``socketio/carriers.py``, ``socketio/engine.py``,
``SocketIOConsumer``, ``protocol/socketio.py``) configured differently, in an ASGI
application built here: it is never reachable from the product's URL configuration.
How to run the suites: docs/socketio.md.
"""
import secrets

from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.management.base import BaseCommand
from django.urls import path, re_path

from django_oda_realtime.socketio.engine import EngineOptions, EngineServer
from django_oda_realtime.protocol import socketio as codec
from django_oda_realtime.socketio.consumer import SocketIOConsumer
from django_oda_realtime.socketio.carriers import PollingCarrier, WebSocketCarrier

OPTIONS = EngineOptions(ping_interval=0.3, ping_timeout=0.2, max_payload=1_000_000, max_buffer=8 * 1024 * 1024)


class ConformanceConsumer(SocketIOConsumer):
    """The reference test server's Socket.IO behaviour, on the product's Socket.IO consumer."""

    namespaces = frozenset({"/", "/custom"})

    def message_limit(self) -> int | None:
        return None  # Engine.IO's maxPayload only

    def connect_timeout(self) -> float:
        return 45.0  # Socket.IO's default connectTimeout

    async def connect_namespace(self, namespace, auth):
        return secrets.token_urlsafe(15)

    async def namespace_connected(self, namespace, auth):
        await self.send_messages(codec.encode(codec.EVENT, ["auth", auth if auth is not None else {}], namespace=namespace))

    async def handle_event(self, namespace, name, args, ack):
        if name == "message":
            await self.send_messages(codec.encode(codec.EVENT, ["message-back", *args], namespace=namespace))
        elif name == "message-with-ack" and ack is not None:
            await self.send_messages(codec.encode_ack(namespace, ack, args))

    async def disconnect_namespace(self, namespace):
        pass


async def engine_echo(scope, receive, send):
    """Plain Engine.IO: every message back to its sender."""
    while True:
        message = await receive()
        if message["type"] == "websocket.receive":
            text = message.get("text")
            await send({"type": "websocket.send", **({"text": text} if text is not None else {"bytes": message["bytes"]})})
        elif message["type"] == "websocket.disconnect":
            return


async def http_not_found(scope, receive, send):
    await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"Not found"})


async def websocket_not_found(scope, receive, send):
    await receive()
    await send({"type": "websocket.close"})


def conformance_application():
    """The conformance server's ASGI application (its own Engine.IO sessions)."""
    engine = EngineServer(engine_echo, lambda: OPTIONS, check_origin=False)
    sio = EngineServer(ConformanceConsumer.as_asgi(), lambda: OPTIONS, check_origin=False)
    return ProtocolTypeRouter(
        {
            "http": URLRouter([
                path("engine.io/", PollingCarrier.as_asgi(server=engine)),
                path("socket.io/", PollingCarrier.as_asgi(server=sio)),
                re_path(r"", http_not_found),
            ]),
            "websocket": URLRouter([
                path("engine.io/", WebSocketCarrier.as_asgi(server=engine)),
                path("socket.io/", WebSocketCarrier.as_asgi(server=sio)),
                re_path(r"", websocket_not_found),
            ]),
        }
    )


class Command(BaseCommand):
    help = "Serve the Engine.IO / Socket.IO reference test server on 127.0.0.1 (for the official conformance suites)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=3000)

    def handle(self, *args, port, **options):
        from daphne.endpoints import build_endpoint_description_strings
        from daphne.server import Server

        self.stdout.write(f"Conformance server on http://127.0.0.1:{port} (/engine.io/, /socket.io/)")
        Server(
            application=conformance_application(),
            endpoints=build_endpoint_description_strings(host="127.0.0.1", port=port),
        ).run()
