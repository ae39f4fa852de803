"""Full imports from the Admin API double, page by page and through a bulk operation: what lands
in our tables, and the rules that keep Shopify's data within our constraints."""
import pytest

from inventory.models import InventoryItem, InventoryLevel, Location, Product, ProductVariant, StockMovement
from orders.models import Customer, Order, OrderLine
from shopify_sync.models import SyncJob
from shopify_sync.pull import run_pull
from tests.domain import make_item

pytestmark = pytest.mark.django_db(transaction=True)
MODES = pytest.mark.parametrize("mode", ["pages", "bulk"])


def sid(node: dict) -> int:
    return int(node["id"].rsplit("/", 1)[1])


@pytest.fixture
def catalogue(shop):
    """Products with the awkward cases: a taken handle, SKUs missing, duplicated and taken, 12 variants."""
    warehouse, store = shop.add_location("Warehouse"), shop.add_location("Store")
    shirt = shop.add_product("Linen Shirt", variants=[{"sku": "SHIRT-S", "price": "59.00"}, {"sku": None}],
                             stock=[(warehouse, 10), (store, 3)])
    twins = shop.add_product("Twins", variants=[{"sku": "DUP"}, {"sku": "DUP"}, {"sku": "TAKEN"}],
                             status="DRAFT", stock=[(warehouse, -2)])
    big = shop.add_product("Sock Pack", variants=[{"sku": f"SOCK-{i}", "title": f"Pack {i}"} for i in range(12)],
                           stock=[(store, 7)])
    for n in range(20):
        shop.add_product(f"Tee {n}", variants=[{"sku": f"TEE-{n}"}], stock=[(warehouse, n)])
    return {"shirt": shirt, "twins": twins, "big": big, "warehouse": warehouse, "store": store}


@MODES
def test_products(double, shop, catalogue, mode):
    local = make_item()  # a local product and SKU that Shopify's must not take over
    Product.objects.filter(pk=local.variant.product_id).update(handle="linen-shirt")
    InventoryItem.objects.filter(pk=local.pk).update(sku="TAKEN")

    job = run_pull("products", mode=mode, batch_size=7)

    assert (job.status, job.processed, job.failed, job.total) == ("completed", 23, 0, 23)
    assert Product.objects.filter(shopify_id__isnull=False).count() == 23
    assert ProductVariant.objects.filter(shopify_id__isnull=False).count() == 2 + 3 + 12 + 20
    shirt = Product.objects.get(shopify_id=sid(catalogue["shirt"]))
    assert shirt.handle == f"linen-shirt-shopify-{shirt.shopify_id}"  # the local product keeps its handle
    assert Product.objects.get(shopify_id=sid(catalogue["twins"])).status == "draft"
    skus = [InventoryItem.objects.get(shopify_id=sid(v["inventoryItem"])).sku
            for v in catalogue["shirt"]["variants"] + catalogue["twins"]["variants"]]
    # No SKU, or one another item holds: None (shopify_sync.mapping, as the webhooks)
    assert skus == ["SHIRT-S", None, "DUP", None, None]
    assert InventoryItem.objects.get(pk=local.pk).sku == "TAKEN"
    big = Product.objects.get(shopify_id=sid(catalogue["big"]))
    assert [v.title for v in big.variants.all()] == [f"Pack {i}" for i in range(12)]  # past the first page of 10
    if mode == "pages":
        assert any(r["operation"] == "ProductChildren" for r in double.requests)
    else:
        assert len(double.operations) == 1

    again = run_pull("products", mode=mode)  # idempotent: a second job changes nothing
    assert (again.pk != job.pk, again.status, again.processed) == (True, "completed", 23)
    assert Product.objects.count() == 24 and ProductVariant.objects.count() == 38
    assert InventoryItem.objects.count() == 38


@MODES
def test_inventory(double, shop, catalogue, mode):
    run_pull("products", mode=mode)
    late = shop.add_product("Not yet imported", variants=[{"sku": "LATE"}], stock=[(catalogue["warehouse"], 1)])
    shirt_s = InventoryItem.objects.get(sku="SHIRT-S")
    warehouse = Location.objects.create(name="Old name", code=f"shopify-{sid(catalogue['warehouse'])}")
    InventoryLevel.objects.bulk_create([InventoryLevel(item=shirt_s, location=warehouse, available=20, reserved=4)])

    job = run_pull("inventory", mode=mode, batch_size=5)

    assert (job.status, job.processed, job.total) == ("completed", 38, 38)
    late_item = sid(late["variants"][0]["inventoryItem"])
    assert job.failed == 2  # the item whose variant is not imported, and its level
    assert job.errors == [f"InventoryItem {late_item}: its variant is not imported (sync products first)",
                          f"InventoryLevel {sid(late['variants'][0]['inventoryItem']['inventoryLevels'][0])}: "
                          "its inventory item is not imported"]
    warehouse.refresh_from_db()
    assert warehouse.name == "Warehouse"
    shirt_level = InventoryLevel.objects.get(item=shirt_s, location=warehouse)
    # Shopify's 10 sellable + our 4 reserved on hand; what we can sell is Shopify's figure
    assert (shirt_level.available, shirt_level.reserved, shirt_level.sellable) == (14, 4, 10)
    twins_level = InventoryLevel.objects.get(item__sku="DUP", location=warehouse)
    assert twins_level.available == 0  # oversold in Shopify (-2): nothing on hand here
    store = Location.objects.get(code=f"shopify-{sid(catalogue['store'])}")
    assert InventoryLevel.objects.filter(location=store, item__variant__product__title="Sock Pack").count() == 12
    assert InventoryLevel.objects.count() == 4 + 3 + 12 + 20
    move = StockMovement.objects.get(level=shirt_level)
    assert (move.kind, move.available_delta, move.available_after, move.reason) == (
        "set", -6, 14, f"Shopify sync #{job.pk}")
    assert StockMovement.objects.count() == InventoryLevel.objects.count()  # 38 new levels, 1 changed
    before = StockMovement.objects.count()
    run_pull("inventory", mode=mode)
    assert StockMovement.objects.count() == before  # nothing changed: no ledger rows


