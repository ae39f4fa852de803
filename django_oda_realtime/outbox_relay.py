"""The outbox relay's thread: one relaying process at a time, started once Django is set up.

Where it runs (docs/design.md#outbox): in ``manage.py realtime_worker``, and in every server process
(``OUTBOX_RELAY_IN_SERVER``, on by default). A server starts it after setup, never from
``AppConfig.ready()`` (a query during app setup is a RuntimeWarning on stderr):

- ``manage.py serve`` when daphne starts (``SlimServer.run``);
- any other server (daphne, uvicorn, hypercorn, gunicorn workers) at the ASGI application's first
  call: ``lifespan.startup`` where the server speaks lifespan, else the first request or socket
  (``routing.ProtocolRouter``). Once per process (a forked worker starts its own).

One relays at a time per deployment (channel-layer prefix, docs/design.md#outbox): the thread that
holds the deployment's session advisory lock ``LEADER_KEY`` (``outbox.lock_key``) relays and
LISTENs; the others stay standby, trying the lock every ``OUTBOX_POLL_INTERVAL`` seconds, and take
over when the leader's process dies (PostgreSQL ends its session, releasing the lock). Each pass
still takes the deployment's ``outbox.RELAY_KEY``, which also keeps the committing processes' fast
path apart.
The thread's connections (the lock and LISTEN one, the passes' one) are its own, outside
``DATABASE_POOL``: the pool is the requests', and a relay holding pooled connections for good
starved them. On SQLite there is no leader: each process polls under its process lock.
"""
import copy
import logging
import os
import threading
import time

from django.apps import apps
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.utils import load_backend

from . import worker
from .conf import rt_settings
from .outbox import CHANNEL, deployment, lock_key

__all__ = ["LEADER_KEY", "dedicated_connection", "start", "stop", "waker"]

logger = logging.getLogger("realtime.outbox")

LEADER_KEY = 0x6F64615F6F627833  # the relaying process holds it (its session's advisory lock)
JOBS = ["realtime.outbox", "realtime.outbox.prune"]
APPLICATION_NAME = "oda-realtime outbox relay"  # pg_stat_activity shows which process relays
# Woken by a commit's NOTIFY, the relay waits this long before its pass: the committing process's
# fast path, right after its commit, nearly always sends the rows first (and returns their history
# positions), and commits arriving meanwhile share one pass instead of one each.
SETTLE = 0.05

_state: dict = {"tried": False, "stop": None}
_start_lock = threading.Lock()


def _forked() -> None:
    _state.update(tried=False, stop=None)  # a forked worker process runs a relay of its own


os.register_at_fork(after_in_child=_forked)


def start() -> bool:
    """Start the relay thread of this server process, once; True if it was started now.

    Does nothing unless ``OUTBOX`` and ``OUTBOX_RELAY_IN_SERVER`` are on, the process is a server
    (``apps.serving()``: not a test run or a shell) and Django's setup has finished."""
    if _state["tried"]:
        return False
    from .apps import serving

    with _start_lock:
        if _state["tried"] or not apps.ready:
            return False
        _state["tried"] = True
        if not (rt_settings.OUTBOX and rt_settings.OUTBOX_RELAY_IN_SERVER and serving()):
            return False
        _state["stop"] = worker.start(JOBS)
        return True


def stop() -> None:
    """Stop this process's relay thread (server shutdown); another process's takes over."""
    event = _state["stop"]
    if event is not None:
        event.set()


def dedicated_connection(alias: str = DEFAULT_DB_ALIAS, application_name: str | None = None):
    """A new connection wrapper for ``alias`` that never uses ``DATABASE_POOL``'s pool."""
    settings_dict = copy.deepcopy(connections.settings[alias])
    options = settings_dict.setdefault("OPTIONS", {})
    options.pop("pool", None)
    if application_name and "postgresql" in settings_dict["ENGINE"]:
        options["application_name"] = application_name
    return load_backend(settings_dict["ENGINE"]).DatabaseWrapper(settings_dict, alias)


def waker(using: str | None = None):
    """The ``wait(timeout)`` of the relay's thread (``worker.register(..., waker=)``), called in it.

    The thread's own connection for ``alias`` becomes one outside the pool. PostgreSQL: a
    ``Leader``; SQLite: a plain sleep (no leader, the relay polls)."""
    alias = using or DEFAULT_DB_ALIAS
    connections[alias] = dedicated_connection(alias)
    if connections[alias].vendor != "postgresql":
        return time.sleep
    return Leader(alias)


class Leader:
    """``wait(timeout)`` through LISTEN/NOTIFY, and ``lead()``: does this thread relay now?

    One connection holds the leader lock and LISTENs. If it fails (the database restarts) the
    thread is standby again until it gets the lock back."""

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self.wrapper = None
        self.leading = False
        self.failing = False

    def _raw(self):
        if self.wrapper is None:
            wrapper = dedicated_connection(self.alias, f"{APPLICATION_NAME} {os.getpid()}")
            wrapper.ensure_connection()
            wrapper.connection.autocommit = True
            self.wrapper = wrapper
        return self.wrapper.connection

    def lead(self) -> bool:
        """True if this thread holds the leader lock (trying to take it if not)."""
        if self.leading:
            return True
        try:
            raw = self._raw()
            got = raw.execute("SELECT pg_try_advisory_lock(%s)", [lock_key(LEADER_KEY, deployment())]).fetchone()[0]
            self.failing = False
            if got:
                raw.execute(f"LISTEN {CHANNEL}")  # rows committed before it: the next pass sends them
                self.leading = True
                logger.info("Outbox relay: this process relays (pid %s)", os.getpid())
        except Exception as e:  # noqa: BLE001  the database is down or restarting: try again later
            self._lost(e)
        return self.leading

    def __call__(self, timeout: float) -> None:
        if not self.leading:
            time.sleep(timeout)
            return
        try:
            raw = self._raw()
            woken = False
            for _ in raw.notifies(timeout=timeout, stop_after=1):
                woken = True
            if woken:
                time.sleep(SETTLE)
            for _ in raw.notifies(timeout=0.001):
                pass  # one pass for notifications already queued
        except Exception as e:  # noqa: BLE001
            self._lost(e)
            time.sleep(timeout)

    def _lost(self, error: Exception) -> None:
        if not self.failing:
            self.failing = True
            logger.warning("Outbox relay: lock connection failed (%s); standby until it is back",
                           type(error).__name__)
        self.leading = False
        self.close()

    def close(self) -> None:
        """Close the lock connection (which releases the leader lock)."""
        wrapper, self.wrapper = self.wrapper, None
        self.leading = False
        if wrapper is not None:
            try:
                wrapper.close()
            except Exception:  # noqa: BLE001  already broken
                pass

