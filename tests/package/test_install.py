"""The add-on as a package in someone else's project (issue #16 item 1; docs/install.md).

Built with ``python -m build`` (wheel and sdist), installed with its dependencies from the package
index into a fresh venv, added to a fresh ``django-admin startproject`` with the guide's lines (at
most 10), then served for real: a ``/ws/`` client (websockets) and the real ``socket.io-client``
(Node) log in with a token from the add-on's endpoint, subscribe, and receive an event published
from ``manage.py shell`` through Redis. Then daphne's ``runserver`` with Django's default LOGGING:
the token a socket sends in its query string is nowhere in the output.
"""
import asyncio
import difflib
import json
import os
from pathlib import Path
import re
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile

import pytest
import websockets

from tests.servers import ROOT
from tests.socketio_client.node import NodeClient

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.timeout(900)]

# The lines docs/install.md gives, added to startproject's files (SITE is the project's name).
SITE = "shopsite"
SETTINGS_LINES = f'''
INSTALLED_APPS = ["daphne", *INSTALLED_APPS, "rest_framework_simplejwt.token_blacklist", "django_oda_realtime"]
ASGI_APPLICATION = "{SITE}.asgi.application"
'''
ASGI_LINES = '''
from django_oda_realtime.asgi import realtime_application  # after get_asgi_application(): it needs the apps
application = realtime_application(application)
'''
URLS_IMPORT = ("from django.urls import path", "from django.urls import include, path")
URLS_ROUTE = '    path("", include("django_oda_realtime.urls")),  # api/auth/token/, /metrics, /healthz...\n'
MAX_ADDED_LINES = 10
PASSWORD = "pw-install-guide-1"


def run(*args, cwd=None, env=None, timeout=600) -> str:
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def python_312() -> str:
    found = subprocess.run([str(ROOT / "scripts" / "find-python")], capture_output=True, text=True)
    if found.returncode != 0:
        pytest.fail(found.stderr)
    return found.stdout.strip()


def added_lines(before: str, after: str) -> list[str]:
    """Non-blank, non-comment lines of ``after`` that are new or changed against ``before``."""
    return [line[2:] for line in difflib.ndiff(before.splitlines(), after.splitlines())
            if line.startswith("+ ") and line[2:].strip() and not line[2:].strip().startswith("#")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the server exited ({proc.returncode}):\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"no answer from {url} within {timeout} s:\n{log.read_text()}")


