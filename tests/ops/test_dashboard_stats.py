"""The live dashboard's connection counter counts every process (issue #17): the page's own
socket may be open on another process than the one answering ``stats/``."""
import uuid

from channels.db import database_sync_to_async
import pytest

from tests.conftest import token_for
from tests.hardening.support import connected
from tests.servers import ServerProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

STATS = "/admin/live/stats/"


async def test_stats_count_the_sockets_of_other_processes(async_client, settings, redis_url, make_user):
    staff = await database_sync_to_async(make_user)(is_staff=True)
    prefix = f"stats{uuid.uuid4().hex[:8]}"
    other = ServerProcess(redis_url=redis_url, layer_prefix=prefix)  # presence keys: presence-<prefix>
    settings.REALTIME = {**settings.REALTIME, "PRESENCE_REDIS_URL": redis_url, "PRESENCE_PREFIX": f"presence-{prefix}"}
    await async_client.aforce_login(staff)
    with other:
        sockets = [await connected(other, token_for(staff)) for _ in range(2)]
        body = (await async_client.get(STATS)).json()
        for ws in sockets:
            await ws.close()
    assert body["connectionsTotal"] == 0  # none on the process that answered (this one)...
    assert body["connectionsAllProcesses"] == 2  # ...both on the other
    assert body["process"].endswith(f":{body['pid']}")


def test_without_redis_presence_the_numbers_are_labelled_with_the_process(client, make_user):
    client.force_login(make_user(is_staff=True))
    body = client.get(STATS).json()
    assert body["connectionsAllProcesses"] is None and body["process"].endswith(f":{body['pid']}")
