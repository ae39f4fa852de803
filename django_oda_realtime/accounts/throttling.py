"""Login and token refresh throttled per account and per client address (issue #11 item 4).

A growing delay, not a lockout: each account and each client address may fail ``free`` times
(``LOGIN_THROTTLE_ACCOUNT_FAILURES``, ``LOGIN_THROTTLE_ADDRESS_FAILURES``); every failure after
that blocks further attempts for ``LOGIN_THROTTLE_BASE_DELAY`` seconds, doubling with each
failure up to ``LOGIN_THROTTLE_MAX_DELAY``. A blocked attempt is answered 429 with
``Retry-After`` without checking the password, and is not counted, so an attacker cannot keep
the real user out for longer than the cap after their last failure. Failures are forgotten
``LOGIN_THROTTLE_WINDOW`` seconds after the last one; a successful login clears its account's
count (not its address's: one valid account must not reset an address that sprays others).

Counted across all processes in Redis when ``PRESENCE_REDIS_URL`` is set (``RedisStore``,
keys under the deployment's ``redis_prefix()``), else per process (``MemoryStore``, the twin).
If Redis does not answer, attempts are not throttled (fail open, like presence) and it is logged.

The client address is ``django_oda_realtime.server.clientaddr.request_address`` (``TRUSTED_PROXIES``); IPv6
addresses count per /64, the block one host usually holds. Accounts are keyed by a hash of the
case-folded user name: no user names in Redis.

``Backoff`` and ``MemoryStore`` are pure (injectable clock); views use ``ThrottledAuthMixin``.
"""
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
import hashlib
import ipaddress
import logging
import math
import time

from ..conf import rt_settings
from ..isolation import redis_prefix
from ..server.clientaddr import request_address

logger = logging.getLogger("realtime.throttling")

ACCOUNT, ADDRESS = "account", "address"


@dataclass(frozen=True)
class Backoff:
    """How long one subject is blocked after its ``failures``-th failure."""

    free: int
    base: float
    cap: float
    window: float  # failures are forgotten this long after the last one

    def delay(self, failures: int) -> float:
        if failures <= self.free:
            return 0.0
        exponent = failures - self.free - 1
        return self.cap if exponent >= 64 else min(self.cap, self.base * 2**exponent)


def policies() -> dict[str, Backoff]:
    """The account and address policies from the settings."""
    base, cap, window = (float(rt_settings.LOGIN_THROTTLE_BASE_DELAY), float(rt_settings.LOGIN_THROTTLE_MAX_DELAY),
                         float(rt_settings.LOGIN_THROTTLE_WINDOW))
    return {
        ACCOUNT: Backoff(int(rt_settings.LOGIN_THROTTLE_ACCOUNT_FAILURES), base, cap, max(window, cap)),
        ADDRESS: Backoff(int(rt_settings.LOGIN_THROTTLE_ADDRESS_FAILURES), base, cap, max(window, cap)),
    }


class MemoryStore:
    """Per-process counts (the in-memory twin of ``RedisStore``); ``clock`` is injectable.
    Bounded: past ``max_keys`` counts, forgotten ones are dropped, then the oldest."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        self.clock = clock
        self.max_keys = max_keys
        self.failures: dict[str, tuple[int, float]] = {}  # key -> (count, forget at)
        self.blocked: dict[str, float] = {}  # key -> blocked until

    def wait(self, keys: list[str]) -> float:
        now = self.clock()
        return max((self.blocked.get(key, now) - now for key in keys), default=0.0)

    def fail(self, key: str, policy: Backoff) -> float:
        now = self.clock()
        count, forget_at = self.failures.get(key, (0, now))
        count = count + 1 if now < forget_at else 1
        self.failures[key] = (count, now + policy.window)
        delay = policy.delay(count)
        if delay:
            self.blocked[key] = now + delay
        if len(self.failures) > self.max_keys:
            self._prune(now)
        return delay

    def _prune(self, now: float) -> None:
        self.failures = {k: v for k, v in self.failures.items() if v[1] > now}
        excess = len(self.failures) - self.max_keys // 2
        if excess > 0:
            for key in list(self.failures)[:excess]:  # the least recently first seen
                del self.failures[key]
        self.blocked = {k: until for k, until in self.blocked.items() if until > now and k in self.failures}

    def reset(self, key: str) -> None:
        self.failures.pop(key, None)
        self.blocked.pop(key, None)


_FAIL = """
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local free = tonumber(ARGV[2])
if n <= free then return 0 end
local ms = math.floor(1000 * math.min(tonumber(ARGV[4]), tonumber(ARGV[3]) * 2 ^ math.min(n - free - 1, 64)))
if ms > 0 then redis.call('SET', KEYS[2], '1', 'PX', ms) end
return ms
"""


class RedisStore:
    """Counts shared by every process: a failure counter and a block key (its TTL is the wait)."""

    def __init__(self, url: str) -> None:
        import redis

        self.redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._fail = self.redis.register_script(_FAIL)

    def wait(self, keys: list[str]) -> float:
        with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.pttl(f"{key}:blocked")
            ttls = pipe.execute()
        return max((ttl / 1000 for ttl in ttls if ttl > 0), default=0.0)

    def fail(self, key: str, policy: Backoff) -> float:
        args = [int(policy.window * 1000), policy.free, policy.base, policy.cap]
        return int(self._fail(keys=[key, f"{key}:blocked"], args=args)) / 1000

    def reset(self, key: str) -> None:
        self.redis.delete(key, f"{key}:blocked")


_memory = MemoryStore()


@lru_cache(maxsize=4)
def _redis_store(url: str) -> RedisStore:
    return RedisStore(url)


def store() -> MemoryStore | RedisStore:
    url = rt_settings.PRESENCE_REDIS_URL
    return _redis_store(url) if url else _memory


def address_subject(address: str) -> str:
    """The unit an address is counted in: itself, or its /64 for IPv6."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def account_subject(username: str) -> str:
    return hashlib.sha256(username.casefold().encode()).hexdigest()[:32]