@MODES
def test_customers(double, shop, mode):
    Customer.objects.create(email="taken@example.com", name="Local customer")
    ada = shop.add_customer("Ada", "Lovelace", "ada@example.com", "+3312345678")
    anonymous = shop.add_customer("", "", None)
    clash = shop.add_customer("Other", "Person", "taken@example.com")

    job = run_pull("customers", mode=mode)

    assert (job.status, job.processed, job.failed) == ("completed", 3, 0)
    stored = Customer.objects.get(shopify_id=sid(ada))
    assert (stored.email, stored.name, stored.phone) == ("ada@example.com", "Ada Lovelace", "+3312345678")
    stored = Customer.objects.get(shopify_id=sid(anonymous))
    assert (stored.email, stored.name) == (None, f"Shopify customer {sid(anonymous)}")
    # The local customer with that email and no Shopify id is the same person: linked (as the webhooks)
    assert Customer.objects.get(email="taken@example.com").shopify_id == sid(clash)
    assert Customer.objects.count() == 3


@MODES
def test_orders(double, shop, catalogue, mode):
    run_pull("products", mode=mode)
    ada = shop.add_customer("Ada", "Lovelace", "ada@example.com")
    shirt, socks = catalogue["shirt"]["variants"][0], catalogue["big"]["variants"]
    paid = shop.add_order("#1001", ada, [(shirt, 2)], financial="PAID", fulfillment="UNFULFILLED")
    guest = shop.add_order("#1002", None, [(v, 1) for v in socks], financial="PENDING")  # 12 lines
    refunded = shop.add_order("#1003", ada, [(shirt, 1)], financial="REFUNDED", cancelled=True)
    shipped = shop.add_order("#1004", ada, [(shirt, 1)], financial="PARTIALLY_REFUNDED", fulfillment="FULFILLED")
    local = Order.objects.create(customer=Customer.objects.create(email="l@example.com", name="L"), number="#1003")

    job = run_pull("orders", mode=mode, batch_size=4)

    assert (job.status, job.processed, job.failed, job.total, job.errors) == ("completed", 4, 0, 4, [])
    states = {o.shopify_id: (o.number, o.shopify_name, o.status, o.payment_status, o.fulfillment_status)
              for o in Order.objects.filter(shopify_id__isnull=False)}
    # shopify-<id> numbers, the name kept apart: a local #1003 never collides (shopify_sync.mapping)
    assert states == {
        sid(paid): (f"shopify-{sid(paid)}", "#1001", "confirmed", "paid", "unfulfilled"),
        sid(guest): (f"shopify-{sid(guest)}", "#1002", "pending", "pending", "unfulfilled"),
        sid(refunded): (f"shopify-{sid(refunded)}", "#1003", "refunded", "refunded", "unfulfilled"),
        sid(shipped): (f"shopify-{sid(shipped)}", "#1004", "shipped", "partially_refunded", "fulfilled"),
    }
    assert Order.objects.get(pk=local.pk).number == "#1003"
    first = Order.objects.get(shopify_id=sid(paid))
    assert (first.customer.email, first.total, first.currency) == ("ada@example.com", 118, "EUR")
    line = first.lines.get()
    assert (line.sku, line.quantity, line.unit_price, line.inventory_item.sku) == ("SHIRT-S", 2, 59, "SHIRT-S")
    guest_order = Order.objects.get(shopify_id=sid(guest))
    assert guest_order.customer is None  # a guest order has no customer, as with the webhooks
    assert guest_order.lines.count() == 12

    run_pull("orders", mode=mode, batch_size=4)  # lines are replaced, not added again
    assert OrderLine.objects.count() == 1 + 12 + 1 + 1
    assert Order.objects.count() == 5 and SyncJob.objects.filter(resource="orders").count() == 2


def test_damaged_lines_are_counted_not_fatal(double, shop):
    shop.add_product("Good", variants=[{"sku": "GOOD"}])
    double.jsonl_tail = 'not json\n{"id": "gid://shopify/Nope/x"}\n{"id": "gid://shopify/Product/7", "title": 5,' \
        ' "handle": null}\n'

    job = run_pull("products", mode="bulk")

    assert (job.status, job.processed, job.failed) == ("completed", 2, 2)
    assert job.errors[0].startswith("line 3: Expecting value") and job.errors[1].startswith("line 4: not a Shopify id")
    assert sorted(Product.objects.values_list("handle", flat=True)) == ["good", "shopify-7"]  # a handle made up
