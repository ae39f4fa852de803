"""The outbox end to end on PostgreSQL and Redis: real ``manage.py serve`` processes, real WebSocket
clients, Redis down during a burst, the relay killed mid-batch (docs/design.md#outbox). A
committing process killed right after commit: test_outbox_relay_servers.py."""
import asyncio
from collections import defaultdict
import json
import os
import signal
import subprocess
import sys
import time

from channels.db import database_sync_to_async
from channels.layers import channel_layers
from django.db import transaction
import pytest
import websockets

from django_oda_realtime import outbox
from django_oda_realtime.models import OutboxEvent
from django_oda_realtime.publish import publish
from tests.servers import ROOT, RedisProcess, ServerProcess, database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

ROOMS = [f"inventory:product:{k}" for k in range(1, 6)]


def process_env(redis_url: str, prefix: str, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(DJANGO_SETTINGS_MODULE="oda_realtime.settings", DATABASE_URL=database_url(), REDIS_URL=redis_url,
               CHANNEL_LAYER_PREFIX=prefix, PYTHONUNBUFFERED="1", **extra)
    return env


@pytest.fixture
def this_process_on(settings):
    """Publish from this process on the pub/sub layer of ``redis_url`` with the servers' prefix."""
    def switch(redis_url: str, prefix: str) -> None:
        settings.CHANNEL_LAYERS = {"default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": redis_url, "socket_timeout": 15, "socket_connect_timeout": 1}],
                       "prefix": prefix},
        }}
        channel_layers.backends.clear()

    outbox._health.update(down_since=None, up_since=None, probed=0.0)
    yield switch
    outbox._health.update(down_since=None, up_since=None, probed=0.0)


async def receive_event(ws, name, timeout=10.0):
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("event") == name:
                return frame


async def command(ws, event, data=None, ack=1):
    await ws.send(json.dumps({"event": event, "data": data, "ack": ack}))
    async with asyncio.timeout(10):
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("ack") == ack:
                return frame


async def inventory_client(server, raw_token):
    ws = await websockets.connect(f"{server.ws_url}/ws/?token={raw_token}", max_queue=None)
    await receive_event(ws, "connected")
    reply = await command(ws, "subscribe:inventory", {"productIds": [r.rsplit(":", 1)[1] for r in ROOMS]})
    assert sorted(reply["data"]["rooms"]) == ROOMS
    return ws


class Collector:
    """Every ``inventory:updated`` frame a client receives, in arrival order."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.frames: list[dict] = []
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for message in self.ws:
            frame = json.loads(message)
            if frame.get("event") == "inventory:updated":
                self.frames.append(frame)

    async def until(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.frames) < count and time.monotonic() < deadline and not self.task.done():
            await asyncio.sleep(0.05)

    def check_exactly_once_in_order(self, expected: int) -> None:
        ids = [f["id"] for f in self.frames]
        assert len(ids) == len(set(ids)), "an event reached the client twice"
        assert len(ids) == expected, f"{len(ids)} of {expected} events arrived"
        per_room = defaultdict(list)
        for f in self.frames:
            per_room[f["data"]["room"]].append(f["data"]["n"])
        for room, ns in per_room.items():
            assert ns == sorted(ns), f"room {room} out of order"

    async def close(self) -> None:
        await self.ws.close()
        self.task.cancel()


async def test_redis_down_for_30_s_during_a_burst_of_500_changes(this_process_on, layer_prefix, make_user, token):
    viewer = await database_sync_to_async(make_user)(perms=["inventory.view_inventorylevel"])
    redis = RedisProcess().start()
    this_process_on(redis.url, layer_prefix)
    try:
        env = {"REALTIME_IDLE_TIMEOUT": "600"}  # the server's own relay (on by default) sends the backlog
        with ServerProcess(redis_url=redis.url, layer_prefix=layer_prefix, env=env) as server:
            collector = Collector(await inventory_client(server, token(viewer)))
            redis.stop()
            down_at = time.monotonic()

            def burst():
                for n in range(500):
                    with transaction.atomic():  # each change its own transaction, as requests do
                        publish("inventory:updated", {"room": n % 5, "n": n}, [ROOMS[n % 5]])

            await database_sync_to_async(burst)()
            assert await database_sync_to_async(OutboxEvent.objects.filter(published_at__isnull=True).count)() == 500
            await asyncio.sleep(max(0.0, 30 - (time.monotonic() - down_at)))
            redis = RedisProcess(port=redis.port).start()
            await collector.until(500, timeout=60)
            await asyncio.sleep(1.0)  # anything arriving twice arrives now
            await collector.close()
            collector.check_exactly_once_in_order(500)
        assert not await database_sync_to_async(OutboxEvent.objects.filter(published_at__isnull=True).exists)()
    finally:
        redis.stop()


async def test_the_relay_killed_mid_batch_loses_nothing_and_delivers_nothing_twice(
        this_process_on, settings, redis_url, layer_prefix, make_user, token):
    viewer = await database_sync_to_async(make_user)(perms=["inventory.view_inventorylevel"])
    this_process_on(redis_url, layer_prefix)
    settings.REALTIME = {**settings.REALTIME, "OUTBOX_SEND_ON_COMMIT": False}
    total = 5000
    # Only the worker relays; a large batch is marked published only once all of it is sent.
    env = {"REALTIME_OUTBOX_RELAY_IN_SERVER": "false", "REALTIME_IDLE_TIMEOUT": "600"}
    worker_env = process_env(redis_url, layer_prefix, REALTIME_OUTBOX_BATCH="1000")
    with ServerProcess(redis_url=redis_url, layer_prefix=layer_prefix, env=env) as server:
        collector = Collector(await inventory_client(server, token(viewer)))

        def changes():
            with transaction.atomic():
                for n in range(total):
                    publish("inventory:updated", {"room": n % 5, "n": n}, [ROOMS[n % 5]])

        await database_sync_to_async(changes)()
        command_line = [sys.executable, "manage.py", "realtime_worker", "--job", "realtime.outbox"]
        worker = subprocess.Popen(command_line, cwd=ROOT, env=worker_env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            await collector.until(300, timeout=60)
            worker.kill()
            worker.wait(10)
        finally:
            if worker.poll() is None:
                worker.kill()
        await asyncio.sleep(1.0)
        marked = await database_sync_to_async(OutboxEvent.objects.filter(published_at__isnull=False).count)()
        received = len(collector.frames)
        assert marked < total and received > marked, (marked, received)  # killed with sent, unmarked rows
        worker = subprocess.Popen(command_line, cwd=ROOT, env=worker_env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            await collector.until(total, timeout=90)
            await asyncio.sleep(1.0)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(15)
        await collector.close()
    collector.check_exactly_once_in_order(total)
    assert not await database_sync_to_async(OutboxEvent.objects.filter(published_at__isnull=True).exists)()
