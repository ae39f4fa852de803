"""In a real headless Chromium: a page of another origin loads the socket.io-client browser bundle,
connects (polling, then the upgrade), subscribes and receives an event; a bad token gets its reason.

The page is served by this test (aiohttp) on its own port; the daphne subprocess allows that origin.
Chromium is driven over the DevTools protocol (``--remote-debugging-port``): the page records what
happens in ``window.results`` and the test reads it with ``Runtime.evaluate``.
"""
import asyncio
import itertools
import json
import os
from pathlib import Path
import shutil
import signal
import subprocess
import tempfile
import uuid

import aiohttp
from aiohttp import web
from channels.db import database_sync_to_async
import pytest
import websockets

from django_oda_realtime import publish
from tests.conftest import token_for
from tests.servers import free_port
from tests.socketio.conftest import socketio_server, use_layer
from tests.socketio_client.node import ROOT, node_binary

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><script src="/socket.io.min.js"></script></head>
<body><script>
  const params = new URLSearchParams(location.search);
  const results = window.results = [];
  const socket = io(params.get("server"), { auth: { token: params.get("token") } });
  socket.io.on("open", () => {
    results.push({ type: "open", transport: socket.io.engine.transport.name });
    socket.io.engine.once("upgrade", (t) => results.push({ type: "upgrade", transport: t.name }));
  });
  socket.on("connected", (p) => results.push({ type: "connected", userId: p.data.userId }));
  socket.on("inventory:updated", (p) => results.push({ type: "inventory:updated", data: p.data }));
  socket.emit("subscribe:inventory", {}, (reply) => results.push({ type: "subscribed", reply }));
  const bad = io(params.get("server"), { auth: { token: "not-a-token" }, forceNew: true, reconnection: false });
  bad.on("connect_error", (err) => results.push({ type: "connect_error", message: err.message }));
</script></body></html>
"""


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("Chromium is required for the browser test: apt-get install -y chromium")


@pytest.fixture
async def page_server():
    """This test's own web server: the page and the socket.io-client browser bundle."""
    node_binary()  # fails with what to run when node_modules is missing
    bundle = ROOT / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"

    async def page(request):
        return web.Response(text=PAGE, content_type="text/html")

    async def script(request):
        return web.FileResponse(bundle)

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/socket.io.min.js", script)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
def browser():
    """Headless Chromium with a DevTools port, in its own process group, stopped at the end."""
    profile = tempfile.mkdtemp(prefix="chromium-")
    proc = subprocess.Popen(
        [chromium_binary(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--no-first-run", "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        yield Path(profile) / "DevToolsActivePort"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        shutil.rmtree(profile, ignore_errors=True)


class Page:
    """One Chromium tab over the DevTools protocol."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    @classmethod
    async def attach(cls, port_file: Path) -> "Page":
        async with asyncio.timeout(15):
            while not port_file.exists() or not port_file.read_text().strip():
                await asyncio.sleep(0.05)
        port = port_file.read_text().split()[0]
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as resp:
                targets = await resp.json()
        url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        return cls(await websockets.connect(url, max_size=None, ping_interval=None))

    async def call(self, method: str, **params) -> dict:
        ident = next(self.ids)
        await self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        async with asyncio.timeout(10):
            while True:
                msg = json.loads(await self.ws.recv())
                if msg.get("id") == ident:
                    assert "error" not in msg, msg
                    return msg["result"]

    async def results(self) -> list[dict]:
        value = await self.call("Runtime.evaluate", expression="JSON.stringify(window.results || [])", returnByValue=True)
        return json.loads(value["result"]["value"])

    async def wait_for(self, kind: str, timeout: float = 10.0) -> dict:
        async with asyncio.timeout(timeout):
            while True:
                found = [r for r in await self.results() if r["type"] == kind]
                if found:
                    return found[0]
                await asyncio.sleep(0.1)


async def test_browser_page_connects_subscribes_and_receives(page_server, browser, module_redis_url, settings, make_user):
    user = await database_sync_to_async(make_user)(perms=["inventory.view_inventorylevel"])
    server = socketio_server(module_redis_url, f"siobrowser{uuid.uuid4().hex[:8]}",
                             realtime={"ALLOWED_ORIGINS": [page_server]})
    use_layer(settings, module_redis_url, server.layer_prefix)
    with server:
        page = await Page.attach(browser)
        try:
            url = f"{page_server}/?server={server.url}&token={token_for(user)}"
            await page.call("Page.navigate", url=url)
            assert (await page.wait_for("open"))["transport"] == "polling"
            assert (await page.wait_for("connected"))["userId"] == str(user.pk)
            assert (await page.wait_for("subscribed"))["reply"]["data"]["rooms"] == ["inventory:all"]
            await database_sync_to_async(publish)("inventory:updated", {"available": 5, "sku": "LINEN-M"}, ["inventory:all"])
            assert (await page.wait_for("inventory:updated"))["data"] == {"available": 5, "sku": "LINEN-M"}
            assert (await page.wait_for("upgrade"))["transport"] == "websocket"
            assert (await page.wait_for("connect_error"))["message"] == "token_invalid"
        finally:
            await page.ws.close()
