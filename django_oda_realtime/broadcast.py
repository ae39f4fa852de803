"""Declarative model events: "when this model changes, send this event to these rooms, after commit".

``Broadcast(Return, event="returns:updated", fields=("status",), payload=fn, rooms=[...], join={...},
topic="returns", schema=...)`` in an app's ``ready()`` (docs/extending.md). One declaration:

- connects ``pre_save`` / ``post_save`` / ``post_delete`` of the model (once per model, however many
  broadcasts it has) and sends through ``publish`` (after commit; nothing on rollback);
- registers the room kinds of ``join`` with ``django_oda_realtime.permissions.policy`` (rules run in a worker
  thread and may query the database), an optional ``subscribe:<topic>`` with
  ``django_oda_realtime.subscriptions.topics`` (its resolver runs on the event loop: no ORM), and the event's
  schema with the contract (docs/contract.md).

Previous values: only when ``fields`` are given, ``pre_save`` reads the stored values of the watched
fields of every broadcast of the model with one primary-key query (skipped for new rows, fixture loads
and a ``save(update_fields=...)`` that touches none of them). Nothing is kept on loaded instances
(a ``post_init`` snapshot would cost memory and time for every row any query loads, and could be
stale). Without ``fields`` every save sends and nothing is queried.

Not covered (no signals): ``QuerySet.update()``, ``bulk_create()``, ``bulk_update()``, raw SQL;
``QuerySet.delete()`` does send ``post_delete`` per row. Fixture loads (``raw=True``) send nothing.
Signals name the exact class: a proxy or a child model needs its own declaration.
"""
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
import functools
import re
import string
import sys

from django.apps import apps
from django.db.models.signals import post_delete, post_save, pre_save

from .exceptions import InvalidInput
from .permissions import Rule, has_perm, policy
from .publish import publish
from .rooms import KIND_RE, normalize_id
from .subscriptions import expect_mapping, topics

CREATE, UPDATE, DELETE = "create", "update", "delete"
KINDS = (CREATE, UPDATE, DELETE)
_PLACEHOLDER = re.compile(r":\{(\w+)\}$")

# The module that declared the broadcast being published (for django_oda_realtime.contract.testing).
declared_in: ContextVar[str | None] = ContextVar("realtime_broadcast_declared_in", default=None)


@dataclass(frozen=True)
class Change:
    """What happened to an instance: ``kind``, the previous values of watched fields, which changed."""

    kind: str
    old: Mapping[str, object] = field(default_factory=dict)
    changed: frozenset[str] = frozenset()

    @property
    def created(self) -> bool:
        return self.kind == CREATE

    @property
    def deleted(self) -> bool:
        return self.kind == DELETE


@functools.cache
def _perm_rule(perm: str) -> Rule:
    # One rule object per permission, so several broadcasts may declare the same room kind.
    return has_perm(perm)


def _parse_room_key(key: str) -> tuple[str, str | None]:
    """``"returns:customer:{customerId}"`` -> (``returns:customer``, ``customerId``); ``"returns:all"`` -> (it, None)."""
    match = _PLACEHOLDER.search(key)
    kind = key[:match.start()] if match else key
    if not KIND_RE.match(kind):
        raise ValueError(f"Invalid room kind {kind!r} in {key!r}")
    return kind, match.group(1) if match else None


