"""The pull sync and the webhooks write the same rows (shopify_sync/mapping.py): a pull import
followed by webhooks for the same resources, and the reverse, leave one row per Shopify resource
with the same number, name, states, email and SKU."""
import pytest

from inventory.models import InventoryItem, InventoryLevel, Location
from orders.models import Customer, Order
from shopify_sync.pull import run_pull
from tests.shopify_sync.test_apply import SECRET, apply

pytestmark = pytest.mark.django_db(transaction=True)
WHEN = "2025-07-01T00:00:00Z"  # the double's updatedAt: both paths carry the same version


@pytest.fixture(autouse=True)
def secrets(settings):
    settings.SHOPIFY_WEBHOOK_SECRET = SECRET
    settings.SHOPIFY_WEBHOOK_OLD_SECRET = ""


def sid(node: dict) -> int:
    return int(node["id"].rsplit("/", 1)[1])


@pytest.fixture
def store(shop):
    """One location, a product with a SKU and one without, a customer, a customer without email, two orders."""
    warehouse = shop.add_location("Warehouse")
    shirt = shop.add_product("Linen Shirt", variants=[{"sku": "SHIRT-S", "price": "59.00"}, {"sku": None}],
                             stock=[(warehouse, 10)])
    ada = shop.add_customer("Ada", "Lovelace", "ada@example.com")
    nobody = shop.add_customer("No", "Email", None)
    paid = shop.add_order("#1001", ada, [(shirt["variants"][0], 2)], financial="PAID", fulfillment="FULFILLED")
    guest = shop.add_order("#1002", None, [(shirt["variants"][1], 1)], financial="PENDING")
    return {"warehouse": warehouse, "shirt": shirt, "customers": [ada, nobody], "orders": [paid, guest]}


def _customer(node: dict | None) -> dict | None:
    if node is None:
        return None
    return {"id": sid(node), "email": node["email"], "first_name": node["firstName"], "last_name": node["lastName"],
            "phone": node["phone"], "updated_at": WHEN}


def webhooks(store) -> None:
    """The same resources as REST webhook payloads (Shopify's documented shapes)."""
    place = store["warehouse"]
    apply("locations/create", {"id": sid(place), "name": place["name"], "active": True, "updated_at": WHEN})
    shirt = store["shirt"]
    apply("products/create", {"id": sid(shirt), "title": shirt["title"], "handle": shirt["handle"], "vendor": "Oda",
                              "product_type": "Shirt", "status": "active", "updated_at": WHEN, "variants": [
        {"id": sid(v), "title": v["title"], "price": v["price"], "position": v["position"], "sku": v["sku"] or "",
         "inventory_item_id": sid(v["inventoryItem"])} for v in shirt["variants"]]})
    for v in shirt["variants"]:
        for level in v["inventoryItem"]["inventoryLevels"]:
            apply("inventory_levels/update", {"inventory_item_id": sid(v["inventoryItem"]), "location_id": sid(place),
                                              "available": level["_quantities"]["available"], "updated_at": WHEN})
    for customer in store["customers"]:
        apply("customers/create", _customer(customer))
    for order in store["orders"]:
        fulfillment = {"UNFULFILLED": None, "FULFILLED": "fulfilled"}[order["displayFulfillmentStatus"]]
        delivery = apply("orders/create", {
            "id": sid(order), "name": order["name"], "email": order["email"], "updated_at": WHEN,
            "cancelled_at": None, "financial_status": order["displayFinancialStatus"].lower(),
            "fulfillment_status": fulfillment, "currency": "EUR",
            "total_price": order["totalPriceSet"]["shopMoney"]["amount"], "customer": _customer(order["customer"]),
            "line_items": [{"id": sid(x), "variant_id": sid(x["variant"]), "title": x["title"], "sku": x["sku"],
                            "quantity": x["quantity"], "price": x["originalUnitPriceSet"]["shopMoney"]["amount"]}
                           for x in order["lineItems"]]})
        assert delivery.status in ("processed", "ignored"), delivery.error


def pull() -> None:
    for resource in ("products", "inventory", "customers", "orders"):
        job = run_pull(resource, mode="pages")
        assert (job.status, job.failed) == ("completed", 0), job.errors


def state() -> dict:
    return {
        "locations": sorted(Location.objects.values_list("shopify_id", "code", "name")),
        "items": sorted(InventoryItem.objects.values_list("shopify_id", "sku"), key=str),
        "levels": sorted(InventoryLevel.objects.values_list("item__shopify_id", "location__shopify_id", "available",
                                                            "reserved")),
        "customers": sorted(Customer.objects.values_list("shopify_id", "email", "name")),
        "orders": sorted(Order.objects.values_list("shopify_id", "number", "shopify_name", "status", "payment_status",
                                                   "fulfillment_status", "total", "customer__shopify_id")),
        "lines": sorted(Order.objects.values_list("shopify_id", "lines__sku", "lines__quantity",
                                                  "lines__inventory_item__shopify_id")),
    }


@pytest.mark.parametrize("first", ["pull", "webhooks"])
def test_pull_and_webhooks_converge_to_one_row_per_resource(double, store, first):
    (pull if first == "pull" else lambda: webhooks(store))()
    before = state()
    (lambda: webhooks(store))() if first == "pull" else pull()
    after = state()
    assert after == before  # the second path found the same rows and changed nothing
    paid, guest = store["orders"]
    assert after["orders"] == sorted([
        (sid(paid), f"shopify-{sid(paid)}", "#1001", "shipped", "paid", "fulfilled", 118, sid(store["customers"][0])),
        (sid(guest), f"shopify-{sid(guest)}", "#1002", "pending", "pending", "unfulfilled", 59, None),
    ])
    assert [email for _, email, _ in after["customers"]] == ["ada@example.com", None]
    assert sorted(sku or "" for _, sku in after["items"]) == ["", "SHIRT-S"]
    assert after["locations"] == [(sid(store["warehouse"]), f"shopify-{sid(store['warehouse'])}", "Warehouse")]
    assert [lv[2:] for lv in after["levels"]] == [(10, 0), (10, 0)]  # both variants, one location


def test_a_pull_older_than_a_webhook_keeps_the_webhooks_order(double, store):
    webhooks(store)
    paid = store["orders"][0]
    apply("orders/updated", {
        "id": sid(paid), "name": "#1001", "updated_at": "2025-07-02T00:00:00Z", "cancelled_at": "2025-07-02T00:00:00Z",
        "financial_status": "refunded", "fulfillment_status": "fulfilled", "currency": "EUR", "total_price": "118.00",
        "customer": _customer(paid["customer"]), "line_items": [
            {"id": 1, "variant_id": sid(paid["lineItems"][0]["variant"]), "title": "Linen Shirt", "sku": "SHIRT-S",
             "quantity": 2, "price": "59.00"}]})
    pull()  # the double still has the order as of 2025-07-01
    order = Order.objects.get(shopify_id=sid(paid))
    assert (order.status, order.payment_status, order.lines.count()) == ("refunded", "refunded", 1)
