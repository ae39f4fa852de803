"""Revocation without its message reaches Socket.IO sockets too (issue #11).

A real daphne with the Socket.IO test settings and a short ``REVOCATION_RECHECK_INTERVAL``; the
revocation is written to the database only (as when Redis was down at that moment, or a change
made with ``QuerySet.update``): the periodic re-check closes the socket with the usual codes,
and the server says so in Socket.IO's terms (an ``error`` event, DISCONNECT, close code).
"""
import uuid

from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.utils import timezone
import pytest
import websockets

from django_oda_realtime.models import TokenRevocation
from tests.conftest import token_for
from tests.socketio.conftest import socketio_server
from tests.socketio.wire import RawSocket, parse_event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


@pytest.fixture(scope="module")
def server(django_db_setup, module_redis_url):
    with socketio_server(module_redis_url, f"sio{uuid.uuid4().hex[:10]}",
                         realtime={"REVOCATION_RECHECK_INTERVAL": 1, "PING_INTERVAL": 25.0}) as s:
        yield s


@pytest.fixture(scope="module")
def module_redis_url():
    from django.conf import settings

    from tests.conftest import require_redis

    require_redis(settings.TEST_REDIS_URL)
    return settings.TEST_REDIS_URL


async def frames_until_close(s: RawSocket, timeout: float = 10.0) -> tuple[list[str], int]:
    frames = []
    try:
        while True:
            frames.append(await s.recv(timeout=timeout))
    except websockets.ConnectionClosed as e:
        return frames, e.rcvd.code


def revoke_without_message(user):
    TokenRevocation.objects.create(user=user, not_before=timezone.now())


def deactivate_without_signal(user):
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)


@pytest.mark.parametrize("change, expected", [
    (revoke_without_message, ("token_revoked", 4005)),
    (deactivate_without_signal, ("user_inactive", 4004)),
], ids=["revoked", "deactivated"])
async def test_a_socketio_socket_is_closed_by_the_periodic_recheck(change, expected, server, make_user):
    user = await database_sync_to_async(make_user)()
    s = await RawSocket.open(server.ws_url, "")
    try:
        assert (await s.connect({"token": token_for(user)})).startswith("40{")
        welcome, *_offset = await s.event("connected")  # the offset of connection state recovery last
        await database_sync_to_async(change)(user)
        frames, code = await frames_until_close(s)
        errors = [parse_event(f)[1][0]["code"] for f in frames if f.startswith("42[") and parse_event(f)[0] == "error"]
        assert (errors[-1:], code) == ([expected[0]], expected[1]), frames
        assert "41" in frames  # terminal: "io server disconnect", the client does not reconnect
    finally:
        await s.close()
