"""The base of our consumers: messages only from the server, handed straight to their handlers.

None of our consumers is a channel-layer member (the hub is, ``hub.py``), so channels'
dispatch machinery has nothing to do for them: no per-message ``close_old_connections``
thread hop (docs/design.md#thread-hop-per-message; handlers that touch the ORM use
``db.run_sync_db``), and no ``await_many_dispatch``, which for one source only adds a task
and a pending ``receive`` per socket (2.5 KiB each, docs/benchmarks.md). ``__call__`` is the
plain loop (``while True: await self.dispatch(await receive())`` until ``StopConsumer``), the
one receive loop of every consumer here, between the ``begin`` and ``end`` hooks. The loop is
in ``__call__`` itself, not in a coroutine it awaits: that would be one more suspended frame
(~0.2 KiB) per idle socket (docs/benchmarks.md#before-and-after-the-outlet-redesign-issue-12-2026-11-28).
"""
from channels.consumer import AsyncConsumer, get_handler_name
from channels.exceptions import StopConsumer


class DirectConsumer(AsyncConsumer):
    async def __call__(self, scope, receive, send):
        await self.begin(scope, receive, send)
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass
        finally:
            await self.end()

    async def begin(self, scope, receive, send) -> None:
        """Before the first message: keep what the consumer needs of the connection."""
        self.scope = scope

    async def end(self) -> None:
        """After the last message, also when the server cancels the consumer (the client vanished)."""

    async def dispatch(self, message) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)
