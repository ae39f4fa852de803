"""``python -m tests.realtime.slim_daphne_probe slim|stock``: one WebSocket through daphne, in process.

Runs daphne's ``Server`` (``stock``) or ``django_oda_realtime.server.serving.SlimServer`` (``slim``) in
this process with a small echo application, connects one client with a
``?token=`` query string, and prints one JSON line: what the application received
(in order), what the client received, and what the server still holds once the
socket is open (for ``tests/realtime/test_serve_memory.py``). A Twisted reactor
runs once per process, hence a subprocess per run.
"""
import asyncio
import gc
import json
import sys
import weakref

import daphne.server  # noqa: F401  (installs the asyncio reactor first)
from daphne.http_protocol import WebRequest
from daphne.server import Server
from twisted.internet import reactor
import websockets

from django_oda_realtime.server.serving import SlimServer

TOKEN = "probe-secret-token-4711"
HEADER = "probe-header-value-0815"  # a request header's value (cookies, user agent: ~1 KiB for a browser)
received: list[dict] = []


async def app(scope, receive, send):
    if scope["type"] != "websocket":
        return
    received.append(await receive())
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        received.append(message)
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "text": "echo:" + message["text"]})


def held_values(obj) -> str:
    """The repr of everything an object's attributes hold, one level down into containers."""
    parts = []
    for value in vars(obj).values():
        parts.append(repr(value))
        if isinstance(value, dict):
            parts.extend(repr(v) for v in value.values())
        elif hasattr(value, "__dict__") and not isinstance(value, type):
            parts.extend(repr(v) for v in vars(value).values())
    return "\n".join(parts)


async def client(server, report: dict) -> None:
    while not server.listening_addresses:
        await asyncio.sleep(0.01)
    port = server.listening_addresses[0][1]
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/?token={TOKEN}", open_timeout=10,
                                  additional_headers={"X-Probe": HEADER}) as ws:
        await ws.send("first")  # right after the handshake, before anything was read
        await ws.send("second")
        report["client"] = [await ws.recv(), await ws.recv()]
        protocol = next(p for p in server.connections if not isinstance(p, WebRequest))
        requests = [weakref.ref(p) for p in server.connections if isinstance(p, WebRequest)]
        # daphne drops the upgraded request from its table within 1-2 s (application_checker)
        for _ in range(100):
            if not any(isinstance(p, WebRequest) for p in server.connections):
                break
            await asyncio.sleep(0.05)
        alive_before_gc = sum(ref() is not None for ref in requests)
        gc.collect()
        report.update(
            requests_seen=len(requests),
            requests_alive_without_gc=alive_before_gc,
            requests_alive=sum(ref() is not None for ref in requests),
            producer=type(protocol.transport.producer).__name__,
            token_held_by_protocol=TOKEN in held_values(protocol),
            header_held_by_protocol=HEADER in held_values(protocol),
            attributes=len(vars(protocol)),
            queue=type(protocol.application_queue).__name__,
        )
        await ws.send("third")
        report["client"].append(await ws.recv())
    for _ in range(100):
        if received and received[-1]["type"] == "websocket.disconnect":
            break
        await asyncio.sleep(0.05)
    report["app"] = received


def main() -> None:
    server_class = SlimServer if sys.argv[1] == "slim" else Server
    server = server_class(app, endpoints=["tcp:port=0:interface=127.0.0.1"], signal_handlers=False)
    report: dict = {}

    async def run() -> None:
        try:
            await client(server, report)
        except Exception as exc:  # reported, not swallowed
            report["error"] = repr(exc)
        finally:
            reactor.callLater(0, reactor.stop)

    reactor.callLater(0, lambda: asyncio.ensure_future(run()))
    reactor.callLater(60, reactor.stop)  # never hang a test run
    server.run()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
