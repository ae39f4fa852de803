"""The store of resumable sessions: pid -> user, rooms, ``connected`` data, last position.

docs/design.md#history. A session is created when a connection that may be resumed opens, updated
by the connection that owns it (its ``owner``: a connection id), and taken over atomically by a
resume: ``take_session(pid, user_id, owner)`` hands the record to the new connection and makes it the
owner, so the stale connection (still open until its ping times out, maybe on another process) can
no longer write it. A pid is unguessable (``new_pid``) and bound to its user: another user's pid
recovers nothing. Logout deletes every session of the user (``delete_user_sessions``); a session
expires ``HISTORY_WINDOW`` seconds after its last write or renewal: each process renews the sessions
of its open sockets (``renew``, from the hub's sweeper), so the window counts from the disconnect,
however long the socket was open.

Redis keys (under the history's prefix): ``<prefix>:history:session:<pid>`` (hash: user, owner,
data) and ``<prefix>:history:user:<user id>`` (set of the user's pids).
"""
from dataclasses import asdict, dataclass, field
import json
import logging
import re
import secrets
import time
import weakref

from redis.exceptions import RedisError

from .conf import rt_settings

logger = logging.getLogger("realtime.history")

PID_RE = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
MAX_USER_ID = 64
MAX_OWNER = 128
MAX_SESSION_BYTES = 64 * 1024
INDEX_PRUNE_OVER = 64

_STORE = """
local user = redis.call('HGET', KEYS[1], 'user')
if user then
  if ARGV[1] == '1' then return 0 end
  if user ~= ARGV[2] or redis.call('HGET', KEYS[1], 'owner') ~= ARGV[3] then return 0 end
elseif ARGV[1] ~= '1' then return 0 end
redis.call('HSET', KEYS[1], 'user', ARGV[2], 'owner', ARGV[3], 'data', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('SADD', KEYS[2], ARGV[6])
redis.call('EXPIRE', KEYS[2], ARGV[5])
if redis.call('SCARD', KEYS[2]) > tonumber(ARGV[8]) then
  for _, pid in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    if redis.call('EXISTS', ARGV[7] .. pid) == 0 then redis.call('SREM', KEYS[2], pid) end
  end
end
return 1
"""

_TAKE = """
local v = redis.call('HMGET', KEYS[1], 'user', 'owner', 'data')
if (not v[1]) or v[1] ~= ARGV[1] then return false end
redis.call('HSET', KEYS[1], 'owner', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {v[2], v[3]}
"""

_RESUMABLE_UNTIL = """
local longest = -1
for _, pid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local ttl = redis.call('PTTL', ARGV[1] .. pid)
  if ttl > longest then longest = ttl end
end
return longest
"""

_DELETE_USER = """
local n = 0
for _, pid in ipairs(redis.call('SMEMBERS', KEYS[1])) do n = n + redis.call('DEL', ARGV[1] .. pid) end
redis.call('DEL', KEYS[1])
return n
"""


def new_pid() -> str:
    """An unguessable session id (192 random bits)."""
    return secrets.token_urlsafe(24)


def valid_pid(pid: object) -> bool:
    return isinstance(pid, str) and PID_RE.match(pid) is not None


def _user(user_id: object) -> str | None:
    if isinstance(user_id, bool) or not isinstance(user_id, (str, int)):
        return None
    user_id = str(user_id)
    return user_id if 0 < len(user_id) <= MAX_USER_ID else None


@dataclass
class StoredSession:
    """A resumable session. ``owner``: the connection that may update it now."""

    pid: str
    user_id: str
    owner: str
    rooms: list[str] = field(default_factory=list)
    connected: dict = field(default_factory=dict)
    position: str | None = None
    created: float = 0.0
    expires: float = 0.0

    def encode(self) -> str:
        data = {k: v for k, v in asdict(self).items() if k not in ("pid", "user_id", "owner")}
        text = json.dumps(data, separators=(",", ":"))
        if len(text) > MAX_SESSION_BYTES:
            raise ValueError("A stored session is limited to 64 KiB")
        return text

    @classmethod
    def decode(cls, pid: str, user_id: str, owner: str, text: str) -> "StoredSession":
        data = json.loads(text)
        return cls(pid, user_id, owner, list(data["rooms"]), dict(data["connected"]), data["position"],
                   float(data["created"]), float(data["expires"]))


