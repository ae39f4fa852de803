"""One batch of Shopify records -> our tables, in bulk: a few queries per batch, not per record.

Called inside the batch's transaction (``runner``). Upserts by ``shopify_id`` with
``bulk_create(update_conflicts=True)``, so a batch written twice leaves the same rows.
``post_save`` does not fire for bulk writes: a sync sends no ``inventory:updated`` or
``order:updated`` per row, only the job's progress events (docs/shopify.md, "Pull sync").
Stock changes still get their ``StockMovement`` ledger rows (kind ``set``).
"""
from dataclasses import dataclass, field

from django.db.models import BigIntegerField
from django.db.models.functions import Cast, Substr
from django.utils import timezone

from inventory.models import InventoryItem, InventoryLevel, Location, Product, ProductVariant, StockMovement
from orders.models import Customer, Order, OrderLine

from .. import mapping
from ..webhooks import parse_time
from . import records as r


@dataclass
class Record:
    """One JSONL object (or paged node): its type and id parsed, its parent's id if a child."""

    type: str
    id: int
    data: dict
    parent: int | None = None


@dataclass
class Result:
    processed: int = 0  # top-level records written
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def fail(self, record: Record, error: str) -> None:
        self.failed += 1
        self.errors.append(f"{record.type} {record.id}: {error}"[:300])


def _split(batch: list[Record], top: str, child: str | None) -> tuple[list[Record], list[Record]]:
    return [x for x in batch if x.type == top], [x for x in batch if child and x.type == child]


def _pk_map(model, ids, key: str = "shopify_id") -> dict[int, int]:
    return dict(model.objects.filter(**{f"{key}__in": set(ids)}).values_list(key, "pk")) if ids else {}


# --- products ---------------------------------------------------------------------------------

def write_products(batch: list[Record], job_id: int) -> Result:
    result = Result()
    products, variants = _split(batch, "Product", "ProductVariant")
    rows = []
    for p in products:
        handle = r.text(p.data.get("handle"), 200) or f"shopify-{p.id}"
        rows.append(Product(shopify_id=p.id, title=r.text(p.data.get("title"), 200) or f"Product {p.id}",
                            handle=handle, vendor=r.text(p.data.get("vendor"), 100),
                            product_type=r.text(p.data.get("productType"), 100),
                            status=r.product_status(p.data.get("status"))))
    taken = dict(Product.objects.filter(handle__in=[x.handle for x in rows]).values_list("handle", "shopify_id"))
    for row in rows:
        if row.handle in taken and taken[row.handle] != row.shopify_id:
            row.handle = r.handle_fallback(row.handle, row.shopify_id)  # a local product has this handle
    if rows:
        Product.objects.bulk_create(rows, update_conflicts=True, unique_fields=["shopify_id"],
                                    update_fields=["title", "handle", "vendor", "product_type", "status", "updated_at"])
    result.processed = len(products)

    parents = _pk_map(Product, [v.parent for v in variants])
    variant_rows, item_rows = [], []
    for v in variants:
        if v.parent not in parents:
            result.fail(v, "its product is not imported")
            continue
        try:
            item = v.data.get("inventoryItem") or {}
            item_id = r.shopify_id(item.get("id"))
            price = r.money(v.data.get("price") or 0)
        except r.BadRecord as e:
            result.fail(v, str(e))
            continue
        position = v.data.get("position")
        variant_rows.append(ProductVariant(
            shopify_id=v.id, product_id=parents[v.parent], title=r.text(v.data.get("title"), 200) or "Default",
            price=price, position=position if isinstance(position, int) and position > 0 else 1))
        item_rows.append((item_id, v.id, r.text(v.data.get("sku"), 64), bool(item.get("tracked", True))))
    if variant_rows:
        ProductVariant.objects.bulk_create(variant_rows, update_conflicts=True, unique_fields=["shopify_id"],
                                           update_fields=["product", "title", "price", "position"])
    upsert_items(item_rows, result)
    return result


def upsert_items(rows: list[tuple[int, int, str, bool]], result: Result) -> None:
    """Inventory items (shopify id, variant shopify id, sku, tracked), SKUs kept unique."""
    if not rows:
        return
    variants = _pk_map(ProductVariant, [row[1] for row in rows])
    # A variant's local item made before it was linked to Shopify: adopt it rather than add a second.
    adopt = list(InventoryItem.objects.filter(variant_id__in=variants.values(), shopify_id__isnull=True))
    by_variant = {v_pk: item_id for item_id, v_sid, _, _ in rows if (v_pk := variants.get(v_sid))}
    for item in adopt:
        item.shopify_id = by_variant[item.variant_id]
    if adopt:
        InventoryItem.objects.bulk_update(adopt, ["shopify_id"])
    skus = [row[2] for row in rows if row[2]]
    taken = dict(InventoryItem.objects.filter(sku__in=skus).values_list("sku", "shopify_id"))
    seen, items = set(), []
    for item_id, variant_sid, sku, tracked in rows:
        if variant_sid not in variants:
            result.failed += 1
            result.errors.append(f"InventoryItem {item_id}: its variant is not imported (sync products first)")
            continue
        if not sku or sku in seen or (sku in taken and taken[sku] != item_id):
            sku = None  # unique but nullable, as the webhooks store it (shopify_sync.mapping)
        seen.add(sku)
        items.append(InventoryItem(shopify_id=item_id, variant_id=variants[variant_sid], sku=sku, tracked=tracked))
    if items:
        InventoryItem.objects.bulk_create(items, update_conflicts=True, unique_fields=["shopify_id"],
                                          update_fields=["variant", "sku", "tracked"])


