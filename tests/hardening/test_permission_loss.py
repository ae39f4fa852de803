"""Every way a permission can be lost re-checks the sockets of exactly the users who lost it (issue #11).

A real ``/ws/`` socket (channels' WebsocketCommunicator on the ASGI app, the Redis pub/sub
layer) holds ``inventory:location:7`` through a permission; the removal is done from one side
or the other of each relation; the socket must get ``unsubscribed`` for that room, stop
receiving its events, and stay open.
"""
from channels.db import database_sync_to_async
from django.contrib.auth.models import Group, Permission
import pytest

from django_oda_realtime import apublish

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

VIEW = "inventory.view_inventorylevel"
ROOM = "inventory:location:7"


def view_permission():
    return Permission.objects.get(content_type__app_label="inventory", codename="view_inventorylevel")


def holder(make_user, how: str):
    """A user who may view inventory ``how``: directly, through a group, or as superuser."""
    if how == "superuser":
        return make_user(is_superuser=True), None
    user = make_user(perms=[VIEW] if how == "direct" else [])
    group = None
    if how == "group":
        group = Group.objects.create(name=f"viewers-{user.pk}")
        group.permissions.add(view_permission())
        user.groups.add(group)
    return user, group


def drop_superuser(user, group):
    user.is_superuser = False
    user.save()


REMOVALS = {
    # membership, from the group's side and the user's
    "group.user_set.remove": ("group", lambda user, group: group.user_set.remove(user)),
    "group.user_set.clear": ("group", lambda user, group: group.user_set.clear()),
    "group.user_set.set": ("group", lambda user, group: group.user_set.set([])),
    "user.groups.set": ("group", lambda user, group: user.groups.set([])),
    "user.groups.clear": ("group", lambda user, group: user.groups.clear()),
    # a user's own permissions, from either side
    "user.user_permissions.remove": ("direct", lambda user, group: user.user_permissions.remove(view_permission())),
    "user.user_permissions.clear": ("direct", lambda user, group: user.user_permissions.clear()),
    "user.user_permissions.set": ("direct", lambda user, group: user.user_permissions.set([])),
    "permission.user_set.remove": ("direct", lambda user, group: view_permission().user_set.remove(user)),
    "permission.user_set.clear": ("direct", lambda user, group: view_permission().user_set.clear()),
    # a group's permissions, from either side: every member
    "group.permissions.remove": ("group", lambda user, group: group.permissions.remove(view_permission())),
    "group.permissions.clear": ("group", lambda user, group: group.permissions.clear()),
    "permission.group_set.remove": ("group", lambda user, group: view_permission().group_set.remove(group)),
    "permission.group_set.clear": ("group", lambda user, group: view_permission().group_set.clear()),
    # flags
    "is_superuser dropped": ("superuser", drop_superuser),
}


@pytest.mark.parametrize("name", list(REMOVALS))
async def test_losing_a_permission_any_way_leaves_the_room_it_granted(name, redis_layer, make_user, token, connect):
    how, remove = REMOVALS[name]
    user, group = await database_sync_to_async(holder)(make_user, how)
    sock = await connect(token(user))
    reply = await sock.command("subscribe:inventory", {"locationIds": [7]})
    assert reply["data"]["rooms"] == [ROOM], reply

    await database_sync_to_async(remove)(user, group)

    event = await sock.receive_event("unsubscribed", timeout=3)
    assert event["data"] == {"rooms": [ROOM], "reason": "permission_revoked"}
    await apublish("inventory:updated", {"secret": True}, [ROOM])
    assert await sock.nothing(0.3)
    assert "data" in await sock.command("ping")  # the socket stays


async def test_removing_one_member_from_a_group_rechecks_that_member_not_the_others(
    redis_layer, make_user, token, connect
):
    """``group.user_set.remove(a)``: ``a`` leaves the room; ``b``, still a member, keeps it."""
    a, group = await database_sync_to_async(holder)(make_user, "group")
    b = await database_sync_to_async(make_user)()
    await database_sync_to_async(group.user_set.add)(b)
    socks = [await connect(token(a)), await connect(token(b))]
    for sock in socks:
        assert (await sock.command("subscribe:inventory", {"locationIds": [7]}))["data"]["rooms"] == [ROOM]

    await database_sync_to_async(group.user_set.remove)(a)

    assert (await socks[0].receive_event("unsubscribed", timeout=3))["data"]["rooms"] == [ROOM]
    await apublish("inventory:updated", {"n": 1}, [ROOM])
    assert (await socks[1].receive_event("inventory:updated"))["data"] == {"n": 1}
    assert await socks[0].nothing(0.3)


async def test_deleting_a_permission_leaves_the_rooms_it_granted(redis_layer, make_user, token, connect):
    """A deleted permission vanishes from its users and groups without an m2m_changed signal."""
    from django.contrib.contenttypes.models import ContentType

    user = await database_sync_to_async(make_user)(perms=[VIEW])
    sock = await connect(token(user))
    assert (await sock.command("subscribe:inventory", {"locationIds": [7]}))["data"]["rooms"] == [ROOM]

    def delete():
        perm = view_permission()
        perm.delete()
        return {"name": perm.name, "codename": perm.codename,
                "content_type": ContentType.objects.get_for_id(perm.content_type_id)}

    restore = await database_sync_to_async(delete)()
    try:
        event = await sock.receive_event("unsubscribed", timeout=3)
        assert event["data"] == {"rooms": [ROOM], "reason": "permission_revoked"}
    finally:
        await database_sync_to_async(Permission.objects.get_or_create)(**restore)


async def test_losing_staff_status_leaves_the_staff_room(redis_layer, make_user, token, connect):
    user = await database_sync_to_async(make_user)(is_staff=True)
    sock = await connect(token(user))
    assert (await sock.command("subscribe:staff"))["data"]["rooms"] == ["staff"]

    def demote():
        user.is_staff = False
        user.save()

    await database_sync_to_async(demote)()
    assert (await sock.receive_event("unsubscribed", timeout=3))["data"] == {
        "rooms": ["staff"], "reason": "permission_revoked"}
