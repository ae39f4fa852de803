"""What the transactional outbox costs, on PostgreSQL (printed figures, no assertions).

``python bench/outbox.py [--events 300] [--ops 1000]`` creates a scratch database
(``BENCH_DATABASE_URL``, default ``postgres://postgres@127.0.0.1:5432/oda_bench_outbox``), migrates
it, starts ``manage.py serve`` on Redis (``BENCH_REDIS_URL``, default ``redis://127.0.0.1:6379/0``,
a private prefix) and connects a real WebSocket client subscribed to ``inventory:all``. Then:

- publish latency: one ``publish()`` per transaction, one at a time; the time from the commit
  (an on_commit hook registered first) to the frame reaching the client, p50/p99, for
  ``direct`` (no outbox: today's on_commit send), ``outbox`` (row in the transaction, the
  committing process sends it after commit) and ``outbox, relay only`` (the server's relay,
  woken by NOTIFY, sends it); rounds interleaved;
- ``adjust``: sequential stock adjustments (lock, ledger row, one ``inventory:updated``) with
  and without the outbox, operations/s (in-memory layer, as bench/domain.py).
"""
import argparse
import asyncio
import json
import os
from pathlib import Path
import statistics
import sys
import threading
import time
import uuid

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import fresh_db  # noqa: E402

REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def quantiles(values: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(values, n=100)
    return q[49] * 1000, q[98] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=300, help="events per mode per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ops", type=int, default=1000, help="adjust operations per mode")
    args = parser.parse_args()
    fresh_db.prepare("oda_bench_outbox", log_level="WARNING")
    from channels.layers import channel_layers
    from django.conf import settings
    from django.core.signals import setting_changed
    from django.db import connections, transaction
    import websockets

    from django_oda_realtime.publish import publish
    from tests.servers import ServerProcess

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from rest_framework_simplejwt.tokens import AccessToken

    user = get_user_model().objects.create_user(f"bench-{uuid.uuid4().hex[:6]}", password="x")
    user.user_permissions.add(Permission.objects.get(codename="view_inventorylevel"))
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    settings.CHANNEL_LAYERS = {"default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [{"address": REDIS, "socket_timeout": 15}], "prefix": prefix},
    }}
    channel_layers.backends.clear()
    modes = {
        "direct": {"OUTBOX": False},
        "outbox": {"OUTBOX": True, "OUTBOX_SEND_ON_COMMIT": True},
        "outbox, relay only": {"OUTBOX": True, "OUTBOX_SEND_ON_COMMIT": False},
    }
    latencies: dict[str, list[float]] = {name: [] for name in modes}
    base_realtime = dict(settings.REALTIME)

    def use_realtime(overrides: dict) -> None:
        """REALTIME with ``overrides``, announced as override_settings does: the add-on caches its
        settings until ``setting_changed`` (a bare assignment left every mode on the first's)."""
        settings.REALTIME = {**base_realtime, **overrides}
        setting_changed.send(sender=type(settings), setting="REALTIME", value=settings.REALTIME, enter=True)

    with ServerProcess(redis_url=REDIS, layer_prefix=prefix, env={"LOG_LEVEL": "WARNING"}) as server:
        arrived: dict[int, float] = {}
        ready = threading.Event()
        stop = threading.Event()

        async def client():
            url = f"{server.ws_url}/ws/?token={AccessToken.for_user(user)}"
            async with websockets.connect(url, max_queue=None) as ws:
                await ws.send(json.dumps({"event": "subscribe:inventory", "data": {}, "ack": 1}))
                while True:
                    frame = json.loads(await ws.recv())
                    if frame.get("ack") == 1:
                        break
                ready.set()
                while not stop.is_set():
                    try:
                        async with asyncio.timeout(0.5):
                            frame = json.loads(await ws.recv())
                    except TimeoutError:
                        continue
                    if frame.get("event") == "inventory:updated":
                        arrived[frame["data"]["k"]] = time.perf_counter()

        thread = threading.Thread(target=asyncio.run, args=(client(),), daemon=True)
        thread.start()
        if not ready.wait(20):
            raise SystemExit("the client did not subscribe")
        k = 0
        for _ in range(args.rounds):
            for name, overrides in modes.items():
                use_realtime(overrides)
                for _ in range(args.events):
                    k += 1
                    committed = [0.0]
                    with transaction.atomic():
                        transaction.on_commit(lambda: committed.__setitem__(0, time.perf_counter()))
                        publish("inventory:updated", {"k": k}, ["inventory:all"])
                    deadline = time.monotonic() + 10
                    while k not in arrived and time.monotonic() < deadline:
                        time.sleep(0.0002)
                    if k not in arrived:
                        raise SystemExit(f"event {k} ({name}) did not arrive")
                    latencies[name].append(arrived[k] - committed[0])
        stop.set()
        thread.join(5)

    n = args.events * args.rounds
    print(f"publish latency, commit -> client (PostgreSQL, Redis, manage.py serve; n={n} each)")
    p50_direct, p99_direct = quantiles(latencies["direct"])
    for name, values in latencies.items():
        p50, p99 = quantiles(values)
        extra = "" if name == "direct" else f"   added: p50 {p50 - p50_direct:+6.2f} ms  p99 {p99 - p99_direct:+6.2f} ms"
        print(f"  {name:<20} p50 {p50:6.2f} ms   p99 {p99:6.2f} ms{extra}")

    from inventory import services
    from tests.domain import make_level

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    level = make_level(10_000_000)
    print(f"adjust, sequential (in-memory layer; n={args.ops} each)")
    for name, overrides in (("without outbox", {"OUTBOX": False}), ("with outbox", {"OUTBOX": True}),
                            ("without outbox", {"OUTBOX": False}), ("with outbox", {"OUTBOX": True})):
        use_realtime(overrides)
        times = []
        start = time.perf_counter()
        for i in range(args.ops):
            t = time.perf_counter()
            services.adjust(level.item_id, level.location_id, -1 if i % 2 else 1, reason="bench")
            times.append(time.perf_counter() - t)
        wall = time.perf_counter() - start
        p50, p99 = quantiles(times)
        print(f"  {name:<16} {args.ops / wall:7.0f} ops/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")
    connections.close_all()


if __name__ == "__main__":
    main()
