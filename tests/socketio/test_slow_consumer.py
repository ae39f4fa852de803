"""A Socket.IO WebSocket client that never reads is closed as a slow consumer (docs/design.md#daphne-backpressure: daphne has no
outbound backpressure), and a good client of the same process keeps receiving. (Polling: test_polling.py.)"""
import asyncio

from channels.db import database_sync_to_async
import pytest

from django_oda_realtime import apublish
from tests.conftest import token_for
from tests.hardening.support import client_frame, peer_gone, raw_websocket, wait_for
from tests.socketio.wire import RawSocket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

BLOB = "x" * 30_000


async def test_a_websocket_client_that_never_reads_is_closed_4008(sio_server, sio_layer, make_user):
    slow_user = await database_sync_to_async(make_user)()
    good_user = await database_sync_to_async(make_user)()
    good = await RawSocket.open(sio_server.ws_url)
    assert (await good.connect({"token": token_for(good_user)})).startswith("40{")
    sock, _ = raw_websocket(sio_server.port, f"/socket.io/?EIO=4&transport=websocket&token={token_for(slow_user)}",
                            rcvbuf=4096)
    try:
        sock.sendall(client_frame("40"))  # connect, then never read again
        assert await wait_for(lambda: f"user={slow_user.pk} protocol=socketio" in sio_server.output())
        published = 0
        while "slow consumer" not in sio_server.output() and published < 2000:  # 60 MB at most
            for _ in range(50):
                await apublish("test:bulk", {"blob": BLOB}, [f"user:{slow_user.pk}"])
                published += 1
            await asyncio.sleep(0.02)
        print(f"slow consumer closed after {published} events ({published * len(BLOB) / 1e6:.1f} MB)")
        assert "Engine.IO session closed (slow consumer, websocket)" in sio_server.output()
        assert published * len(BLOB) < 20e6, "closed only after 20 MB"
        assert await wait_for(lambda: peer_gone(sock), timeout=8)
        await apublish("test:after", {"ok": True}, [f"user:{good_user.pk}"])
        assert (await good.event("test:after"))[0]["data"] == {"ok": True}
    finally:
        sock.close()
        await good.close()
