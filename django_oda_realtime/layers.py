"""The channel layer the add-on supplies when the project sets no ``CHANNEL_LAYERS`` (docs/install.md).

``REDIS_URL`` (the setting, else the environment variable) set: channels-redis' pub/sub layer (the
``redis`` extra), whose subscriptions live in the connection so a Redis restart re-subscribes
(docs/design.md#redis-restart); its prefix is the deployment's (django_oda_realtime/isolation.py).
Unset: the in-memory layer, one process only (``manage.py check`` warns outside DEBUG).
A project that sets ``CHANNEL_LAYERS`` keeps its own; ``channel_layers()`` builds the same dict for it.
"""
import os

from django.conf import settings

IN_MEMORY = "channels.layers.InMemoryChannelLayer"

# Set by supply_default() when the add-on chose the layer (read by the system checks).
supplied: dict | None = None


def redis_url() -> str | None:
    return getattr(settings, "REDIS_URL", None) or os.environ.get("REDIS_URL") or None


def redis_host(url: str) -> dict:
    """channels-redis host options: redis-py 8 closes sockets idle for 5 s
    (docs/design.md#redis-idle-timeout), so an explicit timeout above the layer's blocking read, and
    a short connect timeout so a dead Redis fails fast instead of hanging a request."""
    return {"address": url, "socket_timeout": 15, "socket_connect_timeout": 2, "health_check_interval": 10}


def channel_layers(url: str | None, prefix: str, *, core: bool = False) -> dict:
    """``CHANNEL_LAYERS`` for ``url``: the pub/sub layer (``core``: the list-based one, with room for
    the hub channel of each process), or the in-memory layer when ``url`` is empty."""
    if not url:
        return {"default": {"BACKEND": IN_MEMORY}}
    if core:
        return {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {
            "hosts": [redis_host(url)], "prefix": prefix,
            "channel_capacity": {"realtime-hub.*": 100_000},  # one hub channel per process receives every event
        }}}
    return {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                        "CONFIG": {"hosts": [redis_host(url)], "prefix": prefix}}}


def subscribes_lazily(layer) -> bool:
    """Whether ``group_add`` on ``layer`` may return before the membership is live: channels-redis'
    pub/sub layer sends SUBSCRIBE and returns without Redis' reply (docs/design.md#subscribe-confirmed).
    The core layer's ``group_add`` is a ZADD that has been applied when it returns; the in-memory
    layer's is immediate."""
    try:
        from channels_redis.pubsub import RedisPubSubChannelLayer
    except ImportError:  # the ``redis`` extra is not installed
        return False
    return isinstance(layer, RedisPubSubChannelLayer)


def supply_default() -> None:
    """``CHANNEL_LAYERS`` from ``REDIS_URL`` when the project has none (called from ``ready()``)."""
    global supplied
    if hasattr(settings, "CHANNEL_LAYERS"):
        return
    from .isolation import redis_prefix

    supplied = channel_layers(redis_url(), redis_prefix())
    settings.CHANNEL_LAYERS = supplied
