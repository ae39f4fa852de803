"""The event history in Redis: one stream, one epoch key, one Lua script per publish.

docs/design.md#history. Keys, all under one prefix (default: the channel layer's):

- ``<prefix>:history:epoch``   the epoch, created with the stream (a missing one of the two: new epoch)
- ``<prefix>:history:stream``  the events: fields e (name), i (id), r (rooms, space-separated),
                               j (envelope JSON), t (publish time); the epoch's first entry is a marker
- ``<prefix>:history:id:<id>`` the position given to an event id (idempotency), kept 2 minutes
- ``<prefix>:history:server``  the run id of the Redis server: a restart (even with persistence) is a
                               new epoch, checked when connecting and resuming (``head``, ``replay``)

On the channels-redis **pub/sub** layer (msgpack, no encryption) the append script also PUBLISHes the
layer message, with its position appended, to the rooms' group channels: Redis runs a script
atomically, so PUBLISH order is position order on every subscriber, and a retried publish of the same
id is neither appended nor delivered twice. On the **core** layer the script also does the layer's group_send (ZADD to each member channel's
sorted set, scored by the position), so hubs receive in position order there too. With
``symmetric_encryption_keys`` the script only appends and the caller's process then ``group_send``s
the message with its position: positions and replay hold, but two processes publishing at once may
be delivered in different orders.

Single Redis host only: channels-redis shards groups over several hosts, a script runs on one.
"""
import asyncio
import logging
import os
import time
import types
import weakref

from django.core.exceptions import ImproperlyConfigured
from redis import asyncio as aioredis
from redis.exceptions import RedisError
from redis.commands.core import AsyncScript

from .conf import rt_settings
from .events import Event
from .history import (
    IDEMPOTENCY_SECONDS, NOT_RECOVERABLE, REPLAY_BATCH, Entry, Replay, _Base, check_event_id, check_rooms,
    layer_message, new_epoch, parse_position,
)
from .rooms import group_for

logger = logging.getLogger("realtime.history")

# Ensures the epoch: when the epoch key or the stream is missing (flushed, restarted without
# persistence, evicted), a new epoch starts with a new stream whose first entry marks it.
# ``fresh`` may already be set by _SERVER_CHECK.
_START_EPOCH = """
local epoch = redis.call('GET', KEYS[1])
if fresh or (not epoch) or redis.call('EXISTS', KEYS[2]) == 0 then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('SET', KEYS[1], epoch)
  local start = redis.call('XADD', KEYS[2], '*', 'epoch', epoch)
  -- A position before the epoch's start was never given out: as if trimmed.
  redis.call('XSETID', KEYS[2], start, 'MAXDELETEDID', start)
end
"""
_ENSURE_EPOCH = "local fresh = false" + _START_EPOCH

# On the connect and resume paths (not on every publish): a Redis restart, even with persistence
# (a snapshot may lack the last writes before the crash), starts a new epoch. KEYS[3]: the run id
# of the Redis server that the epoch was last checked on.
_SERVER_CHECK = """
local fresh = false
local run = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
if redis.call('GET', KEYS[3]) ~= run then
  fresh = redis.call('EXISTS', KEYS[3]) == 1
  redis.call('SET', KEYS[3], run)
end
"""

# KEYS: epoch, stream, idempotency key. ARGV: candidate epoch, max events, window (ms), id ttl (s),
# name, id, rooms, json, ts, serialized layer message, then the group channels to PUBLISH to.
# The message is a msgpack fixmap (checked by the caller): one more entry, "pos", is appended.
_APPEND = _ENSURE_EPOCH + """
local seen = redis.call('GET', KEYS[3])
if seen then return {seen, 0} end
local id = redis.call('XADD', KEYS[2], '*', 'e', ARGV[5], 'i', ARGV[6], 'r', ARGV[7], 'j', ARGV[8], 't', ARGV[9])
-- Trimming does not move the stream's max-deleted-entry-id (Redis 7.0): record the newest
-- trimmed id with XSETID, so that replay knows whether anything after a position is gone.
local trimmed = false
local excess = redis.call('XLEN', KEYS[2]) - tonumber(ARGV[2])
if excess > 0 then
  local gone = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', excess)
  trimmed = gone[#gone][1]
  redis.call('XTRIM', KEYS[2], 'MAXLEN', ARGV[2])
end
local cutoff = tonumber(string.match(id, '^(%d+)-')) - tonumber(ARGV[3])
if cutoff > 0 then
  cutoff = string.format('%.0f', cutoff) .. '-0'
  -- XRANGE first: XREVRANGE from below the first entry walks the whole stream (Redis 7.0).
  if redis.call('XRANGE', KEYS[2], '-', '(' .. cutoff, 'COUNT', 1)[1] then
    trimmed = redis.call('XREVRANGE', KEYS[2], '(' .. cutoff, '-', 'COUNT', 1)[1][1]
    redis.call('XTRIM', KEYS[2], 'MINID', cutoff)
  end
end
if trimmed then redis.call('XSETID', KEYS[2], id, 'MAXDELETEDID', trimmed) end
local pos = epoch .. ':' .. id
redis.call('SET', KEYS[3], pos, 'EX', ARGV[4])
if #ARGV > 10 then
  local msg = ARGV[10]
  msg = string.char(string.byte(msg, 1) + 1) .. string.sub(msg, 2) .. '\\163pos\\217' .. string.char(#pos) .. pos
  for i = 11, #ARGV do redis.call('PUBLISH', ARGV[i], msg) end
end
return {pos, 1}
"""

