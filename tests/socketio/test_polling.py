"""``/socket.io/`` over HTTP long-polling, raw requests against daphne: connect, events, upgrade, refusals."""
import asyncio
import json

import aiohttp
from channels.db import database_sync_to_async
import pytest

from django_oda_realtime import apublish, publish
from tests.conftest import token_for
from tests.hardening.support import wait_for
from tests.socketio.conftest import ORIGIN, SERVER_REALTIME, parked
from tests.socketio.wire import SEP, Polling, RawSocket, parse_event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

VIEW = "inventory.view_inventorylevel"


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def viewer(make_user):
    return await database_sync_to_async(make_user)(perms=[VIEW])


async def connected(http, server, user, **kwargs) -> Polling:
    p = Polling(http, server.url, **kwargs)
    await p.handshake()
    got = await p.connect({"token": token_for(user)})
    assert got[0].startswith("40{"), got
    if len(got) == 1:
        got += await p.packets()
    name, (welcome, *_offset) = parse_event(got[1])  # the offset of connection state recovery last
    assert name == "connected" and welcome["data"]["userId"] == str(user.pk)
    return p


async def test_handshake_offers_the_websocket_upgrade(http, sio_server):
    p = Polling(http, sio_server.url)
    packet = await p.handshake()
    assert packet["upgrades"] == ["websocket"]
    assert (packet["pingInterval"], packet["pingTimeout"], packet["maxPayload"]) == (1000, 1000, SERVER_REALTIME["SOCKETIO_MAX_PAYLOAD"])


async def test_connect_subscribe_and_receive_over_polling(http, sio_server, viewer, sio_layer):
    p = await connected(http, sio_server, viewer)
    assert await p.post('421["subscribe:inventory",{"productIds":["9"]}]') == (200, "ok")
    assert await p.packets() == ['431[{"data":{"topic":"inventory","rooms":["inventory:product:9"],"refused":[]}}]']
    waiting = await parked(sio_server, p.packets())  # the GET is waiting on the server when the event comes
    event = await apublish("inventory:updated", {"available": 1}, ["inventory:product:9"])
    assert await waiting == ['42["inventory:updated",' + event.json + ",\"" + event.position + "\"]"]


async def test_packets_queued_between_polls_arrive_together(http, sio_server, viewer, sio_layer):
    p = await connected(http, sio_server, viewer)
    await p.post('421["subscribe:inventory"]')
    assert (await p.packets())[0].startswith("431[")
    sent = [await apublish("inventory:updated", {"n": n}, ["inventory:all"]) for n in range(3)]
    got = []
    async with asyncio.timeout(5):  # a poll returns what is queued: the three, in as few polls as they took to come
        while len(got) < len(sent):
            got += await p.packets()
    assert got == ['42["inventory:updated",' + e.json + ",\"" + e.position + "\"]" for e in sent]


async def test_upgrade_to_websocket_keeps_the_session(http, sio_server, viewer, sio_layer):
    p = await connected(http, sio_server, viewer)
    await p.post('421["subscribe:inventory"]')
    assert (await p.packets())[0].startswith("431[")
    waiting = await parked(sio_server, p.get())  # the GET waits before the upgrade starts
    ws = await RawSocket.open(sio_server.ws_url, sid=p.sid)
    await ws.send("2probe")
    assert await ws.recv() == "3probe"
    assert await waiting == (200, "6")  # the waiting GET ends with a noop
    await ws.send("5")
    async with asyncio.timeout(5):  # the upgrade is done once polling is refused for this session
        while (answer := await p.get())[0] != 400:
            pass
    assert json.loads(answer[1])["code"] == 3
    event = await apublish("inventory:updated", {"via": "ws"}, ["inventory:all"])
    assert await ws.recv() == '42["inventory:updated",' + event.json + ",\"" + event.position + "\"]"
    await ws.send('422["subscribe:notifications"]')
    assert (await ws.recv()).startswith('432[{"data":')
    await ws.close()


@pytest.mark.parametrize(
    "method, query, status, code",
    [
        ("GET", "transport=polling", 400, 5),
        ("GET", "EIO=3&transport=polling", 400, 5),
        ("GET", "EIO=4&transport=carrier-pigeon", 400, 0),
        ("GET", "EIO=4&transport=polling&sid=nope", 400, 1),
        ("POST", "EIO=4&transport=polling", 400, 2),
        ("PUT", "EIO=4&transport=polling", 400, 2),
        ("GET", "EIO=4&transport=websocket", 400, 3),
    ],
    ids=["no-eio", "eio-3", "unknown-transport", "unknown-sid", "post-handshake", "put-handshake", "websocket-over-http"],
)
async def test_bad_requests_get_400_with_the_engineio_error_code(http, sio_server, method, query, status, code):
    async with http.request(method, f"{sio_server.url}/socket.io/?{query}") as resp:
        assert resp.status == status
        assert (await resp.json())["code"] == code


