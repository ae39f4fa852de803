"""Stored webhook deliveries applied to the models: topic -> applier (docs/shopify.md).

Each applier takes ``(delivery, payload)``, writes by ``shopify_id`` (idempotent: applying a
delivery twice, or an older one after a newer one, leaves the same state) and returns a
one-line result, or raises ``Malformed``, ``NotYet`` or ``Stale`` (``common``).
"""
from . import catalog, orders, privacy
from .common import Malformed, NotYet, Stale

__all__ = ["APPLIERS", "Malformed", "NotYet", "Stale"]

APPLIERS = {
    "products/create": catalog.product_upsert,
    "products/update": catalog.product_upsert,
    "products/delete": catalog.product_delete,
    "locations/create": catalog.location_upsert,
    "locations/update": catalog.location_upsert,
    "locations/delete": catalog.location_delete,
    "inventory_levels/update": catalog.level_update,
    "inventory_levels/connect": catalog.level_update,
    "inventory_levels/disconnect": catalog.level_disconnect,
    **{f"orders/{a}": orders.order_upsert for a in ("create", "updated", "cancelled", "fulfilled", "paid")},
    "customers/create": orders.customer_upsert,
    "customers/update": orders.customer_upsert,
    "customers/redact": privacy.customer_redact,
    "customers/data_request": privacy.data_request,
    "shop/redact": privacy.shop_redact,
    "app/uninstalled": privacy.app_uninstalled,
}