# --- inventory --------------------------------------------------------------------------------

def locations(records: list[Record]) -> dict[int, int]:
    """Shopify location id -> our Location pk, matched by ``shopify_id`` (as the webhooks), created if new."""
    names = {}
    for x in records:
        names[x.id] = r.text(x.data.get("name"), 200) or f"Shopify location {x.id}"
    if not names:
        return {}
    # Rows an earlier pull made by code alone (before Location.shopify_id): adopt them.
    Location.objects.filter(code__in=[f"shopify-{lid}" for lid in names], shopify_id__isnull=True).update(
        shopify_id=Cast(Substr("code", len("shopify-") + 1), BigIntegerField()))
    rows = [Location(shopify_id=lid, code=f"shopify-{lid}", name=name) for lid, name in names.items()]
    Location.objects.bulk_create(rows, update_conflicts=True, unique_fields=["shopify_id"], update_fields=["name"])
    return _pk_map(Location, names)


def write_inventory(batch: list[Record], job_id: int) -> Result:
    result = Result()
    items, levels = _split(batch, "InventoryItem", "InventoryLevel")
    rows = []
    for x in items:
        try:
            variant_sid = r.shopify_id((x.data.get("variant") or {}).get("id"))
        except r.BadRecord as e:
            result.fail(x, str(e))
            continue
        rows.append((x.id, variant_sid, r.text(x.data.get("sku"), 64), bool(x.data.get("tracked", True))))
    upsert_items(rows, result)
    result.processed = len(items)

    item_pks = _pk_map(InventoryItem, [x.parent for x in levels])
    wanted, place_records = [], []
    for x in levels:
        try:
            place = x.data.get("location") or {}
            place_records.append(Record("Location", r.shopify_id(place.get("id")), place))
            wanted.append((x, item_pks.get(x.parent), place_records[-1].id, r.shopify_available(x.data)))
        except r.BadRecord as e:
            result.fail(x, str(e))
    places = locations(place_records)
    pairs = {(item_pk, places[lid]) for _, item_pk, lid, _ in wanted if item_pk}
    existing = {}
    if pairs:
        query = InventoryLevel.objects.select_for_update().filter(
            item_id__in={p[0] for p in pairs}, location_id__in={p[1] for p in pairs}).order_by("pk")
        existing = {(lv.item_id, lv.location_id): lv for lv in query}
    changed, created, moves = [], [], []
    reason, now = f"Shopify sync #{job_id}", timezone.now()  # bulk_update does not apply auto_now
    for x, item_pk, lid, value in wanted:
        if not item_pk:
            result.fail(x, "its inventory item is not imported")
            continue
        level = existing.get((item_pk, places[lid]))
        if level is None:
            level = InventoryLevel(item_id=item_pk, location_id=places[lid], available=mapping.on_hand(value, 0))
            existing[(item_pk, places[lid])] = level
            created.append(level)
            continue
        available = mapping.on_hand(value, level.reserved)
        if available != level.available:
            moves.append((level, available - level.available))
            level.available, level.updated_at = available, now
            changed.append(level)
    if created:
        InventoryLevel.objects.bulk_create(created)
        moves += [(level, level.available) for level in created]
    if changed:
        InventoryLevel.objects.bulk_update(changed, ["available", "updated_at"])
    StockMovement.objects.bulk_create([
        StockMovement(level_id=level.pk, kind=StockMovement.Kind.SET, available_delta=delta,
                      available_after=level.available, reserved_after=level.reserved, reason=reason)
        for level, delta in moves
    ])
    return result


# --- customers and orders ---------------------------------------------------------------------

