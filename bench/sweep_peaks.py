"""What the hub's periodic sweeps over all sockets hold at once: tracemalloc's peak, per socket.

    .venv/bin/python -m bench.sweep_peaks [--n 5000]

The presence renewal (``RedisPresence.renew``, every ``PRESENCE_LEASE / 3``) and the revocation
re-check (``recheck_sockets``, every ``REVOCATION_RECHECK_INTERVAL``) each walk every socket of the
process. Whatever a round holds at once is freed afterwards, but while sockets are still connecting
their long-lived objects land in the memory made for it, so an idle server keeps part of it as
allocator slack (docs/benchmarks.md#before-and-after-the-outlet-redesign-issue-12-2026-11-28).
Runs on a private redis-server and a fresh PostgreSQL database (``bench/fresh_db.py``), with N users
and N stand-in sockets (a session with its user and token ``iat``).
"""
import argparse
import asyncio
import secrets
import time
import tracemalloc

from bench import fresh_db


async def peak_of(work) -> int:
    """Bytes traced at the peak of ``await work()`` above what was traced before it."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        await work()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


class Session:
    def __init__(self, user) -> None:
        self.user, self.issued_at = user, time.time()


class Socket:
    closed = False

    def __init__(self, user) -> None:
        self.session = Session(user)

    async def control(self, message: dict) -> None:
        raise AssertionError(f"no socket should be closed: {message}")


async def measure(n: int, redis_url: str) -> None:
    from channels.db import database_sync_to_async
    from django.contrib.auth import get_user_model

    from django_oda_realtime.accounts.revocation import recheck_sockets
    from django_oda_realtime.presence import RedisPresence

    User = get_user_model()

    def make_users():
        User.objects.bulk_create([User(username=f"sweep{i}") for i in range(n)])
        return list(User.objects.filter(username__startswith="sweep"))

    sockets = [Socket(u) for u in await database_sync_to_async(make_users)()]
    presence = RedisPresence(redis_url, f"sweep{secrets.token_hex(3)}")
    leases = [(str(s.session.user.pk), secrets.token_hex(16)) for s in sockets]
    try:
        await presence.renew(leases[:10])  # connections and scripts made, caches warm
        await recheck_sockets(sockets[:10])
        renew = await peak_of(lambda: presence.renew(leases))
        recheck = await peak_of(lambda: recheck_sockets(sockets))
    finally:
        await presence.close()
    print(f"{n} sockets: presence renewal peak {renew / 1024:,.0f} KiB ({renew / n:,.0f} B per socket); "
          f"revocation re-check peak {recheck / 1024:,.0f} KiB ({recheck / n:,.0f} B per socket)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    args = parser.parse_args()
    fresh_db.prepare("oda_bench_sweeps")
    from tests.servers import RedisProcess

    redis = RedisProcess().start()
    try:
        asyncio.run(measure(args.n, redis.url))
    finally:
        redis.stop()


if __name__ == "__main__":
    main()
