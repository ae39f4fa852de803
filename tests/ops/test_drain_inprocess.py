"""``django_oda_realtime.server.drain.drain()`` in this process: what a drain does to a socket, and what it counts."""
import pytest

from django_oda_realtime import metrics
from django_oda_realtime.server import drain


@pytest.fixture
def undrain():
    yield
    drain._reset()


def counted(counter, reason: str) -> float:
    return counter.labels(reason)._value.get()


@pytest.mark.django_db(transaction=True)
async def test_drain_closes_sockets_with_server_shutdown_and_counts_it(connect, make_user, token, undrain):
    from channels.db import database_sync_to_async

    user = await database_sync_to_async(make_user)()
    sock = await connect(token(user))
    closes, refusals = counted(metrics.DISCONNECTS, "server_shutdown"), counted(metrics.REFUSALS, "server_shutdown")

    assert await drain.drain(0) == 1
    frame = await sock.receive_event("error")
    assert frame["code"] == "server_shutdown"
    assert (await sock.comm.receive_output(2))["code"] == 4012
    assert counted(metrics.DISCONNECTS, "server_shutdown") == closes + 1

    # While draining, a new /ws/ socket (through the gate manage.py serve installs) is refused the same way.
    from channels.testing import WebsocketCommunicator

    from tests.conftest import application

    comm = WebsocketCommunicator(drain.DrainGate(application()), f"/ws/?token={token(user)}")
    accepted, _ = await comm.connect(timeout=5)
    assert accepted
    assert (await comm.receive_json_from(2))["code"] == "server_shutdown"
    assert (await comm.receive_output(2))["code"] == 4012
    assert counted(metrics.REFUSALS, "server_shutdown") == refusals + 1
    await comm.disconnect()
