"""Checking payloads against the contract in a test suite (needs ``jsonschema``, a test dependency).

``PublishedEventChecker`` wraps ``Event.build`` (where ``publish`` encodes every event) and validates
the ``data`` of each event that application code publishes against its schema; events built by the
test code itself (``tests.*``) are left alone, since tests of the add-on send made-up payloads on
purpose. An event published by an app but missing from the contract is a violation too.
See docs/contract.md.
"""
from datetime import datetime
import json
import sys

import jsonschema

from realtime.events import Event

from .catalog import catalog

FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _is_datetime(value) -> bool:
    return not isinstance(value, str) or datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None


_validators: dict[int, jsonschema.Draft7Validator] = {}


def validate_event(name: str, type: str | None, data: object) -> list[str]:
    """The problems of ``data`` (as decoded from the wire) for the event ``name``/``type``; [] if it matches."""
    spec = catalog.event(name, type)
    if spec is None:
        return [f"{name!r} (type {type or name!r}) is not in the event contract"]
    validator = _validators.get(id(spec.schema))
    if validator is None:
        validator = _validators[id(spec.schema)] = jsonschema.Draft7Validator(spec.schema, format_checker=FORMATS)
    return [f"{name} ({spec.type}) data{''.join(f'[{p!r}]' for p in e.absolute_path)}: {e.message}"
            for e in validator.iter_errors(data)]


def _publisher() -> str | None:
    """The module that called into ``realtime`` to build this event, if it is application code."""
    frame = sys._getframe(2)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module != "realtime" and not module.startswith("realtime."):
            return module
        frame = frame.f_back
    return None


class PublishedEventChecker:
    """``with PublishedEventChecker() as checker: ...`` then ``checker.violations`` (and ``checker.seen``)."""

    def __init__(self, skip_modules: tuple[str, ...] = ("tests", "bench")) -> None:
        self.skip_modules = skip_modules
        self.violations: list[str] = []
        self.seen: set[tuple[str, str]] = set()  # (event, type) of every event checked
        self._original = None

    def _skipped(self, module: str) -> bool:
        return any(module == m or module.startswith(m + ".") for m in self.skip_modules)

    def __enter__(self) -> "PublishedEventChecker":
        self._original = Event.__dict__["build"]
        build = self._original.__func__

        def checked_build(cls, event, data, rooms, *, type=None):
            built = build(cls, event, data, rooms, type=type)
            module = _publisher()
            if module is not None and not self._skipped(module):
                envelope = json.loads(built.json)  # what goes on the wire: dates and decimals as strings
                self.seen.add((envelope["event"], envelope["type"]))
                self.violations += [f"{problem} (published by {module})"
                                    for problem in validate_event(envelope["event"], envelope["type"], envelope["data"])]
            return built

        Event.build = classmethod(checked_build)
        return self

    def __exit__(self, *exc) -> None:
        Event.build = self._original
