"""``/socket.io/`` over WebSocket, raw frames against daphne: connect, auth refusals, acks, events, closes."""
from datetime import timedelta
import json

from channels.db import database_sync_to_async
import pytest
from rest_framework_simplejwt.tokens import AccessToken
import websockets

from django_oda_realtime import apublish
from django_oda_realtime.accounts.revocation import revoke_tokens
from tests.conftest import token_for
from tests.socketio.conftest import ORIGIN, SERVER_REALTIME
from tests.socketio.wire import RawSocket, parse_event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

VIEW = "inventory.view_inventorylevel"


@pytest.fixture
async def viewer(make_user):
    return await database_sync_to_async(make_user)(perms=[VIEW])


@pytest.fixture
async def sock(sio_server):
    sockets = []

    async def open_socket(query: str = "", **kwargs) -> RawSocket:
        s = await RawSocket.open(sio_server.ws_url, query, **kwargs)
        sockets.append(s)
        return s

    yield open_socket
    for s in sockets:
        await s.close()


async def connected(sock, user) -> tuple[RawSocket, str, dict]:
    """A socket connected to ``/`` with the token in the CONNECT auth payload: (socket, sid, connected event)."""
    s = await sock()
    answer = await s.connect({"token": token_for(user)})
    assert answer.startswith("40{"), answer
    sid = json.loads(answer[2:])["sid"]
    welcome, *_offset = await s.event("connected")  # the offset of connection state recovery last
    return s, sid, welcome


async def test_open_packet_advertises_the_settings(sock):
    s = await sock()
    assert s.open_packet["upgrades"] == []
    assert (s.open_packet["pingInterval"], s.open_packet["pingTimeout"]) == (1000, 1000)
    assert s.open_packet["maxPayload"] == SERVER_REALTIME["SOCKETIO_MAX_PAYLOAD"]


async def test_connect_with_the_auth_payload_then_the_connected_event(sock, viewer, sio_server):
    s, sid, welcome = await connected(sock, viewer)
    log = sio_server.output()
    assert token_for(viewer).split(".")[2] not in log and '"token"' not in log  # CONNECT packets are never logged
    assert welcome["event"] == welcome["type"] == "connected"
    assert set(welcome) == {"event", "type", "data", "id", "timestamp"}
    assert welcome["data"]["userId"] == str(viewer.pk)
    assert welcome["data"]["connectionId"] == sid
    assert welcome["data"]["rooms"] == [f"user:{viewer.pk}"]
    assert welcome["data"]["permissions"] == [VIEW]


@pytest.mark.parametrize("via", ["header", "query"])
async def test_token_from_the_handshake_request(sock, viewer, via):
    raw = token_for(viewer)
    if via == "header":
        s = await sock(headers={"Authorization": f"Bearer {raw}"})
    else:
        s = await sock(f"token={raw}")
    answer = await s.connect()  # no auth payload
    assert answer.startswith("40{")
    welcome, *_offset = await s.event("connected")  # the offset of connection state recovery last
    assert welcome["data"]["userId"] == str(viewer.pk)


def expired_token(user) -> str:
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=-timedelta(seconds=5))
    return str(token)


@pytest.mark.parametrize("case", ["token_missing", "token_invalid", "token_expired", "user_inactive", "refresh_token"])
async def test_refusal_says_why_and_a_retry_on_the_same_connection_works(sock, make_user, case):
    from rest_framework_simplejwt.tokens import RefreshToken

    user = await database_sync_to_async(make_user)(perms=[VIEW], is_active=case != "user_inactive")
    auth = {
        "token_missing": None,
        "token_invalid": {"token": "not-a-jwt"},
        "token_expired": {"token": expired_token(user)},
        "user_inactive": {"token": token_for(user)},
        "refresh_token": {"token": await database_sync_to_async(lambda: str(RefreshToken.for_user(user)))()},
    }[case]
    s = await sock()
    answer = await s.connect(auth)
    assert answer.startswith("44{"), answer
    refusal = json.loads(answer[2:])
    code = "token_invalid" if case == "refresh_token" else case
    assert refusal["message"] == code  # the client's connect_error err.message
    assert refusal["data"]["code"] == code and refusal["data"]["message"]
    if case != "user_inactive":
        good = await database_sync_to_async(make_user)(perms=[VIEW])
        answer = await s.connect({"token": token_for(good)})
        assert answer.startswith("40{"), answer


