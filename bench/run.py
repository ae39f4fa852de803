"""``make bench``: our server against python-socketio, side by side, one table.

For each stack and each N it starts a fresh server on a private port (all
stacks share one private redis-server; ours uses a private SQLite database with
one bench user per socket, each holding ``inventory.view_inventorylevel``),
connects N real WebSocket clients from separate client processes
(``bench/clients.py``), publishes from another process (``bench/publisher.py``),
and measures:

- RSS per idle connection: server RSS after N sockets connected and subscribed,
  minus RSS before (after a one-socket warm-up), divided by N;
- server CPU while those N sockets sit idle (heartbeats, timers);
- fan-out latency: R rounds of one event to all N; per round the time from the
  publisher's ``sentAt`` to the LAST client's receipt; p50 and p99 over rounds;
- deliveries/s (at N=100): the publisher sends F events back to back;
  deliveries received / (last receipt - first send);
- lost: deliveries expected minus received, over all rounds and the flood;
- server CPU per delivery in the flood, and the client processes' CPU (a client
  process near 100% of a core would make the figures the clients' limit).

Stacks: ``baseline`` (python-socketio AsyncServer + AsyncRedisManager on
uvicorn), ``ours-daphne`` (``manage.py serve``, ``/ws/``), ``ours-daphne-sio``
(the same server at ``/socket.io/``, Socket.IO over WebSocket as the
storefront's clients speak it), ``ours-daphne-x2`` (two ``manage.py serve``
processes on the one Redis, clients split between them), ``ours-uvicorn``
(``uvicorn oda_realtime.asgi:application``), ``bare-daphne`` / ``bare-uvicorn``
(``bench/bare_asgi.py``: the server's own fan-out ceiling), ``bare-daphne-tuned`` (the
bare app through ``manage.py serve``, not run by default). uvicorn's event loop,
HTTP parser and WebSocket implementation are named on its command line (see
``uvicorn_choice``) and printed. Every wait is bounded; ``--quick`` runs small N
for a smoke check.

``--repeat K`` runs the whole set K times, interleaved (A B C, A B C, ...), so a
slow spell of the machine falls on every stack alike; the table gives each
figure's median over the K runs and its range (min-max), ``--json`` every run's
own figures.
"""
import argparse
import asyncio
from dataclasses import dataclass
import importlib.util
import json
import os
from pathlib import Path
import platform
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import RedisProcess, free_port, wait_for_port  # noqa: E402

from bench.report import Result, Runs, details, fmt_ms, goals, percentile, summary, table  # noqa: E402

PY = sys.executable
TICKS = os.sysconf("SC_CLK_TCK")


def uvicorn_choice() -> dict[str, str]:
    """uvicorn's event loop, HTTP parser and WebSocket implementation, named instead of ``auto``.

    The fastest installed, as ``auto`` would pick them (uvloop and httptools are
    optional extras; without them uvicorn runs asyncio's loop and h11), but
    written on the command line and printed with the results, so a run says
    what it measured and a missing extra cannot change the baseline silently.
    """
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    ws = "websockets"
    try:  # the implementation uvicorn's own "auto" resolves to (0.3x: websockets; 0.5x: websockets-sansio)
        from uvicorn.config import WS_PROTOCOLS
        from uvicorn.protocols.websockets.auto import AutoWebSocketsProtocol

        auto = f"{AutoWebSocketsProtocol.__module__}:{AutoWebSocketsProtocol.__name__}"
        ws = next(name for name, path in WS_PROTOCOLS.items() if path == auto and name != "auto")
    except (ImportError, AttributeError, StopIteration):
        pass
    return {"loop": loop, "http": http, "ws": ws}


UVICORN_CHOICE = uvicorn_choice()
UVICORN = [PY, "-m", "uvicorn", "--host", "127.0.0.1", "--log-level", "warning", "--no-access-log",
           "--loop", UVICORN_CHOICE["loop"], "--http", UVICORN_CHOICE["http"], "--ws", UVICORN_CHOICE["ws"]]
DAPHNE = [PY, "-m", "daphne", "-b", "127.0.0.1"]


@dataclass
class Stack:
    name: str
    server: list[str]  # command; "{port}" is replaced
    protocol: str  # native | socketio
    path: str  # the WebSocket URL's path and query; "{token}" is replaced by each socket's token
    publisher: str  # ours | baseline | bare
    processes: int = 1  # server processes on the one Redis; client processes are spread over them
    max_n: int | None = None  # skip larger N (keeps the whole run under 15 minutes)


