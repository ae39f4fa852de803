"""Room names, their validation, and the one room -> channel-layer group mapping.

A room is ``<kind>`` (e.g. ``inventory:all``) or ``<kind>:<id>`` (e.g.
``inventory:location:42``). Kinds are registered by apps through
``django_oda_realtime.permissions.policy``; ids are 1-64 characters of ``[A-Za-z0-9_-]``.
Pure: no Django, no I/O.

Each room has its own channel-layer group, except the ``user:<id>`` rooms. Every
socket joins its user's room, so one group each would cost a process one Redis
subscription (and channels-redis's bookkeeping, ~0.5 KiB) per connected user and a
Redis round trip per connect. They share ``USER_GROUP_SHARDS`` groups instead
(``rts.user.<n>``, a prefix no room's group can have): a process joins at most that
many whatever its number of users. The hub hands an event only to the local
members of the rooms the event names, so the other users of a shard never see it.
"""
import re
import zlib

ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
KIND_RE = re.compile(r"^[a-z][a-zA-Z]*(?::[a-z][a-zA-Z]*)*$")  # a room kind (realtime.Broadcast checks new ones)
GROUP_PREFIX = "rt."
USER_GROUP_PREFIX = "rts.user."
USER_GROUP_SHARDS = 64


def normalize_id(value: object) -> str | None:
    """An id as a client may send it (string or integer) -> its canonical string, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, str) and ID_RE.match(value):
        return value
    return None


def room(kind: str, ident: object | None = None) -> str:
    """Build a room name: ``room("inventory:location", 4) == "inventory:location:4"``."""
    if ident is None:
        return kind
    norm = normalize_id(ident)
    if norm is None:
        raise ValueError(f"Invalid room id: {ident!r}")
    return f"{kind}:{norm}"


def group_for(room_name: str) -> str:
    """The channel-layer group of a room: its own (':' -> '.'), or its shard's for ``user:<id>``."""
    if not isinstance(room_name, str) or "." in room_name or len(room_name) > 90:
        raise ValueError(f"Invalid room name: {room_name!r}")
    group = GROUP_PREFIX + room_name.replace(":", ".")
    if not re.match(r"^[A-Za-z0-9._-]+$", group):
        raise ValueError(f"Invalid room name: {room_name!r}")
    kind, _, ident = room_name.partition(":")
    if kind == "user" and ident and ":" not in ident:
        return f"{USER_GROUP_PREFIX}{zlib.crc32(ident.encode()) % USER_GROUP_SHARDS}"
    return group


def room_for_group(group: str) -> str:
    """Inverse of ``group_for`` for the groups of one room (not ``rts.user.*`` shards)."""
    if group.startswith(USER_GROUP_PREFIX):
        raise ValueError(f"{group!r} is the group of many user rooms")
    return group[len(GROUP_PREFIX):].replace(".", ":")


def user_room(user_id: object) -> str:
    return room("user", user_id)


def notifications_room(user_id: object) -> str:
    return room("notifications", user_id)
