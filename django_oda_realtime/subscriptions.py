"""Topics a client subscribes to: ``subscribe:<topic>`` / ``unsubscribe:<topic>``.

A topic turns the command's data into room names:
``topics.register("inventory", resolve)`` where ``resolve(user, data) -> [room, ...]``
raises ``InvalidInput`` for malformed data. Each room is then checked by the
permission policy; the reply lists rooms joined and rooms refused with a reason.
"""
from collections.abc import Callable

from .conf import rt_settings
from .exceptions import InvalidInput
from .permissions import policy
from .rooms import notifications_room

Resolver = Callable[[object, object], list[str]]


class TopicRegistry:
    def __init__(self) -> None:
        self._topics: dict[str, Resolver] = {}
        self._snapshots: dict[str, Callable] = {}

    def register_snapshot(self, topic: str, snapshot: Callable) -> None:
        """``subscribe:<topic>`` with ``snapshot: true`` answers ``snapshot(user, rooms)`` (sync, may
        query the database: the current state of the rooms joined) with the history position it is
        at least as recent as (docs/protocol.md#resume)."""
        self._snapshots[topic] = snapshot

    def snapshot(self, topic: str) -> Callable | None:
        return self._snapshots.get(topic)

    def register(self, topic: str, resolve: Resolver) -> None:
        existing = self._topics.get(topic)
        if existing is not None and existing is not resolve:
            raise ValueError(f"Topic {topic!r} is already registered")
        self._topics[topic] = resolve

    def get(self, topic: str) -> Resolver | None:
        return self._topics.get(topic)

    def names(self) -> list[str]:
        return sorted(self._topics)


topics = TopicRegistry()


def check_rooms(user, rooms: list[str]) -> tuple[list[str], list[dict]]:
    """Split ``rooms`` into (allowed, refused with reasons). Sync: rules may query the DB."""
    allowed, refused = [], []
    for room in dict.fromkeys(rooms):  # de-duplicated, order kept
        ok, reason = policy.can_join(user, room)
        if ok:
            allowed.append(room)
        else:
            refused.append({"room": room, "reason": reason})
    return allowed, refused


def expect_mapping(data: object, allowed_keys: set[str]) -> dict:
    """``data`` as a dict with only ``allowed_keys``; None and missing mean ``{}``."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidInput("data must be an object")
    unknown = set(data) - allowed_keys
    if unknown:
        raise InvalidInput(f"Unknown field(s): {', '.join(sorted(map(str, unknown)))}")
    return data


def id_list(data: dict, key: str, *, limit: int = 100) -> list[str]:
    """A list of ids under ``key`` (strings or integers), validated, as strings."""
    from .rooms import normalize_id

    values = data.get(key)
    if values is None:
        return []
    if not isinstance(values, list) or len(values) > limit:
        raise InvalidInput(f"{key} must be a list of at most {limit} ids")
    out = []
    for value in values:
        norm = normalize_id(value)
        if norm is None:
            raise InvalidInput(f"{key} contains an invalid id")
        out.append(norm)
    return out


def resolve_notifications(user, data) -> list[str]:
    expect_mapping(data, set())
    return [notifications_room(user.pk), rt_settings.BROADCAST_ROOM]


def register_builtin_topics() -> None:
    topics.register("notifications", resolve_notifications)
