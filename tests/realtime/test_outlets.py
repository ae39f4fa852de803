"""The outlet layer (django_oda_realtime/server/outlets.py): chosen once per socket from the server's ``send``,
with a plain-``send`` fallback, and a seam where a consumer can be tested with a recording outlet."""
import asyncio
import json

from channels.db import database_sync_to_async
import pytest

from django_oda_realtime.conf import rt_settings
from django_oda_realtime.exceptions import CloseCode
from django_oda_realtime.server.outlets import FrameMemo, Outlet, UvicornOutlet, outlet_for, ws_text_frame
from django_oda_realtime.sockets.consumers import NativeConsumer


async def test_any_other_server_gets_the_plain_asgi_send():
    sent = []

    async def send(message):
        sent.append(message)

    outlet = outlet_for(send)
    assert type(outlet) is Outlet
    assert (outlet.writes_frames, outlet.backlog(), outlet.try_write(b"x")) == (False, 0, False)
    assert await outlet.send({"type": "websocket.send", "text": "a"})
    await outlet.close(CloseCode.SLOW_CONSUMER)
    assert sent == [{"type": "websocket.send", "text": "a"}, {"type": "websocket.close", "code": 4008}]


async def test_a_send_that_raises_means_the_client_has_gone():
    async def send(message):
        raise OSError("gone")  # daphne raises Disconnected

    assert await outlet_for(send).send({"type": "websocket.send", "text": "a"}) is False
    await outlet_for(send).close(1000)  # never raises


async def test_uvicorn_outlet_reads_a_real_asyncio_transport():
    """uvicorn's ``send`` is a bound method of its protocol, which holds the asyncio transport:
    the attributes the outlet reads are those of a real transport, here a real TCP connection."""
    server_side = asyncio.get_running_loop().create_future()

    class Protocol(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
            server_side.set_result(self)

        async def send(self, message):
            self.transport.write(json.dumps(message).encode())

    server = await asyncio.get_running_loop().create_server(Protocol, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        proto = await server_side
        outlet = outlet_for(proto.send)
        assert type(outlet) is UvicornOutlet
        assert outlet.backlog() == 0
        assert await outlet.send({"type": "websocket.send", "text": "hello"})
        assert b"hello" in await asyncio.wait_for(reader.read(100), 5)
        await outlet.close(CloseCode.NORMAL)  # queued behind what waits, written by a task
        assert b"websocket.close" in await asyncio.wait_for(reader.read(100), 5)
        outlet.stop()
    finally:
        writer.close()
        server.close()


def test_frame_memo_frames_the_same_text_once():
    memo = FrameMemo("4")
    text = '42["x",{}]'
    first = memo(text)
    assert first == ws_text_frame("4" + text)
    assert memo(text) is first  # the same str object: not framed again
    assert memo(text + " ") != first


class RecordingOutlet(Outlet):
    """Passes messages on to the test client and records them; its backlog is set by the test."""

    __slots__ = ("sent", "closed_with", "pending")

    def __init__(self, send) -> None:
        super().__init__(send)
        self.sent, self.closed_with, self.pending = [], None, 0

    async def send(self, message):
        self.sent.append(message)
        return await super().send(message)

    def backlog(self) -> int:
        return self.pending

    async def close(self, code):
        self.closed_with = code
        await super().close(code)


@pytest.mark.django_db(transaction=True)
async def test_a_socket_over_its_bound_is_closed_as_a_slow_consumer_by_its_outlet(monkeypatch, make_user, token, connect):
    outlets = []

    def make_outlet(self, send):
        outlets.append(RecordingOutlet(send))
        return outlets[-1]

    monkeypatch.setattr(NativeConsumer, "make_outlet", make_outlet)
    user = await database_sync_to_async(make_user)()
    sock = await connect(token(user))
    (outlet,) = outlets
    assert outlet.sent[0]["type"] == "websocket.accept"
    outlet.pending = rt_settings.MAX_OUTBOUND_BACKLOG_BYTES + 1
    await sock.send("ping", ack=1)
    output = await sock.comm.receive_output(2)
    assert output == {"type": "websocket.close", "code": CloseCode.SLOW_CONSUMER}
    assert outlet.closed_with == CloseCode.SLOW_CONSUMER
