"""Locks by key that exist only while they are held or awaited.

The hub serialises the joins and leaves of one channel-layer group, and each socket's session
its own membership changes. Both are rare next to the number of groups and idle sockets, so a
lock kept per key at rest would cost memory for nothing (per-socket memory, docs/benchmarks.md):
here an entry is made by the first holder and dropped by the last one out.
"""
import asyncio
import contextlib


class TransientLocks:
    """``async with locks.hold(key)``: one holder per key at a time, FIFO."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[object, list] = {}  # key -> [asyncio.Lock, holders and waiters]

    @contextlib.asynccontextmanager
    async def hold(self, key):
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = [asyncio.Lock(), 0]
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if not entry[1] and self._entries.get(key) is entry:
                del self._entries[key]

    def __len__(self) -> int:
        """Keys held or awaited now (0 at rest)."""
        return len(self._entries)
