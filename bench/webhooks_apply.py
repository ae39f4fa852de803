"""Shopify webhooks applied: in order, then shuffled with duplicates; figures, and whether the states match.

``python bench/webhooks_apply.py [--n 1000] [--seed 7]`` creates a scratch database
(``BENCH_DATABASE_URL``, default ``postgres://postgres@127.0.0.1:5432/oda_bench_webhooks``),
migrates it, and with the in-memory channel layer (events built and published, nobody
listens) runs the synthetic feed of tests/shopify_sync/feed.py twice:

1. delivered in Shopify's order through signed ``POST /shopify/webhooks/``, then applied by the
   worker's job (``processing.process_due``, retries due at once);
2. after a reset: the same deliveries plus 20 % repeated with the same ids and 10 % under new ids,
   shuffled, delivered and applied the same way.

Prints the store and apply rates, the delivery statuses, and ``states equal: True|False``.
"""
import argparse
from datetime import timedelta
from pathlib import Path
import random
import sys
import time

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import fresh_db  # noqa: E402


def run(deliveries, client, sign) -> dict:
    from django.db.models import Count
    from django.utils import timezone

    from shopify_sync import processing
    from shopify_sync.models import WebhookDelivery

    answers: dict[str, int] = {}
    start = time.perf_counter()
    for topic, body, event_id, triggered in deliveries:
        response = client.generic(
            "POST", "/shopify/webhooks/", body, content_type="application/json",
            HTTP_X_SHOPIFY_TOPIC=topic, HTTP_X_SHOPIFY_HMAC_SHA256=sign(body, "bench-secret"),
            HTTP_X_SHOPIFY_EVENT_ID=event_id, HTTP_X_SHOPIFY_TRIGGERED_AT=triggered)
        if response.status_code != 200:
            raise SystemExit(f"webhook answered {response.status_code}: {response.content[:200]}")
        answers[response.json()["status"]] = answers.get(response.json()["status"], 0) + 1
    stored = time.perf_counter() - start
    start, applied, rounds, later = time.perf_counter(), 0, 0, timezone.now()
    while True:
        done = processing.process_due(now=later, limit=100_000)
        if not done:
            break
        applied, rounds, later = applied + done, rounds + 1, later + timedelta(hours=2)
    apply_time = time.perf_counter() - start
    statuses = dict(WebhookDelivery.objects.values_list("status").annotate(n=Count("pk")).order_by())
    return {"posted": len(deliveries), "answers": answers, "store_per_s": len(deliveries) / stored,
            "attempts": applied, "rounds": rounds, "apply_per_s": applied / apply_time, "statuses": statuses}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    fresh_db.prepare("oda_bench_webhooks", log_level="ERROR")
    from django.conf import settings
    from django.test import Client

    from inventory.models import Location, Product, StockMovement
    from orders.models import Customer, Order
    from shopify_sync.models import Tombstone, WebhookDelivery
    from shopify_sync.webhooks import sign
    from tests.shopify_sync import feed

    settings.SHOPIFY_WEBHOOK_SECRET = "bench-secret"
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    client = Client()
    deliveries = feed.feed(args.n, args.seed)

    first = run(deliveries, client, sign)
    in_order = feed.state()
    for model in (Order, Customer, Product, Location, WebhookDelivery, Tombstone, StockMovement):
        model.objects.all().delete()
    rnd = random.Random(args.seed)
    shuffled = deliveries + rnd.sample(deliveries, len(deliveries) // 5)
    shuffled += [(t, b, f"{e}-again", tr) for t, b, e, tr in rnd.sample(deliveries, len(deliveries) // 10)]
    rnd.shuffle(shuffled)
    second = run(shuffled, client, sign)
    shuffled_state = feed.state()

    for name, r in (("in order", first), ("shuffled+dups", second)):
        print(f"{name:<14} posted {r['posted']:>5}  answers {r['answers']}  store {r['store_per_s']:7.0f}/s  "
              f"apply {r['apply_per_s']:6.0f}/s ({r['attempts']} attempts, {r['rounds']} round(s))  {r['statuses']}")
    print("rows:", {k: len(v) for k, v in in_order.items()})
    print("states equal:", in_order == shuffled_state)


if __name__ == "__main__":
    main()
