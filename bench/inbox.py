"""Inbox mark-read fan-out: how long after a mark-read request the user's other device hears it.

``python bench/inbox.py [--n 200] [--redis redis://127.0.0.1:6379/0]`` creates a scratch database
(``BENCH_DATABASE_URL``, default ``postgres://postgres@127.0.0.1:5432/oda_bench_inbox``), migrates it,
starts two daphne processes (``manage.py serve``) on Redis, opens one WebSocket per process for the
same user (a laptop and a phone), then ``n`` times: stores a security alert for the user, POSTs
``/api/notifications/read/`` for it to the laptop's process, and times until the phone's socket
receives ``notifications:read`` naming it (docs/notifications.md, *Inbox*).

Prints p50/p90/p99/max of the delay request sent -> other socket received (and -> both response and
event in).
"""
import argparse
import asyncio
import json
from pathlib import Path
import statistics
import sys
import time
import urllib.request
import uuid

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import fresh_db  # noqa: E402


def figures(samples: list[float]) -> str:
    s = sorted(samples)
    pick = lambda q: s[min(len(s) - 1, int(len(s) * q))]  # noqa: E731
    return (f"p50 {statistics.median(s) * 1e3:6.1f} ms  p90 {pick(0.9) * 1e3:6.1f} ms  "
            f"p99 {pick(0.99) * 1e3:6.1f} ms  max {s[-1] * 1e3:6.1f} ms")


def post(url: str, raw: str, body: dict) -> int:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
        "Authorization": f"Bearer {raw}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
        return response.status


async def open_socket(ws_url: str, raw: str):
    import websockets

    ws = await websockets.connect(f"{ws_url}/ws/?token={raw}")
    async with asyncio.timeout(10):
        while json.loads(await ws.recv()).get("event") != "connected":
            pass
    return ws


async def run(n: int, redis_url: str) -> None:
    from asgiref.sync import sync_to_async
    from django.contrib.auth import get_user_model
    from rest_framework_simplejwt.tokens import AccessToken

    from notifications import services
    from notifications.models import Notification
    from tests.servers import ServerProcess

    user = await sync_to_async(get_user_model().objects.create_user)("bench-inbox", password="pw-123456")
    raw = str(AccessToken.for_user(user))
    prefix = f"bench{uuid.uuid4().hex[:8]}"

    def new_alert() -> str:
        services.security_alert("bench", "Bench alert", user_id=user.pk, username=user.username)
        return str(Notification.objects.filter(user=user).latest("pk").pk)

    with ServerProcess(redis_url=redis_url, layer_prefix=prefix) as laptop, \
            ServerProcess(redis_url=redis_url, layer_prefix=prefix) as phone:
        ws_phone = await open_socket(phone.ws_url, raw)
        requests, delays = [], []
        try:
            for i in range(n + 10):  # 10 warm-up rounds
                nid = await sync_to_async(new_alert)()
                t0 = time.perf_counter()
                sent = asyncio.create_task(asyncio.to_thread(post, f"{laptop.url}/api/notifications/read/", raw,
                                                             {"ids": [nid]}))
                async with asyncio.timeout(10):
                    while True:
                        frame = json.loads(await ws_phone.recv())
                        if frame.get("event") == "notifications:read" and frame["data"]["ids"] == [nid]:
                            break
                delay = time.perf_counter() - t0
                assert await sent == 200
                request = time.perf_counter() - t0
                if i >= 10:
                    delays.append(delay)
                    requests.append(request)
        finally:
            await ws_phone.close()
    print(f"inbox mark-read, {n} rounds, two daphne processes on Redis (laptop marks, phone hears)")
    print(f"  request sent -> other socket received:  {figures(delays)}")
    print(f"  request sent -> response and event both in: {figures(requests)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    fresh_db.prepare("oda_bench_inbox", log_level="ERROR")

    asyncio.run(run(args.n, args.redis))


if __name__ == "__main__":
    main()