def post(url: str, data: dict, headers: dict | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, json.dumps(data).encode(),
                                     {"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A fresh venv with the wheel built by ``python -m build`` and its dependencies (redis extra)."""
    base = tmp_path_factory.mktemp("package")
    run(python_312(), "-m", "venv", base / "venv")
    python = base / "venv" / "bin" / "python"
    pip = [python, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    run(*pip, "install", "build")
    run(python, "-m", "build", "--outdir", base / "dist", ROOT, timeout=600)
    [wheel] = (base / "dist").glob("django_oda_realtime-*.whl")
    [sdist] = (base / "dist").glob("django_oda_realtime-*.tar.gz")
    run(*pip, "install", f"{wheel}[redis]")
    return {"python": python, "bin": base / "venv" / "bin", "wheel": wheel, "sdist": sdist, "base": base}


DOMAIN = ("oda_realtime", "inventory", "orders", "shopify_sync", "notifications", "dashboard", "tests", "bench")


def test_the_wheel_and_the_sdist_hold_the_add_on_only(venv):
    import django_oda_realtime

    names = zipfile.ZipFile(venv["wheel"]).namelist()
    assert venv["wheel"].name == f"django_oda_realtime-{django_oda_realtime.__version__}-py3-none-any.whl"
    assert {name.split("/")[0] for name in names} == {
        "django_oda_realtime", f"django_oda_realtime-{django_oda_realtime.__version__}.dist-info"}
    for needed in ("django_oda_realtime/migrations/0001_initial.py", "django_oda_realtime/checks.py",
                   "django_oda_realtime/management/commands/serve.py", "django_oda_realtime/urls.py"):
        assert needed in names
    metadata = zipfile.ZipFile(venv["wheel"]).read(
        f"django_oda_realtime-{django_oda_realtime.__version__}.dist-info/METADATA").decode()
    assert "License-Expression: BSD-3-Clause" in metadata and "Requires-Python: >=3.12" in metadata
    assert "Classifier: Framework :: Django :: 5.2" in metadata
    assert 'Requires-Dist: channels-redis<5,>=4.2; extra == "redis"' in metadata
    with tarfile.open(venv["sdist"]) as sdist:
        top = {Path(*Path(name).parts[1:2]).as_posix() for name in sdist.getnames() if len(Path(name).parts) > 1}
    assert "django_oda_realtime" in top and "LICENSE" in top and "pyproject.toml" in top
    assert not top & set(DOMAIN), top & set(DOMAIN)


def test_a_fresh_project_with_the_guide_lines(venv, tmp_path, redis_url):
    bin_ = venv["bin"]
    run(bin_ / "django-admin", "startproject", SITE, tmp_path)
    site = tmp_path / SITE
    files = {name: (site / name).read_text() for name in ("settings.py", "asgi.py", "urls.py")}
    changed = dict(files)
    changed["settings.py"] += SETTINGS_LINES
    changed["asgi.py"] += ASGI_LINES
    assert URLS_IMPORT[0] in changed["urls.py"]
    changed["urls.py"] = re.sub(r"(urlpatterns = \[\n)", lambda m: m.group(1) + URLS_ROUTE,
                                changed["urls.py"].replace(*URLS_IMPORT))
    added = [line for name in files for line in added_lines(files[name], changed[name])]
    assert len(added) <= MAX_ADDED_LINES, added
    assert len(added) == 6  # the count docs/install.md gives
    guide = (ROOT / "docs" / "install.md").read_text()
    for snippet in (SETTINGS_LINES, ASGI_LINES, URLS_IMPORT[1], URLS_ROUTE):
        assert snippet.strip() in guide, snippet  # the guide gives these very lines
    assert f"**{len(added)}** added lines" in guide
    for name, text in changed.items():
        (site / name).write_text(text)

    # The shell that publishes and the server share Redis (REDIS_URL); the channel prefix is derived
    # from this project's own database (django_oda_realtime/isolation.py), so no other test hears it.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "REALTIME_", "PYTEST", "VIRTUAL_ENV"))}
    env.update(REDIS_URL=redis_url, PYTHONUNBUFFERED="1", PATH=f"{bin_}{os.pathsep}{env.get('PATH', '')}")
    python, manage = venv["python"], tmp_path / "manage.py"
    check = run(python, manage, "check", cwd=tmp_path, env=env)
    assert "no issues" in check
    run(python, manage, "migrate", "--noinput", cwd=tmp_path, env=env)
    run(python, manage, "shell", "-c",
        f"from django.contrib.auth.models import User; User.objects.create_user('guide', password='{PASSWORD}')",
        cwd=tmp_path, env=env)

    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        server = subprocess.Popen([python, manage, "serve", "--port", str(port)], cwd=tmp_path, env=env,
                                  stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/healthz", server, log)
        status, body = post(f"{base}/api/auth/token/", {"username": "guide", "password": PASSWORD})
        assert status == 200, body
        tokens = json.loads(body)
        access = tokens["access"]
        asyncio.run(sockets_receive_a_shell_event(base, access, python, manage, tmp_path, env))
        # Logout answers with the add-on's own JWT authentication (DRF's default here: session and basic).
        status, body = post(f"{base}/api/auth/logout/", {"refresh": tokens["refresh"]},
                            {"Authorization": f"Bearer {access}"})
        assert status == 205, body
    finally:
        server.terminate()
        server.wait(30)
    output = log.read_text()
    assert "/ws/" in output and access not in output, output

    # daphne's runserver, Django's default LOGGING: its access log prints paths with their query strings.
    port = free_port()
    log = tmp_path / "runserver.log"
    with open(log, "w") as out:
        server = subprocess.Popen([python, manage, "runserver", "--noreload", f"127.0.0.1:{port}"], cwd=tmp_path,
                                  env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", server, log)
        status, body = post(f"http://127.0.0.1:{port}/api/auth/token/", {"username": "guide", "password": PASSWORD})
        assert status == 200, body
        access = json.loads(body)["access"]  # a new login: logout revoked the first one
        asyncio.run(open_and_close(f"ws://127.0.0.1:{port}/ws/?token={urllib.parse.quote(access)}"))
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz?token={access}", timeout=5).read()
        deadline = time.monotonic() + 10
        while "DISCONNECT /ws/" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(30)
    output = log.read_text()
    assert "WebSocket CONNECT /ws/" in output and "/healthz" in output, output  # the lines were written...
    assert access not in output and access.split(".")[2] not in output, output  # ...without the token


async def open_and_close(url: str) -> None:
    async with websockets.connect(url) as ws:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert frame["event"] == "connected", frame


async def sockets_receive_a_shell_event(base, access, python, manage, cwd, env) -> None:
    ws_url = base.replace("http://", "ws://") + "/ws/"
    async with websockets.connect(f"{ws_url}?token={access}") as ws:
        frames = []

        async def next_frame(predicate):
            async with asyncio.timeout(10):
                while True:
                    frame = json.loads(await ws.recv())
                    frames.append(frame)
                    if predicate(frame):
                        return frame

        connected = await next_frame(lambda f: f.get("event") == "connected")
        assert connected["data"]["username"] == "guide"
        await ws.send(json.dumps({"event": "subscribe:notifications", "ack": 1}))
        reply = await next_frame(lambda f: f.get("ack") == 1)
        assert "broadcast" in reply["data"]["rooms"], reply

        client = await NodeClient(base, {"auth": {"token": access}}).start()
        try:
            await client.next("connect")
            reply = await client.emit("subscribe:notifications", {}, ack=True)
            assert "broadcast" in reply["data"]["rooms"], reply

            code = ("from django_oda_realtime import publish; "
                    "publish('greeting:sent', {'text': 'from the shell'}, ['broadcast']); "
                    "import prometheus_client; print(prometheus_client.generate_latest().decode())")
            shell = await asyncio.to_thread(run, python, manage, "shell", "-c", code, cwd=cwd, env=env)
            # The metric names carry the default prefix (REALTIME["METRICS_PREFIX"]), not this repository's.
            assert 'realtime_events_published_total{event="greeting:sent"} 1.0' in shell, shell
            assert "oda_realtime_" not in shell

            event = await next_frame(lambda f: f.get("event") == "greeting:sent")
            assert event["data"] == {"text": "from the shell"}, event
            message = await client.next("event", "greeting:sent", timeout=10)
            assert message["args"][0]["data"] == {"text": "from the shell"}, message
        finally:
            await client.close()
