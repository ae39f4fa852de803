"""The one background worker: a registry of periodic jobs and the loop that runs them.

Apps register their jobs in ``AppConfig.ready()``::

    worker.register("shopify.webhooks", processing.process_due, every=1.0)

``manage.py realtime_worker`` runs the loop (docs/shopify.md, *Worker*); ``run()`` takes a
``threading.Event`` so the same loop runs in a thread of the server process (``start()``). A job
returns how much work it did: a job that did some runs again at once (a backlog drains
without waiting ``every``), one that did none waits ``every`` seconds. A job that raises is
logged and run again at its next turn: one broken job never stops the others. Pure
scheduling: the jobs bring their own transactions. A job registered with ``waker`` (the outbox
relay: LISTEN/NOTIFY on PostgreSQL) runs in a thread of its own and, when idle, waits on the
waker instead of sleeping, so it wakes at once; a waker with ``lead()`` (the relay's leader lock)
runs its job only while ``lead()`` is true, else tries again every ``every`` seconds
(docs/design.md#outbox).
"""
from collections.abc import Callable
from dataclasses import dataclass, field
import logging
import threading
import time

from django.db import close_old_connections, connection

__all__ = ["Job", "register", "registered", "run", "run_once", "start"]

logger = logging.getLogger("realtime.worker")


@dataclass
class Job:
    name: str
    fn: Callable[[], int | None]
    every: float
    due: float = field(default=0.0)
    waker: Callable[[], Callable[[float], object]] | None = None


_jobs: dict[str, Job] = {}


def register(name: str, fn: Callable[[], int | None], *, every: float,
             waker: Callable[[], Callable[[float], object]] | None = None) -> None:
    """Add (or replace) the periodic job ``name``: ``fn()`` at most every ``every`` seconds when idle.

    ``waker()``, if given, makes a ``wait(timeout)`` for the job's own thread (returns early
    when there is work)."""
    _jobs[name] = Job(name, fn, every, waker=waker)


def registered() -> list[str]:
    return sorted(_jobs)


def run_once(names=None, clock: Callable[[], float] = time.monotonic) -> int:
    """Run every due job (of ``names``, or all) once; returns the total work done."""
    total = 0
    for job in list(_jobs.values()):
        if (names and job.name not in names) or job.due > clock():
            continue
        if not connection.in_atomic_block:  # a caller's transaction (tests, --once in a shell) is theirs
            close_old_connections()
        try:
            done = job.fn() or 0
        except Exception:  # noqa: BLE001  logged; the other jobs go on
            logger.exception("Worker job %s failed", job.name)
            done = 0
        if not connection.in_atomic_block:
            # Not held until the next due job (an hour for pruning): with DATABASE_POOL it is the
            # requests' connection, given back now (kept when CONN_MAX_AGE says so).
            close_old_connections()
        job.due = clock() if done else clock() + job.every
        total += done
    return total


def run(stop: threading.Event, names=None, tick: float = 0.2) -> None:
    """Run the jobs until ``stop`` is set (waiting ``tick`` when nothing was done)."""
    unknown = set(names or ()) - set(_jobs)
    if unknown:
        raise ValueError(f"Unknown worker job(s): {', '.join(sorted(unknown))}")
    selected = [n for n in registered() if not names or n in names]
    logger.info("Worker started: %s", ", ".join(selected))
    alone = [_jobs[n] for n in selected if _jobs[n].waker is not None]
    threads = [threading.Thread(target=_run_alone, args=(job, stop), name=f"worker-{job.name}", daemon=True)
               for job in alone]
    for thread in threads:
        thread.start()
    polled = [n for n in selected if _jobs[n].waker is None]
    while not stop.is_set():
        if not polled or not run_once(polled):
            stop.wait(tick)
    for thread in threads:
        thread.join(5)
    logger.info("Worker stopped")


def _run_alone(job: Job, stop: threading.Event) -> None:
    """A job with a waker, in its own thread: run while it has work, else wait to be woken."""
    wait = job.waker()
    lead = getattr(wait, "lead", None)
    while not stop.is_set():
        if lead is not None and not lead():
            stop.wait(job.every)  # another process runs it: standby
            continue
        try:
            done = job.fn() or 0
        except Exception:  # noqa: BLE001  logged; retried after a wait
            logger.exception("Worker job %s failed", job.name)
            connection.close()  # a broken connection is not reused
            done = 0
        if not done:
            wait(job.every)
    getattr(wait, "close", lambda: None)()
    connection.close()


def start(names) -> threading.Event:
    """Run the jobs ``names`` in a daemon thread of this process (the server's relay); set the
    returned event to stop them."""
    stop = threading.Event()
    threading.Thread(target=run, args=(stop, names), name="realtime-worker", daemon=True).start()
    return stop
