"""One prefix for every Redis channel, group and key of the add-on, so two deployments sharing a
Redis never hear each other (issue #11 item 7).

Redis pub/sub ignores the database number: a publish from a process on ``redis://…/3`` reaches
subscribers on ``redis://…/7``. Without distinct prefixes, staging and production (or two shops)
on one Redis receive each other's events and revocations. The prefix is, in order:

1. ``REALTIME["REDIS_PREFIX"]`` when set (env ``REALTIME_REDIS_PREFIX``; the project's settings
   also take the older ``CHANNEL_LAYER_PREFIX`` as an alias);
2. otherwise derived from the deployment's identity: its default database (engine, host, port,
   name) and its Redis database number, hashed to ``rt`` + 12 hex digits. Every process of one
   deployment shares these and so the prefix; two deployments differ in at least one.

Not derived from ``SECRET_KEY``: it is the same in every development checkout, and a rolling
deploy that rotates it would split one deployment in two. Group names allow
``[A-Za-z0-9._-]`` under 100 characters (channels' ``layers.py``), hence the short hash.

Users: the channel layer's ``prefix`` (project settings), presence keys (``django_oda_realtime/presence.py``),
login throttle keys (``django_oda_realtime/accounts/throttling.py``).
"""
import hashlib
import re
from urllib.parse import parse_qs, urlsplit

PREFIX_RE = re.compile(r"^[A-Za-z0-9._-]{1,40}$")


def redis_db_number(url: str | None) -> int:
    """The database number of a Redis URL (``/3``, or ``?db=3``); 0 when it names none."""
    if not url:
        return 0
    parts = urlsplit(url)
    path = parts.path.strip("/")
    if path.isdigit():
        return int(path)
    db = parse_qs(parts.query).get("db")
    return int(db[0]) if db and db[0].isdigit() else 0


def deployment_identity(database: dict, redis_url: str | None) -> str:
    """What tells one deployment from another: its database and its Redis database number."""
    fields = [str(database.get(key) or "") for key in ("ENGINE", "HOST", "PORT", "NAME")]
    return "\x1f".join([*fields, str(redis_db_number(redis_url))])


def deployment_prefix(database: dict, redis_url: str | None) -> str:
    """The prefix derived from the deployment's identity (module docstring)."""
    digest = hashlib.sha256(deployment_identity(database, redis_url).encode()).hexdigest()
    return f"rt{digest[:12]}"


def checked_prefix(value: str) -> str:
    """``value`` if it can start channel-layer group names, else ValueError."""
    if not isinstance(value, str) or not PREFIX_RE.match(value):
        raise ValueError(f"REDIS_PREFIX must be 1-40 characters of [A-Za-z0-9._-], not {value!r}")
    return value


def redis_prefix() -> str:
    """The prefix of every Redis channel, group and key the add-on uses in this deployment."""
    from django.conf import settings

    from .conf import rt_settings

    if rt_settings.REDIS_PREFIX:
        return checked_prefix(rt_settings.REDIS_PREFIX)
    from .layers import redis_url

    return deployment_prefix(settings.DATABASES["default"], rt_settings.PRESENCE_REDIS_URL or redis_url())


__all__ = ["deployment_prefix", "redis_prefix"]
