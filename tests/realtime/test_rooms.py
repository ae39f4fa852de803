import pytest

from django_oda_realtime.permissions import policy
from django_oda_realtime.rooms import USER_GROUP_SHARDS, group_for, normalize_id, room, room_for_group


@pytest.mark.parametrize(
    "room_name, group",
    [
        ("inventory:all", "rt.inventory.all"),
        ("inventory:location:42", "rt.inventory.location.42"),
        ("orders:customer:abc-1_2", "rt.orders.customer.abc-1_2"),
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


def test_user_rooms_share_a_bounded_set_of_groups_no_room_group_can_collide_with():
    groups = {group_for(f"user:{i}") for i in range(10_000)}
    assert len(groups) == USER_GROUP_SHARDS
    assert all(g.startswith("rts.user.") for g in groups)
    # The same user always lands in the same group (every process must agree): no per-process hash seed.
    assert group_for("user:42") == "rts.user.%d" % (__import__("zlib").crc32(b"42") % USER_GROUP_SHARDS)
    # Other rooms keep a group of their own, never one of the shards.
    assert group_for("notifications:42") == "rt.notifications.42"
    with pytest.raises(ValueError):
        room_for_group(group_for("user:42"))
