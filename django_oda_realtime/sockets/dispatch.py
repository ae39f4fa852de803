"""The base of our consumers: messages only from the server, handed straight to their handlers.

None of our consumers is a channel-layer member (the hub is, ``hub.py``), so channels'
dispatch machinery has nothing to do for them: no per-message ``close_old_connections``
thread hop (docs/design.md#thread-hop-per-message; handlers that touch the ORM use
``db.run_sync_db``), and no ``await_many_dispatch``, which for one source only adds a task
and a pending ``receive`` per socket (2.5 KiB each, docs/benchmarks.md). ``run`` is the plain
loop (``while True: await self.dispatch(await receive())`` until ``StopConsumer``), the one
receive loop of every consumer here, awaited directly from each ``__call__``.
"""
from channels.consumer import AsyncConsumer, get_handler_name
from channels.exceptions import StopConsumer


class DirectConsumer(AsyncConsumer):
    async def run(self, receive) -> None:
        """Dispatch the server's messages until a handler raises ``StopConsumer``."""
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass

    async def dispatch(self, message) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)