def _checked(session: StoredSession) -> tuple[str, str]:
    """The session's user id and encoding; ValueError for what no caller should store."""
    user = _user(session.user_id)
    if not valid_pid(session.pid) or user is None:
        raise ValueError("A session needs a pid from new_pid() and a user id")
    if not isinstance(session.owner, str) or not 0 < len(session.owner) <= MAX_OWNER:
        raise ValueError("A session's owner is a connection id")
    if len(session.rooms) > rt_settings.MAX_ROOMS_PER_CONNECTION:
        raise ValueError("Too many rooms for one session")
    return user, session.encode()


def _ttl() -> float:
    return float(rt_settings.HISTORY_WINDOW)


class MemorySessions:
    """The in-memory twin (one process), with an injectable clock."""

    def __init__(self, clock=time.time) -> None:
        self.clock = clock
        self._sessions: dict[str, list] = {}  # pid -> [user, owner, data, expiry]
        self._users: dict[str, set[str]] = {}

    def _get(self, pid: str) -> list | None:
        entry = self._sessions.get(pid)
        if entry is not None and entry[3] <= self.clock():
            del self._sessions[pid]
            self._users.get(entry[0], set()).discard(pid)
            return None
        return entry

    async def store_session(self, session: StoredSession, *, create: bool = False) -> bool:
        """Create (``create=True``: only if new) or update (only by its owner) ``session``."""
        now = self.clock()
        session.created = session.created or now
        session.expires = now + _ttl()
        user, data = _checked(session)
        entry = self._get(session.pid)
        if (entry is None) != create or (entry is not None and (entry[0], entry[1]) != (user, session.owner)):
            return False
        self._sessions[session.pid] = [user, session.owner, data, session.expires]
        self._users.setdefault(user, set()).add(session.pid)
        return True

    async def take_session(self, pid: object, user_id: object, owner: str) -> StoredSession | None:
        """The session ``pid`` of ``user_id``, now owned by ``owner``; None if unknown or another user's."""
        user = _user(user_id)
        if not valid_pid(pid) or user is None:
            return None
        entry = self._get(pid)
        if entry is None or entry[0] != user:
            return None
        previous = entry[1]
        entry[1] = owner
        entry[3] = self.clock() + _ttl()
        session = StoredSession.decode(pid, user, previous, entry[2])
        session.expires = entry[3]
        return session

    async def resumable_until(self, user_id: object) -> float | None:
        """When the last of ``user_id``'s sessions expires (``time.time()`` scale); None if none is left."""
        user = _user(user_id)
        expiries = [entry[3] for pid in list(self._users.get(user, ())) if (entry := self._get(pid)) is not None]
        return max(expiries, default=None)

    async def renew(self, sessions) -> None:
        """Push back the expiry of the existing sessions among ``sessions`` ((pid, user id) pairs)."""
        now = self.clock()
        for pid, _ in sessions:
            entry = self._get(pid) if valid_pid(pid) else None
            if entry is not None:
                entry[3] = now + _ttl()

    async def delete_user_sessions(self, user_id: object) -> int:
        """Forget every session of ``user_id`` (logout)."""
        user = _user(user_id)
        count = 0
        for pid in self._users.pop(user, set()) if user else ():
            count += self._sessions.pop(pid, None) is not None
        return count


