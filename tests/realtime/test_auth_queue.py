"""A handshake whose client left while its authentication waited for the database thread looks
nothing up (docs/design.md#auth-queue), with a real ``manage.py serve`` and ``websockets`` clients.

The thread is held on purpose: the first handshake's user lookup waits on a table lock taken by the
test, so the next handshakes queue behind it; their clients give up (as after daphne's 5 s
handshake timeout in a burst of reconnections) and, once the lock is released, their turns find them
gone: refused as ``client_gone`` without a query, while the first handshake is accepted."""
import asyncio
import contextlib
import uuid

from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.db import connection
import pytest
import websockets

from tests.conftest import token_for
from tests.servers import ServerProcess

pytestmark = pytest.mark.django_db(transaction=True)


def lock_connection():
    import psycopg

    s = connection.settings_dict
    if not s["ENGINE"].endswith("postgresql"):
        pytest.fail("this test holds a PostgreSQL table lock: run it on PostgreSQL (TEST_DATABASE_URL)")
    return psycopg.connect(host=s["HOST"] or "127.0.0.1", port=s["PORT"] or 5432, user=s["USER"] or "postgres",
                           password=s["PASSWORD"] or None, dbname=s["NAME"])


async def until(condition, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not await asyncio.to_thread(condition):
            await asyncio.sleep(0.05)


async def test_a_handshake_whose_client_left_while_queued_for_authentication_looks_nothing_up(make_user):
    users = [await database_sync_to_async(make_user)() for _ in range(3)]
    table = get_user_model()._meta.db_table
    with ServerProcess(redis_url=None) as server:
        lock = lock_connection()
        try:
            lock.execute(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')
            first = asyncio.ensure_future(websockets.connect(
                f"ws://127.0.0.1:{server.port}/ws/?token={token_for(users[0])}", proxy=None, open_timeout=30,
                ping_interval=None))

            def first_waits_on_the_lock() -> bool:
                lock.execute("SELECT pg_stat_clear_snapshot()")  # a fresh view inside the lock's transaction
                row = lock.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                   "AND datname = current_database()").fetchone()
                return row[0] >= 1

            await until(first_waits_on_the_lock)  # the database thread is held by the first lookup
            for user in users[1:]:  # queued behind it; their clients give up and close
                with pytest.raises(TimeoutError):
                    await websockets.connect(f"ws://127.0.0.1:{server.port}/ws/?token={token_for(user)}", proxy=None,
                                             open_timeout=0.3, ping_interval=None)
            await until(lambda: server.output().count('"WSDISCONNECT /ws/"') >= 2)  # the server saw them go
        finally:
            lock.rollback()
            lock.close()
        ws = await first
        try:
            assert '"event":"connected"' in (await ws.recv()).replace(" ", "")
        finally:
            await ws.close()
        await until(lambda: server.output().count(": client_gone") >= 2)
        output = server.output()
        assert output.count("Connected ") == 1, output[-3000:]


@pytest.mark.redis
@contextlib.asynccontextmanager
async def held_socketio_connect(make_user, settings):
    """A Socket.IO server (``SOCKETIO_CONNECT_TIMEOUT`` 1 s) and a real socket.io-client whose
    CONNECT waits behind a table lock held on the user table; yields (server, client, release)."""
    from django.conf import settings as django_settings

    from tests.conftest import require_redis
    from tests.socketio.conftest import socketio_server, use_layer
    from tests.socketio_client.node import NodeClient

    require_redis(django_settings.TEST_REDIS_URL)
    prefix = f"aq{uuid.uuid4().hex[:10]}"
    use_layer(settings, django_settings.TEST_REDIS_URL, prefix)
    user = await database_sync_to_async(make_user)()
    table = get_user_model()._meta.db_table
    server = socketio_server(django_settings.TEST_REDIS_URL, prefix, realtime={"SOCKETIO_CONNECT_TIMEOUT": 1.0}).start()
    client = None
    lock = lock_connection()
    try:
        lock.execute(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')
        client = await NodeClient(server.url, {"auth": {"token": token_for(user)}, "transports": ["websocket"],
                                               "reconnection": False}).start()
        yield server, client, lock.rollback
    finally:
        lock.rollback()
        lock.close()
        if client is not None:
            await client.close()
        server.stop()


async def test_a_socketio_connect_waiting_for_its_authentication_is_not_closed_at_the_connect_deadline(make_user,
                                                                                                          settings):
    """socket.io-client's CONNECT waits behind a held database thread past SOCKETIO_CONNECT_TIMEOUT
    (1 s here; 20 s by default, which 1,000 clients resuming at once passed in bench/resume.py): the
    session is kept open, not closed with ``connect_timeout`` (the client would retry behind the same
    queue), and it connects once the lookups can run."""
    async with held_socketio_connect(make_user, settings) as (server, client, release):
        await until(lambda: "still being handled at the connect deadline" in server.output())
        release()
        connect = await client.next("connect", timeout=15)
        assert connect["recovered"] is False
        assert not [m for m in client.seen if m["type"] == "connect_error"]


async def test_a_socketio_connect_that_never_completes_is_closed_after_three_connect_deadlines(make_user, settings):
    """The wait above is bounded: a CONNECT whose lookups never run (the database thread held
    throughout) keeps its session at most CONNECT_WAIT_FACTOR (3) connect deadlines, then it is
    closed as ``connect_timeout``, as a session that sent no CONNECT is."""
    async with held_socketio_connect(make_user, settings) as (server, client, release):
        await until(lambda: "still being handled at the connect deadline" in server.output())
        await until(lambda: "connected no namespace" in server.output())  # the lock still held
        release()
        assert not [m for m in client.seen if m["type"] == "connect"]
