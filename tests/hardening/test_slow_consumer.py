"""Slow consumers: daphne buffers outbound data without limit (docs/design.md#daphne-backpressure, django/daphne#170).

A hand-made WebSocket client with a tiny kernel receive buffer never reads, while
events of ~30 KB are published from this process through Redis. The server must close
it as a slow consumer (4008, ``slow_consumer`` in its log) once its backlog passes the
per-socket bound (``MAX_OUTBOUND_BACKLOG_BYTES``, 2 MiB), so no more than the bound plus
what the kernel buffers is ever published to it (``slow_consumer_budget``), and server
memory grows by little more than the bound — with and without a keep-alive frame from the
client every 0.5 s (a keep-alive defeats daphne's own ping timeout). A well-behaved client of
the same process keeps receiving, and paces the publishing: each batch is followed by a
marker to it, so the server has handled a batch before the next is sent.
"""
import threading
import time

from channels.db import database_sync_to_async
import pytest

from django_oda_realtime import apublish
from django_oda_realtime.conf import rt_settings
from tests.hardening.support import (
    PeakRss, client_frame, connected, flood_until_closed, peer_gone, raw_websocket, read_until, receive_event,
    slow_consumer_budget, wait_for,
)
from tests.servers import ServerProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.slow]

EVENT_BYTES = 30_000
BATCH = 10
# Measured (2 runs of each variant): closed after 5.1 MB published (budget 7.6 MB here), server RSS
# +2-4 MB. The bound is 2 MiB; the rest is the batch in flight and the allocator.
RSS_GROWTH_LIMIT_MB = 8


class KeepAlive(threading.Thread):
    """Sends a small frame every ``interval`` seconds on a socket it never reads."""

    def __init__(self, sock, interval: float = 2.0) -> None:
        super().__init__(daemon=True)
        self.sock, self.interval = sock, interval
        self.stop = threading.Event()
        self.sent = 0

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                self.sock.sendall(client_frame('{"event":"ping"}'))
                self.sent += 1
            except OSError:
                return


@pytest.mark.parametrize("keepalive", [False, True], ids=["silent", "keepalive"])
async def test_a_client_that_never_reads_is_closed_and_server_memory_stays_bounded(
    keepalive, redis_layer, redis_url, layer_prefix, make_user, token
):
    slow_user = await database_sync_to_async(make_user)()
    good_user = await database_sync_to_async(make_user)()
    room = f"user:{slow_user.pk}"
    budget = slow_consumer_budget(int(rt_settings.MAX_OUTBOUND_BACKLOG_BYTES), BATCH * EVENT_BYTES)
    with ServerProcess(redis_url=redis_url, layer_prefix=layer_prefix) as server:
        good = await connected(server, token(good_user))
        sock, rest = raw_websocket(server.port, f"/ws/?token={token(slow_user)}", rcvbuf=4096)
        # ``connected`` is sent once the user's room is joined; after it the client never reads.
        await read_until(sock, b'"event":"connected"', seen=rest)
        pinger = KeepAlive(sock, interval=0.5) if keepalive else None
        if pinger:
            pinger.start()

        async def caught_up(n):
            await apublish("test:mark", {"n": n}, [f"user:{good_user.pk}"])
            assert (await receive_event(good, "test:mark"))["data"] == {"n": n}

        peak = PeakRss(server.proc.pid)
        started = time.monotonic()
        try:
            closed_after = await flood_until_closed(
                room, lambda: "slow_consumer" in server.output(), caught_up, event_bytes=EVENT_BYTES, batch=BATCH,
                budget=budget, pause=0.2 if keepalive else 0.0)
            # The server closed the slow socket: its log says why, and the TCP connection ends.
            assert await wait_for(lambda: "slow_consumer (4008)" in server.output(), timeout=5), server.output()[-3000:]
            assert await wait_for(lambda: peer_gone(sock), timeout=8), "the slow socket was never disconnected"
            # Other clients of the process are unaffected.
            await apublish("test:after", {"ok": True}, [f"user:{good_user.pk}"])
            assert (await receive_event(good, "test:after"))["data"] == {"ok": True}
        finally:
            peak.stop.set()
            if pinger:
                pinger.stop.set()
            sock.close()
            await good.close()
        print(f"slow consumer ({'keep-alive' if keepalive else 'silent'}): closed after {closed_after / 1e6:.1f} MB "
              f"published (budget {budget / 1e6:.1f} MB) in {time.monotonic() - started:.1f}s; "
              f"server RSS {peak.baseline:.0f} MB -> peak {peak.peak:.0f} MB")
        assert closed_after < budget, f"{budget / 1e6:.1f} MB published and the client was never closed"
        assert peak.growth < RSS_GROWTH_LIMIT_MB, f"server RSS grew by {peak.growth:.1f} MB"
        if pinger:
            assert pinger.sent >= 1, "the keep-alive variant closed before any keep-alive was sent"
