"""Real servers for tests: daphne (through ``manage.py serve``) and Redis as subprocesses."""
from contextlib import closing
import os
from pathlib import Path
import socket
import subprocess
import sys
import tempfile
import time

ROOT = Path(__file__).resolve().parent.parent
LOG_TAIL_LINES = 300

# The servers started by the running test, and those still running: a failing test's report shows
# their output (tests/conftest.py, pytest_runtest_makereport, which forgets the stopped ones after
# each test).
started: "list[ServerProcess]" = []


def free_port() -> int:
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


def database_url() -> str:
    """The URL of the database the test run uses (pytest-django's test database)."""
    from django.db import connection

    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    user = s.get("USER") or "postgres"
    return f"postgres://{user}@{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


def redis_layers(redis_url: str, prefix: str) -> dict:
    """Both channels-redis layers on ``redis_url``, as servers with ``prefix`` (pubsub) and
    ``prefix + "c"`` (core, ``REALTIME_CHANNEL_LAYER=core``) use them: to publish to each from a test."""
    from channels_redis.core import RedisChannelLayer
    from channels_redis.pubsub import RedisPubSubChannelLayer

    host = {"address": redis_url, "socket_timeout": 15}
    return {
        "pubsub": RedisPubSubChannelLayer(hosts=[host], prefix=prefix),
        "core": RedisChannelLayer(hosts=[host], prefix=prefix + "c"),
    }


class ServerProcess:
    """``manage.py serve`` (daphne) on a free port, with its output in a file."""

    def __init__(self, *, redis_url: str | None, layer_prefix: str = "asgi", env: dict | None = None,
                 args: list[str] | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        self.redis_url = redis_url
        self.layer_prefix = layer_prefix
        self.extra_env = env or {}
        self.args = args or []
        self.proc: subprocess.Popen | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="daphne-", suffix=".log", delete=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> "ServerProcess":
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
        env.update(
            DJANGO_SETTINGS_MODULE="oda_realtime.settings",
            DJANGO_SECRET_KEY=os.environ["DJANGO_SECRET_KEY"],
            DATABASE_URL=database_url(),
            CHANNEL_LAYER_PREFIX=self.layer_prefix,
            # Per-user connection counts of this test's servers only (leases outlive a test run).
            REALTIME_PRESENCE_PREFIX=f"presence-{self.layer_prefix}",
            PYTHONUNBUFFERED="1",
            REALTIME_ALLOWED_ORIGINS="https://shop.example.com",
            # stop() sends SIGTERM: a short graceful drain (django_oda_realtime/server/drain.py) keeps test runs quick.
            REALTIME_DRAIN_SECONDS="0.5",
        )
        env.pop("REDIS_URL", None)
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        env.update(self.extra_env)
        if self not in started:
            started.append(self)
        self.started_at = time.monotonic()
        if self.log.closed:  # started again after a stop(): append to the same output
            self.log = open(self.log.name, "ab")
        if self.stderr is not None and self.stderr.closed:
            self.stderr = open(self.stderr.name, "ab")
        self.proc = subprocess.Popen(
            self.command(), cwd=ROOT, env=env, stdout=self.log,
            stderr=self.stderr if self.stderr is not None else subprocess.STDOUT,
        )
        try:
            wait_for_port(self.port, proc=self.proc)
        except Exception as e:
            self.stop()
            raise RuntimeError(f"{self.server_name} did not start ({e}):\n" + self.output()) from None
        return self

    server_name = "daphne"
    stderr = None  # a file for stderr apart; None: with stdout in ``log``

    def command(self) -> list[str]:
        return [sys.executable, "manage.py", "serve", "--port", str(self.port), *self.args]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for f in (self.log, self.stderr):  # output() reads the files by name
            if f is not None:
                f.close()

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def report(self) -> str:
        """The last lines of the output (and of stderr, if apart), for a failing test's report."""
        text = self.output()
        if self.stderr is not None:
            text += "\n--- stderr ---\n" + Path(self.stderr.name).read_text(errors="replace")
        lines = text.splitlines()
        cut = f"[{len(lines) - LOG_TAIL_LINES} earlier lines in {self.log.name}]\n" if len(lines) > LOG_TAIL_LINES else ""
        return cut + "\n".join(lines[-LOG_TAIL_LINES:])

    def __del__(self) -> None:
        # A test that never called stop(): its log files are closed here rather than reported by the
        # garbage collector in whichever later test it happens to run.
        for f in (getattr(self, "log", None), getattr(self, "stderr", None)):
            if f is not None:
                f.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class StdoutServer(ServerProcess):
    """A server whose stdout alone is in ``output()`` (its stderr apart, in ``errors()``): the stream
    a pipeline reads, and what the server writes to stderr."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.stderr = tempfile.NamedTemporaryFile(prefix="daphne-stderr-", suffix=".log", delete=False)

    def errors(self) -> str:
        return Path(self.stderr.name).read_text(errors="replace")


class UvicornProcess(ServerProcess):
    """The same ASGI application on uvicorn (the alternative server), same environment as ServerProcess."""

    server_name = "uvicorn"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "uvicorn", "oda_realtime.asgi:application", "--host", "127.0.0.1",
                "--port", str(self.port), "--no-access-log", *self.args]


class RedisProcess:
    """A private redis-server on its own port (for restart tests)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisProcess":
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, proc=self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
