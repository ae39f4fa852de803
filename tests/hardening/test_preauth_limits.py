"""Bounded anonymous and pre-auth work on ``/socket.io/`` (issue #11), against ``manage.py serve``.

Sessions with no namespace connected are capped per client address (429) and per process
(503), the address behind a trusted proxy being the one it forwards; CONNECT, DISCONNECT and
Engine.IO pings/pongs count against the connection's rate limit; ping payloads are small.
"""
import asyncio
import json

import aiohttp
from channels.db import database_sync_to_async
from django.conf import settings as django_settings
import pytest
import websockets

from tests.conftest import token_for
from tests.socketio.conftest import socketio_server
from tests.socketio.wire import Polling, RawSocket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

PER_ADDRESS = 5
TOTAL = 8
CONNECT_TIMEOUT = 2.0


@pytest.fixture(scope="module")
def server(module_prefix):
    s = socketio_server(django_settings.TEST_REDIS_URL, module_prefix, realtime={
        "SOCKETIO_MAX_PENDING_PER_ADDRESS": PER_ADDRESS,
        "SOCKETIO_MAX_PENDING": TOTAL,
        "SOCKETIO_CONNECT_TIMEOUT": CONNECT_TIMEOUT,
        "TRUSTED_PROXIES": ["127.0.0.1"],  # the test client is the proxy: X-Forwarded-For names the client
        "PING_INTERVAL": 5.0,
        "PING_TIMEOUT": 5.0,
        # A slow refill, so that a flood outruns it even on a loaded machine, where a CONNECT (a token
        # check and a Redis round trip) may take longer than 1/20 s: the burst (40) stays the default.
        "RATE_LIMIT_RATE": 1.0,
    })
    s.start()
    yield s
    s.stop()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def handshake(http, server, address: str) -> tuple[int, str]:
    url = f"{server.url}/socket.io/?EIO=4&transport=polling"
    async with http.get(url, headers={"X-Forwarded-For": address}) as resp:
        return resp.status, await resp.text()


async def until_handshake_works(http, server, address: str, timeout: float) -> str:
    """Retry a handshake (as clients do, with a delay) until it is accepted; its body."""
    async with asyncio.timeout(timeout):
        while True:
            status, body = await handshake(http, server, address)
            if status == 200:
                return body
            await asyncio.sleep(0.2)


async def close_polling(http, server, body: str, address: str) -> None:
    sid = json.loads(body[1:])["sid"]
    url = f"{server.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
    async with http.post(url, data="1", headers={"X-Forwarded-For": address}) as resp:
        assert resp.status == 200


async def test_anonymous_handshakes_from_one_address_hit_the_cap_others_still_connect(http, server, make_user):
    # A loop of anonymous polling handshakes, as a flood would send: only PER_ADDRESS stay.
    results = [await handshake(http, server, "203.0.113.7") for _ in range(PER_ADDRESS + 20)]
    statuses = [status for status, _ in results]
    assert statuses[:PER_ADDRESS] == [200] * PER_ADDRESS
    assert set(statuses[PER_ADDRESS:]) == {429}, statuses
    assert json.loads(results[-1][1]) == {"code": 6, "message": "Too many pending sessions from this address"}

    # Another client (another forwarded address) still connects...
    status, other = await handshake(http, server, "198.51.100.2")
    assert status == 200
    # ...until the process's total of pending sessions is reached: 503 for everyone.
    for n in range(TOTAL - PER_ADDRESS - 1):
        assert (await handshake(http, server, f"198.51.100.{10 + n}"))[0] == 200
    status, body = await handshake(http, server, "192.0.2.1")
    assert status == 503 and json.loads(body)["code"] == 7

    # A pending session that connects its namespace frees its place.
    viewer = await database_sync_to_async(make_user)()
    p = Polling(http, server.url, headers={"X-Forwarded-For": "198.51.100.2"})
    p.sid = json.loads(other[1:])["sid"]
    got = await p.connect({"token": token_for(viewer)})
    assert got[0].startswith("40{"), got
    assert (await handshake(http, server, "192.0.2.1"))[0] == 200

    # A session closed by its client frees its place at once, and the rest once the connect
    # timeout has closed them: the flooding address connects again.
    body = await until_handshake_works(http, server, "203.0.113.7", timeout=CONNECT_TIMEOUT * 3)
    await close_polling(http, server, body, "203.0.113.7")
    assert (await handshake(http, server, "203.0.113.7"))[0] == 200


