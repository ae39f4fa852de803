"""TransientLocks: one holder per key, and nothing kept once nobody holds or waits."""
import asyncio

import pytest

from django_oda_realtime.locks import TransientLocks


async def test_one_holder_per_key_in_arrival_order_and_nothing_kept_at_rest():
    locks = TransientLocks()
    order, inside = [], []

    async def work(name, key):
        async with locks.hold(key):
            inside.append(name)
            assert sum(1 for n in inside if n[0] == name[0]) == 1  # one holder of this key
            await asyncio.sleep(0)
            order.append(name)
            inside.remove(name)

    await asyncio.gather(work("a1", "a"), work("a2", "a"), work("b1", "b"), work("a3", "a"))
    assert [n for n in order if n[0] == "a"] == ["a1", "a2", "a3"]
    assert len(locks) == 0


async def holding(locks, key, release: asyncio.Event) -> None:
    async with locks.hold(key):
        await release.wait()


async def test_other_keys_do_not_wait():
    locks = TransientLocks()
    release = asyncio.Event()
    holder = asyncio.ensure_future(holding(locks, "a", release))
    await asyncio.sleep(0)
    async with locks.hold("b"):
        assert len(locks) == 2
    release.set()
    await holder
    assert len(locks) == 0


async def test_an_error_or_a_cancelled_waiter_leaves_nothing_behind():
    locks = TransientLocks()
    with pytest.raises(RuntimeError):
        async with locks.hold("k"):
            raise RuntimeError("boom")
    assert len(locks) == 0

    release = asyncio.Event()
    holder = asyncio.ensure_future(holding(locks, "k", release))
    await asyncio.sleep(0)
    waiter = asyncio.ensure_future(holding(locks, "k", release))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    release.set()
    await holder
    assert len(locks) == 0
