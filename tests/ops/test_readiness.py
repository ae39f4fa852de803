"""``/readyz`` during a drain (django_oda_realtime/server/drain.py): 503 ``draining`` at once, whatever the checks say."""
from django.test import AsyncClient
import pytest

from django_oda_realtime.server import drain


@pytest.fixture
def draining():
    drain.begin()
    yield
    drain._reset()


@pytest.mark.django_db
async def test_readyz_answers_503_draining_once_the_drain_began(draining):
    response = await AsyncClient().get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "draining", "failing": ["draining"], "checks": {}}


@pytest.mark.django_db
async def test_healthz_still_answers_while_draining(draining):
    assert (await AsyncClient().get("/healthz")).status_code == 200