STACKS = {
    "ours-daphne": Stack("ours-daphne", [PY, "manage.py", "serve", "--port", "{port}"],
                         "native", "/ws/?token={token}", "ours"),
    # the same server at /socket.io/ (Socket.IO over WebSocket only, the token in CONNECT's auth)
    "ours-daphne-sio": Stack("ours-daphne-sio", [PY, "manage.py", "serve", "--port", "{port}"],
                             "ours-socketio", "/socket.io/?EIO=4&transport=websocket", "ours"),
    "ours-daphne-x2": Stack("ours-daphne-x2", [PY, "manage.py", "serve", "--port", "{port}"],
                            "native", "/ws/?token={token}", "ours", processes=2, max_n=1000),
    "ours-uvicorn": Stack("ours-uvicorn", [*UVICORN, "--port", "{port}", "oda_realtime.asgi:application"],
                          "native", "/ws/?token={token}", "ours"),
    "baseline": Stack("baseline", [*UVICORN, "--port", "{port}", "bench.baseline_server:app"],
                      "socketio", "/socket.io/?EIO=4&transport=websocket", "baseline"),
    "bare-daphne": Stack("bare-daphne", [*DAPHNE, "-p", "{port}", "bench.bare_asgi:app"], "native", "/ws/", "bare"),
    # the bare app through ``manage.py serve`` (django_oda_realtime/server/serving.py's slimmed daphne): daphne's own share
    "bare-daphne-tuned": Stack("bare-daphne-tuned", [PY, "manage.py", "serve", "--port", "{port}",
                                                     "--application", "bench.bare_asgi:app"],
                               "native", "/ws/", "bare"),
    "bare-uvicorn": Stack("bare-uvicorn", [*UVICORN, "--port", "{port}", "bench.bare_asgi:app"],
                          "native", "/ws/", "bare"),
}
DEFAULT_STACKS = ["baseline", "ours-daphne", "ours-daphne-sio", "ours-daphne-x2", "ours-uvicorn", "bare-daphne",
                  "bare-uvicorn"]
