"""Resume benchmark (issue 13): replay rate to one client, and many clients resuming after a restart.

Against a real ``manage.py serve`` on a private redis-server and a private SQLite database, for each
protocol (``--protocol ws|sio|both``): ``ws`` is Python ``websockets`` clients on ``/ws/``
(docs/protocol.md#resume), ``sio`` the real ``socket.io-client`` 4.8 from npm on ``/socket.io/``
(``bench/sio_resume_clients.mjs``; connection state recovery, docs/socketio.md#recovery: the client
keeps its pid and offset itself, ``socket.recovered`` says whether it was recovered). It prints:

1. **Replay rate to one client**: a client subscribed to ``inventory:all`` goes away, ``--replay``
   events are published, it comes back resuming its session (``/ws/``: ``?resume=&position=``;
   Socket.IO: ``socket.connect()``, pid and offset in its CONNECT); events/s from the reconnect
   until the last missed event is received.
2. **Clients resuming after a restart**: ``--clients`` clients (one user each) connected and
   subscribed; the server is SIGKILLed, ``--missed`` events are published while it is down, and the
   server is started again. Every client reconnects by itself as real ones do, from the moment its
   connection died: randomized exponential backoff, ``--reconnect-delay`` ms doubling up to
   ``--reconnect-delay-max`` ms, times 0.5-1.5 (socket.io-client's own backoff for ``sio``, the same
   rule in the bench for ``ws``). Seconds from the server listening again until every client is live
   with ``recovered: true`` and every missed event, each once and in order (checked). A client not
   there after ``--timeout`` s is printed with its state (recovered, events received, attempts,
   last error) and the run fails; the server's WARNING/ERROR lines are counted in any case.

    .venv/bin/python -m bench.resume                                  # full: 1,000 clients, both protocols
    .venv/bin/python -m bench.resume --clients 50 --missed 20 --replay 2000   # a smoke run

Nothing is shared with other work: the redis-server, database and port are private. Every client
comes from 127.0.0.1, so the server's per-address cap on pending Socket.IO sessions is lifted.

A full-size run (2026-11-28, 2 cores shared with other work, load average 3.1-4.8; docs/benchmarks.md):
ws replay 14,678 events/s, 1,000 clients all live 25.48 s after the restart (median 22.62 s);
sio replay 11,357 events/s, 1,000 clients all live 24.82 s (median 21.05 s); every client recovered
with every missed event once and in order.
"""
import argparse
import asyncio
from collections import Counter
import json
import os
from pathlib import Path
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import STACKS, Child, Server, raise_fd_limit  # noqa: E402
from tests.servers import RedisProcess  # noqa: E402

PY = sys.executable
ROOM = "inventory:all"
EVENT = "inventory:updated"
SUBSCRIBE = json.dumps({"event": "subscribe:inventory", "data": {}, "ack": 1})
SIO_CLIENTS = ROOT / "bench" / "sio_resume_clients.mjs"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Backoff:
    """Reconnection delays as socket.io-client computes them: ``delay * 2**attempt`` capped at
    ``delay_max``, times a random factor in 0.5-1.5."""

    def __init__(self, delay_ms: float, delay_max_ms: float) -> None:
        self.delay, self.delay_max = delay_ms / 1000, delay_max_ms / 1000

    def seconds(self, attempt: int) -> float:
        return min(self.delay * 2 ** attempt, self.delay_max) * random.uniform(0.5, 1.5)


