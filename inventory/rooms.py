"""Inventory rooms and the ``subscribe:inventory`` topic, registered with realtime."""
from realtime.permissions import has_perm, policy
from realtime.rooms import room
from realtime.subscriptions import expect_mapping, id_list, topics

VIEW = "inventory.view_inventorylevel"
ALL = "inventory:all"
LOCATION = "inventory:location"
PRODUCT = "inventory:product"


def location_room(location_id) -> str:
    return room(LOCATION, location_id)


def product_room(product_id) -> str:
    return room(PRODUCT, product_id)


def resolve(user, data) -> list[str]:
    """``{locationIds?, productIds?}`` -> their rooms, or ``inventory:all`` when neither is given."""
    data = expect_mapping(data, {"locationIds", "productIds"})
    rooms = [location_room(i) for i in id_list(data, "locationIds")]
    rooms += [product_room(i) for i in id_list(data, "productIds")]
    return rooms or [ALL]


def register() -> None:
    can_view = has_perm(VIEW)
    policy.register(ALL, can_view)
    policy.register(LOCATION, can_view, has_id=True)
    policy.register(PRODUCT, can_view, has_id=True)
    topics.register("inventory", resolve)
