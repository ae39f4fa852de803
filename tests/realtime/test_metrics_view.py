"""``GET /metrics``: who may read it, and the counters moving for real traffic through daphne.

The end-to-end test also checks the JSON log lines of that traffic (``LOG_FORMAT=json``):
connection id and user id as fields, reasons for refusals and disconnects, no token.
"""
import asyncio
import json
import urllib.error
import urllib.request

from channels.db import database_sync_to_async as db
from prometheus_client.parser import text_string_to_metric_families
import pytest
import websockets

from django_oda_realtime.ops.metrics_view import token_matches
from tests.domain import make_level
from tests.servers import ServerProcess

METRICS_TOKEN = "metrics-s3cret-0123456789"


# -- who may read ---------------------------------------------------------------------------


@pytest.fixture
def metrics_token(settings):
    settings.REALTIME = {**settings.REALTIME, "METRICS_TOKEN": METRICS_TOKEN}
    return METRICS_TOKEN


ACCESS = [
    # (who, Authorization header, expected status)
    ("anonymous", None, 401),
    ("anonymous", f"Bearer {METRICS_TOKEN}", 200),
    ("anonymous", f"bearer {METRICS_TOKEN}", 200),
    ("anonymous", f"Bearer {METRICS_TOKEN}x", 403),
    ("anonymous", "Bearer ", 403),
    ("anonymous", f"Basic {METRICS_TOKEN}", 403),
    ("user", None, 403),
    ("inactive_staff", None, 401),  # an inactive user's session does not authenticate
    ("staff", None, 200),
    ("staff", "Bearer wrong", 403),  # a wrong token is refused even with a staff session
]


@pytest.mark.django_db
@pytest.mark.parametrize("who,header,status", ACCESS, ids=[f"{w}-{h and h.split()[0]}-{s}" for w, h, s in ACCESS])
def test_metrics_access(client, make_user, metrics_token, who, header, status):
    if who != "anonymous":
        user = make_user(is_staff=who != "user", is_active=who != "inactive_staff")
        client.force_login(user)
    headers = {"Authorization": header} if header is not None else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == status
    if status == 200:
        assert response["Content-Type"].startswith("text/plain; version=")
        assert "oda_realtime_connections" in response.content.decode()
        assert response["Cache-Control"] == "no-store"
    else:
        assert b"oda_realtime" not in response.content
    if status == 401:
        assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
def test_without_a_configured_token_no_bearer_is_accepted(client, settings):
    settings.REALTIME = {**settings.REALTIME, "METRICS_TOKEN": ""}
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer anything"}).status_code == 403


def test_token_comparison():
    assert token_matches("abc", "abc")
    assert not token_matches("abd", "abc")
    assert not token_matches("", "")
    assert not token_matches("", None)
    assert not token_matches("abc", None)
    assert not token_matches("ünïcode", "abc")  # non-ASCII input is compared, not an error


# -- the counters, for real traffic through daphne ----------------------------------------------


