"""``order:updated`` for every change of an order, whatever wrote it (issue #15 item 1)."""
from channels.db import database_sync_to_async as db
from django.core.exceptions import ValidationError
import pytest

from orders import services
from orders.models import Customer, Order, OrderHistory
from tests.domain import events_named, pending, subscribe

pytestmark = pytest.mark.django_db(transaction=True)


def make_order():
    customer = Customer.objects.create(email="ada@example.com", name="Ada")
    return services.create_order(customer, [(None, "Linen Shirt", "", 2, "59.00")], number="#9001")


@pytest.fixture
async def staff(make_user, token, connect):
    sock = await connect(token(await db(make_user)(perms=["orders.view_order"])))
    await subscribe(sock, "orders", rooms=["orders:all"])
    return sock


async def test_a_plain_save_sends_one_order_updated(staff):
    order = await db(make_order)()
    created = events_named(await pending(staff), "order:updated")
    assert len(created) == 1 and created[0]["data"]["total"] == "118.00"

    def confirm():
        o = Order.objects.get(pk=order.pk)
        o.status = "confirmed"
        o.save()
    await db(confirm)()
    frames = events_named(await pending(staff), "order:updated")
    assert [f["data"]["changes"] for f in frames] == [{"status": {"from": "pending", "to": "confirmed"}}]
    assert frames[0]["data"]["note"] == "Saved"
    assert await db(lambda: OrderHistory.objects.filter(order_id=order.pk, to_value="confirmed").count())() == 1


async def test_a_save_of_another_field_is_announced_and_a_save_without_change_is_not(staff):
    order = await db(make_order)()
    await pending(staff)

    def retotal():
        o = Order.objects.get(pk=order.pk)
        o.total = "120.50"
        o.save()
        o.save()  # nothing changed the second time
    await db(retotal)()
    frames = events_named(await pending(staff), "order:updated")
    assert [f["data"]["changes"] for f in frames] == [{"total": {"from": "118.00", "to": "120.50"}}]


async def test_a_forbidden_transition_by_plain_save_is_refused_and_writes_nothing(staff):
    order = await db(make_order)()
    await pending(staff)

    def ship():
        o = Order.objects.get(pk=order.pk)
        o.status = "shipped"
        o.save()
    with pytest.raises(ValidationError) as e:
        await db(ship)()
    assert e.value.message_dict == {"status": ["status cannot go from pending to shipped"]}
    assert await db(lambda: Order.objects.get(pk=order.pk).status)() == "pending"
    assert await staff.nothing()


async def test_shopify_writes_skip_the_lifecycle_check(staff):
    order = await db(make_order)()
    await pending(staff)

    def from_shopify():
        o = Order.objects.get(pk=order.pk)
        o.status, o.fulfillment_status = "shipped", "fulfilled"
        o._change_note = "Shopify"
        o.save(check_lifecycle=False)
    await db(from_shopify)()
    frames = events_named(await pending(staff), "order:updated")
    assert len(frames) == 1 and frames[0]["data"]["status"] == "shipped" and frames[0]["data"]["note"] == "Shopify"


async def test_the_service_path_sends_one_event_not_two(staff, make_user):
    order = await db(make_order)()
    await pending(staff)
    user = await db(make_user)()
    await db(services.update_order)(order.pk, status="confirmed", payment_status="paid", user=user, note="ok")
    frames = events_named(await pending(staff), "order:updated")
    assert len(frames) == 1 and frames[0]["data"]["userId"] == str(user.pk)
    assert await db(lambda: OrderHistory.objects.filter(order_id=order.pk).count())() == 5  # 3 created + 2


async def test_queryset_update_is_not_covered(staff):
    """Documented limit: QuerySet.update() sends no post_save, so no event."""
    order = await db(make_order)()
    await pending(staff)
    await db(lambda: Order.objects.filter(pk=order.pk).update(total=1))()
    assert await staff.nothing()


async def test_admin_change_form_save_is_announced(staff, make_user):
    from django.test import Client
    order = await db(make_order)()
    await pending(staff)
    admin_user = await db(make_user)("boss", perms=["orders.change_order", "orders.view_order"], is_staff=True)

    def post_form():
        client = Client()
        client.force_login(admin_user)
        data = {"customer": order.customer_id, "number": "#9001", "total": "99.00", "currency": "EUR",
                "shopify_name": "", "lines-TOTAL_FORMS": "1", "lines-INITIAL_FORMS": "1",
                "lines-0-id": order.lines.get().pk, "lines-0-order": order.pk, "lines-0-title": "Linen Shirt",
                "lines-0-sku": "", "lines-0-quantity": "2", "lines-0-unit_price": "59.00",
                "history-TOTAL_FORMS": "3", "history-INITIAL_FORMS": "3",
                **{f"history-{i}-id": h for i, h in enumerate(order.history.values_list("pk", flat=True))},
                **{f"history-{i}-order": order.pk for i in range(3)}}
        return client.post(f"/admin/orders/order/{order.pk}/change/", data)
    response = await db(post_form)()
    assert response.status_code == 302, response.content[:2000]
    frames = events_named(await pending(staff), "order:updated")
    assert [f["data"]["changes"] for f in frames] == [{"total": {"from": "118.00", "to": "99.00"}}]


@pytest.mark.django_db
@pytest.mark.parametrize("changes, error", [
    ({"payment_status": "refunded"}, {"payment_status": ["payment_status cannot go from pending to refunded"]}),
    ({"status": "confirmed", "payment_status": "refunded"},
     {"payment_status": ["payment_status cannot go from pending to refunded"]}),
    ({"status": "cancelled", "fulfillment_status": "returned"},
     {"fulfillment_status": ["fulfillment_status cannot go from unfulfilled to returned"]}),
    ({"status": "bogus"}, {"status": ["Unknown status: 'bogus'"]}),
], ids=["payment", "payment next to a valid status", "fulfilment", "unknown value"])
def test_the_error_names_the_field_the_lifecycle_refuses(changes, error):
    order = make_order()
    for field, value in changes.items():
        setattr(order, field, value)
    with pytest.raises(ValidationError) as e:
        order.save()
    assert e.value.message_dict == error
    order.refresh_from_db()
    assert (order.status, order.payment_status, order.fulfillment_status) == ("pending", "pending", "unfulfilled")


@pytest.mark.django_db
def test_full_clean_reports_the_forbidden_transition():
    order = make_order()
    order.status = "delivered"
    with pytest.raises(ValidationError) as e:
        order.full_clean()
    assert e.value.message_dict["status"] == ["status cannot go from pending to delivered"]


async def test_an_order_without_lines_sends_its_total_as_a_decimal_string(staff):
    """The default total is the int 0: it must still go out as "0.00", and a guest order's customerId is null."""
    await db(lambda: Order.objects.create(number="#9002"))()
    frames = events_named(await pending(staff), "order:updated")
    assert len(frames) == 1
    assert frames[0]["data"]["total"] == "0.00" and frames[0]["data"]["customerId"] is None
