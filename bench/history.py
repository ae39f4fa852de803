"""Micro-benchmark of the event history (issue 13) on a real Redis.

Prints the publish latency (p50/p99, one publisher awaiting each event) of a plain channels-redis
``group_send`` against ``history.publish`` (append + PUBLISH in one script) on the pub/sub layer,
and against ``history.publish`` on the core layer (append script, then ``group_send``); then the
replay rate of 10,000 events to one consumer (``replay_all`` in batches of 500).

    .venv/bin/python -m bench.history [--redis redis://127.0.0.1:6379/0] [--events 5000]

Keys use a unique prefix and are deleted afterwards; nothing is flushed.
"""
import argparse
import asyncio
import os
import statistics
import time
import uuid

import django
from django.conf import settings

if not settings.configured and "DJANGO_SETTINGS_MODULE" not in os.environ:
    settings.configure(REALTIME={}, USE_TZ=True)
django.setup()

from channels_redis.core import RedisChannelLayer  # noqa: E402
from channels_redis.pubsub import RedisPubSubChannelLayer  # noqa: E402
import redis as redis_lib  # noqa: E402

from django_oda_realtime.events import Event  # noqa: E402
from django_oda_realtime.history import make_history  # noqa: E402
from django_oda_realtime.rooms import group_for  # noqa: E402

ROOM = "inventory:all"
OTHER = "inventory:location:9"


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {p50 * 1e6:7.0f} µs   p99 {p99 * 1e6:7.0f} µs"


async def timed(send, count: int) -> list[float]:
    for i in range(200):  # warm-up: connections, script load
        await send(i)
    samples = []
    for i in range(count):
        t0 = time.perf_counter()
        await send(i)
        samples.append(time.perf_counter() - t0)
    return samples


def build(i: int, room: str = ROOM) -> Event:
    return Event.build("inventory:updated", {"seq": i, "sku": "SKU-1", "quantity": i % 100}, [room])


async def main(url: str, count: int) -> None:
    prefix = f"benchhist{uuid.uuid4().hex[:8]}"
    host = {"address": url, "socket_timeout": 15}
    pubsub = RedisPubSubChannelLayer(hosts=[host], prefix=prefix)
    core = RedisChannelLayer(hosts=[host], prefix=prefix + "c")
    listener = await pubsub.new_channel()  # one subscriber, as a server process would be
    await pubsub.group_add(group_for(ROOM), listener)
    drain = asyncio.ensure_future(_drain(pubsub, listener))
    try:
        group = group_for(ROOM)
        plain = await timed(lambda i: pubsub.group_send(group, build(i).to_layer()), count)
        history = make_history(pubsub)
        with_history = await timed(lambda i: history.publish(build(i)), count)
        core_plain = await timed(lambda i: core.group_send(group, build(i).to_layer()), count)
        core_history = make_history(core)
        core_with = await timed(lambda i: core_history.publish(build(i)), count)
        print(f"publish latency, {count} events, one publisher, {url}")
        print(f"  pub/sub layer, group_send only      {percentiles(plain)}")
        print(f"  pub/sub layer, history.publish      {percentiles(with_history)}")
        print(f"  core layer,    group_send only      {percentiles(core_plain)}")
        print(f"  core layer,    history.publish      {percentiles(core_with)}")

        start = await history.head()
        for i in range(10_000):
            await history.publish(build(i))
            await history.publish(build(i, OTHER))  # not for the consumer: filtered out
        replayed = 0
        t0 = time.perf_counter()
        async for batch in history.replay_all(start, [ROOM], batch=500):
            replayed += len(batch.events)
        elapsed = time.perf_counter() - t0
        assert replayed == 10_000, replayed
        print(f"replay: {replayed} events to one consumer (out of 20,000 in the history) in "
              f"{elapsed * 1000:.0f} ms = {replayed / elapsed:,.0f} events/s")
        await history.aclose()
        await core_history.aclose()
    finally:
        drain.cancel()
        await pubsub.flush()
        await core.flush()
        client = redis_lib.Redis.from_url(url)
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
        client.close()


async def _drain(layer, channel) -> None:
    while True:
        await layer.receive(channel)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    parser.add_argument("--events", type=int, default=5000)
    args = parser.parse_args()
    asyncio.run(main(args.redis, args.events))