async def test_another_namespace_is_refused(sock, viewer):
    s = await sock()
    assert await s.connect({"token": token_for(viewer)}, namespace="/admin") == '44/admin,{"message":"Invalid namespace"}'


async def test_subscribe_with_ack_then_the_published_event_frame(sock, viewer, sio_layer):
    s, _, _ = await connected(sock, viewer)
    await s.send('421["subscribe:inventory",{"locationIds":["7"]}]')
    assert await s.recv() == '431[{"data":{"topic":"inventory","rooms":["inventory:location:7"],"refused":[]}}]'
    event = await apublish("inventory:updated", {"available": 3}, ["inventory:location:7"])
    # The event's position in the history is its last argument (the client's recovery offset).
    assert await s.recv() == '42["inventory:updated",' + event.json + ',"' + event.position + '"]'


async def test_subscribe_without_ack_answers_with_the_subscribed_event(sock, viewer):
    s, _, _ = await connected(sock, viewer)
    await s.send('42["subscribe:inventory"]')
    (payload,) = await s.event("subscribed")
    assert payload["data"]["rooms"] == ["inventory:all"]


async def test_failed_command_without_ack_is_its_error_event(sock, viewer):
    s, _, _ = await connected(sock, viewer)
    await s.send('42["inventory:update",{"inventoryItemId":"item-123","quantity":100,"reason":"Stock adjustment"}]')
    (payload,) = await s.event("inventory:updateError")
    assert payload["code"] == "permission_denied"  # the viewer may not change stock
    assert payload["error"] and payload["data"]["request"]["inventoryItemId"] == "item-123"


async def test_failed_command_with_ack_gets_the_error_in_the_ack(sock, viewer):
    s, _, _ = await connected(sock, viewer)
    await s.send('425["subscribe:inventory",{"locationIds":"nope"}]')
    name_args = json.loads((await s.recv())[3:])
    assert name_args[0]["error"]["code"] == "validation_error"
    await s.send('426["inventory:teleport",{}]')
    assert json.loads((await s.recv())[3:]) == [{"error": {"code": "unknown_command", "message": "Unknown command: inventory:teleport"}}]


async def test_binary_arguments_are_refused_and_the_socket_stays(sock, viewer):
    s, _, _ = await connected(sock, viewer)
    await s.send('451-7["subscribe:inventory",{"_placeholder":true,"num":0}]')
    await s.send(b"\x01\x02")
    assert json.loads((await s.recv())[3:])[0]["error"]["code"] == "binary_not_supported"
    await s.send('428["subscribe:notifications"]')
    assert (await s.recv()).startswith('438[{"data":')


@pytest.mark.parametrize("frame", ["42{}", '42abc["subscribe:inventory"]', "4abc", "47", "40/x", "xyz"],
                         ids=["event-not-array", "bad-ack-id", "unknown-type", "type-7", "second-connect", "engine-garbage"])
async def test_malformed_packets_close_the_connection(sock, viewer, frame):
    s, _, _ = await connected(sock, viewer)
    if frame == "40/x":
        frame = "40"  # "/" is already connected: an invalid state
    await s.send(frame)
    assert await s.closed() == 4010


async def test_protocol_error_tells_the_client_not_to_reconnect(sock, viewer):
    s, _, _ = await connected(sock, viewer)
    await s.send("42{}")
    name, args = parse_event(await s.recv())
    assert (name, args[0]["code"]) == ("error", "invalid_packet")
    assert await s.recv() == "41"  # DISCONNECT: "io server disconnect", no automatic reconnection
    assert await s.closed() == 4010


async def test_a_frame_over_max_payload_closes_4009(sock, viewer):
    s, _, _ = await connected(sock, viewer)
    await s.send('42["subscribe:inventory",{"x":"' + "a" * SERVER_REALTIME["SOCKETIO_MAX_PAYLOAD"] + '"}]')
    assert await s.closed() == 4009


