"""Web Push end to end against a local push service that verifies VAPID and decrypts each payload
(tests/notifications/push_service.py): nothing of pywebpush, py-vapid or http-ece is mocked."""
import asyncio
from datetime import timedelta
import io
import os
import subprocess
import json
import sys
import time
import uuid

from channels.db import database_sync_to_async as db
from django.core.management import call_command
from django.utils import timezone
import pytest
from rest_framework.test import APIClient
import websockets

from notifications import services, webpush
from notifications.models import PushDelivery, PushSubscription
from tests.conftest import require_redis, token_for
from tests.domain import subscribe as subscribe_topic
from tests.servers import ROOT, database_url, free_port
from tests.socketio.conftest import socketio_server, use_layer

from .push_service import Browser, PushService, b64url, decrypted

pytestmark = pytest.mark.django_db(transaction=True)

SUBS, PREFS, KEY = "/api/notifications/push/subscriptions/", "/api/notifications/push/preferences/", "/api/notifications/push/key/"


def api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
    return client


@pytest.fixture
def vapid(settings) -> dict:
    """Keys from ``manage.py webpush_keys``, as an operator would set them."""
    out = io.StringIO()
    call_command("webpush_keys", stdout=out)
    keys = dict(line.split("=", 1) for line in out.getvalue().split())
    settings.WEBPUSH_VAPID_PRIVATE_KEY = keys["WEBPUSH_VAPID_PRIVATE_KEY"]
    settings.WEBPUSH_VAPID_PUBLIC_KEY = keys["WEBPUSH_VAPID_PUBLIC_KEY"]
    settings.WEBPUSH_VAPID_SUBJECT = "mailto:ops@shop.example.com"
    settings.WEBPUSH_ALLOW_HTTP_ENDPOINTS = True  # the local push service is plain http
    return keys


@pytest.fixture
def push():
    with PushService() as service:
        yield service


@pytest.fixture
def ada(make_user):
    return make_user("ada")


def subscribe(user, push, name) -> Browser:
    browser = Browser()
    answer = api(user).post(SUBS, {"endpoint": push.endpoint(name), "keys": browser.keys(), "expirationTime": None},
                            format="json")
    assert answer.status_code == 201, answer.content
    return browser


async def resumable(user, expected: bool, timeout: float = 10.0) -> bool:
    """Wait until the user has (or has not) a resumable session; True once it is as ``expected``."""
    deadline = time.monotonic() + timeout
    while await db(webpush.has_resumable_session)(user.pk) != expected:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


def alert(user, title="5 failed logins"):
    services.security_alert("failed_logins", title, "Someone keeps trying", user_id=user.pk, username=user.username)


