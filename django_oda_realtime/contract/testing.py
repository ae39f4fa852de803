"""Checking payloads against the contract in a test suite (needs ``jsonschema``, a test dependency).

``PublishedEventChecker`` wraps ``Event.build`` (where ``publish`` encodes every event) and validates
the ``data`` of each event that application code publishes against its schema; events built by the
test code itself (``tests.*``) are left alone, since tests of the add-on send made-up payloads on
purpose. An event published by an app but missing from the contract is a violation too.
See docs/contract.md.
"""
from datetime import datetime
import functools
import json
import os
import sys
import sysconfig

import jsonschema

from django_oda_realtime.events import Event

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


def _publisher(skip: tuple[str, ...]) -> str | None:
    """The module of the application code that built this event, or None.

    The nearest caller that belongs to one of the project's own apps (a domain app's receiver,
    service or command) or to ``skip`` (test code: None). Installed libraries' frames in between
    (django's signal dispatch, asgiref's and channels' worker threads) are walked through; a stack
    with neither (test code's ``database_sync_to_async(publish)``: the thread does not show the
    test) is None.
    """
    app_packages = _project_packages()
    from django_oda_realtime.broadcast import declared_in

    declared = declared_in.get()  # a Broadcast publishes for the app that declared it, whoever saved
    if declared is not None:
        return declared if _in_project_app(declared) else None
    frame = sys._getframe(2)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        top = module.split(".")[0]
        if top in skip:
            return None
        if top in app_packages:
            return module
        frame = frame.f_back
    return None


def _in_project_app(module: str) -> bool:
    """``module`` belongs to an installed app that is no library (an installed test app counts)."""
    from django.apps import apps

    return any(module == c.name or module.startswith(c.name + ".") for c in apps.get_app_configs()
               if c.name.split(".")[0] in _project_packages())


@functools.cache
def _project_packages() -> frozenset[str]:
    """Top-level packages of the installed apps that are not installed libraries (site-packages)."""
    from django.apps import apps

    paths = sysconfig.get_paths()
    libraries = tuple({os.path.realpath(paths[k]) for k in ("purelib", "platlib") if paths.get(k)})
    return frozenset({config.name.split(".")[0] for config in apps.get_app_configs()
                      if not os.path.realpath(config.path).startswith(libraries)} - {"django_oda_realtime"})


class PublishedEventChecker:
    """``with PublishedEventChecker() as checker: ...`` then ``checker.violations`` (and ``checker.seen``)."""

    def __init__(self, skip_modules: tuple[str, ...] = ("tests", "bench")) -> None:
        """``skip_modules``: top-level packages whose own events are not checked (test code)."""
        self.skip_modules = skip_modules
        self.violations: list[str] = []
        self.seen: set[tuple[str, str]] = set()  # (event, type) of every event checked
        self._original = None

    def __enter__(self) -> "PublishedEventChecker":
        self._original = Event.__dict__["build"]
        build = self._original.__func__

        def checked_build(cls, event, data, rooms, *, type=None):
            built = build(cls, event, data, rooms, type=type)
            module = _publisher(self.skip_modules)
            if module is not None:
                envelope = json.loads(built.json)  # what goes on the wire: dates and decimals as strings
                self.seen.add((envelope["event"], envelope["type"]))
                self.violations += [f"{problem} (published by {module})"
                                    for problem in validate_event(envelope["event"], envelope["type"], envelope["data"])]
            return built

        Event.build = classmethod(checked_build)
        return self

    def __exit__(self, *exc) -> None:
        Event.build = self._original
