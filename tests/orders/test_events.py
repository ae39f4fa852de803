"""``order:updated`` end to end: staff watching every order, a customer watching their own."""
from channels.db import database_sync_to_async as db
import pytest

from orders import services
from orders.lifecycle import InvalidTransition
from orders.models import Customer, Order, OrderHistory
from tests.domain import make_item, subscribe

pytestmark = pytest.mark.django_db(transaction=True)

VIEW = "orders.view_order"


def make_order(user=None, email="ada@example.com"):
    customer = Customer.objects.create(email=email, name="Ada Lovelace", user=user)
    item = make_item()
    return services.create_order(customer, [(item, "Linen Shirt / M", item.sku, 2, "59.00")], number=f"#{email[:3]}1")


@pytest.fixture
async def staff(make_user, token, connect):
    sock = await connect(token(await db(make_user)(perms=[VIEW])))
    await subscribe(sock, "orders", rooms=["orders:all"])
    return sock


async def test_status_payment_and_fulfilment_changes_reach_staff_and_the_customer(make_user, token, connect, staff):
    customer_user = await db(make_user)("ada")
    order = await db(make_order)(customer_user)
    await staff.receive_event("order:updated")  # the new order
    own = await connect(token(customer_user))
    await subscribe(own, "orders", {"customerId": str(order.customer_id)},
                    rooms=[f"orders:customer:{order.customer_id}"])
    manager = await db(make_user)()

    await db(services.update_order)(order.pk, status="confirmed", payment_status="paid", user=manager,
                                    note="Payment captured")
    for sock in (staff, own):
        frame = await sock.receive_event("order:updated")
        data = frame["data"]
        assert data == {
            "orderId": str(order.pk), "number": order.number, "customerId": str(order.customer_id),
            "status": "confirmed", "previousStatus": "pending", "paymentStatus": "paid",
            "fulfillmentStatus": "unfulfilled",
            "changes": {"status": {"from": "pending", "to": "confirmed"}, "paymentStatus": {"from": "pending", "to": "paid"}},
            "created": False, "total": "118.00", "currency": "EUR", "note": "Payment captured",
            "userId": str(manager.pk), "updatedAt": data["updatedAt"],
        }
        assert await sock.nothing()

    await db(services.update_order)(order.pk, fulfillment_status="fulfilled")
    data = (await own.receive_event("order:updated"))["data"]
    assert (data["changes"], data["status"], data["previousStatus"]) == (
        {"fulfillmentStatus": {"from": "unfulfilled", "to": "fulfilled"}}, "confirmed", "confirmed")


async def test_a_new_order_is_announced(staff):
    order = await db(make_order)()
    data = (await staff.receive_event("order:updated"))["data"]
    assert (data["orderId"], data["created"], data["status"], data["previousStatus"]) == (
        str(order.pk), True, "pending", None)
    assert data["changes"]["status"] == {"from": None, "to": "pending"}


async def test_other_customers_and_users_without_permission_get_nothing(make_user, token, connect):
    order = await db(make_order)(await db(make_user)("ada"))
    stranger_user = await db(make_user)("eve")
    await db(Customer.objects.create)(email="eve@example.com", name="Eve", user=stranger_user)
    stranger = await connect(token(stranger_user))
    reply = await stranger.command("subscribe:orders", {"customerId": str(order.customer_id)})
    assert reply["data"]["refused"] == [{"room": f"orders:customer:{order.customer_id}", "reason": "forbidden"}]
    reply = await stranger.command("subscribe:orders")
    assert reply["data"]["refused"] == [{"room": "orders:all", "reason": "forbidden"}]
    staff_user = await db(make_user)(perms=[VIEW])
    unsubscribed = await connect(token(staff_user))
    await db(services.set_status)(order.pk, "confirmed")
    assert await stranger.nothing()
    assert await unsubscribed.nothing()


async def test_an_invalid_transition_writes_and_sends_nothing(staff):
    order = await db(make_order)()
    await staff.receive_event("order:updated")
    with pytest.raises(InvalidTransition):
        await db(services.set_status)(order.pk, "shipped")
    assert await db(lambda: Order.objects.get(pk=order.pk).status)() == "pending"
    assert await db(lambda: OrderHistory.objects.filter(order_id=order.pk).count())() == 3  # the creation's
    assert await staff.nothing()


async def test_history_records_each_change(make_user):
    order = await db(make_order)()
    user = await db(make_user)()
    for _ in range(4):
        await db(services.advance)(order.pk, user=user, note="next")
    rows = await db(lambda: list(OrderHistory.objects.filter(order_id=order.pk, field="status")
                                 .order_by("pk").values_list("from_value", "to_value")))()
    assert rows == [("", "pending"), ("pending", "confirmed"), ("confirmed", "processing"),
                    ("processing", "shipped"), ("shipped", "delivered")]
    order = await db(Order.objects.get)(pk=order.pk)
    assert (order.payment_status, order.fulfillment_status) == ("paid", "fulfilled")
