"""Horizontal scale: two daphne processes on one Redis (issue #7).

One publish from this process reaches the clients of both servers, and each
server process is ONE member of the room's group however many of its clients
joined the room (the pub/sub layer subscribes once per process:
``PUBSUB NUMSUB <prefix>__group__rt.inventory.all`` counts processes, not sockets).
The last client of a process leaving the room takes the process out of the group.
Speed is measured by ``make bench`` (docs/benchmarks.md), not here.
"""
import asyncio
import contextlib

from channels.db import database_sync_to_async
import pytest
import redis.asyncio as aioredis
import websockets

from django_oda_realtime import apublish
from django_oda_realtime.rooms import group_for
from tests.realtime.test_cross_process import command, receive_event
from tests.servers import ServerProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

ROOM = "inventory:all"
PER_SERVER = 3


async def subscribed_client(server: ServerProcess, token: str):
    ws = await websockets.connect(f"{server.ws_url}/ws/?token={token}", proxy=None, ping_interval=None,
                                  open_timeout=10, close_timeout=2)
    await receive_event(ws, "connected")
    reply = await command(ws, "subscribe:inventory", {})
    assert reply["data"]["rooms"] == [ROOM], reply
    return ws


async def wait_numsub(client, channel: str, expected: int, timeout: float = 5.0) -> int:
    """PUBSUB NUMSUB of ``channel`` once it equals ``expected`` (or its value at the timeout)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        count = dict(await client.pubsub_numsub(channel))[channel.encode()]
        if count == expected or loop.time() > deadline:
            return count
        await asyncio.sleep(0.05)


async def test_one_publish_reaches_both_processes_each_one_group_member(
    redis_layer, redis_url, layer_prefix, make_user, token
):
    viewer = await database_sync_to_async(make_user)(perms=["inventory.view_inventorylevel"])
    raw = token(viewer)
    group_channel = f"{layer_prefix}__group__{group_for(ROOM)}"
    assert group_channel.endswith("__group__rt.inventory.all")
    redis = aioredis.Redis.from_url(redis_url)
    async with contextlib.AsyncExitStack() as stack:
        servers = [stack.enter_context(ServerProcess(redis_url=redis_url, layer_prefix=layer_prefix))
                   for _ in range(2)]
        clients = {}
        for server in servers:
            clients[server.port] = await asyncio.gather(*(subscribed_client(server, raw) for _ in range(PER_SERVER)))
            for ws in clients[server.port]:
                stack.push_async_callback(ws.close)
        stack.push_async_callback(redis.aclose)

        # Six sockets in the room, two server processes: two subscriptions to the group.
        assert await wait_numsub(redis, group_channel, 2) == 2

        published = await apublish("inventory:updated", {"sku": "SKU-1", "available": 7}, [ROOM])
        for port, sockets in clients.items():
            frames = await asyncio.gather(*(receive_event(ws, "inventory:updated") for ws in sockets))
            for frame in frames:
                assert frame["id"] == published.id, port
                assert frame["data"] == {"sku": "SKU-1", "available": 7}

        # The first process's clients leave the room: that process leaves the group, the other stays
        # and still receives.
        first, second = servers
        for ws in clients[first.port]:
            reply = await command(ws, "unsubscribe:inventory", {}, ack=2)
            assert reply["data"]["rooms"] == [ROOM]
        assert await wait_numsub(redis, group_channel, 1) == 1
        again = await apublish("inventory:updated", {"sku": "SKU-1", "available": 6}, [ROOM])
        for ws in clients[second.port]:
            assert (await receive_event(ws, "inventory:updated"))["id"] == again.id
        for ws in clients[first.port]:
            with pytest.raises(TimeoutError):
                await receive_event(ws, "inventory:updated", timeout=0.3)
