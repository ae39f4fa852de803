"""``manage.py serve``'s leaner daphne (django_oda_realtime/server/serving.py): same behaviour, less held per socket."""
import asyncio
from collections import deque
import json
import os
from pathlib import Path
import subprocess
import sys

import pytest

from django_oda_realtime.server.serving import LazySendQueue, ReceiveQueue

ROOT = Path(__file__).resolve().parent.parent.parent


# -- ReceiveQueue: the ASGI receive queue -------------------------------------------------------


async def test_receive_queue_is_fifo_across_waiting_and_queued_messages():
    queue = ReceiveQueue()
    waiting = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait({"type": "websocket.connect"})
    queue.put_nowait({"type": "websocket.receive", "text": "1"})
    queue.put_nowait({"type": "websocket.disconnect", "code": 1000})
    assert await waiting == {"type": "websocket.connect"}
    assert await queue.get() == {"type": "websocket.receive", "text": "1"}
    assert await queue.get() == {"type": "websocket.disconnect", "code": 1000}
    assert queue.empty() and queue.qsize() == 0


async def test_a_get_cancelled_after_a_message_was_handed_to_it_loses_nothing():
    queue = ReceiveQueue()
    getter = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("message")  # wakes the getter...
    getter.cancel()  # ...which is cancelled before it runs (daphne cancels application instances)
    with pytest.raises(asyncio.CancelledError):
        await getter
    assert await asyncio.wait_for(queue.get(), 5) == "message"


async def test_the_message_goes_to_the_next_waiting_get_when_the_woken_one_is_cancelled():
    queue = ReceiveQueue()
    first = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    second = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("message")
    first.cancel()
    assert await asyncio.wait_for(second, 5) == "message"
    assert first.cancelled()


async def test_a_cancelled_waiting_get_is_not_woken_by_later_messages():
    queue = ReceiveQueue()
    getter = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    getter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await getter
    queue.put_nowait("a")
    queue.put_nowait("b")
    assert [await queue.get(), await queue.get()] == ["a", "b"]
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()


def test_receive_queue_is_truthy_when_empty():
    # daphne's HTTP request sends http.disconnect only `if self.application_queue:`
    assert ReceiveQueue()


def test_lazy_send_queue_behaves_like_the_deque_it_replaces():
    queue, reference = LazySendQueue(), deque()
    assert not queue and len(queue) == 0
    for item in [(b"a", True), (b"b", False)]:
        queue.append(item)
        reference.append(item)
    assert queue and len(queue) == 2
    assert [queue.popleft(), queue.popleft()] == [reference.popleft(), reference.popleft()]
    assert not queue
    with pytest.raises(IndexError):
        queue.popleft()


# -- one socket through the server, in a subprocess (a Twisted reactor runs once per process) --


def probe(kind: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    out = subprocess.run(
        [sys.executable, "-m", "tests.realtime.slim_daphne_probe", kind],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=90,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert "error" not in report, report
    return report


@pytest.fixture(scope="module")
def slim():
    return probe("slim")


@pytest.fixture(scope="module")
def stock():
    return probe("stock")


def test_messages_sent_right_after_connect_reach_the_app_in_order_then_the_disconnect(slim, stock):
    assert slim["client"] == ["echo:first", "echo:second", "echo:third"]
    assert slim["app"] == stock["app"] == [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": "first"},
        {"type": "websocket.receive", "text": "second"},
        {"type": "websocket.receive", "text": "third"},
        {"type": "websocket.disconnect", "code": 1000},
    ]
    assert slim["queue"] == "ReceiveQueue"


def test_the_upgraded_http_request_is_freed_once_the_socket_is_open(slim, stock):
    assert stock["requests_seen"] == slim["requests_seen"] == 1
    assert stock["requests_alive"] == 1  # stock daphne: kept by the HTTP channel for the socket's life
    assert stock["producer"] == "HTTPChannel"
    assert slim["requests_alive_without_gc"] == 0  # freed by reference counting, no cycle left
    assert slim["producer"] == "_UpgradedHTTPChannel"


def test_the_open_socket_no_longer_holds_the_handshake_or_its_token(slim, stock):
    assert stock["token_held_by_protocol"]  # autobahn's parsed request, daphne's raw query string
    assert not slim["token_held_by_protocol"]
    assert stock["header_held_by_protocol"]  # daphne's clean_headers, autobahn's http_headers
    assert not slim["header_held_by_protocol"]
    assert slim["attributes"] < stock["attributes"] / 2
