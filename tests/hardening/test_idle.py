"""Idle sockets: without a heartbeat closed (4013), with one kept open and not deaf — on both Redis layers.

IDLE_TIMEOUT is 3 s here. redis-py 8's 5 s read timeout once killed idle
consumers after ~5.8 s (docs/design.md#redis-idle-timeout), so the heartbeat phase lasts longer than that.
"""
import asyncio
import time

from channels.db import database_sync_to_async
import pytest

from django_oda_realtime.events import Event
from django_oda_realtime.rooms import group_for
from tests.hardening.support import connected, frames_until_close, hardened_server, receive_event
from tests.servers import redis_layers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.slow]

IDLE = 3


async def heartbeat(ws, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await ws.send('{"event":"ping"}')
        await asyncio.sleep(1.0)


async def test_silent_sockets_are_closed_and_heartbeating_ones_stay_open_on_both_redis_layers(
    redis_url, layer_prefix, make_user, token
):
    user = await database_sync_to_async(make_user)()
    raw = token(user)
    layers = redis_layers(redis_url, layer_prefix)
    servers = {
        "pubsub": hardened_server(layer_prefix, IDLE_TIMEOUT=IDLE),
        "core": hardened_server(layer_prefix + "c", IDLE_TIMEOUT=IDLE, REALTIME_CHANNEL_LAYER="core"),
    }
    try:
        for server in servers.values():
            server.start()
        silent, alive = {}, {}
        for name, server in servers.items():
            alive[name] = await connected(server, raw)
            silent[name] = ws = await connected(server, raw)
        for ws in alive.values():
            assert ws.connected_frame["data"]["heartbeatInterval"] == IDLE / 2  # the client is told
        started = time.monotonic()
        closes = {name: asyncio.ensure_future(frames_until_close(ws, timeout=IDLE + 4)) for name, ws in silent.items()}
        await asyncio.gather(*(heartbeat(ws, 8) for ws in alive.values()))
        for name, layer in layers.items():
            frames, code = await closes[name]
            assert (frames[-1]["code"], code) == ("heartbeat_timeout", 4013), name
            event = Event.build("test:after", {"layer": name}, [f"user:{user.pk}"])
            await layer.group_send(group_for(f"user:{user.pk}"), event.to_layer())
            frame = await receive_event(alive[name], "test:after")
            assert frame["data"] == {"layer": name}
            assert time.monotonic() - started > 8
    finally:
        for server in servers.values():
            server.stop()
        await layers["pubsub"].flush()
        await layers["core"].flush()



@pytest.mark.django_db(transaction=True)
async def test_a_quiet_process_re_joins_its_groups_before_they_expire(settings, redis_url, layer_prefix,
                                                                      make_user, token, connect, monkeypatch):
    """docs/design.md#group-expiry: core-layer groups expire (``group_expiry``, 24 h); a process that hears nothing for
    that long must still re-join, or its sockets stay open but deaf. Here: expiry 2 s, refresh 1 s."""
    from channels.layers import channel_layers

    from django_oda_realtime import apublish, hub

    monkeypatch.setattr(hub, "GROUP_REFRESH_SECONDS", 1.0)
    settings.CHANNEL_LAYERS = {"default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [{"address": redis_url, "socket_timeout": 15}], "prefix": layer_prefix,
                   "group_expiry": 2, "channel_capacity": {"realtime-hub.*": 1000}},
    }}
    channel_layers.backends.clear()
    settings.REALTIME = {**settings.REALTIME, "IDLE_TIMEOUT": 60}
    user = await database_sync_to_async(make_user)()
    sock = await connect(token(user))
    await asyncio.sleep(4.5)  # nothing at all reaches this process meanwhile
    await apublish("test:late", {"ok": True}, [f"user:{user.pk}"])
    assert (await sock.receive_event("test:late", timeout=3))["data"] == {"ok": True}