def upsert_customers(customers: list[Record], result: Result) -> dict[int, int]:
    """Customers by shopify id, emails kept unique; Shopify id -> our pk."""
    by_id = {x.id: x for x in customers}  # the last copy of a customer in the batch wins
    emails = {x.id: r.text(x.data.get("email"), 254).lower() for x in by_id.values()}
    # A local customer with that email and no Shopify id is the same person: link it (as the webhooks).
    known = set(Customer.objects.filter(shopify_id__in=by_id).values_list("shopify_id", flat=True))
    by_email = {email: sid for sid, email in emails.items() if email and sid not in known}
    local = list(Customer.objects.filter(email__in=by_email, shopify_id__isnull=True))
    for customer in local:
        customer.shopify_id = by_email[customer.email]
    if local:
        Customer.objects.bulk_update(local, ["shopify_id"])
    taken = dict(Customer.objects.filter(email__in=[e for e in emails.values() if e]).values_list("email", "shopify_id"))
    seen, rows = set(), []
    for x in by_id.values():
        email = emails[x.id] or None
        if email is not None and (email in seen or (email in taken and taken[email] != x.id)):
            email = None  # unique but nullable (shopify_sync.mapping)
        seen.add(email)
        rows.append(Customer(shopify_id=x.id, email=email, name=r.customer_name(x.data, x.id),
                             phone=r.text(x.data.get("phone"), 40)))
    if rows:
        Customer.objects.bulk_create(rows, update_conflicts=True, unique_fields=["shopify_id"],
                                     update_fields=["email", "name", "phone"])
    return _pk_map(Customer, by_id)


def write_customers(batch: list[Record], job_id: int) -> Result:
    result = Result()
    customers = [x for x in batch if x.type == "Customer"]
    upsert_customers(customers, result)
    result.processed = len(customers)
    return result


def write_orders(batch: list[Record], job_id: int) -> Result:
    result = Result()
    orders, lines = _split(batch, "Order", "LineItem")
    buyers, valid = [], []
    for x in orders:
        try:
            buyer = x.data.get("customer")
            if buyer:
                buyers.append(Record("Customer", r.shopify_id(buyer.get("id")), buyer))
            money = (x.data.get("totalPriceSet") or {}).get("shopMoney") or {}
            valid.append((x, buyers[-1].id if buyer else None, r.money(money.get("amount") or 0),
                          r.text(money.get("currencyCode"), 3) or "EUR"))
        except r.BadRecord as e:
            result.fail(x, str(e))
    customers = upsert_customers(buyers, result)
    # A webhook may have stored a newer version of an order (docs/shopify.md, Ordering): keep it.
    stored = dict(Order.objects.filter(shopify_id__in=[x.id for x, *_ in valid], shopify_updated_at__isnull=False)
                  .values_list("shopify_id", "shopify_updated_at"))
    rows, newer_here = [], set()
    for x, buyer, total, currency in valid:
        when = parse_time(x.data.get("updatedAt")) or stored.get(x.id)
        if when is not None and x.id in stored and when < stored[x.id]:
            newer_here.add(x.id)
            continue
        status, payment, fulfillment = r.order_states(x.data)
        # A guest order (no customer) has none, as with the webhooks (shopify_sync.mapping).
        rows.append(Order(shopify_id=x.id, number=mapping.order_number(x.id), shopify_name=r.text(x.data.get("name"), 64),
                          customer_id=customers.get(buyer) if buyer else None,
                          status=status, payment_status=payment, fulfillment_status=fulfillment,
                          total=total, currency=currency.upper(), shopify_updated_at=when))
    if rows:
        Order.objects.bulk_create(rows, update_conflicts=True, unique_fields=["shopify_id"],
                                  update_fields=["number", "shopify_name", "customer", "status", "payment_status",
                                                 "fulfillment_status", "total", "currency", "shopify_updated_at",
                                                 "updated_at"])
    result.processed = len(orders)
    order_pks = _pk_map(Order, [x.id for x in orders] + [x.parent for x in lines])
    # An order's lines are replaced: deleted when the order is written, then added as its line
    # records arrive (after the order, in this batch or the next ones).
    OrderLine.objects.filter(order_id__in=[order_pks[x.id] for x in orders
                                           if x.id in order_pks and x.id not in newer_here]).delete()
    variant_sids = {}
    for x in lines:
        variant = x.data.get("variant")
        if variant:
            try:
                variant_sids[x.id] = r.shopify_id(variant.get("id"))
            except r.BadRecord:
                pass
    items = _pk_map(InventoryItem, variant_sids.values(), key="variant__shopify_id")
    line_rows = []
    for x in lines:
        quantity = x.data.get("quantity")
        if x.parent in newer_here:
            continue  # its order was kept as stored
        if x.parent not in order_pks:
            result.fail(x, "its order is not imported")
            continue
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
            result.fail(x, "quantity must be a positive integer")
            continue
        try:
            price = r.money(((x.data.get("originalUnitPriceSet") or {}).get("shopMoney") or {}).get("amount") or 0)
        except r.BadRecord as e:
            result.fail(x, str(e))
            continue
        line_rows.append(OrderLine(order_id=order_pks[x.parent], inventory_item_id=items.get(variant_sids.get(x.id)),
                                   shopify_variant_id=variant_sids.get(x.id),
                                   title=r.text(x.data.get("title"), 300) or "Item", sku=r.text(x.data.get("sku"), 64),
                                   quantity=quantity, unit_price=price))
    OrderLine.objects.bulk_create(line_rows)
    return result


WRITERS = {"products": write_products, "inventory": write_inventory, "orders": write_orders,
           "customers": write_customers}
