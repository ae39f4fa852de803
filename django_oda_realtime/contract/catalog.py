"""The event contract's registry: every server -> client event with the JSON Schema of its ``data``,
and the descriptions of topics' and commands' arguments and results.

Rooms (``django_oda_realtime.permissions.policy``), topics (``django_oda_realtime.subscriptions.topics``) and commands
(``django_oda_realtime.commands.registry``) are registered where they always were; this registry adds what
those cannot say: the shape of the data. Apps declare it in a ``schemas.py`` module, imported
the first time the contract is read (as the admin imports ``admin.py``)::

    # returns/schemas.py
    from django_oda_realtime.contract import describe_command, register_event
    from django_oda_realtime.contract.schema import ID, obj, string

    register_event("returns:created", obj({"returnId": ID}), rooms=["returns:all"],
                   description="A return was opened.")
    describe_command("returns:approve", data=obj({"returnId": ID}), result=obj({"status": string()}),
                     errors={"not_found": "no such return"})

An event sent with several envelope ``type`` s (``notification``) is declared once per type,
each with its own data schema. See docs/contract.md.
"""
from dataclasses import dataclass, field
import threading

from django.utils.module_loading import autodiscover_modules

# The module every installed app may provide with its declarations.
MODULE_NAME = "schemas"


@dataclass(frozen=True)
class EventSpec:
    """One server -> client event (or one ``type`` of it): its data schema and where it goes."""

    name: str
    schema: dict
    type: str
    rooms: tuple[str, ...] = ()
    description: str = ""
    error: bool = False  # an error event: ``data = {error, code, request}``, error/code repeated on top
    direct: bool = False  # sent to one socket (a reply, a notice), not to rooms


@dataclass(frozen=True)
class CommandSpec:
    """The contract of one client command: argument, ack result, error codes."""

    name: str
    data: dict | None  # None: the command takes no argument
    result: dict
    errors: dict[str, str] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class TopicSpec:
    """The contract of ``subscribe:<topic>``: its argument and the rooms it may join."""

    name: str
    data: dict | None
    rooms: tuple[str, ...] = ()
    description: str = ""


class Catalog:
    def __init__(self) -> None:
        self.events: dict[tuple[str, str], EventSpec] = {}
        self.commands: dict[str, CommandSpec] = {}
        self.topics: dict[str, TopicSpec] = {}
        self._discovered = False
        self._lock = threading.Lock()

    def _add(self, table: dict, key, spec) -> None:
        existing = table.get(key)
        if existing is not None and existing != spec:
            raise ValueError(f"{key!r} is already declared differently in the event contract")
        table[key] = spec

    def register_event(self, name: str, schema: dict, *, rooms=(), description: str = "",
                       type: str | None = None, error: bool = False, direct: bool = False) -> EventSpec:
        """Declare the event ``name`` (with envelope ``type``, default ``name``) and its data schema."""
        if not isinstance(schema, dict):
            raise TypeError("schema must be a JSON Schema dict")
        spec = EventSpec(name, schema, type or name, tuple(rooms), description, error, direct)
        self._add(self.events, (name, spec.type), spec)
        return spec

    def describe_command(self, name: str, *, data: dict | None, result: dict | None = None,
                         errors: dict[str, str] | None = None, description: str = "") -> CommandSpec:
        """Declare a client command's argument, ack result and the error codes it may answer."""
        spec = CommandSpec(name, data, result if result is not None else {}, dict(errors or {}), description)
        self._add(self.commands, name, spec)
        return spec

    def describe_topic(self, name: str, *, data: dict | None, rooms=(), description: str = "") -> TopicSpec:
        """Declare ``subscribe:<name>``'s argument and the rooms (patterns) it resolves to."""
        spec = TopicSpec(name, data, tuple(rooms), description)
        self._add(self.topics, name, spec)
        return spec

    def discover(self) -> "Catalog":
        """Import the ``schemas`` module of every installed app, once."""
        if not self._discovered:
            with self._lock:
                if not self._discovered:
                    from . import builtin  # noqa: F401  (the add-on's own events)

                    autodiscover_modules(MODULE_NAME)
                    self._discovered = True
        return self

    def event(self, name: str, type: str | None = None) -> EventSpec | None:
        return self.discover().events.get((name, type or name))

    def event_names(self) -> list[str]:
        return sorted({name for name, _ in self.discover().events})


catalog = Catalog()
register_event = catalog.register_event
describe_command = catalog.describe_command
describe_topic = catalog.describe_topic