def _get(url: str, token: str | None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


async def scrape(server) -> dict:
    """``{(sample name, ((label, value), ...)): value}`` from the server's /metrics."""
    status, text = await asyncio.to_thread(_get, f"{server.url}/metrics", METRICS_TOKEN)
    assert status == 200, text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape_until(server, check, timeout: float = 3.0) -> dict:
    """Scrape until ``check(samples)`` holds (the hub counts just after it writes a frame)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        samples = await scrape(server)
        if check(samples) or loop.time() > deadline:
            return samples
        await asyncio.sleep(0.1)


class Client:
    """A real WebSocket client that keeps the frames a wait skipped (events may precede an ack)."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.frames: list[dict] = []

    async def wait_for(self, match, timeout: float = 5.0) -> dict:
        for frame in self.frames:
            if match(frame):
                self.frames.remove(frame)
                return frame
        async with asyncio.timeout(timeout):
            while True:
                frame = json.loads(await self.ws.recv())
                if match(frame):
                    return frame
                self.frames.append(frame)

    async def event(self, name: str) -> dict:
        return await self.wait_for(lambda f: f.get("event") == name and "ack" not in f)

    async def command(self, event: str, data, ack: int) -> dict:
        await self.ws.send(json.dumps({"event": event, "data": data, "ack": ack}))
        return await self.wait_for(lambda f: f.get("ack") == ack)


def json_lines(output: str) -> list[dict]:
    lines = []
    for line in output.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


@pytest.mark.django_db(transaction=True)
@pytest.mark.redis
@pytest.mark.slow
async def test_counters_and_log_lines_follow_real_connections_commands_and_events(
    redis_layer, redis_url, layer_prefix, make_user, token
):
    user = await db(make_user)(perms=["inventory.view_inventorylevel", "inventory.change_inventorylevel"])
    level = await db(make_level)(10, threshold=2)
    raw = token(user)
    env = {"REALTIME_METRICS_TOKEN": METRICS_TOKEN, "LOG_FORMAT": "json"}
    with ServerProcess(redis_url=redis_url, layer_prefix=layer_prefix, env=env) as server:
        assert (await asyncio.to_thread(_get, f"{server.url}/metrics", None))[0] == 401
        assert (await asyncio.to_thread(_get, f"{server.url}/metrics", "wrong"))[0] == 403
        before = await scrape(server)

        async with websockets.connect(f"{server.ws_url}/ws/?token={raw}") as ws:
            client = Client(ws)
            connected = (await client.event("connected"))["data"]
            assert "error" not in await client.command("subscribe:inventory", {}, 1)
            reply = await client.command("inventory:update", {
                "inventoryItemId": str(level.item_id), "locationId": str(level.location_id),
                "quantity": 7, "reason": "Recount"}, 2)
            assert reply["data"]["available"] == 7, reply
            assert (await client.command("inventory:update", {"quantity": "many"}, 3))["error"]["code"] == "validation_error"
            assert (await client.event("inventory:updated"))["data"]["available"] == 7
            during = await scrape_until(
                server, lambda s: value(s, "oda_realtime_delivery_latency_seconds_count") >= 1)

        async with websockets.connect(f"{server.ws_url}/ws/?token=not-a-token") as refused:
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await refused.recv()
        after = await scrape_until(
            server, lambda s: value(s, "oda_realtime_connections", protocol="native") == 0
            and value(s, "oda_realtime_refusals_total", reason="token_invalid") >= 1)
        await asyncio.sleep(0.2)
        output = server.output()

    def moved(samples, name, **labels):
        return value(samples, name, **labels) - value(before, name, **labels)

    # while the socket was open
    assert value(during, "oda_realtime_connections", protocol="native") == 1
    assert moved(during, "oda_realtime_connects_total", protocol="native") == 1
    assert value(during, "oda_realtime_subscriptions", room_kind="inventory:all") == 1
    assert value(during, "oda_realtime_subscriptions", room_kind="user") == 1
    assert moved(during, "oda_realtime_commands_total", command="subscribe:inventory", outcome="ok") == 1
    assert moved(during, "oda_realtime_commands_total", command="inventory:update", outcome="ok") == 1
    assert moved(during, "oda_realtime_commands_total", command="inventory:update", outcome="validation_error") == 1
    assert moved(during, "oda_realtime_events_published_total", event="inventory:updated") == 1
    assert moved(during, "oda_realtime_events_received_total", event="inventory:updated") == 1
    assert moved(during, "oda_realtime_deliveries_total", protocol="native") == 1
    assert moved(during, "oda_realtime_delivery_latency_seconds_count") == 1
    assert value(during, "oda_realtime_channel_layer_up") == 1
    # after it closed, and a refused one
    assert value(after, "oda_realtime_connections", protocol="native") == 0
    assert value(after, "oda_realtime_subscriptions", room_kind="inventory:all") == 0
    assert moved(after, "oda_realtime_disconnects_total", reason="client") == 1
    assert moved(after, "oda_realtime_refusals_total", reason="token_invalid") == 1

    # the JSON log lines of the same traffic
    records = json_lines(output)
    assert records, output
    mine = [r for r in records if r.get("connection_id") == connected["connectionId"]]
    assert [(r["action"], r.get("reason")) for r in mine] == [("connect", None), ("disconnect", "client")], mine
    assert all(r["user_id"] == str(user.pk) and r["protocol"] == "native" for r in mine)
    refusals = [r for r in records if r.get("action") == "refuse"]
    assert [r["reason"] for r in refusals] == ["token_invalid"]
    assert refusals[0]["connection_id"] not in ("", "-", connected["connectionId"])
    assert raw not in output and "not-a-token" not in output and METRICS_TOKEN not in output
