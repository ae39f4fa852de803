"""ORM calls from a socket's task: ``database_sync_to_async`` in a task of its own.

On every call asgiref writes the sync side's context back into the caller's
context (each ``asgiref.local.Local``'s storage, re-homed, and its deadlock
flag). For a socket's task that context lives as long as the connection, so
each call's copies would stay with every idle socket (~0.45 KiB measured,
docs/benchmarks.md). Run in a child task, the copies go to the child's context
and are freed with it; cancelling the caller cancels the child.
"""
import asyncio

from channels.db import database_sync_to_async


async def run_sync_db(func, *args):
    """``await database_sync_to_async(func)(*args)``, leaving the caller's context as it was."""
    return await asyncio.ensure_future(database_sync_to_async(func)(*args))
