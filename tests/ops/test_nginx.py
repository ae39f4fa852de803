"""The shipped nginx configuration (deploy/nginx/) in front of two ``manage.py serve`` processes:
a ``/ws/`` client and the real socket.io-client through it, and no token in nginx's logs.

nginx comes from the Debian package (``make test`` installs ``nginx-light`` when run as root);
the test fails, never skips, without it. Only ports and file paths of the shipped files are
replaced; the routing, headers, log format and limits are as shipped.
"""
import asyncio
import os
from pathlib import Path
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid

from channels.db import database_sync_to_async
import pytest
import websockets

from tests.conftest import token_for
from tests.domain import make_level
from tests.hardening.support import command, receive_event
from tests.ops.support import json_lines
from tests.servers import ROOT, ServerProcess, free_port, wait_for_port
from tests.socketio.conftest import use_layer
from tests.socketio_client.node import NodeClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.slow]

DEPLOY = ROOT / "deploy" / "nginx"
PERMS = ["inventory.view_inventorylevel"]


def nginx_binary() -> str:
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)
    if found is None:
        pytest.fail("nginx is required for the deployment test: `apt-get install nginx-light` (make test does it as root)")
    return found


def configure(tmp: Path, ports: list[int], listen: int, static_root: Path) -> Path:
    """The shipped files with this test's ports and paths, and a main nginx.conf including them as documented."""
    conf = tmp / "oda-realtime"
    conf.mkdir()
    logs = tmp / "logs"
    logs.mkdir()
    for name in ("main.conf", "http.conf", "upstreams.conf", "server.conf"):
        text = (DEPLOY / name).read_text()
        text = text.replace("/etc/nginx/oda-realtime/", f"{conf}/").replace("/var/log/nginx/", f"{logs}/")
        text = text.replace("/var/lib/oda-realtime/static/", f"{static_root}/")
        text = text.replace("127.0.0.1:8001", f"127.0.0.1:{ports[0]}").replace("127.0.0.1:8002", f"127.0.0.1:{ports[1]}")
        (conf / name).write_text(text)
    temp = tmp / "temp"
    temp.mkdir()
    main = tmp / "nginx.conf"
    user = "user root;\n" if os.geteuid() == 0 else ""
    main.write_text(f"""{user}daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {logs}/main-error.log warn;
include {conf}/main.conf;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {temp}/body; proxy_temp_path {temp}/proxy; fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi; scgi_temp_path {temp}/scgi;
    access_log off;
    include {conf}/http.conf;
    server {{
        listen 127.0.0.1:{listen};
        include {conf}/server.conf;
    }}
}}
""")
    return main


