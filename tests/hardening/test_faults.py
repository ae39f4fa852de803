"""Faults: Redis restarted, Redis down or hung at save time, clients that vanish, the database gone.

Each against the real part: a private redis-server this test restarts, daphne
subprocesses, a TCP listener that never answers (a hung Redis), a TCP proxy in
front of PostgreSQL that the test cuts.
"""
import asyncio
import json
import socket
import threading
import time

from channels.db import database_sync_to_async
from channels.layers import channel_layers
import pytest
import redis as redis_lib
import websockets

from django_oda_realtime import apublish
from tests.hardening.support import (
    command, connected, receive_event, wait_for, ws_connect,
)
from tests.servers import RedisProcess, ServerProcess, free_port

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

VIEW = "inventory.view_inventorylevel"


def use_layer(settings, url: str, prefix: str, kind: str) -> None:
    """Point this process's channel layer (for publishing) at ``url`` with the servers' prefix."""
    host = {"address": url, "socket_timeout": 2, "socket_connect_timeout": 1}
    if kind == "core":
        layer = {"BACKEND": "channels_redis.core.RedisChannelLayer",
                 "CONFIG": {"hosts": [host], "prefix": prefix, "channel_capacity": {"realtime-hub.*": 100_000}}}
    else:
        layer = {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": {"hosts": [host], "prefix": prefix}}
    settings.CHANNEL_LAYERS = {"default": layer}
    channel_layers.backends.clear()


def server_env(kind: str, prefix: str, **extra) -> dict:
    return {"REALTIME_CHANNEL_LAYER": kind, "REALTIME_PRESENCE_PREFIX": json.dumps(prefix), **extra}


# -- (1) Redis restarted during traffic ------------------------------------------------------------


async def outcome_after_restart(ws, deadline: float) -> str:
    """'delivered' once an event published after the restart arrives, or 'closed:<code>'."""
    try:
        async with asyncio.timeout(max(0.1, deadline - time.monotonic())):
            while True:
                frame = json.loads(await ws.recv())
                if frame.get("event") == "test:tick" and frame["data"]["phase"] == "after":
                    return f"delivered after {time.monotonic() - frame['data']['since']:.1f}s"
    except websockets.ConnectionClosed as e:
        return f"closed:{e.rcvd.code if e.rcvd else 1006}"
    except TimeoutError:
        return "deaf"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["pubsub", "core"])
async def test_after_a_redis_restart_open_sockets_hear_events_again(kind, settings, layer_prefix, make_user, token):
    user = await database_sync_to_async(make_user)(perms=[VIEW])
    redis = RedisProcess().start()
    # A short presence lease: hubs renew their sockets' leases every second.
    server = ServerProcess(redis_url=redis.url, layer_prefix=layer_prefix,
                           env=server_env(kind, layer_prefix, REALTIME_PRESENCE_LEASE="3"))
    sockets = []
    try:
        server.start()
        use_layer(settings, redis.url, layer_prefix, kind)
        for _ in range(3):
            ws = await connected(server, token(user))
            reply = await command(ws, "subscribe:inventory")
            assert reply["data"]["rooms"] == ["inventory:all"], reply
            sockets.append(ws)
        await apublish("test:tick", {"phase": "before"}, ["inventory:all"])
        for ws in sockets:
            assert (await receive_event(ws, "test:tick"))["data"]["phase"] == "before"

        # Restart Redis on the same port, with nothing persisted (every group is gone).
        redis.stop()
        await asyncio.sleep(0.5)
        redis.start()
        restarted = time.monotonic()
        failed_before = failures("test:tick")

        deadline = time.monotonic() + 15
        waiting = [asyncio.ensure_future(outcome_after_restart(ws, deadline)) for ws in sockets]
        while not all(t.done() for t in waiting) and time.monotonic() < deadline:
            await apublish("test:tick", {"phase": "after", "since": restarted}, ["inventory:all"])  # never raises
            await asyncio.sleep(0.3)
        outcomes = [await t for t in waiting]
        # Redis is back before the first publish: none may be lost (pooled connections that Redis
        # closed fail once each; publish retries once, hubs drop the duplicates by event id).
        assert failures("test:tick") == failed_before
        # The per-user cap counts the open sockets again (their presence was erased with Redis).
        r = redis_lib.Redis.from_url(redis.url)
        counted = await wait_for(lambda: presence_entries(r, layer_prefix) == len(sockets), timeout=5)
        assert counted, f"{presence_entries(r, layer_prefix)} of {len(sockets)} open sockets counted after the restart"
    finally:
        for ws in sockets:
            await ws.close()
        server.stop()
        redis.stop()
    print(f"{kind}: outcomes after the restart {outcomes}")
    # docs/security.md (Faults): delivery resumes on the same sockets; a close (even a retryable 4012) breaks that.
    assert all(o.startswith("delivered") for o in outcomes), (outcomes, server.output()[-4000:])


