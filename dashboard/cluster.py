"""Open connections of every server process, for the live dashboard's counter (issue #17).

The page polls ``stats/`` from whichever process the balancer picks, and each process
knows only its own sockets. The per-user cap already keeps every open socket in Redis,
across processes (``django_oda_realtime/presence.py``: one sorted set per user of connection ids
scored by their lease expiry), so the sum of unexpired entries is the number of open
sockets of all processes. Without ``PRESENCE_REDIS_URL`` there is one process: None.
"""
import logging
import time

from django_oda_realtime.conf import rt_settings

logger = logging.getLogger("dashboard.cluster")
SCAN_BATCH = 500


def open_connections() -> int | None:
    """Open sockets of all processes (None without Redis presence, or when Redis does not answer)."""
    url = rt_settings.PRESENCE_REDIS_URL
    if not url:
        return None
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    now = time.time()
    total = 0
    try:
        keys = list(client.scan_iter(match=f"{rt_settings.PRESENCE_PREFIX}:presence:*", count=SCAN_BATCH))
        for start in range(0, len(keys), SCAN_BATCH):
            with client.pipeline(transaction=False) as pipe:
                for key in keys[start:start + SCAN_BATCH]:
                    pipe.zcount(key, now, "+inf")
                total += sum(pipe.execute())
    except redis.RedisError as e:
        logger.warning("Could not count the connections of all processes: %s", type(e).__name__)
        return None
    finally:
        client.close()
    return total
