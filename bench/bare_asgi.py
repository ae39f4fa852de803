"""The bare ASGI ceiling: the least an ASGI server must do to fan one frame out.

A minimal ASGI application with the same shape as our hub, minus the add-on:
one Redis subscription per process (``bench.bare``); each message on it is a
finished text frame sent, unchanged, to every local WebSocket with the ASGI
``send``. Sockets get a ``connected`` frame and an ack reply to their subscribe
message, so the benchmark drives it with the native client. No auth, no rooms,
no encoding: what is left is the server's own per-send cost (daphne/Twisted or
uvicorn). Run with ``REDIS_URL=... daphne bench.bare_asgi:app`` or uvicorn.
"""
import asyncio
import json
import os

import redis.asyncio as aioredis

CHANNEL = "bench.bare"
sockets: set = set()
_listener: asyncio.Task | None = None


async def listen() -> None:
    client = aioredis.Redis.from_url(os.environ["REDIS_URL"])
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(CHANNEL)
    async for message in pubsub.listen():
        frame = {"type": "websocket.send", "text": message["data"].decode()}
        for send in list(sockets):
            try:
                await send(frame)
            except Exception:
                sockets.discard(send)


async def app(scope, receive, send):
    global _listener
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    if _listener is None:
        _listener = asyncio.ensure_future(listen())
        await asyncio.sleep(0.05)  # let the subscription land before the first socket counts on it
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": '{"event":"connected","data":{}}'})
    try:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                break
            ack = json.loads(message.get("text") or "{}").get("ack")
            await send({"type": "websocket.send",
                        "text": json.dumps({"event": "subscribe:inventory", "ack": ack, "data": {}})})
            sockets.add(send)
    finally:
        sockets.discard(send)
