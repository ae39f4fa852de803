"""``manage.py conformance_server``: the reference test server the official suites expect (docs/socketio.md).

The suites themselves run outside the repository; this checks the command serves what they
rely on, and that none of it is reachable in the product's URL configuration.
"""
import asyncio
import json
import os
import subprocess
import sys

import aiohttp
import pytest
import websockets

from tests.servers import ROOT, free_port, wait_for_port


@pytest.fixture(scope="module")
def conformance():
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    proc = subprocess.Popen([sys.executable, "manage.py", "conformance_server", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc=proc)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


async def test_engineio_echo_over_polling(conformance):
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://{conformance}/engine.io/?EIO=4&transport=polling") as resp:
            handshake = json.loads((await resp.text())[1:])
        assert (handshake["pingInterval"], handshake["pingTimeout"], handshake["maxPayload"]) == (300, 200, 1000000)
        url = f"http://{conformance}/engine.io/?EIO=4&transport=polling&sid={handshake['sid']}"
        async with http.post(url, data="4hello\x1ebAQIDBA==") as resp:
            assert await resp.text() == "ok"
        async with http.get(url) as resp:
            assert await resp.text() == "4hello\x1ebAQIDBA=="


async def test_socketio_namespaces_auth_echo_and_binary_ack(conformance):
    async with websockets.connect(f"ws://{conformance}/socket.io/?EIO=4&transport=websocket") as ws:
        assert (await ws.recv()).startswith("0{")
        await ws.send('40/custom,{"token":"abc"}')
        assert (await ws.recv()).startswith('40/custom,{"sid":')
        assert await ws.recv() == '42/custom,["auth",{"token":"abc"}]'
        await ws.send('452-/custom,789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
        await ws.send(b"\x01\x02\x03")
        await ws.send(b"\x04\x05\x06")
        got = [await ws.recv() for _ in range(3)]
        assert got == ['462-/custom,789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]', b"\x01\x02\x03", b"\x04\x05\x06"]
        await ws.send("40/random")
        assert await ws.recv() == '44/random,{"message":"Invalid namespace"}'


@pytest.mark.django_db
def test_the_product_serves_neither_engineio_nor_the_test_namespaces():
    from django.test import Client

    assert Client().get("/engine.io/", {"EIO": "4", "transport": "polling"}).status_code == 404
    from django_oda_realtime.socketio.consumer import SocketIOConsumer

    assert SocketIOConsumer.namespaces == frozenset({"/"})


async def test_conformance_server_runs_without_redis_or_auth(conformance):
    async with websockets.connect(f"ws://{conformance}/socket.io/?EIO=4&transport=websocket") as ws:
        await ws.recv()
        await ws.send("40")
        assert (await ws.recv()).startswith('40{"sid":')
        assert await ws.recv() == '42["auth",{}]'
        await ws.send('42["message",1,"2",{"3":[true]}]')
        assert await asyncio.wait_for(ws.recv(), 2) == '42["message-back",1,"2",{"3":[true]}]'