# The core layer's group_send, done by the append script itself (docs/design.md#history): for each
# group key (KEYS[4..]) its member channels get the message, with its position and, as
# channels-redis core sends it, "__asgi_channel__" (the channels sharing one Redis key), behind the
# layer's random prefix, in that key's sorted set scored by the position (so BZPOPMIN hands a hub
# its events in position order). ARGV after the append's ten: layer prefix, random prefix, capacity,
# message expiry (s), group expiry (s), now (s, the publisher's clock, as channels-redis uses it).
_APPEND_CORE = _APPEND.replace("""
if #ARGV > 10 then""", """
if #KEYS > 3 then
  local function str(v)
    if #v < 32 then return string.char(160 + #v) .. v end
    if #v < 256 then return '\\217' .. string.char(#v) .. v end
    return '\\218' .. string.char(math.floor(#v / 256)) .. string.char(#v % 256) .. v
  end
  local body = ARGV[10]
  local head = ARGV[12] .. string.char(string.byte(body, 1) + 2) .. string.sub(body, 2) .. '\\163pos' .. str(pos)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  ms, seq = tonumber(ms), tonumber(seq)
  local score = string.format('%.0f.%03d%03d', math.floor(ms / 1000), ms % 1000, math.min(seq, 999))
  local now = tonumber(ARGV[16])
  local order, channels = {}, {}
  for k = 4, #KEYS do
    redis.call('ZREMRANGEBYSCORE', KEYS[k], 0, math.floor(now) - tonumber(ARGV[15]))
    for _, channel in ipairs(redis.call('ZRANGE', KEYS[k], 0, -1)) do
      local cut = string.find(channel, '!', 1, true)
      local key = ARGV[11] .. (cut and string.sub(channel, 1, cut) or channel)
      if not channels[key] then channels[key] = {}; order[#order + 1] = key end
      table.insert(channels[key], channel)
    end
  end
  for _, key in ipairs(order) do
    redis.call('ZREMRANGEBYSCORE', key, 0, math.floor(now) - tonumber(ARGV[14]))
    if redis.call('ZCOUNT', key, '-inf', '+inf') < tonumber(ARGV[13]) then
      local list = channels[key]
      local msg = head .. '\\176__asgi_channel__' .. (#list < 16 and string.char(144 + #list) or ('\\220' .. string.char(math.floor(#list / 256)) .. string.char(#list % 256)))
      for _, channel in ipairs(list) do msg = msg .. str(channel) end
      redis.call('ZADD', key, score, msg)
      redis.call('EXPIRE', key, ARGV[14])
    end
  end
elseif #ARGV > 10 then""")

_INFO = """
local info = redis.call('XINFO', 'STREAM', KEYS[2])
local last, deleted
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then last = info[i + 1]
  elseif info[i] == 'max-deleted-entry-id' then deleted = info[i + 1] end
end
"""

# KEYS: epoch, stream, server. ARGV: candidate epoch.
_HEAD = _SERVER_CHECK + _START_EPOCH + _INFO + """
return epoch .. ':' .. last
"""

# KEYS: epoch, stream, server. ARGV: candidate epoch; the position's epoch, ms, seq; batch size;
# the rooms. Checks and reads atomically.
_REPLAY = _SERVER_CHECK + _START_EPOCH + """
if epoch ~= ARGV[2] then return {'epoch'} end
""" + _INFO + """
local function parse(id)
  local a, b = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(a), tonumber(b)
end
local function less(am, as, bm, bs) return am < bm or (am == bm and as < bs) end
local sm, ss = tonumber(ARGV[3]), tonumber(ARGV[4])
local lm, ls = parse(last)
if less(lm, ls, sm, ss) then return {'future'} end
local dm, ds = parse(deleted)
if less(sm, ss, dm, ds) then return {'trimmed'} end
local rows = redis.call('XRANGE', KEYS[2], '(' .. ARGV[3] .. '-' .. ARGV[4], '+', 'COUNT', ARGV[5])
local wanted = {}
for i = 6, #ARGV do wanted[ARGV[i]] = true end
-- ok, last generated id, last id scanned, entries scanned, then 6 values per event of the rooms:
-- id, name, event id, rooms, json, ts (fields e, i, r, j, t in the order XADD wrote them).
local out = {'ok', last, '', #rows}
for _, row in ipairs(rows) do
  out[3] = row[1]
  local f = row[2]
  if f[1] == 'e' then
    for room in string.gmatch(f[6], '[^ ]+') do
      if wanted[room] then
        out[#out + 1] = row[1]; out[#out + 1] = f[2]; out[#out + 1] = f[4]
        out[#out + 1] = f[6]; out[#out + 1] = f[8]; out[#out + 1] = f[10]
        break
      end
    end
  end
end
return out
"""