def get(url: str, headers: dict | None = None) -> tuple[int, object, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


async def test_nginx_routes_both_protocols_and_logs_no_token(tmp_path, redis_url, settings, make_user):
    binary = nginx_binary()
    prefix = f"nginx{uuid.uuid4().hex[:8]}"
    static_root = tmp_path / "static"
    env = {"LOG_FORMAT": "json", "REALTIME_TRUSTED_PROXIES": "127.0.0.1", "DJANGO_SERVE_STATIC": "0",
           "DJANGO_STATIC_ROOT": str(static_root)}
    servers = [ServerProcess(redis_url=redis_url, layer_prefix=prefix, env=env) for _ in range(2)]
    use_layer(settings, redis_url, prefix)
    listen = free_port()
    subprocess.run([*servers[0].command()[:2], "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, check=True,
                   env={**os.environ, "DJANGO_SETTINGS_MODULE": "oda_realtime.settings", "DJANGO_SERVE_STATIC": "0",
                        "DJANGO_STATIC_ROOT": str(static_root)})
    main = configure(tmp_path, [s.port for s in servers], listen, static_root)
    check = subprocess.run([binary, "-t", "-c", str(main)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    nginx = subprocess.Popen([binary, "-c", str(main)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    client = None
    try:
        for server in servers:
            server.start()
        wait_for_port(listen, proc=nginx)
        base = f"http://127.0.0.1:{listen}"
        user = await database_sync_to_async(make_user)(perms=PERMS)
        level = await database_sync_to_async(make_level)(available=5)
        access = token_for(user)

        status, headers, _ = await asyncio.to_thread(get, base + "/readyz", {"X-Request-ID": "through-nginx-1"})
        assert status == 200 and headers["X-Request-ID"] == "through-nginx-1"
        assert (await asyncio.to_thread(get, base + "/metrics"))[0] == 403
        static = (await asyncio.to_thread(get, base + "/admin/login/"))[2].decode()
        css = next(part.split('"')[0] for part in static.split('href="')[1:] if part.startswith("/static/admin/css/base."))
        status, headers, _ = await asyncio.to_thread(get, base + css)  # a hashed name, served by nginx
        assert status == 200 and "immutable" in headers["Cache-Control"]

        # /ws/ with the token in the query string (the case nginx's logs must not keep).
        async with websockets.connect(f"ws://127.0.0.1:{listen}/ws/?token={access}", proxy=None, open_timeout=5) as ws:
            welcome = await receive_event(ws, "connected")
            assert welcome["data"]["userId"] == str(user.pk)
            assert (await command(ws, "subscribe:inventory", {}))["data"]["rooms"] == ["inventory:all"]

            # Socket.IO: long-polling with the token in the query, then the upgrade, through the sticky upstream.
            client = await NodeClient(base, {"query": {"token": access}, "reconnectionDelay": 100, "reconnectionDelayMax": 500},
                                      resubscribe=["subscribe:inventory", {}]).start()
            await client.next("connect")
            assert (await client.next("resubscribed"))["reply"]["data"]["rooms"] == ["inventory:all"]
            await client.next("upgrade")

            def restock():
                level.available = 50
                level.save()

            await database_sync_to_async(restock)()
            assert (await client.next("event", "inventory:updated"))["args"][0]["data"]["available"] == 50
            assert (await receive_event(ws, "inventory:updated"))["data"]["available"] == 50

        # A deploy: the process holding the Socket.IO session drains (SIGTERM). The client reconnects
        # by itself through nginx, which passes the draining process's 503 on to the other one.
        sid = (await client.next("event", "connected"))["args"][0]["data"]["connectionId"]
        holder = next(s for s in servers if sid in s.output())
        holder.proc.send_signal(signal.SIGTERM)
        assert (await client.next("disconnect", timeout=10))["reason"] in ("transport close", "transport error")
        await client.next("reconnect", timeout=15)
        assert (await client.next("resubscribed"))["reply"]["data"]["rooms"] == ["inventory:all"]
        assert holder.proc.wait(15) == 0
        await client.close()

        # Both processes gone: nginx answers 502 and would write the request line to its error log.
        for server in servers:
            server.stop()
        status, _, _ = await asyncio.to_thread(get, f"{base}/socket.io/?EIO=4&transport=polling&token={access}")
        assert status == 502
        with pytest.raises(websockets.InvalidStatus):
            await websockets.connect(f"ws://127.0.0.1:{listen}/ws/?token={access}", proxy=None, open_timeout=5)
        time.sleep(0.2)
    finally:
        if client is not None:
            await client.close()
        for server in servers:
            server.stop()
        nginx.terminate()
        nginx.wait(10)

    logs = tmp_path / "logs"
    access_log = (logs / "oda-realtime.access.log").read_text()
    error_logs = "".join(p.read_text() for p in logs.glob("*error.log"))
    for text in (access_log, error_logs):
        assert access not in text and access.split(".")[2] not in text and "token=" not in text
    lines = json_lines(access_log)
    paths = {(line["path"], line["status"]) for line in lines}
    assert ("/ws/", 101) in paths and ("/socket.io/", 200) in paths and ("/socket.io/", 502) in paths
    assert any(line["request_id"] == "through-nginx-1" for line in lines)
    # The application saw the request id nginx passed on, and the client's address (behind a trusted proxy).
    app_lines = [r for s in servers for r in json_lines(s.output()) if r.get("action") == "http"]
    assert any(r["request_id"] == "through-nginx-1" and r["client"] == "127.0.0.1" for r in app_lines)
