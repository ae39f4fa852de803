import pytest

from realtime.permissions import policy
from realtime.rooms import group_for, normalize_id, room, room_for_group


@pytest.mark.parametrize(
    "room_name, group",
    [
        ("inventory:all", "rt.inventory.all"),
        ("inventory:location:42", "rt.inventory.location.42"),
        ("orders:customer:abc-1_2", "rt.orders.customer.abc-1_2"),
        ("user:7", "rt.user.7"),
        ("broadcast", "rt.broadcast"),
    ],
)
def test_group_for_maps_rooms_to_valid_groups_one_to_one(room_name, group):
    assert group_for(room_name) == group
    assert room_for_group(group) == room_name


@pytest.mark.parametrize("bad", ["a.b", "x" * 91, "space here", "inventory:location:é", 5, None])
def test_group_for_rejects_names_that_are_not_rooms(bad):
    with pytest.raises(ValueError):
        group_for(bad)


@pytest.mark.parametrize(
    "value, expected",
    [(5, "5"), ("5", "5"), ("location-1", "location-1"), (True, None), ("a:b", None), ("", None), ("x" * 65, None), (1.5, None)],
)
def test_normalize_id(value, expected):
    assert normalize_id(value) == expected


def test_room_builder_refuses_ids_that_would_change_the_room():
    assert room("inventory:location", 3) == "inventory:location:3"
    with pytest.raises(ValueError):
        room("user", "1:notifications")


@pytest.mark.parametrize(
    "name, kind",
    [
        ("inventory:all", "inventory:all"),
        ("inventory:location:1", "inventory:location"),
        ("inventory:product:p-9", "inventory:product"),
        ("orders:all", "orders:all"),
        ("orders:customer:3", "orders:customer"),
        ("user:1", "user"),
        ("notifications:1", "notifications"),
        ("shopify:all", "shopify:all"),
        ("broadcast", "broadcast"),
        ("inventory:location", None),  # a kind with an id needs one
        ("inventory:all:1", None),
        ("user:1:2", None),
        ("nope:1", None),
        ("user:", None),
    ],
)
def test_policy_knows_exactly_the_registered_rooms(name, kind):
    assert policy.kind_of(name) == kind
