"""Inventory rooms and the ``subscribe:inventory`` topic, registered with realtime."""
from django_oda_realtime.permissions import has_perm, policy
from django_oda_realtime.rooms import room
from django_oda_realtime.subscriptions import expect_mapping, id_list, topics

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
    topics.register_snapshot("inventory", snapshot)


SNAPSHOT_LIMIT = 1000


def snapshot(user, rooms: list[str]) -> dict:
    """``subscribe:inventory {snapshot: true}``: the current levels of the rooms joined (at most
    SNAPSHOT_LIMIT; ``truncated`` says when there are more)."""
    from django.db.models import Q

    from .models import InventoryLevel

    where = Q(pk__in=[])
    for name in rooms:
        if name == ALL:
            where = Q()
            break
        kind, _, ident = name.rpartition(":")
        if not ident.isdigit():
            continue
        if kind == LOCATION:
            where |= Q(location_id=ident)
        elif kind == PRODUCT:
            where |= Q(item__variant__product_id=ident)
    rows = list(InventoryLevel.objects.filter(where).order_by("item_id", "location_id")
                .values("item_id", "location_id", "available", "reserved")[:SNAPSHOT_LIMIT + 1])
    return {"levels": rows[:SNAPSHOT_LIMIT], "truncated": len(rows) > SNAPSHOT_LIMIT}
