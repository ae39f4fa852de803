"""A large Shopify pull sync, printed as figures (no assertions; docs/shopify.md, "Pull sync").

``python bench/shopify_pull.py [--products 50000] [--variants 1] [--batch-size 1000]`` starts the
tests' Admin API double as a subprocess with that catalogue (its memory is not ours), creates a
scratch database (``BENCH_DATABASE_URL``, default
``postgres://postgres@127.0.0.1:5432/oda_bench_shopify_pull``; a ``sqlite:///path`` works too),
migrates it, and imports the products in ONE job through a bulk operation. It prints the total
time, rows per second, this process's peak RSS (goal: under 300 MB) and the progress events
(``shopify:product:progress``, counted where they are published): per second over the job
(goal: at least 1/s) and the longest gap between two.
"""
import argparse
import os
from pathlib import Path
import resource
import subprocess
import sys
import time

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oda_realtime.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
os.environ.pop("REDIS_URL", None)
os.environ.setdefault("LOG_LEVEL", "WARNING")
URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/oda_bench_shopify_pull")
os.environ["DATABASE_URL"] = URL
TOKEN = "shpat_bench_token"


def recreate_database() -> None:
    if URL.startswith("sqlite:///"):
        Path(URL[len("sqlite:///"):]).unlink(missing_ok=True)
        return
    import psycopg

    base, _, name = URL.rpartition("/")
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def start_double(products: int, variants: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.shopify_sync.double", "--products", str(products),
                             "--variants", str(variants), "--token", TOKEN], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True)
    port = proc.stdout.readline().strip()
    if not port.isdigit():
        proc.kill()
        raise SystemExit("the Admin API double did not start")
    return proc, f"http://127.0.0.1:{port}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--products", type=int, default=50_000)
    parser.add_argument("--variants", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args()
    started = time.monotonic()
    double, url = start_double(args.products, args.variants)
    print(f"double: {args.products:,} products x {args.variants} variant(s) ready in "
          f"{time.monotonic() - started:.1f} s at {url}")
    os.environ["SHOPIFY_SHOP_DOMAIN"], os.environ["SHOPIFY_ACCESS_TOKEN"] = url, TOKEN
    try:
        recreate_database()
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from inventory.models import InventoryItem, Product, ProductVariant
        from shopify_sync import signals
        from shopify_sync.pull import run_pull

        progress_at: list[float] = []

        def count(sender, job, **kwargs) -> None:  # next to the receiver that publishes each one
            progress_at.append(time.monotonic())

        signals.sync_progress.connect(count, dispatch_uid="bench.count_progress")
        baseline = peak_rss_mb()
        t0 = time.monotonic()
        job = run_pull("products", mode="bulk", batch_size=args.batch_size)
        wall = time.monotonic() - t0
        rows = Product.objects.count() + ProductVariant.objects.count() + InventoryItem.objects.count()
        gaps = [b - a for a, b in zip([t0, *progress_at], [*progress_at, t0 + wall])]
        print(f"job #{job.pk} {job.status}: {job.processed:,} products processed, {job.failed} failed "
              f"({Product.objects.count():,} products, {ProductVariant.objects.count():,} variants, "
              f"{InventoryItem.objects.count():,} inventory items in the database)")
        print(f"total time            {wall:8.1f} s   ({rows / wall:,.0f} rows/s written)")
        print(f"peak RSS              {peak_rss_mb():8.1f} MB  (after setup and migrate: {baseline:.1f} MB; goal < 300)")
        print(f"progress events       {len(progress_at):8d}     {len(progress_at) / wall:.2f}/s (goal >= 1/s); "
              f"longest gap {max(gaps):.2f} s")
        print(f"database              {URL.split('://')[0]}")
    finally:
        double.kill()
        double.wait()


if __name__ == "__main__":
    main()
