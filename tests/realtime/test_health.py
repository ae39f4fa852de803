"""``/healthz`` and ``/readyz``: up, ready, and 503 naming the part that is down."""
import asyncio
import json
import urllib.error
import urllib.request

from channels.layers import channel_layers
import pytest
import redis as redis_lib

from tests.servers import ServerProcess, free_port

pytestmark = pytest.mark.django_db


def test_healthz_answers(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_on_the_in_memory_layer(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "channel_layer": "ok"}}


@pytest.mark.redis
async def test_ready_on_redis_reuses_one_probe_channel(redis_layer, redis_url, layer_prefix, async_client):
    for _ in range(3):
        response = await async_client.get("/readyz")
        assert response.status_code == 200, response.content
        assert response.json()["checks"]["channel_layer"] == "ok"
    # On the pub/sub layer a channel is a Redis subscription: probes must not pile them up.
    r = redis_lib.Redis.from_url(redis_url)
    probes = [c for c in r.pubsub_channels(f"{layer_prefix}*") if b"realtime-ready" in c]
    assert len(probes) == 1, probes
    await channel_layers["default"].flush()


@pytest.mark.parametrize("backend", ["channels_redis.pubsub.RedisPubSubChannelLayer", "channels_redis.core.RedisChannelLayer"])
def test_not_ready_when_the_channel_layer_is_down(client, settings, backend):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": backend,
            "CONFIG": {"hosts": [{"address": f"redis://127.0.0.1:{free_port()}/0", "socket_connect_timeout": 1}]},
        }
    }
    channel_layers.backends.clear()
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["failing"] == ["channel_layer"]
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["channel_layer"].startswith("error: ")
    assert "127.0.0.1" not in response.content.decode()  # no addresses or URLs in the answer


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.mark.slow
async def test_daphne_with_its_database_down_is_up_but_not_ready():
    env = {"DATABASE_URL": f"postgres://postgres@127.0.0.1:{free_port()}/nothing_here", "REALTIME_HEALTH_TIMEOUT": "3"}
    with ServerProcess(redis_url=None, env=env) as server:
        health = await asyncio.to_thread(_get, f"{server.url}/healthz")
        ready = await asyncio.to_thread(_get, f"{server.url}/readyz")
    assert health == (200, {"status": "ok"})
    status, body = ready
    assert status == 503, body
    assert body["failing"] == ["database"]
    assert body["checks"]["channel_layer"] == "ok" and body["checks"]["database"].startswith("error: ")
