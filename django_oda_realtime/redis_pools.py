"""Connection pools of the add-on's own Redis clients (history, sessions, presence): bounded, and
waiting for a free connection rather than failing (docs/design.md#redis-pool).

redis-py 8's asyncio ``ConnectionPool`` holds at most 100 connections by default and raises
``MaxConnectionsError`` at once when all are in use, so a burst (a thousand clients resuming after a
restart, each taking its session, replaying and storing it) failed calls that Redis would have
answered within milliseconds: a resume became a fresh session (``recovered: false``). A
``BlockingConnectionPool`` makes the burst queue for ``REDIS_POOL_SIZE`` connections instead, for at
most ``REDIS_POOL_TIMEOUT`` seconds (then ``ConnectionError``, handled as Redis being unavailable).
"""
from .conf import rt_settings


def _bounds() -> dict:
    return {"max_connections": int(rt_settings.REDIS_POOL_SIZE), "timeout": float(rt_settings.REDIS_POOL_TIMEOUT)}


def pool_from_url(url: str, **kwargs):
    """A blocking pool for ``url`` (a ``max_connections`` or ``timeout`` given here or in the URL wins)."""
    from redis.asyncio import BlockingConnectionPool

    return BlockingConnectionPool.from_url(url, **{**_bounds(), **kwargs})


def pool_for_host(host: dict):
    """A blocking pool for a channels-redis host entry (``{"address": url, ...}`` or connection
    keywords); a Sentinel entry keeps channels-redis's own pool."""
    from redis.asyncio import BlockingConnectionPool

    host = dict(host)
    if "master_name" in host:
        from channels_redis.utils import create_pool

        return create_pool(host)
    if "address" in host:
        return pool_from_url(host.pop("address"), **host)
    return BlockingConnectionPool(**{**_bounds(), **host})
