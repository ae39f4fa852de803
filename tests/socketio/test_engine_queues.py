"""The Engine.IO session's slim primitives (django_oda_realtime/server/queues.py): ``Flag`` behaves as ``asyncio.Event``."""
import asyncio

import pytest

from django_oda_realtime.server.queues import Flag


async def test_flag_wakes_every_waiter_and_stays_set_until_cleared():
    flag = Flag()
    waiters = [asyncio.ensure_future(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    flag.set()
    assert await asyncio.gather(*waiters) == [True, True, True]
    assert flag.is_set() and await flag.wait()
    flag.clear()
    assert not flag.is_set()


async def test_a_cancelled_wait_leaves_no_waiter_behind():
    flag = Flag()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await flag.wait()
    assert flag._waiters is None
    flag.set()
    assert await flag.wait()
