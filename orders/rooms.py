"""Order rooms and the ``subscribe:orders`` topic, registered with realtime."""
from django_oda_realtime.exceptions import InvalidInput
from django_oda_realtime.permissions import has_perm, policy
from django_oda_realtime.rooms import normalize_id, room
from django_oda_realtime.subscriptions import expect_mapping, topics

VIEW = "orders.view_order"
ALL = "orders:all"
CUSTOMER = "orders:customer"


def customer_room(customer_id) -> str:
    return room(CUSTOMER, customer_id)


def resolve(user, data) -> list[str]:
    """``{customerId?}`` -> that customer's room, or ``orders:all``."""
    data = expect_mapping(data, {"customerId"})
    if data.get("customerId") is None:
        return [ALL]
    customer_id = normalize_id(data["customerId"])
    if customer_id is None:
        raise InvalidInput("customerId is not a valid id")
    return [customer_room(customer_id)]


def can_watch_customer(user, customer_id) -> bool:
    """Staff with orders.view_order, or the customer's own user (ids compared exactly)."""
    if user.has_perm(VIEW):
        return True
    from .models import Customer

    return customer_id.isdigit() and str(int(customer_id)) == customer_id and (
        Customer.objects.filter(pk=int(customer_id), user_id=user.pk).exists()
    )


def register() -> None:
    policy.register(ALL, has_perm(VIEW))
    policy.register(CUSTOMER, can_watch_customer, has_id=True)
    topics.register("orders", resolve)
