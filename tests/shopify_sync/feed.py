"""A synthetic Shopify webhook feed (payload shapes of tests/shopify_sync/payloads/), and the
database state it leaves, for the shuffled-delivery test and bench/webhooks_apply.py.

``feed(n)`` returns about ``n`` deliveries ``(topic, body_bytes, event_id, triggered_at)`` in the
order Shopify produced them: full snapshots with increasing ``updated_at`` per resource, a few
deletes at the end of a resource's life, guest orders without email, variants without SKU.
"""
from datetime import UTC, datetime, timedelta
import json
import random

T0 = datetime(2025, 1, 10, 12, 0, tzinfo=UTC)


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def feed(n: int = 1000, seed: int = 7) -> list[tuple[str, bytes, str, str]]:
    rnd = random.Random(seed)
    clock = [T0]
    out: list[tuple[str, dict]] = []

    def tick() -> str:
        clock[0] += timedelta(seconds=rnd.randint(1, 30))
        return _iso(clock[0])

    locations = [9000 + i for i in range(3)]
    for lid in locations:
        out.append(("locations/create", {"id": lid, "name": f"Store {lid}", "address1": "Main st 1", "city": "Oslo",
                                         "country": "NO", "active": True, "updated_at": tick()}))
    products = max(2, n // 25)
    customers = max(2, n // 40)
    items = []
    for p in range(products):
        pid = 100_000 + p
        variants = [{"id": pid * 10 + v, "product_id": pid, "title": size, "price": f"{50 + v}.00", "position": v + 1,
                     "sku": "" if v == 1 else f"SKU-{pid}-{size}", "inventory_item_id": pid * 10 + v + 5}
                    for v, size in enumerate(("M", "L"))]
        items += [(v["inventory_item_id"], p) for v in variants]
        for version in range(2):
            out.append((f"products/{'create' if version == 0 else 'update'}",
                        {"id": pid, "title": f"Product {p} v{version}", "handle": f"product-{p}", "vendor": "Oda",
                         "product_type": "Shirts", "status": "active", "variants": variants, "updated_at": tick()}))
    for c in range(customers):
        out.append(("customers/create", _customer(c, tick(), 0)))
    deleted_products = set(range(0, products, 9))
    while len(out) < n - len(deleted_products) - 1:
        roll = rnd.random()
        if roll < 0.55:
            item, p = rnd.choice(items)
            if p in deleted_products:
                continue
            out.append(("inventory_levels/update", {"inventory_item_id": item, "location_id": rnd.choice(locations[:2]),
                                                     "available": rnd.randint(-2, 40), "updated_at": tick()}))
        elif roll < 0.65:
            c = rnd.randrange(customers)
            out.append(("customers/update", _customer(c, tick(), rnd.randint(1, 5))))
        else:
            out += _order_life(rnd, len(out), customers, items, tick)
    for p in sorted(deleted_products):
        out.append(("products/delete", {"id": 100_000 + p}))
    out.append(("locations/delete", {"id": locations[2]}))
    deliveries = []
    for i, (topic, payload) in enumerate(out):
        triggered = _iso(datetime.now(UTC) - timedelta(seconds=3600 - i * 0.01))
        deliveries.append((topic, json.dumps(payload).encode(), f"evt-{i}", triggered))
    return deliveries


def _customer(c: int, updated_at: str, version: int) -> dict:
    return {"id": 500_000 + c, "email": f"customer{c}@example.com", "first_name": f"Cust{c}",
            "last_name": f"V{version}", "phone": f"+47{c:08d}", "state": "enabled", "updated_at": updated_at}


def _order_life(rnd, seq: int, customers: int, items, tick) -> list[tuple[str, dict]]:
    oid = 700_000 + seq
    guest = rnd.random() < 0.2
    c = rnd.randrange(customers)
    lines = [{"id": oid * 10 + k, "variant_id": item - 5, "title": f"Item {item}", "quantity": rnd.randint(1, 3),
              "price": "51.00", "sku": ""} for k, (item, _) in enumerate(rnd.sample(items, 2))]
    base = {"id": oid, "name": f"#{1001 + seq}", "email": None if guest else f"customer{c}@example.com",
            "currency": "EUR", "total_price": "102.00", "line_items": lines, "cancelled_at": None,
            "customer": None if guest else _customer(c, _iso(T0), 0), "fulfillment_status": None}
    steps = [("orders/create", {"financial_status": "pending"}),
             ("orders/paid", {"financial_status": "paid"}),
             ("orders/fulfilled", {"financial_status": "paid", "fulfillment_status": "fulfilled"})]
    if rnd.random() < 0.3:
        steps = steps[:2] + [("orders/cancelled", {"financial_status": "refunded", "cancelled_at": tick()})]
    out = []
    for topic, change in steps:
        payload = {**base, **change, "updated_at": tick()}
        out.append((topic, payload))
        if topic == "orders/paid":
            out.append(("orders/updated", payload))  # Shopify sends both, with the same body
    return out


def state() -> dict:
    """The domain rows a feed writes, by Shopify ids (call in a DB thread)."""
    from inventory.models import InventoryItem, InventoryLevel, Location, Product, ProductVariant
    from orders.models import Customer, Order, OrderLine

    return {
        "locations": sorted(Location.objects.values_list("shopify_id", "name", "address", "is_active")),
        "products": sorted(Product.objects.values_list("shopify_id", "title", "handle", "status")),
        "variants": sorted(ProductVariant.objects.values_list("shopify_id", "product__shopify_id", "title", "price")),
        "items": sorted(InventoryItem.objects.values_list("shopify_id", "variant__shopify_id", "sku"),
                        key=lambda r: r[0]),
        "levels": sorted(InventoryLevel.objects.values_list("item__shopify_id", "location__shopify_id", "available",
                                                            "reserved")),
        "customers": sorted(Customer.objects.values_list("shopify_id", "email", "name", "phone")),
        "orders": sorted(Order.objects.values_list("shopify_id", "number", "shopify_name", "status", "payment_status",
                                                   "fulfillment_status", "total", "customer__shopify_id")),
        "lines": sorted(OrderLine.objects.values_list("order__shopify_id", "title", "quantity",
                                                      "inventory_item__shopify_id")),
    }