# -- (2) Redis down or hung when a model is saved ---------------------------------------------------


class HungServer:
    """A TCP listener that accepts connections and never answers: a hung Redis."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        for conn in self.conns:
            conn.close()


def failures(event: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("oda_realtime_publish_failures_total", {"event": event}) or 0.0


PUBLISH_TIMEOUT = 0.5
PROMPT = PUBLISH_TIMEOUT * 3 + 1.5  # a request publishes up to three events; plus the request's own work


@pytest.mark.parametrize("mode", ["down", "hung"])
def test_saves_and_requests_succeed_promptly_when_redis_is_down_or_hung(
    mode, settings, layer_prefix, make_user, client, caplog
):
    from django.contrib.auth import get_user_model
    from rest_framework_simplejwt.tokens import RefreshToken

    from inventory.models import InventoryLevel
    from django_oda_realtime.models import TokenRevocation
    from tests.domain import make_level

    hung = HungServer() if mode == "hung" else None
    port = hung.port if hung else free_port()  # nothing listens on a fresh free port
    settings.REALTIME = {**settings.REALTIME, "PUBLISH_TIMEOUT": PUBLISH_TIMEOUT}
    use_layer(settings, f"redis://127.0.0.1:{port}/0", layer_prefix, "pubsub")
    caplog.set_level("ERROR", logger="realtime.publish")
    try:
        # A model save whose receivers publish (inventory:updated to the level's rooms).
        level = make_level(available=10)
        before = failures("inventory:updated")
        started = time.monotonic()
        level.available = 7
        level.save()
        took_save = time.monotonic() - started
        assert InventoryLevel.objects.get(pk=level.pk).available == 7
        assert failures("inventory:updated") > before

        # An admin request that saves such a model.
        admin = get_user_model().objects.create_superuser("boss", password="pw-123456")
        client.force_login(admin)
        started = time.monotonic()
        res = client.post(
            f"/admin/inventory/inventorylevel/{level.pk}/change/",
            {"item": level.item_id, "location": level.location_id, "available": 3, "low_stock_threshold": 5},
        )
        took_admin = time.monotonic() - started
        assert res.status_code == 302, res.content[:2000]
        assert InventoryLevel.objects.get(pk=level.pk).available == 3

        # An API request whose side effect is a control message (logout closes sockets).
        user = make_user()
        refresh = RefreshToken.for_user(user)
        before = failures("control:close")
        started = time.monotonic()
        res = client.post("/api/auth/logout/", {"refresh": str(refresh)}, content_type="application/json",
                          headers={"authorization": f"Bearer {refresh.access_token}"})
        took_logout = time.monotonic() - started
        assert res.status_code == 205
        assert TokenRevocation.objects.filter(user_id=user.pk).exists()
        assert failures("control:close") == before + 1
    finally:
        if hung:
            hung.close()
    print(f"redis {mode}: save {took_save:.2f}s, admin request {took_admin:.2f}s, logout {took_logout:.2f}s")
    assert max(took_save, took_admin, took_logout) < PROMPT
    logged = [r.getMessage() for r in caplog.records if r.name == "realtime.publish" and r.levelname == "ERROR"]
    assert any("Publishing inventory:updated failed" in m for m in logged), logged
    assert any("Publishing control:close failed" in m for m in logged), logged


# -- (3) clients that vanish without a close frame ----------------------------------------------------


def group_memberships(r: redis_lib.Redis, kind: str, prefix: str) -> int:
    """Group memberships the servers hold in Redis: subscribed group channels, or group zset members."""
    if kind == "pubsub":
        return len(r.pubsub_channels(f"{prefix}__group__*"))
    return sum(r.zcard(key) for key in r.keys(f"{prefix}:group:*"))


METRICS_TOKEN = "hardening-metrics-token"


async def server_gauges(server) -> tuple[float, float]:
    """(open connections, room memberships) from the server's own ``/metrics``."""
    from tests.hardening.support import http

    status, text = await http("GET", f"{server.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert status == 200, text
    totals = {"oda_realtime_connections": 0.0, "oda_realtime_subscriptions": 0.0}
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in totals:
            totals[name] += float(line.rsplit(" ", 1)[1])
    return totals["oda_realtime_connections"], totals["oda_realtime_subscriptions"]


def presence_entries(r: redis_lib.Redis, prefix: str) -> int:
    return sum(r.zcard(key) for key in r.keys(f"{prefix}:presence:*"))


def rst(ws) -> None:
    """Kill a websockets client's TCP connection abruptly: RST, no close frame, no FIN."""
    sock = ws.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    ws.transport.abort()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["pubsub", "core"])