def is_redis_layer(layer) -> bool:
    from channels_redis.core import RedisChannelLayer
    from channels_redis.pubsub import RedisPubSubChannelLayer

    return isinstance(layer, (RedisChannelLayer, RedisPubSubChannelLayer))


class LoopClients:
    """One redis-py client per event loop (asyncio connections are bound to their loop), closed
    with the loop, as channels-redis does for its layers: ``async_to_sync`` may run each publish
    on a new loop."""

    def __init__(self, host: dict) -> None:
        self.host = dict(host)
        self._clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def get(self) -> aioredis.Redis:
        from .redis_pools import pool_for_host

        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = aioredis.Redis(connection_pool=pool_for_host(self.host))
            self._close_with(loop)
        return client

    def _close_with(self, loop) -> None:
        original = loop.close
        clients = self._clients

        def close(self_loop, *args, **kwargs):
            client = clients.pop(self_loop, None)
            if client is not None and not self_loop.is_running():
                self_loop.run_until_complete(client.aclose(close_connection_pool=True))
            self_loop.close = original
            return original(*args, **kwargs)

        loop.close = types.MethodType(close, loop)

    async def aclose(self) -> None:
        """Close the running loop's client (tests; shutdown)."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose(close_connection_pool=True)


def layer_hosts(layer) -> tuple[list[dict], str]:
    """The Redis hosts and key prefix of a channels-redis layer."""
    from channels_redis.utils import decode_hosts

    if hasattr(layer, "_kwargs"):  # pub/sub layer: its options are kept for the per-loop layers
        return decode_hosts(layer._kwargs.get("hosts")), layer._kwargs.get("prefix", "asgi")
    return list(layer.hosts), layer.prefix


def single_host(layer) -> dict:
    hosts, _ = layer_hosts(layer)
    if len(hosts) != 1:
        raise ImproperlyConfigured("The event history needs the channel layer on a single Redis host "
                                   "(docs/design.md#history)")
    return hosts[0]


class RedisHistory(_Base):
    """The Redis backend of the history (interface: ``django_oda_realtime.history``)."""

    def __init__(self, host: dict, *, prefix: str, layer=None, atomic_publish: bool = False,
                 group_channel_prefix: str = "", window: float | None = None,
                 max_events: int | None = None, atomic_core: bool = False) -> None:
        self.clients = LoopClients(host)
        self.prefix = prefix
        self.layer = layer
        self.atomic_publish = atomic_publish
        self.atomic_core = atomic_core
        self.group_channel_prefix = group_channel_prefix
        self.window = window
        self.max_events = max_events
        self.epoch_key = f"{prefix}:history:epoch"
        self.stream_key = f"{prefix}:history:stream"
        self.server_key = f"{prefix}:history:server"
        self._append = AsyncScript(None, _APPEND.encode())
        self._append_core = AsyncScript(None, _APPEND_CORE.encode())
        self._head = AsyncScript(None, _HEAD.encode())
        self._replay = AsyncScript(None, _REPLAY.encode())

    @classmethod
    def for_layer(cls, layer, *, prefix: str | None = None) -> "RedisHistory":
        """The history on the Redis of a channels-redis layer; atomic publish on both layers
        when their messages are plain msgpack (no ``symmetric_encryption_keys``)."""
        from channels_redis.core import RedisChannelLayer
        from channels_redis.pubsub import RedisPubSubChannelLayer
        from channels_redis.serializers import MsgPackSerializer

        host = single_host(layer)
        _, layer_prefix = layer_hosts(layer)
        serializer = getattr(layer, "_serializer", None)
        plain = type(serializer) is MsgPackSerializer and serializer.crypter is None
        atomic = isinstance(layer, RedisPubSubChannelLayer) and plain and not serializer.random_prefix_length
        atomic_core = isinstance(layer, RedisChannelLayer) and plain
        return cls(host, prefix=prefix or layer_prefix, layer=layer, atomic_publish=atomic,
                   group_channel_prefix=f"{layer_prefix}__group__", atomic_core=atomic_core)

    def _window(self) -> float:
        return float(self.window if self.window is not None else rt_settings.HISTORY_WINDOW)

    def _max(self) -> int:
        return int(self.max_events if self.max_events is not None else rt_settings.HISTORY_MAX_EVENTS)

    async def _run(self, script: AsyncScript, keys: list, args: list):
        return await script(keys=keys, args=args, client=self.clients.get())

    async def append(self, event: Event, channels: list[str] = (), message: bytes = b"\x80", *,
                     group_keys: list = (), core_args: list = ()) -> tuple[str, bool]:
        """Append ``event`` (and PUBLISH ``message`` to ``channels``, or with ``group_keys`` send it
        as the core layer's group_send, in the same script): (position, False when the id was
        already appended)."""
        check_event_id(event)
        window = self._window()
        keys = [self.epoch_key, self.stream_key, f"{self.prefix}:history:id:{event.id}", *group_keys]
        remember = max(1, int(min(window, IDEMPOTENCY_SECONDS)))
        args = [new_epoch(), self._max(), int(window * 1000), remember, event.name, event.id,
                " ".join(event.rooms), event.json, repr(float(event.published_at)), message, *channels, *core_args]
        position, fresh = await self._run(self._append_core if group_keys else self._append, keys, args)
        return _text(position), bool(fresh)

    async def _publish_core(self, event: Event, groups: list[str]) -> str:
        """The core layer: append and group_send in one script, so hubs receive in position order."""
        from .hub import HUB_CHANNEL_PREFIX

        layer = self.layer
        serializer = layer._serializer
        message = serializer.as_bytes(event.to_layer())
        if not 0x80 <= message[0] <= 0x8D:  # a msgpack fixmap of under 14 entries: two are added
            raise ValueError("Unexpected layer message encoding")
        core_args = [layer.prefix, os.urandom(serializer.random_prefix_length),
                     layer.get_capacity(f"{HUB_CHANNEL_PREFIX}x!x"), int(layer.expiry), int(layer.group_expiry),
                     repr(time.time())]
        position, _ = await self.append(event, (), message, group_keys=[layer._group_key(g) for g in groups],
                                        core_args=core_args)
        return position

    async def publish(self, event: Event) -> str:
        """Append ``event`` and send it to its rooms' groups, in position order; idempotent by id."""
        groups = list(dict.fromkeys(group_for(room) for room in event.rooms))
        if self.atomic_publish:
            message = self.layer.serialize(event.to_layer())
            if not 0x80 <= message[0] <= 0x8E:  # a msgpack fixmap of under 15 entries
                raise ValueError("Unexpected layer message encoding")
            position, _ = await self.append(event, [self.group_channel_prefix + g for g in groups], message)
            return position
        if self.atomic_core and groups:
            return await self._publish_core(event, groups)
        position, _ = await self.append(event)
        # Sent even when the id was appended before: that first send may have failed (a retry);
        # hubs drop events seen by id.
        message = layer_message(event, position)
        for group in groups:
            try:
                await self.layer.group_send(group, message)
            except Exception:
                # Once more: after a Redis restart each pooled connection of the layer fails once
                # though Redis is back (as django_oda_realtime.publish does); hubs drop duplicates by event id.
                await self.layer.group_send(group, message)
        return position

    async def head(self) -> str:
        return _text(await self._run(self._head, [self.epoch_key, self.stream_key, self.server_key],
                                     [new_epoch()]))

    async def replay(self, position: str, rooms, limit: int = REPLAY_BATCH) -> Replay:
        parsed = parse_position(position)
        if parsed is None:
            return NOT_RECOVERABLE
        try:
            wanted = check_rooms(rooms)
        except ValueError:
            return NOT_RECOVERABLE
        epoch, start = parsed
        limit = max(1, min(int(limit), 10 * REPLAY_BATCH))
        # Filtered by rooms in the script: only the caller's events cross the network.
        try:
            reply = await self._run(self._replay, [self.epoch_key, self.stream_key, self.server_key],
                                    [new_epoch(), epoch, start.ms, start.seq, limit, *wanted])
        except (RedisError, OSError) as e:
            # Unavailable history: the caller starts a fresh session, as for a trimmed position.
            logger.error("Event history unavailable for a replay: %s", type(e).__name__)
            return NOT_RECOVERABLE
        if _text(reply[0]) != "ok":
            return NOT_RECOVERABLE
        last, scanned, count = _text(reply[1]), _text(reply[2]) or str(start), int(reply[3])
        values = [_text(v) for v in reply[4:]]
        events = [
            Entry(f"{epoch}:{values[i]}", Event(values[i + 1], values[i + 2], tuple(values[i + 3].split(" ")),
                                                values[i + 4], float(values[i + 5])))
            for i in range(0, len(values), 6)
        ]
        complete = count < limit or scanned == last
        return Replay(True, events, f"{epoch}:{scanned}", complete)

    async def aclose(self) -> None:
        await self.clients.aclose()


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value
