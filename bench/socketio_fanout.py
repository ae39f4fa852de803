"""``python bench/socketio_fanout.py``: fan-out over ``/socket.io/`` against ``/ws/``, one daphne server.

Starts a private redis-server and ``manage.py serve`` on a private SQLite database,
connects N WebSocket clients of one protocol (raw frames over ``websockets``, in this
process), each subscribed to ``inventory:all``, and publishes R rounds of one event
through the Redis channel layer. Per round: the time from publish to the LAST client's
receipt; p50 and p99 over rounds; the server's CPU time per delivery. Then the same
for the other protocol, on the same server. Prints one table. Every wait is bounded.
"""
import argparse
import asyncio
import json
import os
from pathlib import Path
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import websockets  # noqa: E402

from tests.servers import RedisProcess, free_port, wait_for_port  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
SETUP = """
import json, sys
from django.contrib.auth.models import Permission, User
from rest_framework_simplejwt.tokens import AccessToken
perm = Permission.objects.get(codename="view_inventorylevel")
tokens = []
for i in range(int(sys.argv[-1]) // 10 + 1):  # 10 sockets per user: under MAX_CONNECTIONS_PER_USER
    user, _ = User.objects.get_or_create(username=f"bench{i}")
    user.user_permissions.add(perm)
    tokens.append(str(AccessToken.for_user(user)))
print(json.dumps({"tokens": tokens}))
"""


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class Client:
    def __init__(self, ws, protocol: str) -> None:
        self.ws, self.protocol = ws, protocol
        self.received: dict[int, float] = {}

    @classmethod
    async def open(cls, base: str, protocol: str, token: str) -> "Client":
        if protocol == "native":
            ws = await websockets.connect(f"{base}/ws/?token={token}", ping_interval=None, max_queue=None)
            while json.loads(await ws.recv()).get("event") != "connected":
                pass
            await ws.send(json.dumps({"event": "subscribe:inventory", "ack": 1}))
            while json.loads(await ws.recv()).get("ack") != 1:
                pass
        else:
            ws = await websockets.connect(f"{base}/socket.io/?EIO=4&transport=websocket&token={token}",
                                          ping_interval=None, max_queue=None)
            await ws.recv()  # Engine.IO open
            await ws.send("40")
            while not (await ws.recv()).startswith("40"):
                pass
            await ws.send('421["subscribe:inventory"]')
            while not (await ws.recv()).startswith("431"):
                pass
        client = cls(ws, protocol)
        client.task = asyncio.ensure_future(client.read())
        return client

    async def read(self) -> None:
        try:
            async for frame in self.ws:
                now = time.time()
                if frame == "2":
                    await self.ws.send("3")
                    continue
                if self.protocol == "native":
                    data = json.loads(frame).get("data") or {}
                else:
                    if not frame.startswith('42["inventory:updated"'):
                        continue
                    data = json.loads(frame[2:])[1]["data"]
                if "seq" in data:
                    self.received[data["seq"]] = now
        except websockets.ConnectionClosed:
            pass


async def measure(base: str, protocol: str, tokens: list[str], n: int, rounds: int, layer, server_pid: int) -> dict:
    from django_oda_realtime.events import Event
    from django_oda_realtime.rooms import group_for

    clients = []
    for i in range(0, n, 50):
        clients += await asyncio.gather(*(Client.open(base, protocol, tokens[(i + k) // 10]) for k in range(min(50, n - i))))
    await asyncio.sleep(0.5)
    latencies, lost = [], 0
    cpu_before = cpu_seconds(server_pid)
    for seq in range(rounds):
        sent = time.time()
        event = Event.build("inventory:updated", {"seq": seq, "sentAt": sent}, ["inventory:all"])
        await layer.group_send(group_for("inventory:all"), event.to_layer())
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not all(seq in c.received for c in clients):
            await asyncio.sleep(0.002)
        got = [c.received[seq] for c in clients if seq in c.received]
        lost += n - len(got)
        if got:
            latencies.append(max(got) - sent)
        await asyncio.sleep(0.05)
    cpu = cpu_seconds(server_pid) - cpu_before
    for c in clients:
        await c.ws.close()
        c.task.cancel()
    latencies.sort()
    return {
        "protocol": protocol, "clients": n, "rounds": rounds,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "server_cpu_us_per_delivery": cpu / (n * rounds) * 1e6, "lost": lost,
    }


async def main(n: int, rounds: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oda_realtime.settings")
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnop")
    import django

    django.setup()
    from channels_redis.pubsub import RedisPubSubChannelLayer

    redis = RedisProcess().start()
    db = tempfile.NamedTemporaryFile(prefix="bench-sio-", suffix=".sqlite3", delete=False).name
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}", "REDIS_URL": redis.url, "CHANNEL_LAYER_PREFIX": "bench",
           "LOG_LEVEL": "WARNING"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", SETUP.replace("sys.argv[-1]", str(n))],
                         cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    tokens = json.loads(out.strip().splitlines()[-1])["tokens"]  # the last line: shell may print its own first
    port = free_port()
    server = subprocess.Popen([sys.executable, "manage.py", "serve", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    layer = RedisPubSubChannelLayer(hosts=[{"address": redis.url}], prefix="bench")
    try:
        wait_for_port(port, proc=server)
        rows = []
        for protocol in ("native", "socketio", "native", "socketio"):  # twice, interleaved
            rows.append(await measure(f"ws://127.0.0.1:{port}", protocol, tokens, n, rounds, layer, server.pid))
    finally:
        await layer.flush()
        server.terminate()
        server.wait(10)
        redis.stop()
        os.unlink(db)
    print(f"fan-out to {n} WebSocket clients, {rounds} rounds, one daphne process (manage.py serve), Redis pub/sub layer")
    print(f"{'protocol':<10}{'p50 ms':>10}{'p99 ms':>10}{'server CPU µs/delivery':>26}{'lost':>6}")
    for r in rows:
        print(f"{r['protocol']:<10}{r['p50_ms']:>10.1f}{r['p99_ms']:>10.1f}{r['server_cpu_us_per_delivery']:>26.0f}{r['lost']:>6}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    asyncio.run(main(args.clients, args.rounds))
