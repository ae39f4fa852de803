"""The mandatory privacy topics and ``app/uninstalled`` (docs/shopify.md, *Privacy*).

``customers/redact``: the customer's email, name and phone are erased, and the stored
payloads of that customer and of the listed orders are pruned; a tombstone keeps older
``customers/*`` deliveries from writing the data back. ``shop/redact``: the same for every
Shopify customer and every stored payload. ``customers/data_request``: recorded in the
delivery's result for the shop's staff to answer (the data is in the admin). ``app/uninstalled``:
recorded and logged; the access token is void from then on.
"""
import logging

from django.db.models import Q
from django.utils import timezone

from orders.models import Customer

from ..models import WebhookDelivery
from .common import Malformed, bury, shopify_id

logger = logging.getLogger("shopify_sync.apply")


def _prune(query) -> int:
    return WebhookDelivery.objects.filter(query).exclude(payload={}).update(payload={}, payload_pruned_at=timezone.now())


def _erase(customers) -> int:
    return customers.update(email=None, name="Redacted customer", phone="")


def customer_redact(delivery, payload: dict) -> str:
    customer = payload.get("customer")
    order_ids = payload.get("orders_to_redact") or []
    if not isinstance(customer, dict) or not isinstance(order_ids, list):
        raise Malformed("customer or orders_to_redact has the wrong type")
    sid = shopify_id(customer)
    order_ids = [shopify_id({"id": o}) for o in order_ids]
    bury("customer_redacted", sid, timezone.now())
    erased = _erase(Customer.objects.filter(shopify_id=sid))
    pruned = _prune((Q(topic__startswith="customers/") & Q(summary__id=str(sid)))
                    | (Q(topic__startswith="orders/") & Q(summary__id__in=[str(o) for o in order_ids])))
    return f"customer {sid} redacted: {erased} customer(s), {pruned} payload(s) pruned"


def shop_redact(delivery, payload: dict) -> str:
    erased = _erase(Customer.objects.filter(shopify_id__isnull=False))
    pruned = _prune(~Q(pk=delivery.pk))
    return f"shop redacted: {erased} customer(s), {pruned} payload(s) pruned"


def data_request(delivery, payload: dict) -> str:
    customer = payload.get("customer")
    if not isinstance(customer, dict):
        raise Malformed("customer is not an object")
    sid = shopify_id(customer)
    orders = payload.get("orders_requested") or []
    logger.warning("Shopify data request for customer %s (%d order(s)): answer it from the admin", sid, len(orders))
    return f"data request for customer {sid}, {len(orders)} order(s): to answer"


def app_uninstalled(delivery, payload: dict) -> str:
    logger.warning("The Shopify app was uninstalled from %s", delivery.shop_domain or "the shop")
    return "app uninstalled: the access token is void"
