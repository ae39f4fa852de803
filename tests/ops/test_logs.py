"""Logs for a pipeline (issue #17): a full run through a real server with ``LOG_FORMAT=json`` (login,
a failed login, both socket protocols, logout, a webhook, the drain): every line of its output is
JSON, HTTP lines carry a request id, socket lines the connection id, user id and client address,
and no token, password or secret appears anywhere."""
import asyncio
from datetime import datetime, timezone
import json
import re
import signal
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from channels.db import database_sync_to_async
from django.contrib.auth.hashers import PBKDF2PasswordHasher
import pytest

from shopify_sync.webhooks import sign
from tests.hardening.support import connected
from tests.ops.support import json_lines
from tests.servers import StdoutServer
from tests.socketio_client.node import NodeClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.slow]

PASSWORD = "correct-horse-battery-417"
WRONG_PASSWORD = "wrong-password-zz-913"
WEBHOOK_SECRET = "whsec-logscan-5f0c2b7e91"
SECRET_KEY = "logscan-secret-key-" + uuid.uuid4().hex * 2


def http(url: str, data: dict | bytes | None = None, headers: dict | None = None) -> tuple[int, object, bytes]:
    body = urllib.parse.urlencode(data).encode() if isinstance(data, dict) else data
    request = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


async def test_a_full_run_logs_only_json_with_ids_and_never_a_secret(redis_url, make_user):
    user = await database_sync_to_async(make_user)("logscan")
    hasher = PBKDF2PasswordHasher()  # the server's hasher (the tests' MD5 is not in its list)
    user.password = hasher.encode(PASSWORD, hasher.salt())
    await database_sync_to_async(user.save)()
    server = StdoutServer(redis_url=redis_url, layer_prefix=f"logs{uuid.uuid4().hex[:8]}", env={
        "LOG_FORMAT": "json", "DJANGO_SECRET_KEY": SECRET_KEY, "SHOPIFY_WEBHOOK_SECRET": WEBHOOK_SECRET,
        # The test is the proxy: its X-Forwarded-For is believed, a client's own entry before it is not.
        "REALTIME_TRUSTED_PROXIES": "127.0.0.1",
    })
    server.start()
    try:
        status, headers, body = await asyncio.to_thread(
            http, server.url + "/api/auth/token/", {"username": "logscan", "password": PASSWORD},
            {"X-Request-ID": "req-login-1", "X-Forwarded-For": "6.6.6.6, 203.0.113.7"})
        assert status == 200 and headers["X-Request-ID"] == "req-login-1", body
        tokens = json.loads(body)
        access, refresh = tokens["access"], tokens["refresh"]

        status, headers, _ = await asyncio.to_thread(
            http, server.url + "/api/auth/token/", {"username": "logscan", "password": WRONG_PASSWORD},
            {"X-Request-ID": "bad id with spaces", "X-Forwarded-For": "198.51.100.9"})
        assert status == 401 and re.fullmatch(r"[0-9a-f]{32}", headers["X-Request-ID"])  # a new id, not theirs
        failed_id = headers["X-Request-ID"]

        ws = await connected(server, access)
        await ws.close()
        client = await NodeClient(server.url, {"transports": ["polling"], "query": {"token": access}}).start()
        await client.next("connect")
        await client.close()
        client = await NodeClient(server.url, {"auth": {"token": access}}).start()
        await client.next("connect")
        await client.next("upgrade")
        await client.close()

        webhook = json.dumps({"id": 1, "title": "Shirt", "variants": [], "updated_at": "2026-01-01T00:00:00Z"}).encode()
        status, _, _ = await asyncio.to_thread(http, server.url + "/shopify/webhooks/", webhook, {
            "Content-Type": "application/json", "X-Shopify-Topic": "products/update",
            "X-Shopify-Hmac-Sha256": sign(webhook, WEBHOOK_SECRET), "X-Shopify-Event-Id": "evt-logscan",
            "X-Shopify-Webhook-Id": "wh-logscan", "X-Shopify-Shop-Domain": "oda.myshopify.com",
            "X-Shopify-Triggered-At": datetime.now(timezone.utc).isoformat()})
        assert status == 200
        status, _, _ = await asyncio.to_thread(http, server.url + "/api/auth/logout/", {"refresh": refresh},
                                               {"Authorization": f"Bearer {access}"})
        assert status == 205
        server.proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(server.proc.wait, 15)
    finally:
        server.stop()

    output = server.output()
    assert Path(server.stderr.name).read_text() == ""  # everything on stdout
    for secret in (access, refresh, access.split(".")[2], refresh.split(".")[2], PASSWORD, WRONG_PASSWORD,
                   WEBHOOK_SECRET, SECRET_KEY, "token="):
        assert secret not in output, f"{secret[:12]}… is in the log"
    records = json_lines(output)  # every line

    http_lines = [r for r in records if r.get("action") == "http"]
    assert http_lines and all(r["request_id"] and r["path"] and r["status"] for r in http_lines)
    login = next(r for r in http_lines if r["request_id"] == "req-login-1")
    assert (login["path"], login["status"], login["client"]) == ("/api/auth/token/", 200, "203.0.113.7")
    failed = [r for r in records if r.get("action") == "login_failed"]
    assert len(failed) == 1
    assert (failed[0]["username"], failed[0]["client"], failed[0]["request_id"]) == ("logscan", "198.51.100.9", failed_id)

    sockets = [r for r in records if r.get("logger", "").startswith("realtime.") and r.get("connection_id")
               and r.get("protocol") in ("native", "socketio")]
    assert {r["protocol"] for r in sockets if r["action"] == "connect"} == {"native", "socketio"}
    assert all(r["user_id"] == str(user.pk) and r["client"] == "127.0.0.1" for r in sockets if r["action"] == "connect")
    engine = [r for r in records if r["logger"] == "realtime.engineio"]
    assert engine and all(r["connection_id"] and r["client"] == "127.0.0.1" for r in engine)
    assert any(r["logger"] == "realtime.access" and r.get("action") == "wsconnect" for r in records)