class RedisSessions:
    """The Redis store, shared by every process (on the channel layer's Redis by default)."""

    def __init__(self, host: dict, *, prefix: str) -> None:
        from redis.commands.core import AsyncScript

        from .history_redis import LoopClients

        self.clients = LoopClients(host)
        self.session_prefix = f"{prefix}:history:session:"
        self.user_prefix = f"{prefix}:history:user:"
        self._store = AsyncScript(None, _STORE.encode())
        self._take = AsyncScript(None, _TAKE.encode())
        self._delete_user = AsyncScript(None, _DELETE_USER.encode())
        self._resumable_until = AsyncScript(None, _RESUMABLE_UNTIL.encode())

    async def store_session(self, session: StoredSession, *, create: bool = False) -> bool:
        """Create (``create=True``: only if new) or update (only by its owner) ``session``."""
        now = time.time()
        session.created = session.created or now
        session.expires = now + _ttl()
        user, data = _checked(session)
        keys = [self.session_prefix + session.pid, self.user_prefix + user]
        args = [1 if create else 0, user, session.owner, data, max(1, int(_ttl())), session.pid,
                self.session_prefix, INDEX_PRUNE_OVER]
        try:
            return bool(await self._store(keys=keys, args=args, client=self.clients.get()))
        except (RedisError, OSError) as e:
            logger.error("Session store unavailable; session not stored: %s", type(e).__name__)
            return False

    async def take_session(self, pid: object, user_id: object, owner: str) -> StoredSession | None:
        """The session ``pid`` of ``user_id``, now owned by ``owner``; None if unknown or another user's."""
        user = _user(user_id)
        if not valid_pid(pid) or user is None:
            return None
        try:
            reply = await self._take(keys=[self.session_prefix + pid], args=[user, owner, max(1, int(_ttl()))],
                                     client=self.clients.get())
        except (RedisError, OSError) as e:
            logger.error("Session store unavailable; a fresh session instead: %s", type(e).__name__)
            return None
        if not reply:
            return None
        previous, data = (v.decode() if isinstance(v, bytes) else v for v in reply)
        session = StoredSession.decode(pid, user, previous, data)
        session.expires = time.time() + _ttl()
        return session

    async def resumable_until(self, user_id: object) -> float | None:
        """When the last of ``user_id``'s sessions expires (``time.time()`` scale); None if none is left.

        Raises ``RedisError``/``OSError`` when Redis does not answer: unknown is the caller's call."""
        user = _user(user_id)
        if user is None:
            return None
        ttl_ms = int(await self._resumable_until(keys=[self.user_prefix + user], args=[self.session_prefix],
                                                 client=self.clients.get()))
        return time.time() + ttl_ms / 1000 if ttl_ms >= 0 else None

    async def renew(self, sessions, batch: int = 500) -> None:
        """Push back the expiry of the existing sessions among ``sessions`` ((pid, user id) pairs)
        and of their users' indexes: EXPIRE never creates a key, so a deleted (logged out) session
        stays deleted. Pipelined, ``batch`` sessions per round trip."""
        ttl = max(1, int(_ttl()))
        pairs = [(pid, _user(user)) for pid, user in sessions if valid_pid(pid) and _user(user) is not None]
        client = self.clients.get()
        try:
            for i in range(0, len(pairs), batch):
                pipe = client.pipeline(transaction=False)
                for pid, user in pairs[i:i + batch]:
                    pipe.expire(self.session_prefix + pid, ttl)
                    pipe.expire(self.user_prefix + user, ttl)
                await pipe.execute()
        except (RedisError, OSError) as e:
            logger.error("Session store unavailable; sessions not renewed: %s", type(e).__name__)

    async def delete_user_sessions(self, user_id: object) -> int:
        """Forget every session of ``user_id`` (logout)."""
        user = _user(user_id)
        if user is None:
            return 0
        try:
            return int(await self._delete_user(keys=[self.user_prefix + user], args=[self.session_prefix],
                                               client=self.clients.get()))
        except (RedisError, OSError) as e:
            # A resume still needs a valid token: a revoked one is refused (docs/design.md#history).
            logger.error("Session store unavailable; the user's sessions expire with the window: %s",
                         type(e).__name__)
            return 0

    async def aclose(self) -> None:
        await self.clients.aclose()


_stores: "weakref.WeakKeyDictionary[object, object]" = weakref.WeakKeyDictionary()


def make_sessions(layer=None, *, prefix: str | None = None):
    """The session store of ``layer`` (default: the default channel layer): Redis for channels-redis
    layers, the in-memory twin otherwise; one per layer instance."""
    if layer is None:
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
    store = _stores.get(layer)
    if store is None:
        from .history_redis import is_redis_layer, layer_hosts, single_host

        if is_redis_layer(layer):
            store = RedisSessions(single_host(layer), prefix=prefix or layer_hosts(layer)[1])
        else:
            store = MemorySessions()
        _stores[layer] = store
    return store
