"""Domain write paths on PostgreSQL, printed as figures (no assertions).

``python bench/domain.py [--ops 1000] [--threads 8]`` creates a scratch database
(``BENCH_DATABASE_URL``, default ``postgres://postgres@127.0.0.1:5432/oda_bench_domain``),
migrates it, and measures with the in-memory channel layer (events are built and
published, nobody listens):

- ``adjust``: sequential stock adjustments (lock, ledger row, one ``inventory:updated``);
- ``reserve contended``: THREADS threads reserving 1 unit from ONE level at once
  (all serialised by its row lock): reservations/s and per-call latency;
- ``webhook``: signed ``POST /shopify/webhooks/`` through Django's test client:
  verification, unique insert, ``shopify:webhook:received``.
"""
import argparse
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
import json
from pathlib import Path
import statistics
import sys
import time

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import fresh_db  # noqa: E402


def line(name: str, latencies: list[float], wall: float) -> None:
    q = statistics.quantiles(latencies, n=100)
    print(f"{name:<20} {len(latencies) / wall:>9.0f}/s   p50 {q[49] * 1000:6.2f} ms   p99 {q[98] * 1000:6.2f} ms"
          f"   (n={len(latencies)})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    fresh_db.prepare("oda_bench_domain", log_level="WARNING")
    from django.conf import settings
    from django.db import connections
    from django.test import Client

    from inventory import services
    from shopify_sync.webhooks import sign
    from tests.domain import make_level

    level = make_level(10_000_000 // 10)

    latencies = []
    start = time.perf_counter()
    for i in range(args.ops):
        t = time.perf_counter()
        services.adjust(level.item_id, level.location_id, -1 if i % 2 else 1, reason="bench")
        latencies.append(time.perf_counter() - t)
    line("adjust", latencies, time.perf_counter() - start)

    def reserve(_):
        try:
            t = time.perf_counter()
            services.reserve(level.item_id, level.location_id, 1, reason="bench")
            return time.perf_counter() - t
        finally:
            connections.close_all()

    start = time.perf_counter()
    with ThreadPoolExecutor(args.threads) as pool:
        latencies = list(pool.map(reserve, range(args.ops)))
    line(f"reserve x{args.threads} threads", latencies, time.perf_counter() - start)

    settings.SHOPIFY_WEBHOOK_SECRET = "bench-secret"
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    client = Client()
    latencies = []
    start = time.perf_counter()
    for i in range(args.ops):
        body = json.dumps({"id": i + 1, "title": f"Product {i}", "body_html": "x" * 2000, "variants": [],
                           "updated_at": "2025-01-10T12:00:00Z"}).encode()
        t = time.perf_counter()
        response = client.generic("POST", "/shopify/webhooks/", body, content_type="application/json",
                                  HTTP_X_SHOPIFY_HMAC_SHA256=sign(body, "bench-secret"),
                                  HTTP_X_SHOPIFY_TOPIC="products/update", HTTP_X_SHOPIFY_EVENT_ID=f"e{i}",
                                  HTTP_X_SHOPIFY_TRIGGERED_AT=datetime.now(UTC).isoformat())
        latencies.append(time.perf_counter() - t)
        if response.status_code != 200:
            raise SystemExit(f"webhook answered {response.status_code}")
    line("webhook", latencies, time.perf_counter() - start)
    connections.close_all()


if __name__ == "__main__":
    main()
