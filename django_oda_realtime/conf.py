"""Settings of the realtime add-on: one dict, ``REALTIME``, over ``DEFAULTS``.

Read lazily through ``rt_settings``; the cache is dropped on ``setting_changed``
so tests can use ``override_settings(REALTIME=...)``.
"""
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

DEFAULTS: dict[str, Any] = {
    # Full origins (scheme://host[:port]) allowed to open a socket from a browser,
    # besides the server's own host. "*" allows any (development only).
    "ALLOWED_ORIGINS": [],
    # The room every connection may join for system-wide notifications.
    "BROADCAST_ROOM": "broadcast",
    # Largest client message accepted, in bytes (both protocols).
    "MAX_MESSAGE_BYTES": 64 * 1024,
    # Bytes a connection may have waiting to be written before it is closed as a
    # slow consumer (daphne has no outbound backpressure, docs/design.md#daphne-backpressure).
    "MAX_OUTBOUND_BACKLOG_BYTES": 2 * 1024 * 1024,
    # Rooms one connection may hold at once.
    "MAX_ROOMS_PER_CONNECTION": 200,
    # Bound on a publish to the channel layer, so a dead Redis never hangs a request.
    "PUBLISH_TIMEOUT": 2.0,
    # Event history for resuming connections (docs/design.md#history): events are kept at least
    # this many seconds (also how long a disconnected session may be resumed), and at most this
    # many events; a position older than either answers "not recoverable".
    "HISTORY_WINDOW": 600.0,
    "HISTORY_MAX_EVENTS": 100_000,
    # Live events held for one resuming socket while its missed events are replayed; one more and
    # it is closed as a slow consumer (4008), nothing lost: it resumes again (docs/design.md#history).
    "RESUME_MAX_BUFFERED": 10_000,
    # Transactional outbox (docs/design.md#outbox): publish() writes events to the outbox table
    # in the caller's transaction; a relay publishes committed rows in commit order.
    "OUTBOX": True,
    # The committing process publishes its rows right after commit (the relay is the safety net).
    "OUTBOX_SEND_ON_COMMIT": True,
    # Server processes (manage.py serve, daphne, uvicorn) also run the relay in a thread of their
    # own, started once Django is set up; one of them (or manage.py realtime_worker) relays at a
    # time, the others stand by (docs/design.md#outbox).
    "OUTBOX_RELAY_IN_SERVER": True,
    # Seconds between relay polls (SQLite; on PostgreSQL NOTIFY wakes it, this is the safety net).
    "OUTBOX_POLL_INTERVAL": 1.0,
    # Rows sent per relay pass.
    "OUTBOX_BATCH": 200,
    # After the channel layer failed: seconds it must answer again before the backlog is sent,
    # so hubs (which retry their subscription with backoff up to 5 s) are listening again.
    "OUTBOX_RESUME_DELAY": 6.0,
    # Published rows are deleted after this many seconds.
    "OUTBOX_RETENTION": 86400.0,
    # Unpublished rows of another deployment on the same database (another channel-layer prefix)
    # older than this many seconds, whose deployment runs no relay, are sent by this deployment's
    # relay: a rollout that changed the prefix left them behind (docs/design.md#outbox).
    "OUTBOX_ORPHAN_AFTER": 60.0,
    # Heartbeat for both protocols, seconds.
    "PING_INTERVAL": 25.0,
    "PING_TIMEOUT": 20.0,
    # Seconds before a token's expiry when the socket is sent ``auth:expiring``.
    "AUTH_EXPIRY_WARNING": 60.0,
    # A native socket that sends nothing (not even ``ping``) for this long is closed (4013).
    "IDLE_TIMEOUT": 60.0,
    # Client messages per connection: a token bucket; past it an error event, and after
    # RATE_LIMIT_CLOSE_AFTER refused messages in a row, a close (4029).
    "RATE_LIMIT_RATE": 20.0,
    "RATE_LIMIT_BURST": 40,
    "RATE_LIMIT_CLOSE_AFTER": 50,
    # Concurrent sockets per user, across all processes when PRESENCE_REDIS_URL is set.
    "MAX_CONNECTIONS_PER_USER": 20,
    "PRESENCE_REDIS_URL": None,
    # Presence keys' prefix; None: the REDIS_PREFIX.
    "PRESENCE_PREFIX": None,
    "PRESENCE_LEASE": 90.0,
    # The prefix of every Redis channel, group and key of the add-on; None: derived from the
    # deployment's database and Redis database number (django_oda_realtime/isolation.py, README).
    "REDIS_PREFIX": None,
    # Connections of each pool of the add-on's own Redis clients (history, resumable sessions,
    # presence; one pool per process and event loop), and seconds a call waits for a free one
    # before failing as if Redis were down (django_oda_realtime/redis_pools.py).
    "REDIS_POOL_SIZE": 100,
    "REDIS_POOL_TIMEOUT": 10.0,
    # Observability (docs/observability.md): a bearer token that may read ``GET /metrics``
    # besides staff sessions (unset: staff only), and the bound on each ``GET /readyz`` check.
    "METRICS_TOKEN": None,
    # The name prefix of every Prometheus metric of the add-on (django_oda_realtime/metrics.py), read
    # once per process: ``realtime_connections``, ``realtime_events_published_total``...
    "METRICS_PREFIX": "realtime_",
    "HEALTH_TIMEOUT": 2.0,
    # ``manage.py serve``: a request body over this many bytes is refused with 413 before it is
    # read (by Content-Length; a chunked body when it passes it). Keep it above every endpoint's
    # own limit (SHOPIFY_WEBHOOK_MAX_BYTES 1 MiB, SOCKETIO_MAX_PAYLOAD); docs/security.md.
    "MAX_REQUEST_BODY_BYTES": 5 * 1024 * 1024,
    # Socket.IO (Engine.IO) options.
    "SOCKETIO_MAX_PAYLOAD": 1_000_000,
    # Seconds a Socket.IO connection may stay without a connected namespace (no or refused CONNECT).
    "SOCKETIO_CONNECT_TIMEOUT": 20.0,
    # Socket.IO sessions with no namespace connected (anonymous: before a CONNECT, or after a
    # DISCONNECT), per client address and per process; over either a new handshake is refused
    # (HTTP 429 / 503). None: no cap. Behind a proxy, set TRUSTED_PROXIES (issue #11).
    "SOCKETIO_MAX_PENDING_PER_ADDRESS": 100,
    "SOCKETIO_MAX_PENDING": 5000,
    # Login and token refresh (django_oda_realtime/accounts/throttling.py, docs/security.md): each account and each
    # client address may fail this many times; each later failure blocks attempts (429 with
    # Retry-After) for BASE_DELAY seconds, doubling up to MAX_DELAY. Failures are forgotten
    # WINDOW seconds after the last one; a successful login clears its account. Shared in Redis
    # when PRESENCE_REDIS_URL is set.
    "LOGIN_THROTTLE_ACCOUNT_FAILURES": 5,
    "LOGIN_THROTTLE_ADDRESS_FAILURES": 20,
    "LOGIN_THROTTLE_BASE_DELAY": 1.0,
    "LOGIN_THROTTLE_MAX_DELAY": 300.0,
    "LOGIN_THROTTLE_WINDOW": 900.0,
    # Seconds between two re-checks, by each process, of revocation and ``is_active`` for the
    # users of all its open sockets (one query per 1,000 users): the bound on how long a socket
    # outlives a logout whose close message was lost (Redis down). docs/security.md.
    "REVOCATION_RECHECK_INTERVAL": 30.0,
    # Addresses or networks of the proxies in front of the server, whose X-Forwarded-For is
    # believed (django_oda_realtime/server/clientaddr.py). Empty: the TCP peer is the client.
    "TRUSTED_PROXIES": [],
    # Graceful drain (django_oda_realtime/server/drain.py, docs/deployment.md): on SIGTERM ``manage.py serve`` closes
    # its sockets (4012, retryable) at random moments within this many seconds, then exits.
    "DRAIN_SECONDS": 10.0,
}


class RealtimeSettings:
    """Attribute access to REALTIME settings with defaults, cached until changed."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Invalid realtime setting: {name!r}")
        if name not in self._cache:
            user = getattr(settings, "REALTIME", {}) or {}
            self._cache[name] = user.get(name, DEFAULTS[name])
        return self._cache[name]

    def reload(self) -> None:
        self._cache.clear()


rt_settings = RealtimeSettings()


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting == "REALTIME":
        rt_settings.reload()


setting_changed.connect(_reload)