async def test_clients_that_vanish_leave_no_group_membership_behind(
    kind, settings, redis_url, layer_prefix, make_user, token
):
    rounds, per_round = 3, 12
    users = [await database_sync_to_async(make_user)(perms=[VIEW]) for _ in range(per_round)]
    r = redis_lib.Redis.from_url(redis_url)
    use_layer(settings, redis_url, layer_prefix, kind)
    env = server_env(kind, layer_prefix, REALTIME_METRICS_TOKEN=json.dumps(METRICS_TOKEN))
    with ServerProcess(redis_url=redis_url, layer_prefix=layer_prefix, env=env) as server:
        staying = await connected(server, token(users[0]))
        await command(staying, "subscribe:inventory")  # one long-lived member: the hub keeps inventory:all
        await wait_for(lambda: group_memberships(r, kind, layer_prefix) >= 2)
        baseline = (group_memberships(r, kind, layer_prefix), presence_entries(r, layer_prefix))
        gauges = await server_gauges(server)
        assert gauges == (1, 2), gauges  # one socket in user:<id> and inventory:all
        after_rounds, peaks = [], []
        for n in range(rounds):
            clients = []
            for i, user in enumerate(users):
                ws = await connected(server, token(user))
                await command(ws, "subscribe:inventory", {"locationIds": [f"{n}{i}"]})
                await command(ws, "subscribe:notifications")
                clients.append(ws)
            peaks.append(group_memberships(r, kind, layer_prefix))
            assert await server_gauges(server) == (1 + per_round, 2 + 4 * per_round)  # user, location, notif., broadcast
            # Vanish during traffic: events are on their way to the sockets as they die.
            sending = asyncio.ensure_future(asyncio.gather(*(
                apublish("test:tick", {"n": k}, ["inventory:all", "broadcast"]) for k in range(30)
            )))
            for ws in clients:
                rst(ws)
            await sending
            settled = await wait_for(
                lambda: (group_memberships(r, kind, layer_prefix), presence_entries(r, layer_prefix)) == baseline,
                timeout=5,
            )
            after_rounds.append((group_memberships(r, kind, layer_prefix), presence_entries(r, layer_prefix)))
            assert settled, f"round {n}: memberships/presence {after_rounds[-1]} != baseline {baseline}"
            assert await server_gauges(server) == gauges, f"round {n}: the server still counts the vanished"
        # The survivor still hears events: the process left only the rooms nobody holds.
        await apublish("test:alive", {}, ["inventory:all"])
        assert (await receive_event(staying, "test:alive"))["event"] == "test:alive"
        await staying.close()
        await asyncio.sleep(0.2)
        log = server.output()
    print(f"{kind}: baseline {baseline}, peaks {peaks}, after each round {after_rounds}")
    assert min(peaks) > baseline[0] + per_round  # the rounds did join (and leave) rooms
    assert "Traceback" not in log, log[-4000:]


# -- (4) the database unavailable during a command -----------------------------------------------


