"""products/*, locations/*, inventory_levels/*: upserts by ``shopify_id`` (docs/shopify.md)."""
from django.db.models import Q

from inventory import services as inventory
from inventory.models import InventoryItem, InventoryLevel, Location, Product, ProductVariant
from orders.models import OrderLine

from .common import (
    Malformed, NotYet, Stale, bury, check_alive, check_newer, integer, items, money, shopify_id, text, version,
)

PRODUCT_STATUSES = {"active", "draft", "archived"}


def _free(model, field: str, value, own_pk) -> bool:
    return not model.objects.filter(**{field: value}).exclude(pk=own_pk).exists()


def product_upsert(delivery, payload: dict) -> str:
    sid, when = shopify_id(payload), version(payload, delivery)
    check_alive("product", sid, when)
    product = Product.objects.select_for_update().filter(shopify_id=sid).first()
    if product is not None:
        check_newer(product.shopify_updated_at, when, f"product {sid}")
    else:
        product = Product(shopify_id=sid)
    product.title = text(payload, "title", 200) or f"Product {sid}"
    handle = text(payload, "handle", 200) or f"shopify-{sid}"
    product.handle = handle if _free(Product, "handle", handle, product.pk) else f"shopify-{sid}"
    product.vendor = text(payload, "vendor", 100)
    product.product_type = text(payload, "product_type", 100)
    status = text(payload, "status", 10, "active")
    product.status = status if status in PRODUCT_STATUSES else Product.Status.DRAFT
    product.shopify_updated_at = when
    product.save()
    variants = items(payload, "variants")
    kept = [_variant(product, v) for v in variants]
    removed, _ = ProductVariant.objects.filter(product=product).exclude(pk__in=kept).delete()
    return f"product {sid}: {len(kept)} variant(s)" + (f", {removed} row(s) removed" if removed else "")


def _variant(product: Product, payload: dict) -> int:
    vid = shopify_id(payload)
    variant = ProductVariant.objects.select_for_update().filter(shopify_id=vid).first() or ProductVariant(shopify_id=vid)
    variant.product = product
    variant.title = text(payload, "title", 200) or "Default Title"
    variant.price = money(payload, "price")
    variant.position = max(1, integer(payload, "position", default=1))
    variant.save()
    item_sid = shopify_id(payload, "inventory_item_id", required=False)
    item = (InventoryItem.objects.select_for_update().filter(Q(variant=variant) | Q(shopify_id=item_sid)).first()
            if item_sid else InventoryItem.objects.filter(variant=variant).first())
    item = item or InventoryItem(variant=variant)
    item.variant, item.shopify_id = variant, item_sid or item.shopify_id
    # Variants without a SKU, or with one another item holds, store None: unique but nullable.
    sku = text(payload, "sku", 64).strip() or None
    item.sku = sku if sku is not None and _free(InventoryItem, "sku", sku, item.pk) else None
    item.save()
    # Order lines that arrived before their variant point at it now (same state in any order).
    OrderLine.objects.filter(shopify_variant_id=vid, inventory_item__isnull=True).update(inventory_item=item)
    return variant.pk


def product_delete(delivery, payload: dict) -> str:
    sid, when = shopify_id(payload), version(payload, delivery)
    bury("product", sid, when)
    product = Product.objects.select_for_update().filter(shopify_id=sid).first()
    if product is None:
        return f"product {sid}: not stored"
    check_newer(product.shopify_updated_at, when, f"product {sid}")
    for item_sid in InventoryItem.objects.filter(variant__product=product, shopify_id__isnull=False).values_list(
            "shopify_id", flat=True):
        bury("inventory_item", item_sid, when)
    product.delete()
    return f"product {sid}: deleted"


def location_upsert(delivery, payload: dict) -> str:
    sid, when = shopify_id(payload), version(payload, delivery)
    check_alive("location", sid, when)
    location = Location.objects.select_for_update().filter(shopify_id=sid).first()
    if location is not None:
        check_newer(location.shopify_updated_at, when, f"location {sid}")
    else:
        location = Location(shopify_id=sid, code=f"shopify-{sid}")
    location.name = text(payload, "name", 200) or f"Location {sid}"
    parts = [text(payload, k, 100) for k in ("address1", "address2", "zip", "city", "province", "country")]
    location.address = ", ".join(p for p in parts if p)[:300]
    active = payload.get("active", True)
    if not isinstance(active, bool):
        raise Malformed("active is not a boolean")
    location.is_active = active
    location.shopify_updated_at = when
    location.save()
    return f"location {sid}: saved"


def location_delete(delivery, payload: dict) -> str:
    sid, when = shopify_id(payload), version(payload, delivery)
    bury("location", sid, when)
    deleted, _ = Location.objects.filter(shopify_id=sid).filter(
        Q(shopify_updated_at__isnull=True) | Q(shopify_updated_at__lte=when)).delete()
    return f"location {sid}: " + ("deleted" if deleted else "not stored")


def _level_ids(payload: dict) -> tuple[int, int, int, int]:
    item_sid, location_sid = shopify_id(payload, "inventory_item_id"), shopify_id(payload, "location_id")
    item_id = InventoryItem.objects.filter(shopify_id=item_sid).values_list("pk", flat=True).first()
    location_id = Location.objects.filter(shopify_id=location_sid).values_list("pk", flat=True).first()
    return item_sid, location_sid, item_id, location_id


def level_update(delivery, payload: dict) -> str:
    when = version(payload, delivery)
    item_sid, location_sid, item_id, location_id = _level_ids(payload)
    check_alive("inventory_item", item_sid, when)
    check_alive("location", location_sid, when)
    check_alive("inventory_level", f"{item_sid}:{location_sid}", when)
    if item_id is None or location_id is None:
        raise NotYet(f"inventory item {item_sid} or location {location_sid} is not stored yet")
    available = payload.get("available")
    if available is None:  # an untracked item: Shopify sends null
        return f"level {item_sid}@{location_sid}: not tracked"
    available = integer(payload, "available")
    if inventory.set_from_shopify(item_id, location_id, available, shopify_updated_at=when) is None:
        raise Stale(f"level {item_sid}@{location_sid} is newer here")
    return f"level {item_sid}@{location_sid}: {available} sellable"


def level_disconnect(delivery, payload: dict) -> str:
    when = version(payload, delivery)
    item_sid, location_sid, item_id, location_id = _level_ids(payload)
    bury("inventory_level", f"{item_sid}:{location_sid}", when)
    deleted, _ = InventoryLevel.objects.filter(item_id=item_id, location_id=location_id).filter(
        Q(shopify_updated_at__isnull=True) | Q(shopify_updated_at__lte=when)).delete()
    return f"level {item_sid}@{location_sid}: " + ("removed" if deleted else "not stored")
