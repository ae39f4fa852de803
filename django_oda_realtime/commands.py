"""The registry of client commands: domain apps add the commands they handle.

``register("inventory:update", handler, error_event="inventory:updateError")``.
A handler is ``handler(caller, data) -> result`` (sync: run in a worker thread,
so it may use the ORM; or ``async def``). It raises ``CommandError`` subclasses
for failures, which the session turns into the command's error event.
"""
from collections.abc import Callable
from dataclasses import dataclass

from .events import ERROR


@dataclass(frozen=True)
class Caller:
    """Who sent a command: passed to handlers instead of the consumer."""

    user: object
    connection_id: str
    protocol: str


@dataclass(frozen=True)
class Command:
    name: str
    handler: Callable
    error_event: str
    result_event: str | None


class CommandRegistry:
    def __init__(self) -> None:
        self._commands: dict[str, Command] = {}

    def register(
        self,
        name: str,
        handler: Callable,
        *,
        error_event: str = ERROR,
        result_event: str | None = None,
    ) -> None:
        existing = self._commands.get(name)
        if existing is not None and existing.handler is not handler:
            raise ValueError(f"Command {name!r} is already registered")
        self._commands[name] = Command(name, handler, error_event, result_event)

    def get(self, name: str) -> Command | None:
        return self._commands.get(name)

    def names(self) -> list[str]:
        return sorted(self._commands)


registry = CommandRegistry()
register = registry.register