async def test_no_pong_closes_4013_after_interval_plus_timeout(sock, viewer):
    s = await sock(answer_pings=False)
    assert (await s.connect({"token": token_for(viewer)})).startswith("40{")
    await s.event("connected")
    assert await s.ws.recv() == "2"
    assert await s.closed(timeout=3) == 4013


async def test_no_namespace_connected_in_time_closes(sock):
    s = await sock()
    assert await s.closed(timeout=4) == 4010


async def test_token_revocation_disconnects_without_reconnection(sock, viewer, sio_layer):
    s, _, _ = await connected(sock, viewer)
    await database_sync_to_async(revoke_tokens)(viewer)
    name, args = parse_event(await s.recv())
    assert (name, args[0]["code"]) == ("error", "token_revoked")
    assert await s.recv() == "41"
    assert await s.closed() == 4005


async def test_forbidden_origin_is_refused_at_the_handshake(sock, sio_server):
    with pytest.raises(websockets.InvalidStatus) as info:
        await sock(headers={"Origin": "https://evil.example.com"})
    assert info.value.response.status_code == 403
    ok = await sock(headers={"Origin": ORIGIN})
    assert ok.open_packet["sid"]


async def test_client_close_packet_ends_the_session(sock, viewer):
    s, _, _ = await connected(sock, viewer)
    await s.send("1")
    assert await s.closed() == 1000


# -- the hardening core, through Socket.IO ---------------------------------------------------------


async def test_token_expiry_warns_then_closes_retryable_without_disconnect_packet(sock, viewer):
    token = AccessToken.for_user(viewer)
    token.set_exp(lifetime=timedelta(seconds=2))
    s = await sock()
    assert (await s.connect({"token": str(token)})).startswith("40{")
    frames = []
    code = None
    try:
        while True:
            frames.append(await s.recv(timeout=5))
    except websockets.ConnectionClosed as e:
        code = e.rcvd.code
    names = [parse_event(f)[0] for f in frames if f.startswith("42[")]
    assert names == ["connected", "auth:expiring", "error"], frames
    assert "41" not in frames  # retryable: the client reconnects (with a fresh token from its auth callback)
    assert code == 4003


async def test_in_band_token_refresh(sock, viewer):
    s, _, _ = await connected(sock, viewer)
    await s.send('423["auth:refresh",' + json.dumps({"token": token_for(viewer)}) + "]")
    reply = json.loads((await s.recv())[3:])[0]
    assert reply["data"]["expiresAt"] > 0


async def test_a_flood_of_commands_is_rate_limited_with_ack_errors(sock, viewer):
    s, _, _ = await connected(sock, viewer)
    for ack in range(1, 61):
        await s.send(f'42{ack}["subscribe:notifications"]')
    codes = []
    while len(codes) < 60:
        frame = await s.recv()
        if frame.startswith("43"):
            body = json.loads(frame[frame.index("["):])[0]
            codes.append(body["error"]["code"] if "error" in body else "ok")
    # The burst is 40 messages, the CONNECT (and any pong) being counted too.
    assert codes.count("ok") >= 38 and codes.count("rate_limited") >= 1, codes


async def test_past_the_per_user_cap_connect_error_too_many_connections(sock, viewer):
    for _ in range(SERVER_REALTIME["MAX_CONNECTIONS_PER_USER"]):
        await connected(sock, viewer)
    s = await sock()
    await s.send("40" + json.dumps({"token": token_for(viewer)}))
    frames = []
    try:
        while True:
            frames.append(await s.recv())
    except websockets.ConnectionClosed as e:
        code = e.rcvd.code
    refusals = [json.loads(f[2:]) for f in frames if f.startswith("44")]
    assert refusals == [{"message": "too_many_connections", "data": {"code": "too_many_connections"}}], frames
    assert code == 4028


async def test_repeated_refused_connects_close_the_connection(sock):
    s = await sock()
    for _ in range(5):
        assert json.loads((await s.connect({"token": "bad"}))[2:])["message"] == "token_invalid"
    assert await s.closed() == 4029
