"""The benchmark publisher process: sends numbered events to the room from outside the servers.

Driven over stdin/stdout like ``bench/clients.py``:

- ``{"cmd": "pub", "seq": s}``: publish one event, reply ``{"sent": s, "at": sentAt}``.
- ``{"cmd": "flood", "seqs": [a, b]}``: publish ``a..b-1`` back to back, as fast
  as one publisher can, reply ``{"sent": b, "t0": ..., "t1": ...}``.

Each event's data is ``{"seq": s, "sentAt": time.time()}``. Three publishers:

- ``ours``: a Django-configured process calling ``django_oda_realtime.apublish`` (the one
  publish API), i.e. channels-redis ``group_send`` to the room's group.
- ``baseline``: ``socketio.AsyncRedisManager(url, write_only=True).emit(...)``.
- ``bare``: a Redis ``PUBLISH`` of the finished JSON frame on ``bench.bare``,
  which ``bench/bare_asgi.py`` forwards unchanged to each of its sockets.
"""
import argparse
import asyncio
import json
import sys
import time
import uuid

EVENT = "inventory:updated"
ROOM = "inventory:all"
BARE_CHANNEL = "bench.bare"


async def make_sender(kind: str, redis_url: str):
    if kind == "ours":
        import django

        django.setup()
        from django_oda_realtime import apublish

        async def send(seq: int, sent_at: float) -> None:
            await apublish(EVENT, {"seq": seq, "sentAt": sent_at}, [ROOM])

    elif kind == "baseline":
        import socketio

        manager = socketio.AsyncRedisManager(redis_url, write_only=True)

        async def send(seq: int, sent_at: float) -> None:
            await manager.emit(EVENT, {"seq": seq, "sentAt": sent_at}, room=ROOM, namespace="/")

    elif kind == "bare":
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(redis_url)

        async def send(seq: int, sent_at: float) -> None:
            frame = {"event": EVENT, "type": EVENT, "data": {"seq": seq, "sentAt": sent_at},
                     "id": uuid.uuid4().hex, "timestamp": ""}
            await client.publish(BARE_CHANNEL, json.dumps(frame, separators=(",", ":")))

    else:
        raise SystemExit(f"unknown publisher kind {kind}")
    return send


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def serve(kind: str, redis_url: str) -> None:
    send = await make_sender(kind, redis_url)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    emit({"ready": True})
    while True:
        line = await reader.readline()
        if not line:
            break
        cmd = json.loads(line)
        if cmd["cmd"] == "pub":
            sent_at = time.time()
            await send(cmd["seq"], sent_at)
            emit({"sent": cmd["seq"], "at": sent_at})
        elif cmd["cmd"] == "flood":
            first, end = cmd["seqs"]
            t0 = time.time()
            for seq in range(first, end):
                await send(seq, time.time())
            emit({"sent": end, "t0": t0, "t1": time.time()})
        elif cmd["cmd"] == "quit":
            break


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=["ours", "baseline", "bare"], required=True)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.kind, args.redis_url))


if __name__ == "__main__":
    main()