async def test_malformed_payload_closes_the_session(http, sio_server):
    p = Polling(http, sio_server.url)
    await p.handshake()
    assert (await p.post("abc"))[0] == 400
    assert (await p.get())[0] == 400


async def test_two_waiting_gets_close_the_session(http, sio_server):
    p = Polling(http, sio_server.url)
    await p.handshake()
    # Whichever GET reaches the server second is refused, and the one waiting ends with the close packet.
    answers = await asyncio.gather(p.get(), p.get())
    assert sorted(status for status, _ in answers) == [200, 400] and (200, "1") in answers, answers
    assert (await p.get())[0] == 400


async def test_post_over_max_payload_is_413_and_closes(http, sio_server):
    p = Polling(http, sio_server.url)
    await p.handshake()
    status, _ = await p.post("4" + "x" * SERVER_REALTIME["SOCKETIO_MAX_PAYLOAD"])
    assert status == 413
    assert (await p.get())[0] == 400


async def test_no_pong_closes_the_session(http, sio_server):
    p = Polling(http, sio_server.url)
    await p.handshake()
    assert await p.get() == (200, "2")
    async with asyncio.timeout(5):  # pingTimeout 1 s without a pong: the next polls end with the session
        while (await p.get())[0] != 400:
            pass


async def test_a_client_that_stops_polling_is_closed_as_slow(http, sio_server, viewer, sio_layer):
    p = await connected(http, sio_server, viewer)
    await p.post('421["subscribe:inventory"]')
    assert (await p.packets())[0].startswith("431[")
    big = {"note": "x" * 10_000}
    for _ in range(10):  # ~100 KB queued for a client that does not poll: over the 64 KiB bound
        await database_sync_to_async(publish)("inventory:updated", big, ["inventory:all"])
    closed = "Engine.IO session closed (slow consumer"
    assert await wait_for(lambda: closed in sio_server.output()), f"no {closed!r} in the log: {sio_server.output()[-2000:]}"
    assert (await p.get())[0] == 400


async def test_cors_for_an_allowed_origin_and_403_for_others(http, sio_server):
    headers = {"Origin": ORIGIN}
    p = Polling(http, sio_server.url, headers=headers)
    await p.handshake()
    async with http.get(p.url(p.sid), headers=headers) as resp:
        assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert resp.headers["Access-Control-Allow-Credentials"] == "true"
    preflight = {**headers, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    async with http.options(p.url(p.sid), headers=preflight) as resp:
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Headers"] == "authorization"
        assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    async with http.get(Polling(http, sio_server.url).url(), headers={"Origin": "https://evil.example.com"}) as resp:
        assert resp.status == 403
        assert "Access-Control-Allow-Origin" not in resp.headers


async def test_token_in_the_query_string_never_reaches_the_log(http, sio_server, viewer):
    raw = token_for(viewer)
    p = Polling(http, sio_server.url, query=f"token={raw}")
    await p.handshake()
    got = await p.connect()  # no auth payload: the handshake's token is used
    assert got[0].startswith("40{")
    # the handshake's GET, the CONNECT's POST, the GET that brought its answer: all logged
    assert await wait_for(lambda: sio_server.output().count("GET /socket.io/") >= 2
                          and "POST /socket.io/" in sio_server.output()), sio_server.output()[-2000:]
    log = sio_server.output()
    assert raw not in log and "token=" not in log


async def test_client_close_ends_a_waiting_get_with_a_noop(http, sio_server):
    p = Polling(http, sio_server.url)
    await p.handshake()
    waiting = await parked(sio_server, p.get())  # the GET waits before the close comes
    assert await p.post("1") == (200, "ok")
    assert await waiting == (200, "6")
    assert (await p.get())[0] == 400


async def test_batched_post_packets(http, sio_server, viewer):
    p = await connected(http, sio_server, viewer)
    body = SEP.join(['421["subscribe:notifications"]', '422["subscribe:inventory"]', "3"])
    assert await p.post(body) == (200, "ok")  # answered once both commands were handled
    got = await p.packets()
    assert [g[:4] for g in got] == ["431[", "432["]
