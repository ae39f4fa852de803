"""How many sockets a user has open, across every server process: the per-user cap.

With ``REALTIME["PRESENCE_REDIS_URL"]`` set, each user has a Redis sorted set of
connection ids scored by a lease expiry; hubs renew the leases of their local
sockets every ``PRESENCE_LEASE / 3`` seconds, so sockets of a process that died
stop counting when their lease runs out. Without it, counting is per process.
If Redis does not answer, the cap is not enforced (fail open) and the failure is logged.
"""
import logging
import time

from .conf import rt_settings
from .isolation import redis_prefix

logger = logging.getLogger("realtime.presence")

RENEW_BATCH = 500  # leases per pipelined round trip of ``RedisPresence.renew``

_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


class MemoryPresence:
    """Per-process counting (the in-memory twin)."""

    def __init__(self) -> None:
        self.users: dict[str, set[str]] = {}

    async def acquire(self, user_id: str, conn_id: str, limit: int) -> bool:
        conns = self.users.setdefault(user_id, set())
        if len(conns) >= limit:
            return False
        conns.add(conn_id)
        return True

    async def release(self, user_id: str, conn_id: str) -> None:
        conns = self.users.get(user_id)
        if conns is not None:
            conns.discard(conn_id)
            if not conns:
                del self.users[user_id]

    async def renew(self, leases: list[tuple[str, str]]) -> None:
        return None

    async def close(self) -> None:
        return None


class RedisPresence:
    def __init__(self, url: str, prefix: str) -> None:
        import redis.asyncio as aioredis

        from .redis_pools import pool_from_url

        self.redis = aioredis.Redis.from_pool(pool_from_url(url, socket_timeout=2, socket_connect_timeout=2))
        self.prefix = prefix
        self._acquire = self.redis.register_script(_ACQUIRE)

    def key(self, user_id: str) -> str:
        return f"{self.prefix}:presence:{user_id}"

    async def acquire(self, user_id: str, conn_id: str, limit: int) -> bool:
        lease = rt_settings.PRESENCE_LEASE
        now = time.time()
        try:
            return bool(await self._acquire(keys=[self.key(user_id)], args=[now, now + lease, limit, conn_id, int(lease * 2)]))
        except Exception as e:
            logger.error("Presence store unavailable (%s); connection cap not enforced", type(e).__name__)
            return True

    async def release(self, user_id: str, conn_id: str) -> None:
        try:
            await self.redis.zrem(self.key(user_id), conn_id)
        except Exception as e:
            logger.warning("Presence release failed (%s); the lease will expire", type(e).__name__)

    async def renew(self, leases: list[tuple[str, str]], batch: int = RENEW_BATCH) -> None:
        """Renew the leases, pipelined, ``batch`` leases per round trip: one pipeline for all of a
        process's sockets held ~1 KiB per socket at once (5 MiB for 5,000), which an idle server
        kept as allocator slack (docs/benchmarks.md#before-and-after-the-outlet-redesign-issue-12-2026-11-28)."""
        if not leases:
            return
        lease = rt_settings.PRESENCE_LEASE
        expiry = time.time() + lease
        try:
            # Not ``xx``: after a Redis restart (or a failed acquire) the open sockets are added
            # back, so the cap counts them again. A socket released while this runs may be
            # re-added; its lease then runs out like that of a dead process.
            for start in range(0, len(leases), batch):
                async with self.redis.pipeline(transaction=False) as pipe:
                    for user_id, conn_id in leases[start:start + batch]:
                        pipe.zadd(self.key(user_id), {conn_id: expiry})
                        pipe.expire(self.key(user_id), int(lease * 2))
                    await pipe.execute()
        except Exception as e:
            logger.warning("Presence renewal failed (%s)", type(e).__name__)

    async def close(self) -> None:
        """Close the connection pool (the hub stops): no connection is left for the garbage collector."""
        try:
            await self.redis.aclose()
        except Exception as e:
            logger.warning("Closing the presence connections failed (%s)", type(e).__name__)


def make_presence():
    url = rt_settings.PRESENCE_REDIS_URL
    # Keys of this deployment only (django_oda_realtime/isolation.py).
    return RedisPresence(url, rt_settings.PRESENCE_PREFIX or redis_prefix()) if url else MemoryPresence()
