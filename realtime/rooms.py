"""Room names, their validation, and the one room -> channel-layer group mapping.

A room is ``<kind>`` (e.g. ``inventory:all``) or ``<kind>:<id>`` (e.g.
``inventory:location:42``). Kinds are registered by apps through
``realtime.permissions.policy``; ids are 1-64 characters of ``[A-Za-z0-9_-]``.
Pure: no Django, no I/O.
"""
import re

ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
KIND_RE = re.compile(r"^[a-z][a-zA-Z]*(?::[a-z][a-zA-Z]*)*$")
GROUP_PREFIX = "rt."


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
    """The channel-layer group of a room; one-to-one (':' <-> '.', no '.' in a room)."""
    if not isinstance(room_name, str) or "." in room_name or len(room_name) > 90:
        raise ValueError(f"Invalid room name: {room_name!r}")
    group = GROUP_PREFIX + room_name.replace(":", ".")
    if not re.match(r"^[A-Za-z0-9._-]+$", group):
        raise ValueError(f"Invalid room name: {room_name!r}")
    return group


def room_for_group(group: str) -> str:
    """Inverse of ``group_for``."""
    return group[len(GROUP_PREFIX):].replace(".", ":")


def user_room(user_id: object) -> str:
    return room("user", user_id)


def notifications_room(user_id: object) -> str:
    return room("notifications", user_id)
