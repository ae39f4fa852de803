"""A Socket.IO WebSocket client that never reads is closed as a slow consumer (docs/design.md#daphne-backpressure: daphne has no
outbound backpressure), and a good client of the same process keeps receiving. (Polling: test_polling.py.)

The test server's bound is ``MAX_OUTBOUND_BACKLOG_BYTES`` = 64 KiB (``SERVER_REALTIME``): no more than the
bound plus what the kernel buffers may be published to the client before it is closed
(``slow_consumer_budget``), and server memory grows by little more than that.
"""
import time

from channels.db import database_sync_to_async
import pytest

from django_oda_realtime import apublish
from tests.conftest import token_for
from tests.hardening.support import (
    PeakRss, client_frame, flood_until_closed, peer_gone, raw_websocket, slow_consumer_budget, wait_for,
)
from tests.socketio.conftest import SERVER_REALTIME
from tests.socketio.wire import RawSocket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

EVENT_BYTES = 30_000
BATCH = 10
# Measured (2 runs): closed after 3.0 MB published (the kernel's buffers and the 64 KiB bound), server
# RSS +0-1 MB.
RSS_GROWTH_LIMIT_MB = 4


async def test_a_websocket_client_that_never_reads_is_closed_4008(sio_server, sio_layer, make_user):
    slow_user = await database_sync_to_async(make_user)()
    good_user = await database_sync_to_async(make_user)()
    good = await RawSocket.open(sio_server.ws_url)
    assert (await good.connect({"token": token_for(good_user)})).startswith("40{")
    sock, _ = raw_websocket(sio_server.port, f"/socket.io/?EIO=4&transport=websocket&token={token_for(slow_user)}",
                            rcvbuf=4096)
    budget = slow_consumer_budget(SERVER_REALTIME["MAX_OUTBOUND_BACKLOG_BYTES"], BATCH * EVENT_BYTES)

    async def caught_up(n):
        await apublish("test:mark", {"n": n}, [f"user:{good_user.pk}"])
        assert (await good.event("test:mark"))[0]["data"] == {"n": n}

    closed = "Engine.IO session closed (slow consumer, websocket)"
    try:
        sock.sendall(client_frame("40"))  # connect, then never read again
        assert await wait_for(lambda: f"user={slow_user.pk} protocol=socketio" in sio_server.output())
        peak = PeakRss(sio_server.proc.pid)
        started = time.monotonic()
        try:
            closed_after = await flood_until_closed(
                f"user:{slow_user.pk}", lambda: closed in sio_server.output(), caught_up, event_bytes=EVENT_BYTES,
                batch=BATCH, budget=budget)
        finally:
            peak.stop.set()
        print(f"slow consumer closed after {closed_after / 1e6:.1f} MB published (budget {budget / 1e6:.1f} MB) in "
              f"{time.monotonic() - started:.1f}s; server RSS {peak.baseline:.0f} MB -> peak {peak.peak:.0f} MB")
        assert closed in sio_server.output(), f"{budget / 1e6:.1f} MB published and the client was never closed"
        assert peak.growth < RSS_GROWTH_LIMIT_MB, f"server RSS grew by {peak.growth:.1f} MB"
        assert await wait_for(lambda: peer_gone(sock), timeout=8)
        await apublish("test:after", {"ok": True}, [f"user:{good_user.pk}"])
        assert (await good.event("test:after"))[0]["data"] == {"ok": True}
    finally:
        sock.close()
        await good.close()