class AuthThrottle:
    """Attempts of one endpoint (``scope``): blocked or not, and their outcome."""

    def __init__(self, scope: str, store_=None, policies_: dict[str, Backoff] | None = None) -> None:
        self.scope = scope
        self.store = store_ if store_ is not None else store()
        self.policies = policies_ if policies_ is not None else policies()

    def key(self, kind: str, subject: str) -> str:
        return f"{redis_prefix()}:throttle:{self.scope}:{kind}:{subject}"

    def wait(self, subjects: dict[str, str]) -> float:
        """Seconds before an attempt for these subjects is allowed (0: now)."""
        try:
            return self.store.wait([self.key(kind, subject) for kind, subject in subjects.items()])
        except Exception as e:
            logger.error("Login throttle store unavailable (%s); not throttling", type(e).__name__)
            return 0.0

    def failed(self, subjects: dict[str, str]) -> None:
        try:
            for kind, subject in subjects.items():
                self.store.fail(self.key(kind, subject), self.policies[kind])
        except Exception as e:
            logger.error("Login throttle store unavailable (%s); failure not counted", type(e).__name__)

    def succeeded(self, subjects: dict[str, str]) -> None:
        if ACCOUNT in subjects:
            try:
                self.store.reset(self.key(ACCOUNT, subjects[ACCOUNT]))
            except Exception as e:
                logger.warning("Login throttle reset failed (%s)", type(e).__name__)


class ThrottledAuthMixin:
    """For a DRF view whose POST authenticates (login, refresh): 429 + ``Retry-After`` while its
    account or address is blocked; a 401 counts as a failure, a success clears the account."""

    throttle_scope = "login"

    def throttle_account(self, request) -> str | None:
        """The user name the attempt is for (login: the posted one)."""
        from django.contrib.auth import get_user_model

        data = request.data if hasattr(request.data, "get") else {}
        username = data.get(get_user_model().USERNAME_FIELD)
        return username if isinstance(username, str) and username else None

    def throttle_subjects(self, request) -> dict[str, str]:
        subjects = {ADDRESS: address_subject(request_address(request))}
        account = self.throttle_account(request)
        if account is not None:
            subjects[ACCOUNT] = account_subject(account)
        return subjects

    # DRF's hooks around the handler, not ``post``: a view may define its own ``post``.
    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method != "POST":
            return
        self.auth_throttle = AuthThrottle(self.throttle_scope)
        self.auth_throttle_subjects = self.throttle_subjects(request)
        wait = self.auth_throttle.wait(self.auth_throttle_subjects)
        if wait > 0:
            self.auth_throttle = None  # refused unchecked: not an attempt, not counted
            self.throttled(request, math.ceil(wait))

    def finalize_response(self, request, response, *args, **kwargs):
        throttle = getattr(self, "auth_throttle", None)
        if throttle is not None:
            if response.status_code == 401:
                throttle.failed(self.auth_throttle_subjects)
            elif 200 <= response.status_code < 300:
                throttle.succeeded(self.auth_throttle_subjects)
        return super().finalize_response(request, response, *args, **kwargs)


class ThrottledRefreshMixin(ThrottledAuthMixin):
    """The refresh view's twin: the account is the user id of a refresh token whose signature
    verifies (a blacklisted or revoked one counts against its user); garbage counts per address."""

    throttle_scope = "refresh"

    def throttle_account(self, request) -> str | None:
        from rest_framework_simplejwt.exceptions import TokenBackendError
        from rest_framework_simplejwt.settings import api_settings
        from rest_framework_simplejwt.state import token_backend

        data = request.data if hasattr(request.data, "get") else {}
        raw = data.get("refresh")
        if not isinstance(raw, str) or not raw or len(raw) > 4096:
            return None
        try:
            payload = token_backend.decode(raw, verify=True)  # signature and expiry; not the blacklist
        except TokenBackendError:
            return None
        user_id = payload.get(api_settings.USER_ID_CLAIM)
        return f"user:{user_id}" if user_id is not None else None


__all__ = ["AuthThrottle", "Backoff", "MemoryStore", "RedisStore", "ThrottledAuthMixin", "ThrottledRefreshMixin"]