class WsClient:
    """One ``/ws/`` client that remembers its session id and last position."""

    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token
        self.ws = None
        self.session = self.position = None
        self.numbers: list[int] = []
        self.recovered = None
        self.state = "new"
        self.attempts = 0
        self.last_error: str | None = None
        self.done_at: float | None = None

    async def connect(self, resume: bool = False, backoff: Backoff | None = None, deadline: float | None = None) -> None:
        """Connect (resuming with ``resume``), retrying after a refused or cut handshake (the server
        is down, or the listen backlog is full): 0.2 s apart, or with ``backoff``, until ``deadline``."""
        import websockets

        self.attempts = 0
        while True:
            self.state = "connecting"
            try:
                return await self._connect(resume)
            except (OSError, asyncio.TimeoutError, websockets.WebSocketException) as e:
                self.last_error = repr(e)[:200]
                self.attempts += 1
                if (deadline is None and self.attempts >= 20) or (deadline is not None and time.monotonic() > deadline):
                    self.state = "gave up connecting"
                    raise RuntimeError(f"could not connect: {e!r}") from e
                await asyncio.sleep(backoff.seconds(self.attempts - 1) if backoff else 0.2)

    async def _connect(self, resume: bool) -> None:
        import websockets

        query = f"token={self.token}"
        if resume:
            query += f"&resume={self.session}&position={self.position}"
        self.ws = await websockets.connect(f"ws://127.0.0.1:{self.port}/ws/?{query}", proxy=None, open_timeout=60,
                                           ping_interval=None, max_queue=None)
        self.state = "awaiting connected"
        hello = json.loads(await self.ws.recv())
        if hello.get("event") != "connected":
            self.state = f"refused: {hello}"[:200]
            raise RuntimeError(f"not connected: {hello}")
        data = hello["data"]
        self.session, self.position, self.recovered = data["sessionId"], data["position"], data["recovered"]
        self.state = "connected"

    async def subscribe(self) -> None:
        await self.ws.send(SUBSCRIBE)
        while True:
            frame = json.loads(await self.ws.recv())
            if frame.get("ack") == 1:
                if frame.get("error"):
                    raise RuntimeError(f"subscribe refused: {frame['error']}")
                return

    async def read_events(self, count: int) -> None:
        self.state = "reading events"
        while len(self.numbers) < count:
            frame = json.loads(await self.ws.recv())
            if frame.get("event") == EVENT:
                self.numbers.append(frame["data"]["n"])
                self.position = frame["position"]
        self.state = "live"

    def describe(self) -> dict:
        close = getattr(self.ws, "close_code", None) if self.ws is not None else None
        return {"state": self.state, "recovered": self.recovered, "received": len(self.numbers),
                "first": self.numbers[:3], "attempts": self.attempts, "last_error": self.last_error,
                "close_code": close}

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


def rate_line(protocol: str, count: int, elapsed: float) -> str:
    return (f"{protocol}: replay to one client: {count:,} events in {elapsed:.2f} s = {count / elapsed:,.0f} events/s "
            f"(reconnect included)")


def restart_line(protocol: str, clients: int, missed: int, done: list[float], recovered: int, exact: int) -> str:
    done = sorted(done)
    return (f"{protocol}: {clients:,} clients resuming after a SIGKILL + restart, {missed} missed events each: all live "
            f"with every missed event {done[-1]:.2f} s after the server listened again (median client "
            f"{done[len(done) // 2]:.2f} s); recovered {recovered}/{clients}, every event once in order {exact}/{clients}")


def check_restart(protocol: str, clients: int, done: list[float], recovered: int, exact: int, stuck: list,
                  kinds: Counter) -> None:
    if stuck or len(done) != clients or recovered != clients or exact != clients:
        for state in stuck[:10]:
            log(f"{protocol}: stuck client: {state}")
        for kind, count in kinds.most_common():
            log(f"{protocol}: {count} stuck clients: {kind}")
        raise RuntimeError(f"{protocol}: live {len(done)}, recovered {recovered}, every event once in order {exact}, "
                           f"of {clients} ({len(stuck)} stuck, their states above)")


async def kill_and_restart(server: Server, missed: int, tag: str) -> float:
    """SIGKILL the server, publish ``missed`` events, start it again; ``time.time()`` when it listens."""
    server.proc.kill()  # SIGKILL: no drain, no close frames
    server.proc.wait(10)
    log(f"server SIGKILLed; publishing {missed} events while it is down")
    await publish(missed)
    server.logfile = server.logfile.with_name(f"restarted-{tag}.log")
    await asyncio.to_thread(server.start)  # in a thread: clients in this loop retry meanwhile
    return time.time()


# -- /ws/ -----------------------------------------------------------------------------------


async def ws_replay_rate(port: int, token: str, count: int) -> str:
    client = WsClient(port, token)
    await client.connect()
    await client.subscribe()
    await client.close()
    took = await publish(count)
    log(f"ws: published {count} events while the client was away ({count / took:,.0f}/s)")
    t0 = time.perf_counter()
    await client.connect(resume=True)
    await client.read_events(count)
    elapsed = time.perf_counter() - t0
    await client.close()
    if not client.recovered or client.numbers != list(range(count)):
        raise RuntimeError(f"ws: the replay was not every event once in order: {client.describe()}")
    return rate_line("ws", count, elapsed)