def test_an_offline_user_gets_the_notification_encrypted_and_signed_from_the_worker(vapid, push, ada):
    browser = subscribe(ada, push, "ada-laptop")
    alert(ada)
    assert PushDelivery.objects.count() == 1
    # The real worker command, in its own process, as deployed (docs/notifications.md, Worker jobs).
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
           "DJANGO_SETTINGS_MODULE": "oda_realtime.settings", "DATABASE_URL": database_url(), **vapid,
           "WEBPUSH_VAPID_SUBJECT": "mailto:ops@shop.example.com"}
    env.pop("REDIS_URL", None)
    done = subprocess.run([sys.executable, "manage.py", "realtime_worker", "--once", "--job", "notifications.webpush"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert push.wait_for(1) and push.problems == [], (push.problems, done.stdout, done.stderr)
    (got,) = push.received
    message = decrypted(browser, got)
    assert message["event"] == "notification" and message["type"] == "security:alert"
    assert message["data"]["title"] == "5 failed logins" and message["data"]["alert"] == "failed_logins"
    assert got.vapid_key == vapid["WEBPUSH_VAPID_PUBLIC_KEY"]
    assert got.claims["sub"] == "mailto:ops@shop.example.com" and got.claims["aud"] == push.origin
    assert int(got.headers["ttl"]) > 0
    assert PushDelivery.objects.count() == 0


def test_a_broadcast_goes_to_every_subscription(vapid, push, ada, make_user):
    laptop, phone = subscribe(ada, push, "ada-laptop"), subscribe(ada, push, "ada-phone")
    bob = subscribe(make_user("bob"), push, "bob")
    services.announce("Checkout is read-only at 02:00", kind="maintenance", title="Maintenance")
    assert webpush.deliver_due() == 3
    got = {r.path.rsplit("/", 1)[-1]: r for r in push.wait_for(3)}
    for name, browser in (("ada-laptop", laptop), ("ada-phone", phone), ("bob", bob)):
        assert decrypted(browser, got[name])["data"]["title"] == "Maintenance"


@pytest.mark.parametrize("status", [404, 410])
def test_a_gone_subscription_is_deleted(vapid, push, ada, status):
    subscribe(ada, push, "old")
    push.status["old"] = status
    alert(ada)
    webpush.deliver_due()
    assert len(push.wait_for(1)) == 1
    assert PushSubscription.objects.count() == 0 and PushDelivery.objects.count() == 0


@pytest.mark.parametrize("status", [429, 500, 503])
def test_failures_are_retried_with_backoff(vapid, push, ada, status):
    browser = subscribe(ada, push, "busy")
    push.status["busy"] = status
    alert(ada)
    webpush.deliver_due()
    delivery = PushDelivery.objects.get()
    assert delivery.attempts == 1 and delivery.last_error == f"HTTP {status}"
    assert delivery.due_at > timezone.now() + timedelta(seconds=20)  # backoff: not retried at once
    assert webpush.deliver_due() == 0
    PushDelivery.objects.update(due_at=timezone.now())
    webpush.deliver_due()
    assert PushDelivery.objects.get().attempts == 2
    push.status["busy"] = 201
    PushDelivery.objects.update(due_at=timezone.now())
    webpush.deliver_due()
    assert PushDelivery.objects.count() == 0
    assert decrypted(browser, push.wait_for(3)[-1])["data"]["title"] == "5 failed logins"
    assert PushSubscription.objects.count() == 1


def test_a_retry_after_longer_than_the_backoff_is_respected(vapid, push, ada):
    subscribe(ada, push, "slow")
    push.status["slow"], push.retry_after["slow"] = 429, "3600"
    alert(ada)
    webpush.deliver_due()
    assert PushDelivery.objects.get().due_at > timezone.now() + timedelta(minutes=59)


def test_an_unreachable_push_service_is_retried_and_given_up_after_max_attempts(vapid, ada, settings):
    settings.WEBPUSH_MAX_ATTEMPTS = 2
    browser = Browser()
    webpush.subscribe(ada, f"http://127.0.0.1:{free_port()}/push/x", **browser.keys())
    alert(ada)
    webpush.deliver_due()
    delivery = PushDelivery.objects.get()
    assert delivery.attempts == 1 and delivery.last_error == "ConnectionError"
    PushDelivery.objects.update(due_at=timezone.now())
    webpush.deliver_due()
    assert PushDelivery.objects.count() == 0 and PushSubscription.objects.count() == 1


def test_push_can_be_turned_off_per_kind(vapid, push, ada):
    subscribe(ada, push, "ada")
    answer = api(ada).put(PREFS, {"security:alert": False}, format="json")
    assert answer.status_code == 200
    assert answer.json() == {"user:activity": True, "system:event": True, "system:maintenance": True,
                             "security:alert": False}
    alert(ada)
    assert PushDelivery.objects.count() == 0
    services.announce("New collection", kind="event")
    assert PushDelivery.objects.count() == 1
    assert api(ada).get(PREFS).json()["security:alert"] is False
    assert api(ada).patch(PREFS, {"security:alert": True}, format="json").json()["security:alert"] is True
    alert(ada)
    assert PushDelivery.objects.count() == 2


@pytest.mark.parametrize("body", [{"nope": False}, {"security:alert": "no"}, [], {}],
                         ids=["unknown-kind", "not-bool", "list", "empty"])
def test_bad_preferences_are_400(ada, body):
    answer = api(ada).put(PREFS, body, format="json")
    assert answer.status_code == 400, answer.content
    assert api(ada).get(PREFS).json()["security:alert"] is True


@pytest.mark.redis
async def test_no_push_while_the_user_has_a_socket_open(vapid, push, ada, settings, redis_url, layer_prefix, connect):
    # Presence across processes (django_oda_realtime/presence.py): the worker sees this socket in Redis.
    # A closed socket's session stays resumable for HISTORY_WINDOW (then a push would wait): 1 s here.
    settings.REALTIME = {**settings.REALTIME, "PRESENCE_REDIS_URL": redis_url, "PRESENCE_PREFIX": f"p-{layer_prefix}",
                         "HISTORY_WINDOW": 1.0}
    webpush._presence.cache_clear()
    try:
        browser = await db(subscribe)(ada, push, "ada")
        sock = await connect(token_for(ada))
        await subscribe_topic(sock, "notifications", rooms=[f"notifications:{ada.pk}", "broadcast"])
        await db(alert)(ada, "while online")
        assert await db(webpush.deliver_due)() == 1
        await sock.receive_event("notification")  # the socket delivered it ...
        assert await db(PushDelivery.objects.count)() == 0  # ... and no push was sent
        await sock.close()
        assert await resumable(ada, False)
        await db(alert)(ada, "while offline")
        await db(webpush.deliver_due)()
        (got,) = push.wait_for(1)
        assert decrypted(browser, got)["data"]["title"] == "while offline"
    finally:
        webpush._presence.cache_clear()


def test_the_public_key_is_served(vapid, client, settings):
    assert client.get(KEY).json() == {"publicKey": vapid["WEBPUSH_VAPID_PUBLIC_KEY"]}
    settings.WEBPUSH_VAPID_PUBLIC_KEY = ""
    assert client.get(KEY).status_code == 503


def test_subscribe_again_and_unsubscribe(vapid, push, ada, make_user):
    browser = subscribe(ada, push, "ada")
    again = api(ada).post(SUBS, {"endpoint": push.endpoint("ada"), "keys": browser.keys()}, format="json")
    assert again.status_code == 200 and PushSubscription.objects.count() == 1
    bob = make_user("bob")
    assert api(bob).delete(SUBS, {"endpoint": push.endpoint("ada")}, format="json").status_code == 404
    assert PushSubscription.objects.count() == 1  # someone else's subscription stays
    assert api(ada).delete(SUBS, {"endpoint": push.endpoint("ada")}, format="json").status_code == 204
    assert PushSubscription.objects.count() == 0


@pytest.mark.parametrize("body, code", [
    ({}, 400), ({"endpoint": ""}, 400), ({"endpoint": ["x"]}, 400), ({"endpoint": None}, 400),
    ({"endpoint": "https://push.example.com/" + "a" * 1000}, 400),
    ({"endpoint": "https://push.example.com/never-registered"}, 404),
], ids=["missing", "blank", "list", "null", "too-long", "unknown"])
def test_bad_unsubscribes_are_4xx_and_delete_nothing(vapid, push, ada, body, code):
    subscribe(ada, push, "ada")
    answer = api(ada).delete(SUBS, body, format="json")
    assert answer.status_code == code, answer.content
    assert ("endpoint" in answer.json()) if code == 400 else answer.json()["code"] == "not_found"
    assert PushSubscription.objects.filter(user=ada).count() == 1


def _not_on_curve() -> str:
    return b64url(b"\x04" + b"\x01" * 64)


@pytest.mark.parametrize("change, field", [
    ({"endpoint": "http://push.example.com/x"}, "endpoint"),
    ({"endpoint": "https://push.example.com/" + "a" * 1000}, "endpoint"),
    ({"endpoint": "ftp://push.example.com/x"}, "endpoint"),
    ({"endpoint": "https:///nohost"}, "endpoint"),
    ({"endpoint": 42}, "endpoint"),
    ({"keys": {"p256dh": "not base64!", "auth": b64url(b"a" * 16)}}, "keys"),
    ({"keys": {"p256dh": b64url(b"\x04" + b"\x01" * 10), "auth": b64url(b"a" * 16)}}, "keys"),
    ({"keys": {"p256dh": _not_on_curve(), "auth": b64url(b"a" * 16)}}, "keys"),
    ({"keys": {"auth": b64url(b"a" * 16)}}, "keys"),
    ("auth15", "keys"),
    ("auth17", "keys"),
    ({"keys": None}, "keys"),
], ids=["http", "too-long", "ftp", "no-host", "not-string", "p256dh-not-base64", "p256dh-short", "p256dh-off-curve",
        "p256dh-missing", "auth-15-bytes", "auth-17-bytes", "keys-null"])
def test_malformed_subscriptions_are_400_and_store_nothing(ada, change, field, settings):
    settings.WEBPUSH_ALLOW_HTTP_ENDPOINTS = False  # production: https only
    body = {"endpoint": "https://push.example.com/send/abc", "keys": Browser().keys()}
    if change in ("auth15", "auth17"):
        body["keys"]["auth"] = b64url(b"a" * int(change[-2:]))
    else:
        body.update(change)
    answer = api(ada).post(SUBS, body, format="json")
    assert answer.status_code == 400, answer.content
    assert field in answer.json()
    assert PushSubscription.objects.count() == 0


def test_a_valid_https_subscription_is_accepted_in_production(ada, settings):
    settings.WEBPUSH_ALLOW_HTTP_ENDPOINTS = False
    body = {"endpoint": "https://fcm.googleapis.com/fcm/send/abc:def", "keys": Browser().keys()}
    assert api(ada).post(SUBS, body, format="json").status_code == 201


@pytest.fixture
def resume_server(settings):
    """A real server on Redis, this process publishing on its layer and history (the resume session
    store is that Redis: what the worker reads)."""
    require_redis(settings.TEST_REDIS_URL)
    prefix = f"wpr{uuid.uuid4().hex[:10]}"
    use_layer(settings, settings.TEST_REDIS_URL, prefix)
    started = []

    def start(**realtime):
        started.append(socketio_server(settings.TEST_REDIS_URL, prefix, realtime=realtime).start())
        return started[-1]

    yield start
    for server in started:
        server.stop()


async def connect_and_leave(server, user) -> dict:
    """Open /ws/, subscribe to the user's notifications, close: a resumable session is left."""
    ws = await websockets.connect(f"{server.ws_url}/ws/?token={token_for(user)}", proxy=None)
    hello = json.loads(await ws.recv())["data"]
    await ws.send(json.dumps({"event": "subscribe:notifications", "data": None, "ack": 1}))
    reply = json.loads(await ws.recv())
    assert f"notifications:{user.pk}" in reply["data"]["rooms"], reply
    await ws.close()
    return hello


def queued_until(user):
    return list(PushDelivery.objects.filter(subscription__user=user).values_list("due_at", flat=True))


@pytest.mark.redis
async def test_a_user_who_can_resume_gets_the_replay_not_a_push(vapid, push, ada, resume_server):
    server = resume_server()
    await db(subscribe)(ada, push, "ada")
    hello = await connect_and_leave(server, ada)
    assert await resumable(ada, True)
    await db(alert)(ada, "while away")
    assert await db(webpush.deliver_due)() == 1
    (due,) = await db(queued_until)(ada)  # kept, not sent: due once the session has expired
    assert due > timezone.now() + timedelta(seconds=60)
    assert push.received == []
    query = f"token={token_for(ada)}&resume={hello['sessionId']}&position={hello['position']}"
    async with websockets.connect(f"{server.ws_url}/ws/?{query}", proxy=None) as ws:
        connected = json.loads(await ws.recv())
        assert connected["data"]["recovered"] is True, connected
        async with asyncio.timeout(10):
            while (frame := json.loads(await ws.recv())).get("event") != "notification":
                pass
        assert frame["data"]["title"] == "while away"
    assert push.received == []


@pytest.mark.redis
async def test_a_user_whose_sessions_expired_gets_the_push(vapid, push, ada, resume_server):
    server = resume_server(HISTORY_WINDOW=2.0)  # sessions expire 2 s after the socket's last write
    browser = await db(subscribe)(ada, push, "ada")
    await connect_and_leave(server, ada)
    await db(alert)(ada, "while gone")
    await db(webpush.deliver_due)()
    assert push.received == [] and len(await db(queued_until)(ada)) == 1  # resumable yet: waits
    assert await resumable(ada, False)
    deadline = time.monotonic() + 10
    while not push.received and time.monotonic() < deadline:  # due 1 s after the expiry
        await db(webpush.deliver_due)()
        await asyncio.sleep(0.2)
    (got,) = push.wait_for(1)
    assert decrypted(browser, got)["data"]["title"] == "while gone"
    assert await db(queued_until)(ada) == []
