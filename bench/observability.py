"""What observability costs, printed as figures (no assertions).

``python bench/observability.py [--requests 200] [--records 50000]``:

- ``/metrics``, ``/readyz`` and ``/healthz`` against a real daphne (``manage.py serve``)
  on the Redis pub/sub layer (``BENCH_REDIS_URL``, default ``redis://127.0.0.1:6379/0``)
  and a scratch SQLite database: latency p50/p99 of sequential requests and the size of
  the metrics page;
- log formatting in this process: microseconds per record for the plain and the JSON
  formatter (redaction included) on a connect line with its fields.
"""
import argparse
import logging
import os
from pathlib import Path
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
TOKEN = "bench-metrics-token-0123456789"


def line(name: str, latencies: list[float], extra: str = "") -> None:
    q = statistics.quantiles(latencies, n=100)
    print(f"{name:<22} p50 {q[49] * 1000:7.2f} ms   p99 {q[98] * 1000:7.2f} ms   (n={len(latencies)}){extra}")


def http(url: str, headers: dict | None = None) -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as response:
        return response.read()


def bench_endpoints(requests: int) -> None:
    from tests.servers import free_port, wait_for_port

    tmp = tempfile.mkdtemp(prefix="oda-bench-obs-")
    env = {
        **os.environ, "DJANGO_SECRET_KEY": "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
        "DATABASE_URL": f"sqlite:///{tmp}/db.sqlite3", "REDIS_URL": REDIS_URL,
        "CHANNEL_LAYER_PREFIX": f"benchobs{os.getpid()}", "REALTIME_METRICS_TOKEN": TOKEN, "LOG_LEVEL": "WARNING",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    port = free_port()
    server = subprocess.Popen([sys.executable, "manage.py", "serve", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc=server)
        base = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        for path, headers in (("/healthz", None), ("/readyz", None), ("/metrics", auth)):
            http(base + path, headers)  # warm up
            latencies, size = [], 0
            for _ in range(requests):
                start = time.perf_counter()
                size = len(http(base + path, headers))
                latencies.append(time.perf_counter() - start)
            line(f"GET {path}", latencies, f"   {size} bytes")
    finally:
        server.terminate()
        server.wait(10)


def bench_logging(records: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oda_realtime.settings")
    from django_oda_realtime.ops.logging import JsonFormatter, PlainFormatter

    record = logging.LogRecord("realtime.consumers", logging.INFO, __file__, 1, "Connected %s user=%s protocol=%s",
                               ("5f0c" * 8, "42", "native"), None)
    record.__dict__.update(action="connect", connection_id="5f0c" * 8, user_id="42", protocol="native")
    for name, formatter in (("plain", PlainFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")),
                            ("json", JsonFormatter())):
        start = time.perf_counter()
        for _ in range(records):
            formatter.format(record)
        per = (time.perf_counter() - start) / records
        print(f"format {name:<15} {per * 1e6:7.1f} µs/record   (n={records})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--records", type=int, default=50_000)
    args = parser.parse_args()
    bench_endpoints(args.requests)
    bench_logging(args.records)


if __name__ == "__main__":
    main()
