"""Abuse limits through daphne: the rate limit, the per-user cap across processes, the message size.

Two daphne processes on one Redis with small limits (per-connection token bucket
of 5/s with a burst of 10, closed after 20 refused messages in a row; 2 sockets
per user across both processes, counted in Redis).
"""
import asyncio
import json

from channels.db import database_sync_to_async
import pytest

from tests.hardening.support import (
    command, connected, frames_until_close, hardened_server, rss_mb, wait_for, ws_connect,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

LIMITS = {"RATE_LIMIT_RATE": 5, "RATE_LIMIT_BURST": 10, "RATE_LIMIT_CLOSE_AFTER": 20, "MAX_CONNECTIONS_PER_USER": 2}
MAX_MESSAGE_BYTES = 64 * 1024  # django_oda_realtime.conf default


@pytest.fixture(scope="module")
def servers(module_prefix):
    a, b = hardened_server(module_prefix, **LIMITS), hardened_server(module_prefix, **LIMITS)
    with a, b:
        yield a, b


# -- rate limit -------------------------------------------------------------------------------------


async def test_a_flooding_client_gets_an_error_then_a_close_and_others_are_unaffected(servers, make_user, token):
    a, _ = servers
    flooder = await connected(a, token(await database_sync_to_async(make_user)()))
    calm = await connected(a, token(await database_sync_to_async(make_user)()))

    async def calm_pings():
        replies = []
        for n in range(10):
            replies.append(await command(calm, "ping", ack=n))
            await asyncio.sleep(0.25)
        return replies

    pinging = asyncio.ensure_future(calm_pings())
    for n in range(100):
        await flooder.send(json.dumps({"event": "ping", "ack": n}))
    frames, code = await frames_until_close(flooder)
    replies = await pinging

    pongs = [f for f in frames if f.get("event") == "pong"]
    errors = [f for f in frames if f.get("event") == "error"]
    assert code == 4029
    assert errors and errors[0]["code"] == "rate_limited", frames
    assert LIMITS["RATE_LIMIT_BURST"] <= len(pongs) < 20  # the burst, and what refilled meanwhile
    assert all(r.get("data") == {} for r in replies), "a calm client of the same process got every pong"


async def test_a_client_that_slows_down_after_a_burst_is_not_closed(servers, make_user, token):
    a, _ = servers
    ws = await connected(a, token(await database_sync_to_async(make_user)()))
    for n in range(15):  # 10 pass, 5 refused: one error event, no close
        await ws.send(json.dumps({"event": "ping", "ack": n}))
    await asyncio.sleep(1.0)
    assert (await command(ws, "ping", ack=99))["data"] == {}


# -- per-user connection cap, across processes --------------------------------------------------------


async def test_the_per_user_cap_counts_sockets_on_every_process(servers, make_user, token):
    a, b = servers
    raw = token(await database_sync_to_async(make_user)())
    first = await connected(a, raw)
    await connected(b, raw)
    for server in (a, b):
        frames, code = await frames_until_close(await ws_connect(server, raw))
        assert (frames[-1]["code"], code) == ("too_many_connections", 4028)

    await first.close()

    async def accepted_again():
        ws = await ws_connect(b, raw)
        frame = json.loads(await ws.recv())
        if frame["event"] == "connected":
            return ws
        await ws.close()
        return None

    replacement = None
    for _ in range(20):  # the slot is released when the server has seen the close
        replacement = await accepted_again()
        if replacement:
            break
        await asyncio.sleep(0.1)
    assert replacement is not None, "a slot freed on one process is usable on the other"
    assert "data" in await command(replacement, "ping")


# -- message size -------------------------------------------------------------------------------------


async def test_an_oversized_message_closes_that_socket_with_4009(servers, make_user, token):
    a, _ = servers
    raw = token(await database_sync_to_async(make_user)())
    ws = await connected(a, raw)
    other = await connected(a, raw)
    await ws.send(json.dumps({"event": "ping", "data": {"pad": "x" * MAX_MESSAGE_BYTES}}))
    frames, code = await frames_until_close(ws)
    assert (frames[-1]["code"], code) == ("message_too_big", 4009)
    assert "data" in await command(other, "ping")  # the user's other socket is unaffected
    # Just under the limit is fine (an unknown-command error, the socket stays).
    body = json.dumps({"event": "nope", "data": {"pad": "x" * (MAX_MESSAGE_BYTES - 100)}})
    assert len(body.encode()) <= MAX_MESSAGE_BYTES
    await other.send(body)
    assert json.loads(await other.recv())["code"] == "unknown_command"
    # Over daphne's own 1 MiB frame limit: dropped by daphne (no close frame), never delivered to us.
    await other.send("x" * (2 * 1024 * 1024))
    _, code = await frames_until_close(other)
    assert code in (1006, 1009)


@pytest.mark.slow
async def test_oversized_messages_do_not_grow_server_memory(servers, make_user, token):
    a, _ = servers
    raw = token(await database_sync_to_async(make_user)())
    big = json.dumps({"event": "ping", "data": {"pad": "y" * 900_000}})  # under daphne's 1 MiB, over ours

    async def one_round():
        sockets = [await connected(a, raw) for _ in range(2)]
        for ws in sockets:
            await ws.send(big)
        return [(await frames_until_close(ws))[1] for ws in sockets]

    for _ in range(5):  # warm up: allocator arenas, caches
        assert await one_round() == [4009, 4009]
    await asyncio.sleep(0.5)
    before = rss_mb(a.proc.pid)
    for _ in range(25):
        assert await one_round() == [4009, 4009]
    after = await wait_for(lambda: rss_mb(a.proc.pid) < before + 20, timeout=3) and rss_mb(a.proc.pid)
    print(f"server RSS {before:.0f} MB -> {rss_mb(a.proc.pid):.0f} MB after 50 messages of 900 KB")
    assert after, f"RSS grew from {before:.0f} MB to {rss_mb(a.proc.pid):.0f} MB"


# -- the same limits on /socket.io/ ------------------------------------------------------------------


async def sio_connected(server, raw_token):
    from tests.socketio.wire import RawSocket

    sock = await RawSocket.open(server.ws_url)
    assert (await sock.connect({"token": raw_token})).startswith("40{")
    await sock.event("connected")
    return sock


async def test_socketio_flooding_client_gets_rate_limited_then_closed(servers, make_user, token):
    a, _ = servers
    sock = await sio_connected(a, token(await database_sync_to_async(make_user)()))
    calm = await sio_connected(a, token(await database_sync_to_async(make_user)()))
    for n in range(100):
        await sock.send(f'42{n}["nope"]')
    frames = []
    code = None
    try:
        async with asyncio.timeout(5):
            while True:
                frames.append(await sock.recv())
    except Exception as e:  # websockets.ConnectionClosed
        code = e.rcvd.code if getattr(e, "rcvd", None) else None
    limited = [f for f in frames if isinstance(f, str) and "rate_limited" in f]
    assert limited, frames[:20]
    assert code == 4029
    await calm.send('42["nope"]')
    assert (await calm.event("error"))[0]["code"] == "unknown_command"


async def test_socketio_oversized_message_closes_with_4009(servers, make_user, token):
    a, _ = servers
    sock = await sio_connected(a, token(await database_sync_to_async(make_user)()))
    await sock.send('42["nope",' + json.dumps("x" * MAX_MESSAGE_BYTES) + "]")
    assert await sock.closed() == 4009