async def ws_restart(server: Server, tokens: list[str], args) -> str:
    clients = [WsClient(server.port, token) for token in tokens]
    t0 = time.perf_counter()
    await gather_bounded([c.connect() for c in clients], 100)
    await gather_bounded([c.subscribe() for c in clients], 100)
    log(f"ws: {len(clients)} clients connected and subscribed in {time.perf_counter() - t0:.1f} s")
    backoff = Backoff(args.reconnect_delay, args.reconnect_delay_max)
    deadline = time.monotonic() + args.timeout + 60  # the restart's own time included

    async def resume(client: WsClient) -> None:
        client.ws = None  # its TCP connection dies with the server
        client.state = "waiting to reconnect"
        await asyncio.sleep(backoff.seconds(0))
        await client.connect(resume=True, backoff=backoff, deadline=deadline)
        if client.recovered:
            await client.read_events(args.missed)
            client.done_at = time.time()
        else:
            client.state = "not recovered"

    restart = asyncio.ensure_future(kill_and_restart(server, args.missed, "ws"))
    await asyncio.sleep(0)  # the kill first: the clients reconnect from when their connection died
    tasks = [asyncio.ensure_future(resume(c)) for c in clients]
    listening = await restart
    waited = 0.0
    while waited < args.timeout and not all(task.done() for task in tasks):
        await asyncio.wait(tasks, timeout=min(10.0, args.timeout - waited))
        waited = time.time() - listening
        log(f"ws: {sum(1 for c in clients if c.done_at is not None)}/{len(clients)} live after {waited:.1f} s")
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    stuck = [dict(c.describe(), error=repr(r)[:200] if isinstance(r, BaseException) else None)
             for c, r in zip(clients, results) if c.done_at is None]
    done = [c.done_at - listening for c in clients if c.done_at is not None]
    recovered = sum(1 for c in clients if c.recovered)
    exact = sum(1 for c in clients if c.numbers == list(range(args.missed)))
    await gather_bounded([c.close() for c in clients], 200)
    kinds = Counter(f"state={s['state']} recovered={s['recovered']} received={s['received']} "
                    f"close_code={s['close_code']} last_error={s['last_error']}" for s in stuck)
    check_restart("ws", len(clients), done, recovered, exact, stuck, kinds)
    return restart_line("ws", len(clients), args.missed, done, recovered, exact)


# -- /socket.io/ (socket.io-client from npm) -----------------------------------------------------


def node_binary() -> str:
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "socket.io-client" / "package.json").exists():
        raise SystemExit("the Socket.IO clients need Node.js and socket.io-client: run `make node` (npm ci)")
    return node


async def sio_pool(port: int, tokens: Path, offset: int, count: int, options: dict, env: dict) -> Child:
    child_env = dict(env, SIO_URL=f"http://127.0.0.1:{port}", SIO_TOKENS=str(tokens), SIO_OFFSET=str(offset),
                     SIO_COUNT=str(count), SIO_OPTIONS=json.dumps(options))
    return await Child(f"sio clients {offset}", [node_binary(), str(SIO_CLIENTS)], child_env).start()


def sio_options(args) -> dict:
    return {"reconnectionDelay": args.reconnect_delay, "reconnectionDelayMax": args.reconnect_delay_max,
            "randomizationFactor": 0.5}


async def sio_replay_rate(server: Server, tokens: Path, offset: int, args, env: dict) -> str:
    pool = await sio_pool(server.port, tokens, offset, 1, sio_options(args), env)
    try:
        reply = await pool.request({"cmd": "connect", "concurrency": 1}, 60)
        if reply["connected"] != 1:
            raise RuntimeError(f"sio: the replay client did not connect: {reply}")
        await pool.request({"cmd": "away"})
        await pool.request({"cmd": "reset", "expect": args.replay})
        took = await publish(args.replay)
        log(f"sio: published {args.replay} events while the client was away ({args.replay / took:,.0f}/s)")
        back = (await pool.request({"cmd": "back"}))["back"]
        result = await pool.request({"cmd": "wait", "timeout": args.timeout}, args.timeout + 30)
    finally:
        await pool.stop()
    if result["recovered"] != 1 or result["exact"] != 1:
        raise RuntimeError(f"sio: the replay was not every event once in order: {result['stuck_states']}")
    return rate_line("sio", args.replay, (result["done_at"][0] - back) / 1000)


