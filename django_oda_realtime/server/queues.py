"""``ReceiveQueue``: an ``asyncio.Queue`` for one consumer, at a fraction of its memory.

``asyncio.Queue`` holds three deques and an ``asyncio.Event`` (3.2 KiB) even while empty. One is
made per connection by daphne (replaced in ``serving.SlimServer``) and one per Engine.IO session
(``socketio/engine.py``), though each only needs ``put_nowait``, ``get_nowait``, ``empty`` and
``get``. ``ReceiveQueue`` has two slots (74 bytes); its message deque exists only while messages
wait, and a waiting ``get`` costs one future. A ``get`` cancelled after a message was handed to it
leaves the message queued (the next ``get`` returns it), like ``asyncio.Queue``; order is FIFO. It
has no ``__len__`` on purpose: daphne tests ``if self.application_queue:``.
"""
import asyncio
from collections import deque


class ReceiveQueue:
    """The ASGI ``receive`` queue of one connection: ``put_nowait`` (daphne) and ``get`` (the app)."""

    __slots__ = ("_items", "_getters")

    def __init__(self) -> None:
        self._items: deque | None = None  # made on the first put, dropped when drained
        self._getters: list | None = None  # futures of waiting ``get`` calls, oldest first

    def qsize(self) -> int:
        return len(self._items) if self._items is not None else 0

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        self._wakeup_next()

    def get_nowait(self):
        items = self._items
        if not items:
            raise asyncio.QueueEmpty
        item = items.popleft()
        if not items:
            self._items = None
        return item

    async def get(self):
        while not self._items:
            getter = asyncio.get_running_loop().create_future()
            if self._getters is None:
                self._getters = []
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                getter.cancel()  # no-op if a put already woke it
                if self._getters is not None and getter in self._getters:
                    self._getters.remove(getter)
                    if not self._getters:
                        self._getters = None
                if self._items and not getter.cancelled():
                    self._wakeup_next()  # it was woken for a message it will not take: pass the turn on
                raise
        return self.get_nowait()

    def _wakeup_next(self) -> None:
        getters = self._getters
        while getters:
            getter = getters.pop(0)
            if not getter.done():
                getter.set_result(None)
                break
        if not getters:
            self._getters = None


class Flag:
    """``asyncio.Event`` without its deque of waiters (~0.8 KiB each): ``set``, ``clear``, ``is_set``,
    ``wait``; the list of waiters exists only while someone waits. Two per Engine.IO session."""

    __slots__ = ("_value", "_waiters")

    def __init__(self) -> None:
        self._value = False
        self._waiters: list | None = None

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        if self._value:
            return
        self._value = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(True)

    def clear(self) -> None:
        self._value = False

    async def wait(self) -> bool:
        if self._value:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
            return True
        finally:
            waiters = self._waiters
            if waiters is not None and waiter in waiters:
                waiters.remove(waiter)
                if not waiters:
                    self._waiters = None
