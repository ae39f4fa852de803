"""The relay inside the servers (docs/design.md#outbox), on PostgreSQL and Redis: started after
Django's setup (nothing on stderr), with and without ``DATABASE_POOL``, on ``manage.py serve`` and
uvicorn; one server relays at a time and another takes over when it is killed; its metrics.

Each event here comes from ``outbox_crash.py``, which commits a change and is SIGKILLed before
its fast path could publish: only a relay can deliver it, and no ``realtime_worker`` runs."""
import asyncio
import json
import signal
import subprocess
import sys
import time
import uuid

from channels.db import database_sync_to_async
from django.db import connection
import psycopg
import pytest
import websockets

from django_oda_realtime import outbox
from django_oda_realtime.models import OutboxEvent
from django_oda_realtime.outbox_relay import APPLICATION_NAME, LEADER_KEY
from django_oda_realtime.publish import publish
from tests.realtime.test_metrics_view import METRICS_TOKEN, scrape, scrape_until, value
from tests.realtime.test_outbox_servers import command, process_env, receive_event
from tests.servers import ROOT, StdoutServer, UvicornProcess, database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

POOL = {"DATABASE_POOL": '{"min_size": 1, "max_size": 2}'}  # small: a relay holding pooled connections starves it


def relaying_pids(prefix: str) -> list[int]:
    """Server pids whose relay holds the leader lock of the deployment on ``prefix`` (its
    connection's application_name)."""
    key = outbox.lock_key(LEADER_KEY, prefix) & 0xFFFFFFFFFFFFFFFF  # pg_locks shows it unsigned, in halves
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s AND l.objsubid = 1"
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            [key >> 32, key & 0xFFFFFFFF])
        return [int(name.rsplit(" ", 1)[1]) for (name,) in cursor.fetchall() if name.startswith(APPLICATION_NAME)]


