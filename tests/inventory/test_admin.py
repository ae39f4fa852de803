"""The domain's admin pages render with their lists, filters and search; admin edits go through the rules."""
import io

from django.contrib import admin
from django.core.management import call_command
from django.test import Client
import pytest

from inventory.models import InventoryLevel, StockMovement
from orders.models import Order

pytestmark = pytest.mark.django_db

DOMAIN_APPS = {"inventory", "orders", "shopify_sync", "notifications"}
MODELS = sorted(m._meta.label_lower for m in admin.site._registry if m._meta.app_label in DOMAIN_APPS)


@pytest.fixture
def client(make_user):
    call_command("seed_demo", stdout=io.StringIO())
    make_user("root", is_staff=True, is_superuser=True)
    c = Client()
    assert c.login(username="root", password="pw-123456")
    return c


def test_every_domain_model_is_registered():
    assert len(MODELS) == 17


@pytest.mark.parametrize("label", MODELS)
def test_changelist_with_search_and_filters(client, label):
    app, model = label.split(".")
    url = f"/admin/{app}/{model}/"
    assert client.get(url).status_code == 200
    assert client.get(url, {"q": "a"}).status_code == 200
    model_admin = next(ma for m, ma in admin.site._registry.items() if m._meta.label_lower == label)
    assert model_admin.search_fields and model_admin.list_display and model_admin.list_filter


def test_admin_level_edit_is_ledgered_with_the_user(client):
    level = InventoryLevel.objects.select_related("item", "location").first()
    response = client.post(f"/admin/inventory/inventorylevel/{level.pk}/change/", {
        "item": level.item_id, "location": level.location_id, "available": level.available + 5,
        "low_stock_threshold": level.low_stock_threshold})
    assert response.status_code == 302
    move = StockMovement.objects.filter(level=level, kind="save").get()
    assert (move.available_delta, move.user.username, move.reason) == (5, "root", "Admin edit")


def test_admin_order_action_checks_transitions(client):
    pending = Order.objects.filter(status="pending").first()
    delivered = Order.objects.filter(status="delivered").first()
    client.post("/admin/orders/order/", {"action": "mark_status_confirmed",
                                         "_selected_action": [pending.pk, delivered.pk]})
    pending.refresh_from_db(), delivered.refresh_from_db()
    assert (pending.status, delivered.status) == ("confirmed", "delivered")
