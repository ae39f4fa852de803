"""Every Socket.IO CONNECT is an authentication (issue #11), against ``manage.py serve``.

A namespace DISCONNECT (``41``) keeps the Engine.IO session; a later CONNECT (``40``) on it,
with no token in its packet, must check the handshake's token again, now: a user who logged
out, was deactivated or whose token expired in between is refused with the reason, and can
neither subscribe nor change stock. A session left with no namespace is closed after the
connect timeout, counted again from each DISCONNECT.
"""
from datetime import timedelta
import json
import time

from channels.db import database_sync_to_async
from django.conf import settings as django_settings
import pytest
from rest_framework_simplejwt.tokens import AccessToken

from django_oda_realtime.accounts.revocation import revoke_tokens
from tests.conftest import token_for
from tests.domain import make_level
from tests.socketio.conftest import socketio_server
from tests.socketio.wire import RawSocket
from tests.socketio_client.node import NodeClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

PERMS = ["inventory.view_inventorylevel", "inventory.change_inventorylevel"]
CONNECT_TIMEOUT = 3.0  # the server's SOCKETIO_CONNECT_TIMEOUT: longer than a 2 s token takes to expire


@pytest.fixture(scope="module")
def server(module_prefix):
    s = socketio_server(django_settings.TEST_REDIS_URL, module_prefix, realtime={"SOCKETIO_CONNECT_TIMEOUT": CONNECT_TIMEOUT})
    s.start()
    yield s
    s.stop()


@pytest.fixture
async def stocker(make_user):
    return await database_sync_to_async(make_user)(perms=PERMS)


@pytest.fixture
async def level():
    return await database_sync_to_async(make_level)(available=10)


def logout(user):
    revoke_tokens(user)


def deactivate(user):
    user.is_active = False
    user.save()


async def available(level) -> int:
    def read():
        level.refresh_from_db()
        return level.available

    return await database_sync_to_async(read)()


async def connect_then_disconnect(server, raw: str) -> RawSocket:
    """A WebSocket session with the token in the handshake's query string, ``/`` connected then left."""
    s = await RawSocket.open(server.ws_url, f"token={raw}")
    answer = await s.connect()  # no token in the packet: the handshake's
    assert answer.startswith("40{"), answer
    await s.event("connected")
    await s.send("41")
    return s


async def idle(s: RawSocket, seconds: float) -> None:
    """Wait, answering the server's pings meanwhile (RawSocket.recv does)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            await s.recv(timeout=left)
        except TimeoutError:
            return


def refusal(answer: str) -> str:
    assert answer.startswith("44{"), answer
    return json.loads(answer[2:])["message"]


@pytest.mark.parametrize("change, reason", [(logout, "token_revoked"), (deactivate, "user_inactive")],
                         ids=["logout", "deactivated"])
async def test_a_connect_after_a_namespace_disconnect_checks_the_handshake_token_again(
        server, module_layer, stocker, level, change, reason):
    s = await connect_then_disconnect(server, token_for(stocker))
    try:
        await database_sync_to_async(change)(stocker)
        assert refusal(await s.connect()) == reason
        # Not connected: a command is a protocol error that closes the session, and changes nothing.
        await s.send('42["inventory:update",' + json.dumps({
            "inventoryItemId": level.item_id, "locationId": level.location_id, "quantity": 1, "reason": "x"}) + "]")
        await s.closed()
        assert await available(level) == 10
    finally:
        await s.close()


async def test_a_connect_after_the_token_expired_is_refused(server, stocker, level):
    token = AccessToken.for_user(stocker)
    token.set_exp(lifetime=timedelta(seconds=2))
    s = await connect_then_disconnect(server, str(token))
    try:
        await idle(s, max(0.0, token["exp"] - time.time()) + 0.1)
        # The DISCONNECT re-armed the connect timeout: CONNECT again within it, to keep the session.
        assert refusal(await s.connect()) == "token_expired"
        await s.send('42["subscribe:inventory",{"locationIds":["%s"]}]' % level.location_id)
        await s.closed()
    finally:
        await s.close()


async def test_a_connect_with_a_fresh_token_in_the_packet_after_a_disconnect_works(server, stocker, level):
    s = await connect_then_disconnect(server, token_for(stocker))
    try:
        answer = await s.connect({"token": token_for(stocker)})
        assert answer.startswith("40{"), answer
        await s.event("connected")
        await s.send('421["inventory:update",' + json.dumps({
            "inventoryItemId": level.item_id, "locationId": level.location_id, "quantity": 4, "reason": "x"}) + "]")
        frame = await s.recv()
        while not frame.startswith("431"):
            frame = await s.recv()
        assert json.loads(frame[3:])[0]["data"]["available"] == 4
    finally:
        await s.close()


async def test_a_session_parked_after_a_disconnect_is_closed_after_the_connect_timeout(server, stocker):
    s = await RawSocket.open(server.ws_url)
    try:
        await idle(s, CONNECT_TIMEOUT * 0.7)
        assert (await s.connect({"token": token_for(stocker)})).startswith("40{")
        await idle(s, CONNECT_TIMEOUT * 0.7)  # past the first deadline: connected, so it stays
        await s.send("41")
        # Parked with no namespace: closed once the timeout has passed again, counted from the DISCONNECT.
        assert await s.closed(timeout=CONNECT_TIMEOUT * 3) == 4010  # connect_timeout
    finally:
        await s.close()


@pytest.mark.parametrize("transport, how, change, reason", [
    ("polling", {"query": "token"}, logout, "token_revoked"),
    ("websocket", {"extraHeaders": "Authorization"}, logout, "token_revoked"),
    ("websocket", {"extraHeaders": "Authorization"}, deactivate, "user_inactive"),
], ids=["polling-query-logout", "websocket-header-logout", "websocket-header-deactivated"])
async def test_socketio_client_reconnecting_on_the_same_session_after_logout_or_deactivation_is_refused(
        server, module_layer, stocker, transport, how, change, reason):
    raw = token_for(stocker)
    options = {"transports": [transport], "reconnection": False}
    if "query" in how:
        options["query"] = {"token": raw}
    else:
        options["extraHeaders"] = {"Authorization": f"Bearer {raw}"}
    client = await NodeClient(server.url, options, keeper=True).start()
    try:
        first = await client.next("connect")
        await client.next("event", "connected")
        await client.send({"do": "disconnect"})
        left = await client.next("disconnected")
        assert left["engine"] == "open" and left["engineId"] == first["engineId"]  # the same Engine.IO session

        await database_sync_to_async(change)(stocker)
        await client.send({"do": "connect", "auth": {}})  # no token in the CONNECT: the handshake's is checked
        error = await client.next("connect_error")
        assert error["message"] == reason and error["data"]["code"] == reason
        assert not [m for m in client.seen if m["type"] == "connect" and m is not first]
    finally:
        await client.close()
