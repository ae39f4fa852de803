"""Resume benchmark (issue 13): replay rate to one client, and many clients resuming after a restart.

Against a real ``manage.py serve`` on a private redis-server and a private SQLite database, with
Python ``websockets`` clients on ``/ws/`` (docs/protocol.md#resume), it prints:

1. **Replay rate to one client**: a client subscribed to ``inventory:all`` disconnects, ``--replay``
   events are published, it reconnects with ``?resume=&position=``; events/s from the reconnect
   until the last missed event is read.
2. **Clients resuming after a restart**: ``--clients`` clients (one user each) connected and
   subscribed; the server is SIGKILLed, ``--missed`` events are published while it is down, the
   server is started again and every client reconnects at once with its session id and position:
   seconds from the server listening again until every client is live (``recovered: true``) with
   every missed event, each once and in order (checked).

    .venv/bin/python -m bench.resume                                  # full: 1,000 clients
    .venv/bin/python -m bench.resume --clients 50 --missed 20 --replay 2000   # a smoke run

Nothing is shared with other work: the redis-server, database and port are private.
"""
import argparse
import asyncio
import json
import os
from pathlib import Path
import secrets
import subprocess
import sys
import tempfile
import time

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import STACKS, Server, raise_fd_limit  # noqa: E402
from tests.servers import RedisProcess  # noqa: E402

PY = sys.executable
ROOM = "inventory:all"
EVENT = "inventory:updated"
SUBSCRIBE = json.dumps({"event": "subscribe:inventory", "data": {}, "ack": 1})


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Client:
    """One ``/ws/`` client that remembers its session id and last position."""

    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token
        self.ws = None
        self.session = self.position = None
        self.numbers: list[int] = []
        self.recovered = None

    async def connect(self, resume: bool = False, attempts: int = 20) -> None:
        """Connect (resuming with ``resume``), retrying as a client does when a burst of connects
        is refused or cut off during the handshake (the listen backlog is full)."""
        import websockets

        for attempt in range(attempts):
            try:
                return await self._connect(resume)
            except (OSError, asyncio.TimeoutError, websockets.InvalidHandshake) as e:
                if attempt == attempts - 1:
                    raise RuntimeError(f"could not connect: {e!r}") from e
                await asyncio.sleep(0.2)

    async def _connect(self, resume: bool) -> None:
        import websockets

        query = f"token={self.token}"
        if resume:
            query += f"&resume={self.session}&position={self.position}"
        self.ws = await websockets.connect(f"ws://127.0.0.1:{self.port}/ws/?{query}", proxy=None, open_timeout=60,
                                           ping_interval=None, max_queue=None)
        hello = json.loads(await self.ws.recv())
        if hello.get("event") != "connected":
            raise RuntimeError(f"not connected: {hello}")
        data = hello["data"]
        self.session, self.position, self.recovered = data["sessionId"], data["position"], data["recovered"]

    async def subscribe(self) -> None:
        await self.ws.send(SUBSCRIBE)
        while True:
            frame = json.loads(await self.ws.recv())
            if frame.get("ack") == 1:
                if frame.get("error"):
                    raise RuntimeError(f"subscribe refused: {frame['error']}")
                return

    async def read_events(self, count: int) -> None:
        while len(self.numbers) < count:
            frame = json.loads(await self.ws.recv())
            if frame.get("event") == EVENT:
                self.numbers.append(frame["data"]["n"])
                self.position = frame["position"]

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


async def publish(count: int) -> float:
    """``count`` events to ROOM through the event history (as ``publish()`` sends them); seconds taken."""
    from django_oda_realtime.events import Event
    from django_oda_realtime.history import make_history

    history = make_history()
    t0 = time.perf_counter()
    for n in range(count):
        await history.publish(Event.build(EVENT, {"n": n, "sku": "SKU-1", "available": n % 100}, [ROOM]))
    return time.perf_counter() - t0


async def gather_bounded(coros, limit: int):
    semaphore = asyncio.Semaphore(limit)

    async def run(coro):
        async with semaphore:
            return await coro

    return await asyncio.gather(*(run(c) for c in coros))