# Ours against the baseline on issue #7's goals, one block of goal lines each.
GOAL_STACKS = ["ours-daphne", "ours-daphne-sio"]


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- /proc ----------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (and its waited-for children)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def total_cpu(pids: list[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


def total_rss(pids: list[int]) -> int:
    return sum(rss_kib(pid) for pid in pids)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def raise_fd_limit(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft < needed:
        raise SystemExit(f"open-file limit is {soft}, the benchmark needs {needed}: raise `ulimit -n` (hard limit)")
    return soft


# -- child processes speaking JSON lines ------------------------------------------------------


class Child:
    """A bench child process (clients or publisher): commands on stdin, JSON lines on stdout."""

    def __init__(self, name: str, argv: list[str], env: dict) -> None:
        self.name, self.argv, self.env = name, argv, env
        self.proc: asyncio.subprocess.Process | None = None
        self.replies: asyncio.Queue = asyncio.Queue()
        self.done: asyncio.Queue = asyncio.Queue()
        self._reader: asyncio.Task | None = None

    async def start(self, timeout: float = 60) -> "Child":
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, cwd=ROOT, env=self.env, limit=2**26,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.ensure_future(self._read())
        await self.reply(timeout)  # {"ready": true}
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def _read(self) -> None:
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                await self.replies.put(None)
                return
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            (self.done if "done" in msg else self.replies).put_nowait(msg)

    async def reply(self, timeout: float) -> dict:
        msg = await asyncio.wait_for(self.replies.get(), timeout)
        if msg is None:
            raise RuntimeError(f"{self.name} exited with {await self.proc.wait()}")
        return msg

    async def request(self, cmd: dict, timeout: float = 30) -> dict:
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await self.proc.stdin.drain()
        return await self.reply(timeout)

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        try:
            self.proc.stdin.write(b'{"cmd": "quit"}\n')
            await self.proc.stdin.drain()
            await asyncio.wait_for(self.proc.wait(), 15)
        except (asyncio.TimeoutError, ConnectionError, RuntimeError):
            self.proc.kill()
            await self.proc.wait()
        if self._reader:
            self._reader.cancel()


class Server:
    def __init__(self, stack: Stack, env: dict, logdir: Path) -> None:
        self.stack = stack
        self.port = free_port()
        self.env = env
        self.logfile = logdir / f"{stack.name}-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Server":
        argv = [a.replace("{port}", str(self.port)) for a in self.stack.server]
        with open(self.logfile, "wb") as out:
            self.proc = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for_port(self.port, timeout=60, proc=self.proc)
        except Exception:
            self.stop()
            raise RuntimeError(f"{self.stack.name} did not start:\n{self.tail()}") from None
        return self

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# -- measurements ------------------------------------------------------------------------


class Bench:
    def __init__(self, args, redis_url: str, tokens: Path, base_env: dict, logdir: Path) -> None:
        self.args = args
        self.redis_url = redis_url
        self.tokens = tokens
        self.base_env = base_env
        self.logdir = logdir
        self.seq = 1
        self.run_k = 1  # which of the --repeat runs is going on (for file names)

    def next_seqs(self, count: int) -> tuple[int, int]:
        first = self.seq
        self.seq += count
        return first, self.seq

    async def run_stack(self, stack: Stack) -> list[Result]:
        env = dict(self.base_env, CHANNEL_LAYER_PREFIX=f"bench{secrets.token_hex(4)}")
        publisher = await Child(f"{stack.name} publisher", [PY, "-m", "bench.publisher", "--kind", stack.publisher,
                                                             "--redis-url", self.redis_url], env).start()
        results = []
        try:
            for n in self.args.ns:
                if stack.max_n is None or n <= stack.max_n:
                    results.append(await self.run_n(stack, n, env, publisher))
        finally:
            await publisher.stop()
        return results

    def client_argv(self, stack: Stack, port: int, count: int, offset: int) -> list[str]:
        """A client process for sockets ``offset..offset+count-1`` (one bench user, one token each)."""
        return [PY, "-m", "bench.clients", "--url", f"ws://127.0.0.1:{port}{stack.path}", "--protocol", stack.protocol,
                "--count", str(count), "--tokens", str(self.tokens), "--offset", str(offset),
                "--concurrency", str(self.args.connect_concurrency)]

    async def run_n(self, stack: Stack, n: int, env: dict, publisher: Child) -> Result:
        result = Result(stack.name, n)
        servers: list[Server] = []
        clients: list[Child] = []
        try:
            for _ in range(stack.processes):
                servers.append(Server(stack, env, self.logdir).start())
            pids = [server.proc.pid for server in servers]
            # Warm-up: one socket per server, one event (imports, hub, DB connection, Redis subscription).
            warm = await asyncio.gather(*(Child("warm-up", self.client_argv(stack, server.port, 1, n), env).start()
                                          for server in servers))
            try:
                for w, server in zip(warm, servers):
                    reply = await w.request({"cmd": "connect"}, 60)
                    if reply["connected"] != 1:
                        raise RuntimeError(f"warm-up socket failed: {reply['errors']}\n{server.tail()}")
                await self.round(warm, publisher, len(warm), timeout=10)
            finally:
                await asyncio.gather(*(w.stop() for w in warm))
            await asyncio.sleep(0.5)
            rss0 = total_rss(pids)

            procs = max(stack.processes, min(self.args.client_procs, n // 25 or 1))
            counts = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
            offsets = [sum(counts[:i]) for i in range(procs)]
            clients = await asyncio.gather(*(
                Child(f"clients {i}", self.client_argv(stack, servers[i % len(servers)].port, c, o), env).start()
                for i, (c, o) in enumerate(zip(counts, offsets))
            ))
            log(f"{stack.name} N={n}: connecting {n} sockets from {procs} client processes "
                f"to {len(servers)} server process(es) (pid {', '.join(map(str, pids))})")
            t0 = time.monotonic()
            replies = await asyncio.gather(*(c.request({"cmd": "connect"}, 60 + n / 20) for c in clients))
            result.connect_seconds = time.monotonic() - t0
            result.connected = sum(r["connected"] for r in replies)
            failed = sum(r["failed"] for r in replies)
            if failed:
                errors = [e for r in replies for e in r["errors"]]
                result.notes.append(f"{failed} sockets failed to connect: {errors[:3]}")
                log(f"{stack.name} N={n}: {failed} sockets failed to connect: {errors[:3]}")
            await asyncio.sleep(1.0)
            rss1 = total_rss(pids)
            profiler = self.start_profiler(stack, n, pids[0])
            idle0, w0 = total_cpu(pids), time.monotonic()
            await asyncio.sleep(self.args.idle_seconds)
            result.idle_cpu_pct = (total_cpu(pids) - idle0) / (time.monotonic() - w0) * 100
            if result.connected:
                result.rss_per_conn_kib = (rss1 - rss0) / result.connected
            log(f"{stack.name} N={n}: {result.connected} connected in {result.connect_seconds:.1f}s; "
                f"RSS {rss0} -> {rss1} KiB; idle server CPU {result.idle_cpu_pct:.1f}%")

            # Fan-out latency: rounds of one event.
            latencies = []
            cpu_c0 = [cpu_seconds(c.pid) for c in clients]
            cpu_s0 = total_cpu(pids)
            w0 = time.monotonic()
            for _ in range(self.args.rounds_for(n)):
                last, lat, delivered = await self.round(clients, publisher, result.connected,
                                                        timeout=self.args.round_timeout)
                result.expected += result.connected
                result.delivered += delivered
                if last is not None:
                    result.rounds.append(last)
                latencies += lat
                await asyncio.sleep(self.args.round_gap)
            wall = time.monotonic() - w0
            if latencies:
                result.all_latencies_p50 = percentile(latencies, 0.5)
                result.all_latencies_p99 = percentile(latencies, 0.99)
            client_cpu = [cpu_seconds(c.pid) - c0 for c, c0 in zip(clients, cpu_c0)]
            result.client_cpu_pct = max(client_cpu) / wall * 100
            if result.delivered:
                result.round_server_us = (total_cpu(pids) - cpu_s0) / result.delivered * 1e6
                result.round_client_us = sum(client_cpu) / result.delivered * 1e6
            log(f"{stack.name} N={n}: last-delivery p50 {fmt_ms(result.p(0.5))} p99 {fmt_ms(result.p(0.99))} "
                f"lost {result.lost}")

            if n == self.args.flood_n:
                await self.flood(clients, publisher, result, pids)
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)
                profiler.wait(30)

            for c in clients:
                stats = await c.request({"cmd": "stats"}, 30)
                result.duplicates += stats["duplicates"]
                result.closed += stats["closed"]
                if stats["close_codes"]:
                    result.notes.append(f"sockets closed by the server: {stats['close_codes']}")
        finally:
            await asyncio.gather(*(c.stop() for c in clients), return_exceptions=True)
            for server in servers:
                server.stop()
        return result

    def start_profiler(self, stack: Stack, n: int, pid: int) -> subprocess.Popen | None:
        """py-spy (if ``--profile DIR``) sampling the server through the idle window, the rounds and the flood."""
        if not self.args.profile:
            return None
        suffix = f"-run{self.run_k}" if self.args.repeat > 1 else ""
        out = Path(self.args.profile) / f"{stack.name}-{n}{suffix}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        spy = shutil.which("py-spy", path=str(Path(PY).parent)) or "py-spy"
        return subprocess.Popen([spy, "record", "-p", str(pid), "-r", "200", "-f", "raw", "-o", str(out)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def round(self, clients: list[Child], publisher: Child, expected: int, timeout: float):
        """Publish one event; wait until every socket has it (bounded). -> (last latency, latencies, delivered)."""
        first, end = self.next_seqs(1)
        await asyncio.gather(*(c.request({"cmd": "expect", "seqs": [first, end], "mode": "round"}) for c in clients))
        sent = await publisher.request({"cmd": "pub", "seq": first})
        await self.wait_done(clients, end, timeout)
        stats = await asyncio.gather(*(c.request({"cmd": "stats"}, 30) for c in clients))
        delivered = sum(s["total"] for s in stats)
        lasts = [s["last_at"][str(first)] for s in stats if str(first) in s["last_at"]]
        latencies = [x for s in stats for x in s["latencies"]]
        last = max(lasts) - sent["at"] if lasts and delivered >= expected else None
        return last, latencies, delivered

    async def wait_done(self, clients: list[Child], end: int, timeout: float) -> bool:
        async def one(c: Child):
            while True:
                msg = await c.done.get()
                if msg["done"] == end:
                    return

        try:
            await asyncio.wait_for(asyncio.gather(*(one(c) for c in clients)), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def flood(self, clients: list[Child], publisher: Child, result: Result, pids: list[int]) -> None:
        count = self.args.flood
        first, end = self.next_seqs(count)
        await asyncio.gather(*(c.request({"cmd": "expect", "seqs": [first, end], "mode": "flood"}) for c in clients))
        s0 = total_cpu(pids)
        c0 = [cpu_seconds(c.pid) for c in clients]
        w0 = time.monotonic()
        sent = await publisher.request({"cmd": "flood", "seqs": [first, end]}, self.args.flood_timeout)
        complete = await self.wait_done(clients, end, self.args.flood_timeout)
        wall = time.monotonic() - w0
        server_cpu = total_cpu(pids) - s0
        client_cpu = [cpu_seconds(c.pid) - x for c, x in zip(clients, c0)]
        client_pct = max(client_cpu) / wall * 100
        stats = await asyncio.gather(*(c.request({"cmd": "stats"}, 30) for c in clients))
        delivered = sum(s["total"] for s in stats)
        last = max((max(s["last_at"].values()) for s in stats if s["last_at"]), default=None)
        expected = result.connected * count
        result.expected += expected
        result.delivered += delivered
        if last is not None:
            result.flood_seconds = last - sent["t0"]
            result.flood_rate = delivered / result.flood_seconds
        if delivered:
            result.server_cpu_us_per_delivery = server_cpu / delivered * 1e6
        result.server_cpu_pct = server_cpu / wall * 100
        result.client_cpu_pct = client_pct
        if not complete:
            result.notes.append(f"flood incomplete after {self.args.flood_timeout}s")
        publish_rate = count / max(sent["t1"] - sent["t0"], 1e-9)
        log(f"{stack_name(result)} flood: {delivered}/{expected} deliveries in {result.flood_seconds or 0:.2f}s "
            f"= {result.flood_rate or 0:,.0f}/s; publisher {publish_rate:,.0f} events/s; server CPU "
            f"{result.server_cpu_pct:.0f}%, {result.server_cpu_us_per_delivery or 0:.1f} us/delivery; "
            f"clients {sum(client_cpu) / max(delivered, 1) * 1e6:.1f} us/delivery, busiest client process {client_pct:.0f}%")


def stack_name(result: Result) -> str:
    return f"{result.stack} N={result.n}"


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    names = ["daphne", "twisted", "autobahn", "channels", "channels-redis", "redis", "uvicorn", "httptools", "h11",
             "websockets", "python-socketio", "python-engineio", "uvloop", "django"]
    parts = [f"Python {platform.python_version()}"]
    for name in names:
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name} (not installed)")
    redis_v = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()
    parts.append("redis-server " + next((p.split("=")[1] for p in redis_v if p.startswith("v=")), "?"))
    return ", ".join(parts)


def uvicorn_line() -> str:
    return (f"uvicorn (baseline, ours-uvicorn, bare-uvicorn): --loop {UVICORN_CHOICE['loop']} "
            f"--http {UVICORN_CHOICE['http']} --ws {UVICORN_CHOICE['ws']}")


def machine() -> str:
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()
    return f"nproc {os.cpu_count()}, CPU {model}, load average before the run {load[0]:.2f}"


# -- main -----------------------------------------------------------------------------------


def prepare_database(workdir: Path, env: dict, users: int) -> Path:
    """Migrate the private database, create the bench users, return the file of their tokens."""
    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    tokens = workdir / "tokens.txt"
    subprocess.run([PY, "-m", "bench.bench_users", str(users), str(tokens)], cwd=ROOT, env=env, check=True)
    return tokens


async def amain(args) -> int:
    fds = raise_fd_limit(max(args.ns) + 1024)
    log(f"open-file limit {fds}")
    header = f"machine: {machine()}\nversions: {versions()}\n{uvicorn_line()}"
    workdir = Path(tempfile.mkdtemp(prefix="oda-bench-"))
    redis = RedisProcess().start()
    try:
        base_env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_"))}
        base_env.update(
            DJANGO_SETTINGS_MODULE="oda_realtime.settings",
            DJANGO_SECRET_KEY=secrets.token_urlsafe(48),
            DATABASE_URL=args.database_url or f"sqlite:///{workdir / 'bench.sqlite3'}",
            REDIS_URL=redis.url,
            REALTIME_CHANNEL_LAYER=args.layer,
            JWT_ACCESS_MINUTES=str(max(240, 60 * args.repeat)),
            LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",
            PYTHONPATH=str(ROOT),
        )
        log("preparing the private database and the bench users")
        tokens = prepare_database(workdir, base_env, max(args.ns) + 1)
        bench = Bench(args, redis.url, tokens, base_env, workdir)
        results: dict[str, Runs] = {name: [] for name in args.stacks}
        started = time.monotonic()
        for k in range(1, args.repeat + 1):  # interleaved: A B C, A B C, ...
            bench.run_k = k
            for name in args.stacks:
                log(f"--- {name}" + (f" (run {k} of {args.repeat})" if args.repeat > 1 else ""))
                results[name].append(await bench.run_stack(STACKS[name]))
        elapsed = time.monotonic() - started
    finally:
        redis.stop()
    runs = f"{args.repeat} interleaved runs; each figure the median (min–max)" if args.repeat > 1 else "one run"
    report = "\n".join([
        "",
        f"Oda Realtime fan-out benchmark ({'quick' if args.quick else 'full'}, {runs}, {elapsed:.0f}s; "
        f"channel layer for ours: {args.layer})",
        header,
        f"command: python -m bench.run {' '.join(sys.argv[1:])}".rstrip(),
        "",
        table(results, args.ns, args.flood_n),
        "",
        *(block + "\n" for block in (goals(results, args.ns, args.flood_n, ours) for ours in GOAL_STACKS) if block),
        "details:",
        details(results),
        "",
    ])
    print(report)
    if args.json:
        Path(args.json).write_text(json.dumps({
            "command": sys.argv[1:],
            "repeat": args.repeat,
            "elapsed_s": elapsed,
            "machine": machine(),
            "versions": versions(),
            "uvicorn": UVICORN_CHOICE,
            "ns": args.ns,
            "flood_n": args.flood_n,
            "summary": summary(results, args.ns, args.flood_n),
            # every run's own figures: runs[stack][k] is run k+1's list, one entry per N
            "runs": {s: [[r.__dict__ | {"lost": r.lost, "p50": r.p(0.5), "p99": r.p(0.99)} for r in run]
                         for run in rs] for s, rs in results.items()},
        }, indent=1))
    if not args.keep_logs:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        log(f"server logs kept in {workdir}")
    return 0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Fan-out benchmark: ours against python-socketio.")
    parser.add_argument("--quick", action="store_true", help="N=100 and 300, few rounds: a smoke run of about two minutes")
    parser.add_argument("--stacks", default=",".join(DEFAULT_STACKS), help=f"comma-separated, from {list(STACKS)}")
    parser.add_argument("--ns", default=None, help="client counts, comma-separated (default 100,1000,5000)")
    parser.add_argument("--rounds", type=int, default=None, help="fan-out rounds per N (default 20/15/10 by N)")
    parser.add_argument("--flood", type=int, default=None,
                        help="events in the flood (default: 200,000 deliveries' worth, 2,000 events at N=100)")
    parser.add_argument("--flood-n", type=int, default=None, help="N at which to flood (default the smallest N)")
    parser.add_argument("--client-procs", type=int, default=2, help="client processes per N (default 2)")
    parser.add_argument("--connect-concurrency", type=int, default=16, help="handshakes in flight per client process")
    parser.add_argument("--layer", choices=["pubsub", "core"], default="pubsub", help="channels-redis layer for ours")
    parser.add_argument("--database-url", default=None, help="database for ours (default: private SQLite file)")
    parser.add_argument("--idle-seconds", type=float, default=3.0, help="idle window to measure server CPU")
    parser.add_argument("--round-gap", type=float, default=0.2, help="seconds between fan-out rounds")
    parser.add_argument("--round-timeout", type=float, default=60.0)
    parser.add_argument("--flood-timeout", type=float, default=120.0)
    parser.add_argument("--profile", default=None, metavar="DIR",
                        help="sample the servers with py-spy (pip install py-spy) when idle, in rounds and flood")
    parser.add_argument("--repeat", type=int, default=1, metavar="K",
                        help="run the stacks K times, interleaved (A B C, A B C, ...); the table gives each "
                             "figure's median over the K runs and its range (default 1)")
    parser.add_argument("--json", default=None, help="also write the raw results (every run's figures) to this file")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args(argv)
    args.stacks = [s for s in args.stacks.split(",") if s]
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    for s in args.stacks:
        if s not in STACKS:
            parser.error(f"unknown stack {s}")
    if args.ns:
        args.ns = [int(x) for x in args.ns.split(",")]
    else:
        args.ns = [100, 300] if args.quick else [100, 1000, 5000]
    if args.quick:
        args.idle_seconds = min(args.idle_seconds, 1.0)
    args.flood_n = args.flood_n or (100 if 100 in args.ns else min(args.ns))
    args.flood = args.flood or (20_000 if args.quick else 200_000) // args.flood_n
    fixed_rounds = args.rounds or (5 if args.quick else None)

    def rounds_for(n: int) -> int:
        return fixed_rounds or (20 if n <= 100 else 15 if n <= 1000 else 10)

    args.rounds_for = rounds_for
    return args


def main() -> None:
    sys.exit(asyncio.run(amain(parse_args())))


if __name__ == "__main__":
    main()