async def test_a_websocket_handshake_over_the_cap_is_refused(server):
    address = "203.0.113.99"
    sockets = [await RawSocket.open(server.ws_url, headers={"X-Forwarded-For": address}) for _ in range(PER_ADDRESS)]
    try:
        with pytest.raises(websockets.InvalidStatus):
            await RawSocket.open(server.ws_url, headers={"X-Forwarded-For": address})
        await sockets[0].close()
        await asyncio.sleep(0.3)
        extra = await RawSocket.open(server.ws_url, headers={"X-Forwarded-For": address})
        await extra.close()
    finally:
        for s in sockets:
            await s.close()


async def test_a_connect_disconnect_flood_is_rate_limited_then_closed(server, make_user):
    user = await database_sync_to_async(make_user)()
    s = await RawSocket.open(server.ws_url, headers={"X-Forwarded-For": "203.0.113.50"})
    auth = {"token": token_for(user)}
    accepted, refused, code = 0, [], None
    try:
        for _ in range(300):  # each CONNECT a token check and a Redis round trip, were it not limited
            answer = await s.connect(auth)
            if answer.startswith("40"):
                accepted += 1
                await s.event("connected")
                await s.send("41")
            else:
                refused.append(json.loads(answer[2:])["message"])
    except websockets.ConnectionClosed as e:
        code = e.rcvd.code if e.rcvd is not None else 1006
    finally:
        await s.close()
    assert code == 4029  # rate limited: closed
    assert "rate_limited" in refused
    assert accepted <= 30, accepted  # about half the burst (RATE_LIMIT_BURST 40, two messages a pair), not 300


async def test_a_pong_flood_is_rate_limited_then_closed(server):
    s = await RawSocket.open(server.ws_url, headers={"X-Forwarded-For": "203.0.113.51"})
    try:
        for _ in range(500):
            await s.send("3")
        assert await s.closed(timeout=10) == 4029
    finally:
        await s.close()


@pytest.mark.parametrize("frame", ["2" + "x" * 1000, "3" + "x" * 1000], ids=["ping", "pong"])
async def test_a_big_ping_or_pong_payload_closes_the_session(server, frame, make_user):
    user = await database_sync_to_async(make_user)()
    s = await RawSocket.open(server.ws_url, headers={"X-Forwarded-For": "203.0.113.52"})
    try:
        assert (await s.connect({"token": token_for(user)})).startswith("40{")  # no connect timeout to close it
        await s.send(frame)
        assert await s.closed(timeout=5) == 4010
    finally:
        await s.close()


async def test_on_uvicorn_a_websocket_handshake_over_the_cap_gets_429(module_prefix):
    from tests.servers import UvicornProcess

    sio = socketio_server(django_settings.TEST_REDIS_URL, module_prefix + "u", realtime={
        "SOCKETIO_MAX_PENDING_PER_ADDRESS": 2, "TRUSTED_PROXIES": ["127.0.0.1"], "SOCKETIO_CONNECT_TIMEOUT": 10.0})
    with UvicornProcess(redis_url=sio.redis_url, layer_prefix=sio.layer_prefix, env=sio.extra_env) as server:
        headers = {"X-Forwarded-For": "203.0.113.77"}
        sockets = [await RawSocket.open(server.ws_url, headers=headers) for _ in range(2)]
        try:
            with pytest.raises(websockets.InvalidStatus) as refused:
                await RawSocket.open(server.ws_url, headers=headers)
            response = refused.value.response
            assert response.status_code == 429
            assert json.loads(response.body) == {"code": 6, "message": "Too many pending sessions from this address"}
        finally:
            for s in sockets:
                await s.close()