async def replay_rate(port: int, token: str, count: int) -> str:
    client = Client(port, token)
    await client.connect()
    await client.subscribe()
    await client.close()
    took = await publish(count)
    log(f"published {count} events while the client was away ({count / took:,.0f}/s)")
    t0 = time.perf_counter()
    await client.connect(resume=True)
    await client.read_events(count)
    elapsed = time.perf_counter() - t0
    await client.close()
    if not client.recovered or client.numbers != list(range(count)):
        raise RuntimeError("the replay was not every event once in order")
    return f"replay to one client: {count:,} events in {elapsed:.2f} s = {count / elapsed:,.0f} events/s (reconnect included)"


async def restart_resume(server: Server, tokens: list[str], missed: int) -> str:
    clients = [Client(server.port, token) for token in tokens]
    t0 = time.perf_counter()
    await gather_bounded([c.connect() for c in clients], 100)
    await gather_bounded([c.subscribe() for c in clients], 100)
    log(f"{len(clients)} clients connected and subscribed in {time.perf_counter() - t0:.1f} s")
    server.proc.kill()  # SIGKILL: no drain, no close frames
    server.proc.wait(10)
    log(f"server SIGKILLed; publishing {missed} events while it is down")
    await publish(missed)
    for c in clients:
        c.ws = None  # its TCP connection died with the server
    server.start()
    t0 = time.perf_counter()
    done: list[float] = []

    async def resume(client: Client) -> None:
        await client.connect(resume=True)
        await client.read_events(missed)
        done.append(time.perf_counter() - t0)

    await asyncio.gather(*(resume(c) for c in clients))
    elapsed = max(done)
    recovered = sum(1 for c in clients if c.recovered)
    exact = sum(1 for c in clients if c.numbers == list(range(missed)))
    await gather_bounded([c.close() for c in clients], 200)
    if recovered != len(clients) or exact != len(clients):
        raise RuntimeError(f"recovered {recovered}, every event once in order {exact}, of {len(clients)}")
    done.sort()
    return (f"{len(clients):,} clients resuming after a SIGKILL + restart, {missed} missed events each: all live "
            f"with every missed event in {elapsed:.2f} s (median client {done[len(done) // 2]:.2f} s); "
            f"recovered {recovered}/{len(clients)}, every event once in order {exact}/{len(clients)}")


async def amain(args) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="oda-resume-bench-"))
    redis = RedisProcess().start()
    server = None
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_"))}
        env.update(
            DJANGO_SETTINGS_MODULE="oda_realtime.settings",
            DJANGO_SECRET_KEY=secrets.token_urlsafe(48),
            DATABASE_URL=f"sqlite:///{workdir / 'bench.sqlite3'}",
            REDIS_URL=redis.url,
            CHANNEL_LAYER_PREFIX=f"bench{secrets.token_hex(4)}",
            REALTIME_CHANNEL_LAYER=args.layer,
            LOG_LEVEL="WARNING",
            # The clients send no heartbeat pings: with 1,000 resuming at once on 2 cores a socket
            # may wait longer than the default idle timeout for its replay (4013 seen in a run).
            REALTIME_IDLE_TIMEOUT="600",
            PYTHONUNBUFFERED="1",
            PYTHONPATH=str(ROOT),
        )
        log("preparing the private database and the bench users")
        subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        token_file = workdir / "tokens.txt"
        subprocess.run([PY, "-m", "bench.bench_users", str(args.clients + 1), str(token_file)], cwd=ROOT, env=env,
                       check=True)
        tokens = token_file.read_text().split()
        os.environ.update(env)  # this process publishes on the servers' layer and history
        import django

        django.setup()
        server = Server(STACKS["ours-daphne"], env, workdir).start()
        lines = [await replay_rate(server.port, tokens[-1], args.replay),
                 await restart_resume(server, tokens[:args.clients], args.missed)]
    finally:
        if server is not None:
            server.stop()
        redis.stop()
    print(f"\nResume benchmark (channel layer {args.layer}; load average before: {args.load:.2f})")
    print(f"command: python -m bench.resume {' '.join(sys.argv[1:])}".rstrip())
    for line in lines:
        print(f"- {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--missed", type=int, default=100, help="events published while the server is down")
    parser.add_argument("--replay", type=int, default=20000, help="events replayed to the one client")
    parser.add_argument("--layer", choices=["pubsub", "core"], default="pubsub")
    args = parser.parse_args()
    args.load = os.getloadavg()[0]
    raise_fd_limit(args.clients * 2 + 1024)
    asyncio.run(amain(args))


if __name__ == "__main__":
    main()
