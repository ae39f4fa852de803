"""``DATABASE_CONN_MAX_AGE`` and ``DATABASE_POOL`` through a real server (issue #17): sockets that
connect and subscribe reuse database connections instead of opening ~3 each (PostgreSQL counts
every session it accepts: ``pg_stat_database.sessions``)."""
from channels.db import database_sync_to_async
from django.db import connection
import pytest

from tests.conftest import token_for
from tests.hardening.support import command, connected
from tests.servers import ServerProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SOCKETS = 6


def sessions() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


async def new_sessions_for_sockets(env: dict, user) -> int:
    with ServerProcess(redis_url=None, env=env) as server:
        token = token_for(user)
        warm = await connected(server, token)  # the first connection of each thread is not the point
        await command(warm, "subscribe:inventory", {})
        before = await database_sync_to_async(sessions)()
        for _ in range(SOCKETS):
            ws = await connected(server, token)
            assert (await command(ws, "subscribe:inventory", {}))["data"]["rooms"] == ["inventory:all"]
            await ws.close()
        after = await database_sync_to_async(sessions)()
        await warm.close()
    return after - before


@pytest.mark.parametrize("env", [{"DATABASE_CONN_MAX_AGE": "60"}, {"DATABASE_POOL": '{"min_size": 1, "max_size": 2}'}],
                         ids=["conn-max-age", "pool"])
async def test_sockets_reuse_database_connections(make_user, env):
    user = await database_sync_to_async(make_user)(perms=["inventory.view_inventorylevel"])
    assert await new_sessions_for_sockets(env, user) <= 1
    # Without either, each socket opens connections of its own.
    assert await new_sessions_for_sockets({}, user) >= SOCKETS
