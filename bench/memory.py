"""Where a server's memory per idle connection goes: tracemalloc before/after N sockets.

``python -m bench.memory [--n 1000] [--stacks ours-daphne,bare-daphne]``: for
each stack, runs the server under ``bench/traced_serve.py``, connects one
warm-up socket, snapshots, connects N sockets (joined to the room, idle, as in
``bench/run.py``), snapshots again, and prints per N: the RSS growth, the
Python allocations traced (tracemalloc slows the server; RSS under tracing is
higher than without), the allocations grouped by package of the allocating
line, and the top allocating lines.
"""
import argparse
import asyncio
from collections import Counter
import dataclasses
import os
from pathlib import Path
import secrets
import shutil
import signal
import tempfile
import time
import tracemalloc

from bench.run import PY, ROOT, STACKS, Child, Server, log, prepare_database, raise_fd_limit, rss_kib
from tests.servers import RedisProcess

def package_of(filename: str) -> str:
    """The package (or stdlib module) a file belongs to: site-packages/<pkg>, lib/python3.x/<mod>, or ours."""
    parts = Path(filename).parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    for i, part in enumerate(parts[:-1]):
        if part.startswith("python3."):
            return "stdlib " + parts[i + 1].removesuffix(".py")
    if filename.startswith(str(ROOT)):
        return Path(filename).relative_to(ROOT).parts[0]
    return filename


def owner_frame(traceback: tracemalloc.Traceback) -> tuple[str, tracemalloc.Frame]:
    """The innermost non-stdlib package on the allocating stack and its frame (asyncio.Queue() made by daphne -> daphne)."""
    frames = list(reversed(traceback))  # innermost first
    names = [package_of(frame.filename) for frame in frames]
    for name, frame in zip(names, frames):
        if not name.startswith(("stdlib", "<")):
            return (name if name == names[0] else f"{name} (via {names[0]})"), frame
    return names[0], frames[0]


def owner(traceback: tracemalloc.Traceback) -> str:
    return owner_frame(traceback)[0]


async def snapshot(pid: int, path: Path, timeout: float = 120) -> tracemalloc.Snapshot:
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:  # the dump is complete when its size stops changing
        await asyncio.sleep(0.5)
        if path.exists():
            size = path.stat().st_size
            if size == last and size > 0:
                return tracemalloc.Snapshot.load(str(path))
            last = size
    raise TimeoutError(f"no snapshot at {path}")


async def measure(stack_name: str, n: int, env: dict, tokens: Path, workdir: Path, top: int) -> None:
    stack = STACKS[stack_name]
    prefix = workdir / f"snap-{stack_name}"
    traced = dataclasses.replace(stack, server=[PY, "-m", "bench.traced_serve", str(prefix), "--", *stack.server[1:]])
    server = Server(traced, env, workdir).start()
    clients = []
    try:
        pid = server.proc.pid

        def argv(count, offset):
            return [PY, "-m", "bench.clients", "--url", f"ws://127.0.0.1:{server.port}{stack.path}",
                    "--protocol", stack.protocol, "--count", str(count), "--tokens", str(tokens),
                    "--offset", str(offset)]

        warm = await Child("warm-up", argv(1, n), env).start()
        await warm.request({"cmd": "connect"}, 60)
        await warm.stop()
        await asyncio.sleep(1)
        rss0 = rss_kib(pid)
        snap0 = await snapshot(pid, Path(f"{prefix}.0"))
        half = n // 2
        clients = await asyncio.gather(Child("c0", argv(half, 0), env).start(),
                                       Child("c1", argv(n - half, half), env).start())
        replies = await asyncio.gather(*(c.request({"cmd": "connect"}, 60 + n / 10) for c in clients))
        connected = sum(r["connected"] for r in replies)
        await asyncio.sleep(2)
        rss1 = rss_kib(pid)
        snap1 = await snapshot(pid, Path(f"{prefix}.1"))
    finally:
        await asyncio.gather(*(c.stop() for c in clients), return_exceptions=True)
        server.stop()

    diff = snap1.compare_to(snap0, "traceback")
    total = sum(d.size_diff for d in diff)
    by_package: Counter = Counter()
    for d in diff:
        by_package[owner(d.traceback)] += d.size_diff
    print(f"\n== {stack_name}: {connected} sockets")
    print(f"RSS growth {(rss1 - rss0) / connected:.1f} KiB per socket (under tracemalloc); "
          f"Python allocations traced {total / connected / 1024:.1f} KiB per socket")
    print("by package on the allocating stack (innermost non-stdlib; KiB per socket):")
    for name, size in by_package.most_common(20):
        print(f"  {size / connected / 1024:6.2f}  {name}")
    print("top allocation sites: the innermost non-stdlib line on the stack (bytes per socket):")
    sites: Counter = Counter()
    blocks: Counter = Counter()
    for d in diff:
        _, frame = owner_frame(d.traceback)
        site = f"{'/'.join(Path(frame.filename).parts[-2:])}:{frame.lineno}"
        sites[site] += d.size_diff
        blocks[site] += d.count_diff
    for site, size in sites.most_common(top):
        print(f"  {size / connected:8.0f}  {blocks[site] / connected:5.1f} blocks  {site}")


async def amain(args) -> None:
    raise_fd_limit(args.n + 1024)
    workdir = Path(tempfile.mkdtemp(prefix="oda-bench-mem-"))
    redis = RedisProcess().start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_"))}
        env.update(DJANGO_SETTINGS_MODULE="oda_realtime.settings", DJANGO_SECRET_KEY=secrets.token_urlsafe(48),
                   DATABASE_URL=f"sqlite:///{workdir / 'bench.sqlite3'}", REDIS_URL=redis.url,
                   CHANNEL_LAYER_PREFIX=f"benchmem{secrets.token_hex(3)}", JWT_ACCESS_MINUTES="240",
                   LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1", PYTHONPATH=str(Path(__file__).parent.parent))
        log("preparing the private database and the bench users")
        tokens = prepare_database(workdir, env, args.n + 1)
        for name in args.stacks.split(","):
            await measure(name, args.n, env, tokens, workdir, args.top)
    finally:
        redis.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--stacks", default="ours-daphne,bare-daphne")
    parser.add_argument("--top", type=int, default=25)
    asyncio.run(amain(parser.parse_args()))


if __name__ == "__main__":
    main()