class TcpProxy:
    """A TCP proxy to ``upstream`` that the test can cut (close everything, refuse new) and restore."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            self.pairs.append((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not, on Linux)
        except OSError:
            pass
        self.listener.close()
        for pair in self.pairs:
            for s in pair:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
        self.pairs.clear()


@pytest.mark.slow
async def test_a_command_while_the_database_is_down_gets_an_error_event_and_the_socket_stays(
    redis_url, layer_prefix, make_user, token
):
    from django.db import connection

    from tests.servers import database_url

    user = await database_sync_to_async(make_user)(perms=[VIEW, "inventory.change_inventorylevel"])
    db = connection.settings_dict
    proxy = TcpProxy((db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432)))
    db_url = database_url().replace(f":{db.get('PORT') or 5432}/", f":{proxy.port}/")
    env = {"DATABASE_URL": db_url, "REALTIME_PRESENCE_PREFIX": json.dumps(layer_prefix)}
    try:
        with ServerProcess(redis_url=redis_url, layer_prefix=layer_prefix, env=env) as server:
            ws = await connected(server, token(user))
            assert (await command(ws, "subscribe:inventory"))["data"]["rooms"] == ["inventory:all"]

            proxy.cut()
            update = {"inventoryItemId": "1", "quantity": 3, "reason": "count"}
            reply = await command(ws, "inventory:update", update, ack=2)
            assert reply["error"]["code"] == "unavailable", reply
            await ws.send(json.dumps({"event": "inventory:update", "data": update}))
            error = await receive_event(ws, "inventory:updateError")
            assert (error["code"], error["data"]["code"]) == ("unavailable", "unavailable"), error
            reply = await command(ws, "auth:refresh", {"token": token(user)}, ack=3)
            assert reply["error"]["code"] == "unavailable", reply
            assert "ack" in await command(ws, "ping", ack=4)  # still open, still answering

            # A new socket while the database is down is refused with a retryable reason.
            late = await ws_connect(server, token(user))
            frame = json.loads(await late.recv())
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await late.recv()
            assert frame["code"] == "unavailable", frame
            assert closed.value.rcvd.code == 4012

            proxy.restore()
            reply = await command(ws, "inventory:update", update, ack=5)
            assert reply["error"]["code"] == "not_found", reply  # the database answers again
            await ws.close()
            await asyncio.sleep(0.2)
            log = server.output()
    finally:
        proxy.cut()
    assert "Traceback" not in log, log[-4000:]
    assert "Database error in command" in log


@pytest.mark.slow
async def test_a_database_that_accepts_and_never_answers_refuses_new_sockets_with_4012(
    redis_url, layer_prefix, make_user, token
):
    # libpq has no connect timeout of its own: without DATABASE_CONNECT_TIMEOUT the one thread
    # that runs the sockets' ORM calls would wait forever, and every later connect behind it.
    from django.db import connection

    from tests.servers import database_url

    user = await database_sync_to_async(make_user)(perms=[VIEW])
    hung = HungServer()
    port = connection.settings_dict.get("PORT") or 5432
    env = {"DATABASE_URL": database_url().replace(f":{port}/", f":{hung.port}/"), "DATABASE_CONNECT_TIMEOUT": "1",
           "REALTIME_PRESENCE_PREFIX": json.dumps(layer_prefix)}
    try:
        with ServerProcess(redis_url=redis_url, layer_prefix=layer_prefix, env=env) as server:
            for _ in range(2):  # the second is not stuck behind the first
                ws = await ws_connect(server, token(user))
                frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 30)
                assert frame["code"] == "unavailable", frame
                assert closed.value.rcvd.code == 4012
            assert len(hung.conns) >= 2  # it was the hung database that was asked, each time
            log = server.output()
    finally:
        hung.close()
    assert "Traceback" not in log, log[-4000:]
    assert "Database error while authenticating a socket: OperationalError" in log


# -- (5) Redis down while clients connect and subscribe ----------------------------------------------


def realtime_tracebacks(log: str) -> list[str]:
    """Log lines of our own loggers followed by a traceback (channels-redis logs its own, every second)."""
    lines = log.splitlines()
    return [line for line, after in zip(lines, lines[1:]) if " realtime." in line and after.startswith("Traceback")]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["pubsub", "core"])
async def test_while_redis_is_down_subscribing_and_connecting_get_unavailable_not_a_crash(
    kind, settings, layer_prefix, make_user, token
):
    viewer = await database_sync_to_async(make_user)(perms=[VIEW])
    newcomer = await database_sync_to_async(make_user)()
    redis = RedisProcess().start()
    server = ServerProcess(redis_url=redis.url, layer_prefix=layer_prefix, env=server_env(kind, layer_prefix))
    try:
        server.start()
        ws = await connected(server, token(viewer))
        redis.stop()
        await asyncio.sleep(3.5)  # channels-redis's pub/sub loop fails once a second meanwhile

        reply = await command(ws, "subscribe:inventory", {"locationIds": [3]})
        assert reply["error"]["code"] == "unavailable", reply
        assert "data" in await command(ws, "ping", ack=2)  # the socket stays
        late = await ws_connect(server, token(newcomer))  # its own room cannot be joined
        frame = json.loads(await late.recv())
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await late.recv()
        assert (frame["code"], closed.value.rcvd.code) == ("unavailable", 4012)

        redis.start()
        use_layer(settings, redis.url, layer_prefix, kind)
        joined = None
        for n in range(30):  # a client retries; the layer reconnects on its own
            reply = await command(ws, "subscribe:inventory", {"locationIds": [3]}, ack=10 + n)
            if "data" in reply:
                joined = reply["data"]["rooms"]
                break
            await asyncio.sleep(0.2)
        assert joined == ["inventory:location:3"]
        await apublish("test:back", {}, ["inventory:location:3"])
        assert (await receive_event(ws, "test:back"))["event"] == "test:back"
        for _ in range(30):  # 4012 means "retry": stale pooled connections may fail once each
            again = await ws_connect(server, token(newcomer))
            first = json.loads(await again.recv())
            await again.close()
            if first["event"] == "connected":
                break
            assert first["code"] == "unavailable", first
            await asyncio.sleep(0.2)
        assert first["event"] == "connected", first
        await ws.close()
        await asyncio.sleep(0.2)
        log = server.output()
    finally:
        server.stop()
        redis.stop()
    assert realtime_tracebacks(log) == [], log[-4000:]
    # The layer's own repeated error: one line, no traceback, then held back (RepeatThrottleFilter).
    assert "Traceback" not in log, log[-4000:]
    assert log.count("Unexpected exception in receive task") <= 1, log[-4000:]