def relay_connections() -> set[int]:
    """Server pids with a relay thread connected (leader or standby)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT application_name FROM pg_stat_activity WHERE datname = current_database()"
                       " AND application_name LIKE %s", [APPLICATION_NAME + " %"])
        return {int(name.rsplit(" ", 1)[1]) for (name,) in cursor.fetchall()}


async def wait_for_relay(pids: set[int], prefix: str, timeout: float = 20.0) -> int:
    """The pid of the one relaying server of the deployment on ``prefix``, once it is one of ``pids``."""
    deadline = time.monotonic() + timeout
    while True:
        holders = await database_sync_to_async(relaying_pids)(prefix)
        assert len(holders) <= 1, f"two relays hold the leader lock: {holders}"
        if holders and holders[0] in pids:
            return holders[0]
        assert time.monotonic() < deadline, f"no relay among {pids} after {timeout} s (holders: {holders})"
        await asyncio.sleep(0.1)


async def staff_socket(server, raw_token):
    ws = await websockets.connect(f"{server.ws_url}/ws/?token={raw_token}")
    await receive_event(ws, "connected")
    assert (await command(ws, "subscribe:staff"))["data"]["rooms"] == ["staff"]
    return ws


async def commit_and_die(redis_url: str, prefix: str) -> str:
    """Run outbox_crash.py: a product saved and committed, its process SIGKILLed before publishing."""
    handle = f"crash-{uuid.uuid4().hex[:8]}"
    crashed = await asyncio.to_thread(
        subprocess.run, [sys.executable, "tests/realtime/outbox_crash.py", handle], cwd=ROOT,
        env=process_env(redis_url, prefix), capture_output=True, text=True, timeout=60)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert "not reached" not in crashed.stdout
    return handle


async def delivered(ws, handle: str) -> None:
    frame = await receive_event(ws, "notification", timeout=20)
    assert frame["type"] == "user:activity" and handle in json.dumps(frame["data"])


def unpublished() -> int:
    return OutboxEvent.objects.filter(published_at__isnull=True).count()


@pytest.mark.parametrize("env", [{}, POOL], ids=["no-pool", "pool"])
async def test_the_servers_relay_starts_after_setup_and_delivers_a_dead_processs_commit(
        redis_url, layer_prefix, make_user, token, env):
    staff = await database_sync_to_async(make_user)(is_staff=True)
    server = StdoutServer(redis_url=redis_url, layer_prefix=layer_prefix, env=env)  # the default: relay on
    with server:
        assert await wait_for_relay({server.proc.pid}, layer_prefix) == server.proc.pid
        ws = await staff_socket(server, token(staff))
        handle = await commit_and_die(redis_url, layer_prefix)
        await delivered(ws, handle)
        # The pool still serves the server's own queries (a second socket, its subscribe).
        await (await staff_socket(server, token(staff))).close()
        await ws.close()
    assert await database_sync_to_async(unpublished)() == 0
    assert "Outbox relay: this process relays" in server.output()
    assert server.errors() == "", server.errors()  # no "Accessing the database during app initialization"


async def test_on_uvicorn_the_relay_starts_at_lifespan_startup(redis_url, layer_prefix, make_user, token):
    staff = await database_sync_to_async(make_user)(is_staff=True)
    with UvicornProcess(redis_url=redis_url, layer_prefix=layer_prefix, env=POOL) as server:
        # Before any request: lifespan.startup started it.
        assert await wait_for_relay({server.proc.pid}, layer_prefix) == server.proc.pid
        ws = await staff_socket(server, token(staff))
        handle = await commit_and_die(redis_url, layer_prefix)
        await delivered(ws, handle)
        await ws.close()
    output = server.output()
    assert "RuntimeWarning" not in output and "lifespan' protocol appears unsupported" not in output, output


class StockDaphne(StdoutServer):
    """``python -m daphne`` (not ``manage.py serve``): no lifespan, no start hook of ours."""

    server_name = "daphne (stock)"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "oda_realtime.asgi:application"]


async def test_on_stock_daphne_the_relay_starts_at_the_first_request(redis_url, layer_prefix, make_user, token):
    staff = await database_sync_to_async(make_user)(is_staff=True)
    with StockDaphne(redis_url=redis_url, layer_prefix=layer_prefix, env=POOL) as server:
        await asyncio.sleep(1.0)  # time it would have had to start on its own
        assert await database_sync_to_async(relay_connections)() == set()  # nothing before a request
        ws = await staff_socket(server, token(staff))
        assert await wait_for_relay({server.proc.pid}, layer_prefix) == server.proc.pid
        handle = await commit_and_die(redis_url, layer_prefix)
        await delivered(ws, handle)
        await ws.close()
    assert "RuntimeWarning" not in server.errors() + server.output()


async def test_one_server_relays_at_a_time_and_another_takes_over_when_it_is_killed(
        redis_url, layer_prefix, make_user, token):
    staff = await database_sync_to_async(make_user)(is_staff=True)
    with StdoutServer(redis_url=redis_url, layer_prefix=layer_prefix, env=POOL) as first, \
            StdoutServer(redis_url=redis_url, layer_prefix=layer_prefix) as second:
        servers = {first.proc.pid: first, second.proc.pid: second}
        leader_pid = await wait_for_relay(set(servers), layer_prefix)
        leader = servers.pop(leader_pid)
        (standby_pid, standby), = servers.items()
        ws = await staff_socket(standby, token(staff))
        handle = await commit_and_die(redis_url, layer_prefix)
        await delivered(ws, handle)  # relayed by the leader, through Redis to the standby's socket
        # The standby's relay is up (it tries the lock every OUTBOX_POLL_INTERVAL) and does not hold it.
        deadline = time.monotonic() + 20
        while standby_pid not in await database_sync_to_async(relay_connections)():
            assert time.monotonic() < deadline, "the standby's relay never connected"
            await asyncio.sleep(0.1)
        assert await database_sync_to_async(relaying_pids)(layer_prefix) == [leader_pid]
        assert "Outbox relay: this process relays" not in standby.output()

        leader.proc.send_signal(signal.SIGKILL)
        leader.proc.wait(10)
        assert await wait_for_relay({standby_pid}, layer_prefix) == standby_pid
        handle = await commit_and_die(redis_url, layer_prefix)
        await delivered(ws, handle)
        await ws.close()
        assert await database_sync_to_async(unpublished)() == 0
    assert standby.errors() == "", standby.errors()


async def test_the_servers_relay_exports_backlog_oldest_age_and_lag(settings, redis_url, layer_prefix):
    """The outbox metrics on a real server's /metrics: rows wait while another sender holds the
    relay lock (the backlog and its age grow), then go (the lag histogram counts them)."""
    settings.REALTIME = {**settings.REALTIME, "OUTBOX_SEND_ON_COMMIT": False}  # this process only writes rows
    env = {"REALTIME_METRICS_TOKEN": METRICS_TOKEN}
    with StdoutServer(redis_url=redis_url, layer_prefix=layer_prefix, env=env) as server:
        await wait_for_relay({server.proc.pid}, layer_prefix)
        before = await scrape(server)
        holder = psycopg.connect(database_url(), autocommit=True)  # another sender
        try:
            # The server's deployment's sender lock (its layer prefix: docs/design.md#outbox).
            assert holder.execute("SELECT pg_try_advisory_lock(%s)",
                                  [outbox.lock_key(outbox.RELAY_KEY, layer_prefix)]).fetchone()[0]
            for n in range(3):
                await database_sync_to_async(publish)("inventory:updated", {"n": n}, ["inventory:all"])
            waiting = await scrape_until(server, lambda s: value(s, "oda_realtime_outbox_backlog") == 3
                                         and value(s, "oda_realtime_outbox_oldest_age_seconds") >= 1.0, timeout=20)
            assert value(waiting, "oda_realtime_outbox_backlog") == 3
            assert value(waiting, "oda_realtime_outbox_oldest_age_seconds") >= 1.0
        finally:
            holder.close()  # releases the lock: the relay sends the rows
        lag = "oda_realtime_outbox_relay_lag_seconds_count"
        after = await scrape_until(server, lambda s: value(s, "oda_realtime_outbox_backlog") == 0
                                   and value(s, lag) - value(before, lag) >= 3, timeout=20)
        assert value(after, "oda_realtime_outbox_backlog") == 0
        assert value(after, "oda_realtime_outbox_oldest_age_seconds") == 0
        assert value(after, lag) - value(before, lag) == 3
        assert value(after, "oda_realtime_outbox_relay_lag_seconds_sum") - value(
            before, "oda_realtime_outbox_relay_lag_seconds_sum") >= 3 * 1.0  # each waited over a second
    assert await database_sync_to_async(unpublished)() == 0
