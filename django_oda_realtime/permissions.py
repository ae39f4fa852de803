"""Who may join which room: one policy that apps register room kinds with.

``policy.register("inventory:location", rule, has_id=True)`` adds a kind; a rule is
``rule(user, ident) -> bool`` (``ident`` is None for kinds without an id) and may
touch the database, so ``can_join`` is sync and runs in a worker thread.
``realtime`` itself registers only ``user``, ``notifications`` and the broadcast
room; domain rooms are registrations from the domain apps' ``ready()``.
"""
from collections.abc import Callable
from dataclasses import dataclass

from .conf import rt_settings
from .rooms import ID_RE

Rule = Callable[[object, str | None], bool]

# Permissions that rules and commands check, reported to clients on connect.
_RELEVANT: set[str] = set()

# Refusal reasons, stable strings sent to clients.
UNKNOWN_ROOM = "unknown_room"
FORBIDDEN = "forbidden"
TOO_MANY_ROOMS = "too_many_rooms"  # MAX_ROOMS_PER_CONNECTION reached


@dataclass(frozen=True)
class RoomKind:
    name: str
    rule: Rule
    has_id: bool


class Policy:
    """The registry of room kinds and their rules."""

    def __init__(self) -> None:
        self._kinds: dict[str, RoomKind] = {}

    def register(self, kind: str, rule: Rule, *, has_id: bool = False) -> None:
        existing = self._kinds.get(kind)
        if existing is not None and existing.rule is not rule:
            raise ValueError(f"Room kind {kind!r} is already registered")
        self._kinds[kind] = RoomKind(kind, rule, has_id)

    def resolve(self, room: object) -> tuple[RoomKind, str | None] | None:
        """The kind and id of a room name, or None if it is not a known, well-formed room."""
        if not isinstance(room, str) or len(room) > 90:
            return None
        kind = self._kinds.get(room)
        if kind is not None and not kind.has_id:
            return kind, None
        prefix, _, ident = room.rpartition(":")
        kind = self._kinds.get(prefix)
        if kind is None or not kind.has_id or not ID_RE.match(ident):
            return None
        return kind, ident

    def can_join(self, user: object, room: object) -> tuple[bool, str | None]:
        """(allowed, refusal reason) for ``user`` joining ``room``."""
        resolved = self.resolve(room)
        if resolved is None:
            return False, UNKNOWN_ROOM
        kind, ident = resolved
        if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
            return False, FORBIDDEN
        return (True, None) if kind.rule(user, ident) else (False, FORBIDDEN)

    def kinds(self) -> list[RoomKind]:
        """The registered room kinds (for the event contract, docs/contract.md)."""
        return list(self._kinds.values())

    def kind_of(self, room: str) -> str | None:
        resolved = self.resolve(room)
        return resolved[0].name if resolved else None


policy = Policy()


def has_perm(perm: str) -> Rule:
    """A rule: the user holds the Django permission ``perm``."""

    _RELEVANT.add(perm)

    def rule(user, ident):
        return user.has_perm(perm)

    rule.__qualname__ = f"has_perm({perm!r})"
    rule.__doc__ = f"The user holds the permission {perm}."
    return rule


def is_own_user(user, ident) -> bool:
    """A rule: the room's id is the user's own primary key, spelled exactly."""
    return ident == str(user.pk)


def anyone(user, ident) -> bool:
    """Any authenticated, active user."""
    return True


def register_builtin_rooms() -> None:
    policy.register("user", is_own_user, has_id=True)
    policy.register("notifications", is_own_user, has_id=True)
    policy.register(rt_settings.BROADCAST_ROOM, anyone)


def relevant_permissions(user) -> list[str]:
    """The permissions named by registered rules that ``user`` holds (for ``connected``)."""
    return sorted(perm for perm in _RELEVANT if user.has_perm(perm))
