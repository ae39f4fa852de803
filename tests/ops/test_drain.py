"""Graceful drain (issue #17): SIGTERM closes every socket with a retryable close, spread over
``DRAIN_SECONDS``, readiness fails at once, and real clients reconnect to another process."""
import asyncio
import signal
import time
import urllib.error
import urllib.request
import uuid

from channels.db import database_sync_to_async
import pytest
import websockets

from tests.conftest import token_for
from tests.hardening.support import connected, frames_until_close, ws_connect
from tests.ops.support import Forwarder, records
from tests.servers import ServerProcess
from tests.socketio.conftest import socketio_server, use_layer
from tests.socketio_client.node import NodeClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.slow]

DRAIN = 2.0
MARGIN = 8.0  # daphne's own shutdown on a loaded machine


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


async def until_status(url: str, status: int, timeout: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        got = await asyncio.to_thread(http_status, url)
        if got == status or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.05)


async def exited(server: ServerProcess, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while server.proc.poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return server.proc.poll()


@pytest.fixture
def pair(redis_url):
    """Two processes on one Redis channel layer; the first is the one to be stopped."""
    prefix = f"drain{uuid.uuid4().hex[:8]}"
    env = {"REALTIME_DRAIN_SECONDS": str(DRAIN), "LOG_FORMAT": "json"}
    servers = [ServerProcess(redis_url=redis_url, layer_prefix=prefix, env=env) for _ in range(2)]
    for server in servers:
        server.start()
    yield servers
    for server in servers:
        server.stop()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_sigterm_closes_ws_sockets_with_4012_fails_readiness_and_exits(pair, make_user, signum):
    first, second = pair
    user = await database_sync_to_async(make_user)()
    token = token_for(user)
    sockets = [await connected(first, token) for _ in range(3)]
    assert await until_status(first.url + "/readyz", 200) == 200

    first.proc.send_signal(signum)
    assert await until_status(first.url + "/readyz", 503, timeout=2) == 503
    # A new socket on the draining process is refused with the same retryable close.
    late = await ws_connect(first, token)
    frames, code = await frames_until_close(late)
    assert code == 4012 and frames[0]["code"] == "server_shutdown"

    for ws in sockets:
        frames, code = await frames_until_close(ws, timeout=DRAIN + 3)
        assert code == 4012
        assert frames[-1]["event"] == "error" and frames[-1]["code"] == "server_shutdown"
    assert await exited(first, DRAIN + MARGIN) == 0

    # The client does what protocol.md says for 4012: reconnects, here to the other process.
    again = await connected(second, token)
    assert again.connected_frame["data"]["userId"] == str(user.pk)
    await again.close()

    lines = records(first.output())
    closes = [r for r in lines if r.get("action") == "disconnect" and r.get("reason") == "server_shutdown"]
    assert len(closes) == 3 and all(r["code"] == 4012 and r["connection_id"] for r in closes)
    assert any(r.get("action") == "drained" for r in lines)


async def test_sigterm_spreads_the_closes_over_the_window(pair, make_user):
    first, _ = pair
    token = token_for(await database_sync_to_async(make_user)())
    sockets = [await connected(first, token) for _ in range(8)]
    first.proc.send_signal(signal.SIGTERM)
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def closed_at(ws):
        await frames_until_close(ws, timeout=DRAIN + 3)
        return loop.time() - start

    moments = sorted(await asyncio.gather(*(closed_at(ws) for ws in sockets)))
    # Not all in one instant: jitter spreads them (8 uniform draws over 2 s all within 0.1 s: ~1e-8).
    assert moments[-1] - moments[0] > 0.1, moments
    assert await exited(first, DRAIN + MARGIN) == 0


@pytest.mark.parametrize("transports", [["polling", "websocket"], ["polling"], ["websocket"]],
                         ids=["upgraded", "polling", "websocket"])
async def test_socketio_client_reconnects_by_itself_to_another_process(redis_url, settings, make_user, transports):
    from tests.domain import make_level

    prefix = f"draio{uuid.uuid4().hex[:8]}"
    servers = [socketio_server(redis_url, prefix, realtime={"DRAIN_SECONDS": DRAIN},
                                    env={"LOG_FORMAT": "json"}) for _ in range(2)]
    use_layer(settings, redis_url, prefix)
    balancer = client = None
    try:
        for server in servers:
            server.start()
        user = await database_sync_to_async(make_user)(perms=["inventory.view_inventorylevel"])
        balancer = await Forwarder(servers[0].port).start()
        client = await NodeClient(balancer.url, {"auth": {"token": token_for(user)}, "transports": transports,
                                                 "reconnectionDelay": 100, "reconnectionDelayMax": 300},
                                  resubscribe=["subscribe:inventory", {}]).start()
        first_id = (await client.next("connect"))["id"]
        assert (await client.next("resubscribed"))["reply"]["data"]["rooms"] == ["inventory:all"]
        if transports[0] == "polling" and len(transports) > 1:
            await client.next("upgrade")

        servers[0].proc.send_signal(signal.SIGTERM)
        error = await client.next("event", "error", timeout=DRAIN + 3)
        assert error["args"][0]["code"] == "server_shutdown"
        # A transport close, not "io server disconnect": socket.io-client reconnects on its own.
        assert (await client.next("disconnect", timeout=DRAIN + 3))["reason"] in ("transport close", "transport error")
        # Sticky sessions keep a session's requests on its process while it drains; its new
        # handshakes are refused (503) until the balancer, seeing /readyz fail, sends them elsewhere.
        balancer.target = servers[1].port
        await client.next("reconnect", timeout=10)
        assert (await client.next("connect"))["id"] != first_id
        assert (await client.next("resubscribed"))["reply"]["data"]["rooms"] == ["inventory:all"]
        assert await exited(servers[0], DRAIN + MARGIN) == 0

        level = await database_sync_to_async(make_level)(available=4)

        def restock():
            level.available = 40
            level.save()

        await database_sync_to_async(restock)()
        assert (await client.next("event", "inventory:updated"))["args"][0]["data"]["available"] == 40
        drained = [r for r in records(servers[0].output()) if r.get("reason") == "server_shutdown"]
        assert any(r.get("action") == "disconnect" and r.get("protocol") == "socketio" for r in drained), drained
    finally:
        if client is not None:
            await client.close()
        if balancer is not None:
            await balancer.stop()
        for server in servers:
            server.stop()