def _template_fields(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


class _Tracker:
    """The signal receivers of one model, shared by its broadcasts."""

    def __init__(self, model) -> None:
        self.model = model
        self.broadcasts: list["Broadcast"] = []
        uid = f"django_oda_realtime.broadcast.{model._meta.label}"
        pre_save.connect(self.pre_save, sender=model, dispatch_uid=uid, weak=False)
        post_save.connect(self.post_save, sender=model, dispatch_uid=uid, weak=False)

    def add(self, broadcast: "Broadcast") -> None:
        self.broadcasts.append(broadcast)
        if DELETE in broadcast.on:
            # Connected only when needed: a post_delete receiver turns Django's fast deletes off.
            post_delete.connect(self.post_delete, sender=self.model,
                                dispatch_uid=f"django_oda_realtime.broadcast.{self.model._meta.label}", weak=False)

    def watched(self) -> list[str]:
        names = dict.fromkeys(f for b in self.broadcasts if UPDATE in b.on for f in (b.fields or ()))
        return list(names)

    def pre_save(self, sender, instance, raw=False, update_fields=None, **kwargs) -> None:
        instance._rt_broadcast_old = None
        watched = self.watched()
        if raw or instance._state.adding or instance.pk is None or not watched:
            return
        if update_fields is not None:
            meta = self.model._meta
            watched = [f for f in watched if f in update_fields or meta.get_field(f).attname in update_fields]
            if not watched:
                return
        attnames = [self.model._meta.get_field(f).attname for f in watched]
        row = self.model._base_manager.using(kwargs.get("using")).filter(pk=instance.pk).values_list(*attnames).first()
        instance._rt_broadcast_old = dict(zip(watched, row)) if row is not None else None

    def post_save(self, sender, instance, created=False, raw=False, update_fields=None, **kwargs) -> None:
        if raw:
            return
        old = getattr(instance, "_rt_broadcast_old", None)
        instance._rt_broadcast_old = None
        watched = self.watched()
        if any(hasattr(_value(instance, f), "resolve_expression") for f in watched):
            # Saved with F(): the instance holds the expression, not the value.
            instance.refresh_from_db(fields=watched)
        for broadcast in list(self.broadcasts):
            broadcast._saved(instance, created, old, update_fields)

    def post_delete(self, sender, instance, **kwargs) -> None:
        for broadcast in list(self.broadcasts):
            if DELETE in broadcast.on:
                fields = broadcast.fields or ()
                broadcast._send(instance, Change(DELETE, {f: _value(instance, f) for f in fields}, frozenset()))


def _value(instance, name: str):
    """A field's value as stored: a foreign key's id, not the related object (no query)."""
    return getattr(instance, instance._meta.get_field(name).attname)


_trackers: dict[type, _Tracker] = {}
_default_topics: dict[str, tuple[tuple[str, ...], Callable]] = {}


class Broadcast:
    """Send ``event`` with ``payload(instance, change)`` to ``rooms`` when ``model`` changes; after commit.

    Declaring it registers it (in an app's ``ready()``). See the module docstring and docs/extending.md.
    """

    def __init__(
        self,
        model,
        *,
        event: str,
        payload: Callable[[object, Change], object],
        rooms: Sequence[str] | Callable[[object, Change], Iterable[str]],
        on: Iterable[str] = KINDS,
        fields: Iterable[str] | None = None,
        when: Callable[[object, Change], bool] | None = None,
        type: str | None = None,
        join: Mapping[str, Rule | str] | None = None,
        topic: str | None = None,
        schema: dict | None = None,
        description: str = "",
        contract_rooms: Iterable[str] | None = None,
    ) -> None:
        self.model = apps.get_model(model) if isinstance(model, str) else model
        self.event, self.type, self.payload, self.when = event, type, payload, when
        self.on = tuple(on)
        if not self.on or set(self.on) - set(KINDS):
            raise ValueError(f"on must name some of {', '.join(KINDS)}")
        self.fields = tuple(fields) if fields is not None else None
        if isinstance(rooms, str):
            rooms = [rooms]
        self.rooms = rooms if callable(rooms) else tuple(rooms)
        names = {f.name for f in self.model._meta.concrete_fields}
        unknown = [f for f in (self.fields or ()) if f not in names]
        if unknown:
            raise ValueError(f"{self.model._meta.label} has no field(s) {', '.join(unknown)}")
        if not callable(self.rooms):
            for template in self.rooms:
                for name in _template_fields(template):
                    if not hasattr(self.model, name) and name not in names:
                        raise ValueError(f"Room {template!r}: {self.model._meta.label} has no {name!r}")
        # The declaring module: the contract's test checker attributes the events to it (docs/contract.md, Tests).
        self.module = sys._getframe(1).f_globals.get("__name__", "")
        self.join = dict(join or {})
        for key, rule in self.join.items():
            kind, placeholder = _parse_room_key(key)
            policy.register(kind, _perm_rule(rule) if isinstance(rule, str) else rule, has_id=placeholder is not None)
        if topic is not None:
            self._register_topic(topic)
        if schema is not None:
            from .contract import register_event

            patterns = contract_rooms
            if patterns is None:
                patterns = self.join if callable(self.rooms) else self.rooms
            register_event(event, schema, rooms=list(patterns), type=type, description=description)
        tracker = _trackers.get(self.model) or _trackers.setdefault(self.model, _Tracker(self.model))
        tracker.add(self)

    def _register_topic(self, name: str) -> None:
        keys = tuple(self.join)
        if not keys:
            raise ValueError("A topic needs the room kinds it joins: give join={...}")
        known = _default_topics.get(name)
        if known is not None and known[0] != keys:
            raise ValueError(f"Topic {name!r} is already declared with rooms {list(known[0])}")
        resolve = known[1] if known else _topic_resolver(keys)
        _default_topics[name] = (keys, resolve)
        topics.register(name, resolve)
        from .contract import describe_topic
        from .contract.schema import ID_ARG, obj

        args = {p: ID_ARG for p in (_parse_room_key(k)[1] for k in keys) if p}
        describe_topic(name, data=obj({}, optional=args) if args else None, rooms=list(keys),
                       description=resolve.__doc__)

    def disconnect(self) -> None:
        """Stop sending (tests). Room kinds and topics stay registered."""
        tracker = _trackers.get(self.model)
        if tracker and self in tracker.broadcasts:
            tracker.broadcasts.remove(self)

    def _saved(self, instance, created: bool, old: dict | None, update_fields) -> None:
        kind = CREATE if created else UPDATE
        if kind not in self.on:
            return
        if created or self.fields is None:
            change = Change(kind, {}, frozenset(self.fields or ()) if created else frozenset())
        else:
            if old is None:
                return  # no stored row before (or none of the watched fields was saved)
            old = {f: old[f] for f in self.fields if f in old}
            changed = frozenset(f for f, value in old.items() if _value(instance, f) != value)
            if not changed:
                return  # only unwatched fields changed
            change = Change(kind, {f: old.get(f, _value(instance, f)) for f in self.fields}, changed)
        self._send(instance, change)

    def _send(self, instance, change: Change) -> None:
        if self.when is not None and not self.when(instance, change):
            return
        rooms = self.rooms(instance, change) if callable(self.rooms) else [
            template.format_map(_Attrs(instance)) for template in self.rooms]
        token = declared_in.set(self.module)
        try:
            publish(self.event, self.payload(instance, change), list(rooms), type=self.type,
                    using=instance._state.db)
        finally:
            declared_in.reset(token)

    def __repr__(self) -> str:
        return f"<Broadcast {self.event} on {self.model._meta.label} {'/'.join(self.on)}>"


class _Attrs:
    """Room template fields from an instance; ids normalized like room ids."""

    def __init__(self, instance) -> None:
        self.instance = instance

    def __getitem__(self, name: str) -> str:
        value = getattr(self.instance, name)
        norm = normalize_id(value)
        if norm is None:
            raise ValueError(f"{name}={value!r} is not a valid room id")
        return norm


def _topic_resolver(keys: tuple[str, ...]) -> Callable:
    kinds = [_parse_room_key(k) for k in keys]
    fixed = [kind for kind, placeholder in kinds if placeholder is None]
    with_id = {placeholder: kind for kind, placeholder in kinds if placeholder is not None}

    def resolve(user, data) -> list[str]:
        data = expect_mapping(data, set(with_id))
        rooms = []
        for placeholder, value in data.items():
            norm = normalize_id(value)
            if norm is None:
                raise InvalidInput(f"{placeholder} must be an id")
            rooms.append(f"{with_id[placeholder]}:{norm}")
        return rooms or fixed

    given = ", ".join(f"{p}" for p in with_id)
    resolve.__doc__ = (f"{{{given}}} (optional) -> those rooms; " if with_id else "") + \
        (f"{', '.join(fixed)} when none is given." if fixed else "")
    return resolve
