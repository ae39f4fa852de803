"""WebSocket clients of the tests' server processes, closed after each test.

A test that ends (or fails) with a client still open left its socket for the garbage
collector: a ResourceWarning, an error under ``filterwarnings = error`` in the test that
happens to run then. ``track`` registers a client; the ``close_clients`` fixture (autouse
where servers are used: tests/hardening, tests/socketio) closes what is still open.
"""
import asyncio
import contextlib

import pytest

_open: list = []


def track(ws):
    """Close ``ws`` (a websockets client) at the end of the test; returns it."""
    _open.append(ws)
    return ws


@pytest.fixture(autouse=True)
async def close_clients():
    yield
    clients = list(_open)
    _open.clear()
    for ws in clients:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await ws.close()
