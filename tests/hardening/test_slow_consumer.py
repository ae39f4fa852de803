"""Slow consumers: daphne buffers outbound data without limit (docs/design.md#daphne-backpressure, django/daphne#170).

A hand-made WebSocket client with a tiny kernel receive buffer never reads, while
events of ~30 KB are published fast from this process through Redis. The server
must close it as a slow consumer (4008, ``slow_consumer`` in its log) and its
memory must stay bounded — with and without a keep-alive frame from the client
every 2 s (a keep-alive defeats daphne's own ping timeout). A well-behaved
client of the same process keeps receiving.
"""
import asyncio
import threading
import time

from channels.db import database_sync_to_async
import pytest

from django_oda_realtime import apublish
from tests.hardening.support import (
    client_frame, connected, peer_gone, raw_websocket, receive_event, rss_mb, wait_for,
)
from tests.servers import ServerProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.slow]

EVENT_BYTES = 30_000
MAX_PUBLISHED_MB = 150  # what an unbounded buffer would hold if the client were never closed
RSS_GROWTH_LIMIT_MB = 100


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


class PeakRss(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak = pid, rss_mb(pid)
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.05):
            try:
                self.peak = max(self.peak, rss_mb(self.pid))
            except (OSError, RuntimeError):
                return


@pytest.mark.parametrize("keepalive", [False, True], ids=["silent", "keepalive"])
async def test_a_client_that_never_reads_is_closed_and_server_memory_stays_bounded(
    keepalive, redis_layer, redis_url, layer_prefix, make_user, token
):
    slow_user = await database_sync_to_async(make_user)()
    good_user = await database_sync_to_async(make_user)()
    room = f"user:{slow_user.pk}"
    blob = "x" * EVENT_BYTES
    with ServerProcess(redis_url=redis_url, layer_prefix=layer_prefix) as server:
        good = await connected(server, token(good_user))
        sock, _ = raw_websocket(server.port, f"/ws/?token={token(slow_user)}", rcvbuf=4096)
        await wait_for(lambda: "Connected" in server.output() and f"user={slow_user.pk}" in server.output())
        await asyncio.sleep(0.2)  # the user's room is joined before ``connected`` is sent
        pinger = KeepAlive(sock) if keepalive else None
        if pinger:
            pinger.start()
        baseline = rss_mb(server.proc.pid)
        peak = PeakRss(server.proc.pid)
        peak.start()
        published = 0
        started = time.monotonic()
        try:
            while published * EVENT_BYTES < MAX_PUBLISHED_MB * 1e6:
                for _ in range(50):
                    await apublish("test:bulk", {"n": published, "blob": blob}, [room])
                    published += 1
                if "slow_consumer" in server.output():
                    break
                # Let the server keep up so its inbound queue is not what we measure; with the
                # keep-alive variant, give the client time to send a few frames meanwhile.
                await asyncio.sleep(0.05 if not keepalive else 0.2)
            closed_after_mb = published * EVENT_BYTES / 1e6
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
        growth = peak.peak - baseline
        print(f"slow consumer ({'keep-alive' if keepalive else 'silent'}): closed after {closed_after_mb:.1f} MB "
              f"published in {time.monotonic() - started:.1f}s; server RSS {baseline:.0f} MB -> peak {peak.peak:.0f} MB")
        assert closed_after_mb < MAX_PUBLISHED_MB, "published the whole budget and the client was never closed"
        assert growth < RSS_GROWTH_LIMIT_MB, f"server RSS grew by {growth:.0f} MB"
        if pinger:
            assert pinger.sent >= 1 or closed_after_mb < 20
