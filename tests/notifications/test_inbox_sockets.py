"""Marking read on one device reaches the user's other open sockets: real daphne processes on Redis,
real WebSocket clients, the REST call over HTTP (docs/notifications.md, *Inbox*)."""
import asyncio
import json
import urllib.request

from channels.db import database_sync_to_async as db
import pytest
import websockets

from notifications import services
from notifications.models import Notification
from tests.servers import ServerProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


async def open_socket(url: str, raw: str):
    ws = await websockets.connect(f"{url}/ws/?token={raw}")
    async with asyncio.timeout(10):
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("event") == "connected":
                return ws, frame["data"]


async def next_event(ws, name: str) -> dict:
    async with asyncio.timeout(10):
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("event") == name:
                return frame


def post(url: str, raw: str, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body or {}).encode(), method="POST", headers={
        "Authorization": f"Bearer {raw}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def alerts(user, count: int) -> list[str]:
    for i in range(count):
        services.security_alert("failed_logins", f"alert {i}", user_id=user.pk, username=user.username)
    return [str(pk) for pk in Notification.objects.filter(user=user).order_by("pk").values_list("pk", flat=True)]


async def test_mark_read_on_one_device_updates_the_other_socket(redis_url, layer_prefix, make_user, token):
    ada = await db(make_user)("ada")
    raw = token(ada)
    ids = await db(alerts)(ada, 3)
    with ServerProcess(redis_url=redis_url, layer_prefix=layer_prefix) as laptop, \
            ServerProcess(redis_url=redis_url, layer_prefix=layer_prefix) as phone:
        (ws_laptop, hello), (ws_phone, _) = await open_socket(laptop.ws_url, raw), await open_socket(phone.ws_url, raw)
        try:
            assert hello["unreadCount"] == 3
            status, body = await asyncio.to_thread(post, f"{laptop.url}/api/notifications/read/", raw, {"ids": ids[:2]})
            assert (status, body) == (200, {"unreadCount": 1})
            frame = await next_event(ws_phone, "notifications:read")  # the other device, another process
            assert frame["data"] == {"ids": ids[:2], "all": False, "unreadCount": 1}

            status, _ = await asyncio.to_thread(post, f"{phone.url}/api/notifications/read-all/", raw)
            assert status == 200
            own = await next_event(ws_laptop, "notifications:read")  # the device that marked hears it too
            assert own["data"]["ids"] == ids[:2]
            frame = await next_event(ws_laptop, "notifications:read")
            assert frame["data"] == {"ids": None, "all": True, "unreadCount": 0}
        finally:
            await ws_laptop.close()
            await ws_phone.close()
