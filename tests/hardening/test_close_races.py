"""No work after close (issue #11): concurrent tasks on one socket, on the real Redis layer.

On the core Redis layer, whose group_add is a Redis round trip (so a close can land between
two joins). A socket closed in the middle of a 100-room subscribe leaves no room behind (hub
memberships, the hub's Redis subscriptions, the subscription gauge); a permission removed
while a subscribe runs drops every room it granted, also those joined after the recheck
was asked for; a recheck after the close changes nothing.
"""
import asyncio

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.contrib.auth.models import Permission
import pytest
import redis as redis_lib

from django_oda_realtime import metrics
from django_oda_realtime.exceptions import CloseCode
from django_oda_realtime.hub import current_hub
from django_oda_realtime.rooms import group_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

VIEW = "inventory.view_inventorylevel"
ROOMS = 100
LOCATIONS = [str(900_000 + i) for i in range(ROOMS)]
INVENTORY_ROOMS = [f"inventory:location:{i}" for i in LOCATIONS]


def gauge(kind: str) -> float:
    return metrics.SUBSCRIPTIONS.labels(kind)._value.get()


def members_of(hub, conn) -> list[str]:
    return [room for room, members in hub.rooms.items() if conn in members]


def redis_memberships(redis_url: str, prefix: str, channel: str) -> list[str]:
    """The groups of these rooms that still list the hub's channel in Redis (core layer)."""
    client = redis_lib.Redis.from_url(redis_url)
    try:
        groups = {group_for(room) for room in INVENTORY_ROOMS}
        return [g for g in groups if client.zscore(f"{prefix}:group:{g}", channel) is not None]
    finally:
        client.close()


async def until(predicate, timeout: float = 5.0):
    """Run the loop (other tasks) until ``predicate()``; fails after ``timeout``."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0)


async def open_viewer(connect, make_user, token):
    user = await database_sync_to_async(make_user)(perms=[VIEW])
    sock = await connect(token(user))
    hub = current_hub()
    (conn,) = [c for c in hub.connections if c.user_id == str(user.pk)]
    return user, sock, hub, conn


async def test_a_socket_closed_during_a_100_room_subscribe_leaves_every_room(
        redis_core_layer, layer_prefix, redis_url, connect, make_user, token):
    baseline = gauge("inventory")
    user, sock, hub, conn = await open_viewer(connect, make_user, token)
    await sock.send("subscribe:inventory", {"locationIds": LOCATIONS}, ack=1)
    await until(lambda: any(room.startswith("inventory:") for room in members_of(hub, conn)))
    assert len(members_of(hub, conn)) < ROOMS + 1, "the subscribe finished before the close could race it"

    await conn.close(CloseCode.TOKEN_REVOKED, "token_revoked")  # as a revocation's control message does
    await sock.comm.receive_output(5)  # the close
    await until(lambda: conn.session is None and not members_of(hub, conn) and gauge("inventory") == baseline)
    await asyncio.sleep(0.2)  # the subscribe, had it gone on, would have joined more rooms by now
    assert members_of(hub, conn) == []
    assert not [room for room in INVENTORY_ROOMS if room in hub.rooms]
    assert not [group_for(room) for room in INVENTORY_ROOMS if group_for(room) in hub.groups]
    assert gauge("inventory") == baseline
    assert redis_memberships(redis_url, layer_prefix, hub.channel) == []


async def test_a_permission_removed_during_a_subscribe_drops_every_room_it_granted(
        redis_core_layer, connect, make_user, token):
    baseline = gauge("inventory")
    user, sock, hub, conn = await open_viewer(connect, make_user, token)
    await sock.send("subscribe:inventory", {"locationIds": LOCATIONS}, ack=1)
    await until(lambda: any(room.startswith("inventory:") for room in members_of(hub, conn)))

    def remove_permission():
        app_label, codename = VIEW.split(".")
        user.user_permissions.remove(Permission.objects.get(content_type__app_label=app_label, codename=codename))

    await sync_to_async(remove_permission)()
    recheck = asyncio.ensure_future(conn.control({"action": "recheck"}))  # as permission receivers ask
    reply = None
    while reply is None:
        frame = await sock.receive(5)
        if frame.get("ack") == 1:
            reply = frame
    await asyncio.wait_for(recheck, 5)
    dropped = await sock.receive_event("unsubscribed", timeout=5)
    # Every room the subscribe joined is gone, whether joined before or after the recheck was asked for.
    assert sorted(dropped["data"]["rooms"]) == sorted(reply["data"]["rooms"]) and len(reply["data"]["rooms"]) == ROOMS
    assert [room for room in members_of(hub, conn) if room.startswith("inventory:")] == []
    assert gauge("inventory") == baseline
    await sock.close()


async def test_a_recheck_after_the_close_changes_nothing(redis_core_layer, connect, make_user, token):
    baseline = gauge("inventory")
    user, sock, hub, conn = await open_viewer(connect, make_user, token)
    reply = await sock.command("subscribe:inventory", {"locationIds": LOCATIONS[:3]})
    assert len(reply["data"]["rooms"]) == 3
    session = conn.session
    await conn.close(CloseCode.TOKEN_REVOKED, "token_revoked")
    assert gauge("inventory") == baseline
    assert await session.recheck() == []  # e.g. a recheck queued behind the close
    assert (await session.handle("subscribe:inventory", {"locationIds": LOCATIONS[:3]})).error_code == "connection_closed"
    assert gauge("inventory") == baseline and members_of(hub, conn) == []