async def sio_restart(server: Server, tokens: Path, offset: int, args, env: dict) -> str:
    n, procs = args.clients, max(1, min(args.sio_procs, args.clients))
    counts = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
    offsets = [offset + sum(counts[:i]) for i in range(procs)]
    pools = await asyncio.gather(*(sio_pool(server.port, tokens, o, c, sio_options(args), env)
                                   for o, c in zip(offsets, counts)))
    try:
        t0 = time.perf_counter()
        replies = await asyncio.gather(*(p.request({"cmd": "connect", "concurrency": max(1, 100 // procs)}, 60 + n / 10)
                                         for p in pools))
        connected = sum(r["connected"] for r in replies)
        if connected != n:
            raise RuntimeError(f"sio: {connected} of {n} connected: {[r['errors'] for r in replies]}")
        log(f"sio: {n} socket.io-client sockets ({procs} Node processes) connected and subscribed "
            f"in {time.perf_counter() - t0:.1f} s")
        await asyncio.gather(*(p.request({"cmd": "reset", "expect": args.missed}) for p in pools))
        listening = await kill_and_restart(server, args.missed, "sio")
        results = await asyncio.gather(*(p.request({"cmd": "wait", "timeout": args.timeout}, args.timeout + 30)
                                         for p in pools))
    finally:
        await asyncio.gather(*(p.stop() for p in pools))
    done = [at / 1000 - listening for r in results for at in r["done_at"]]
    recovered = sum(r["recovered"] for r in results)
    exact = sum(r["exact"] for r in results)
    stuck = [s for r in results for s in r["stuck_states"]]
    if sum(r["stuck"] for r in results) and not stuck:
        stuck = [{"stuck": sum(r["stuck"] for r in results)}]
    kinds = Counter()
    for r in results:
        kinds.update(r["stuck_kinds"])
    check_restart("sio", n, done, recovered, exact, stuck, kinds)
    return restart_line("sio", n, args.missed, done, recovered, exact)


# -- the run ----------------------------------------------------------------------------------


def server_log_summary(workdir: Path) -> list[str]:
    """The servers' WARNING/ERROR/CRITICAL lines, counted by message (numbers blanked)."""
    counts: Counter = Counter()
    for path in sorted(workdir.glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            match = re.search(r"\b(WARNING|ERROR|CRITICAL)\b (.*)", line)
            if match:
                counts[f"{path.stem}: {match[1]} {re.sub(r'[0-9a-f]{8,}|[0-9]+', '#', match[2])[:160]}"] += 1
            elif line.startswith("Traceback"):
                counts[f"{path.stem}: Traceback"] += 1
    return [f"{count} x {message}" for message, count in counts.most_common(8)]


async def amain(args) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="oda-resume-bench-"))
    redis = RedisProcess().start()
    server = None
    lines: list[str] = []
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
            # The /ws/ clients send no heartbeat pings: a resumed socket waiting for its replay
            # behind 1,000 others must not be closed for idleness (4013).
            REALTIME_IDLE_TIMEOUT="600",
            # Every bench client comes from 127.0.0.1: the per-address cap on Socket.IO sessions not
            # yet connected (100, against one address's handshake flood) would refuse real clients'
            # reconnections here (HTTP 429, seen in a run); the process-wide cap (5,000) stays.
            REALTIME_SOCKETIO_MAX_PENDING_PER_ADDRESS="null",
            PYTHONUNBUFFERED="1",
            PYTHONPATH=str(ROOT),
        )
        protocols = ["ws", "sio"] if args.protocol == "both" else [args.protocol]
        log("preparing the private database and the bench users")
        subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        token_file = workdir / "tokens.txt"
        per = args.clients + 1  # one user per client and protocol, and one for the replay client
        subprocess.run([PY, "-m", "bench.bench_users", str(per * len(protocols)), str(token_file)], cwd=ROOT,
                       env=env, check=True)
        tokens = token_file.read_text().split()
        os.environ.update(env)  # this process publishes on the servers' layer and history
        import django

        django.setup()
        server = Server(STACKS["ours-daphne"], env, workdir).start()
        for i, protocol in enumerate(protocols):
            first = i * per
            if protocol == "ws":
                lines.append(await ws_replay_rate(server.port, tokens[first + args.clients], args.replay))
                lines.append(await ws_restart(server, tokens[first:first + args.clients], args))
            else:
                lines.append(await sio_replay_rate(server, token_file, first + args.clients, args, env))
                lines.append(await sio_restart(server, token_file, first, args, env))
    finally:
        if server is not None:
            server.stop()
        redis.stop()
        summary = server_log_summary(workdir)
        print(f"\nResume benchmark (channel layer {args.layer}; load average before: {args.load:.2f}, "
              f"after: {os.getloadavg()[0]:.2f}; reconnection delay {args.reconnect_delay}-"
              f"{args.reconnect_delay_max} ms x 0.5-1.5)")
        print(f"command: python -m bench.resume {' '.join(sys.argv[1:])}".rstrip())
        for line in lines:
            print(f"- {line}")
        print(f"server log ({workdir}): " + ("; ".join(summary) if summary else "no WARNING or ERROR line"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--protocol", choices=["ws", "sio", "both"], default="both")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--missed", type=int, default=100, help="events published while the server is down")
    parser.add_argument("--replay", type=int, default=20000, help="events replayed to the one client")
    parser.add_argument("--layer", choices=["pubsub", "core"], default="pubsub")
    parser.add_argument("--reconnect-delay", type=int, default=200, help="ms, first reconnection delay")
    parser.add_argument("--reconnect-delay-max", type=int, default=2000, help="ms, longest reconnection delay")
    parser.add_argument("--timeout", type=float, default=120, help="s, how long the clients may take to resume")
    parser.add_argument("--sio-procs", type=int, default=2, help="Node processes for the Socket.IO clients")
    args = parser.parse_args()
    args.load = os.getloadavg()[0]
    raise_fd_limit(args.clients * 2 + 1024)
    asyncio.run(amain(args))


if __name__ == "__main__":
    main()
