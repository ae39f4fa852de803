"""Shared fixtures: users with permissions, tokens, channel layers (memory | redis), sockets."""
import asyncio
import json
import time
import uuid

from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
import pytest
import redis as redis_lib
from rest_framework_simplejwt.tokens import AccessToken

from django_oda_realtime.hub import current_hub
from tests import servers


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    item.stash[_ITEM_STARTED] = time.monotonic()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test's report shows the output of the servers (tests/servers.py) it started and of
    those still running: a flaky failure in CI is understood from its report alone."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        _add_server_logs(item, report)
    if call.when == "teardown":
        servers.started[:] = [server for server in servers.started if server.running]


def _add_server_logs(item, report) -> None:
    since = item.stash.get(_ITEM_STARTED, 0.0)
    for server in servers.started:
        if server.started_at >= since or server.running:
            try:
                text = server.report()
            except OSError as e:
                text = f"(log unreadable: {e})"
            report.sections.append((f"{server.server_name} on port {server.port} ({server.layer_prefix})", text))


_ITEM_STARTED = pytest.StashKey[float]()


@pytest.fixture(autouse=True)
def fresh_channel_layers():
    """A new channel-layer instance per test (layers hold loop-bound state)."""
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def restore_registries():
    """Commands, topics and room kinds a test registers are gone after it: the registries are
    global, and the contract tests check that every registration is described."""
    from django_oda_realtime.commands import registry
    from django_oda_realtime.permissions import policy
    from django_oda_realtime.subscriptions import topics

    saved = [(obj, attr, dict(getattr(obj, attr)))
             for obj, attr in ((registry, "_commands"), (topics, "_topics"), (policy, "_kinds"))]
    yield
    for obj, attr, before in saved:
        setattr(obj, attr, before)


def require_redis(url: str) -> None:
    """Fail (never skip) when Redis is not answering: CI must start it."""
    try:
        redis_lib.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis_lib.RedisError as e:
        pytest.fail(f"Redis is required at {url} and is not answering: {e}")


@pytest.fixture
def redis_url(settings):
    require_redis(settings.TEST_REDIS_URL)
    return settings.TEST_REDIS_URL


@pytest.fixture
def layer_prefix():
    return f"test{uuid.uuid4().hex[:12]}"


@pytest.fixture
def redis_layer(settings, redis_url, layer_prefix):
    """Switch this test to channels-redis's pub/sub layer on the real Redis."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": redis_url, "socket_timeout": 15}], "prefix": layer_prefix},
        }
    }
    channel_layers.backends.clear()
    return settings.CHANNEL_LAYERS


@pytest.fixture
def redis_core_layer(settings, redis_url, layer_prefix):
    """Switch this test to channels-redis's core (list-based) layer on the real Redis."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": redis_url, "socket_timeout": 15}],
                "prefix": layer_prefix,
                "channel_capacity": {"realtime-hub.*": 100_000},
            },
        }
    }
    channel_layers.backends.clear()
    return settings.CHANNEL_LAYERS


@pytest.fixture(params=["memory", "redis"])
def any_layer(request, settings):
    """Run the test on the in-memory layer and on channels-redis."""
    if request.param == "redis":
        return request.getfixturevalue("redis_layer")
    return settings.CHANNEL_LAYERS


# -- users and tokens -------------------------------------------------------------


@pytest.fixture
def make_user(db):
    User = get_user_model()

    def make(username=None, *, perms=(), is_staff=False, is_superuser=False, is_active=True, password="pw-123456"):
        user = User.objects.create_user(
            username or f"user-{uuid.uuid4().hex[:8]}",
            password=password,
            is_staff=is_staff,
            is_superuser=is_superuser,
            is_active=is_active,
        )
        for perm in perms:
            app_label, codename = perm.split(".")
            user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        return User.objects.get(pk=user.pk)  # fresh: no stale permission cache

    return make


def token_for(user) -> str:
    return str(AccessToken.for_user(user))


@pytest.fixture
def token():
    return token_for


# -- sockets ------------------------------------------------------------------------


def application():
    from oda_realtime.asgi import application as app

    return app


class Socket:
    """A test client of ``/ws/`` over channels' WebsocketCommunicator."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.comm = communicator
        self.connected_payload = None
        self._acks = 0

    async def receive(self, timeout: float = 2.0) -> dict:
        return json.loads(await self.comm.receive_from(timeout))

    async def receive_event(self, name: str, timeout: float = 2.0) -> dict:
        """The next frame whose event is ``name`` (other frames are skipped)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = await self.receive(max(0.01, deadline - loop.time()))
            if frame.get("event") == name:
                return frame

    async def send(self, event: str, data=None, ack: int | None = None) -> None:
        frame = {"event": event}
        if data is not None:
            frame["data"] = data
        if ack is not None:
            frame["ack"] = ack
        await self.comm.send_to(text_data=json.dumps(frame))

    async def command(self, event: str, data=None, timeout: float = 2.0) -> dict:
        """Send with an ack id and return the matching reply."""
        self._acks += 1
        ack = self._acks
        await self.send(event, data, ack)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = await self.receive(max(0.01, deadline - loop.time()))
            if frame.get("ack") == ack:
                return frame

    async def nothing(self, timeout: float = 0.2) -> bool:
        return await self.comm.receive_nothing(timeout)

    async def close(self) -> None:
        await self.comm.disconnect()


@pytest.fixture
async def connect():
    """``await connect(token=..., headers=..., subprotocols=..., path=...)`` -> (Socket, accepted, subprotocol)."""
    sockets: list[Socket] = []

    async def open_socket(token=None, *, via="query", headers=(), subprotocols=None, path="/ws/", expect_ok=True):
        headers = list(headers)
        if token is not None and via == "query":
            path = f"{path}?token={token}"
        elif token is not None and via == "header":
            headers.append((b"authorization", f"Bearer {token}".encode()))
        elif token is not None and via == "subprotocol":
            subprotocols = [*(subprotocols or []), f"bearer.{token}"]
        comm = WebsocketCommunicator(application(), path, headers=headers, subprotocols=subprotocols)
        accepted, subprotocol = await comm.connect(timeout=5)
        sock = Socket(comm)
        sock.accepted, sock.subprotocol = accepted, subprotocol
        sockets.append(sock)
        if accepted and expect_ok:
            sock.connected_payload = await sock.receive_event("connected")
        return sock

    yield open_socket
    for sock in sockets:
        try:
            await sock.close()
        except Exception:
            pass
    hub = current_hub()
    if hub is not None:
        await hub.stop()


@pytest.fixture(scope="session", autouse=True)
def close_worker_thread_connections(django_db_setup):
    """Close the DB connection that database_sync_to_async's worker thread keeps, before the
    test database is dropped (else: 'database is being accessed by other users')."""
    yield
    from asgiref.sync import SyncToAsync
    from django.db import connections

    SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=10)


@pytest.fixture(autouse=True)
def published_events_match_contract():
    """Every event the apps publish during a test matches its schema in the event contract
    (docs/contract.md); events built by test code itself are not checked."""
    from django_oda_realtime.contract.testing import PublishedEventChecker

    with PublishedEventChecker() as checker:
        yield checker
    if checker.violations:
        pytest.fail("Published events drift from the contract:\n" + "\n".join(checker.violations), pytrace=False)
