"""The background worker's registry and loop (django_oda_realtime/worker.py)."""
import threading

import pytest

from django_oda_realtime import worker


@pytest.fixture
def jobs(monkeypatch):
    monkeypatch.setattr(worker, "_jobs", {})
    return worker


def test_the_apps_register_their_jobs():
    assert {"shopify.webhooks", "shopify.prune"} <= set(worker.registered())


def test_a_job_with_work_runs_again_at_once_an_idle_one_waits(jobs):
    now = [100.0]
    backlog = [3]

    def drain():
        if backlog[0]:
            backlog[0] -= 1
            return 1
        return 0

    calls = []
    jobs.register("drain", drain, every=10)
    jobs.register("idle", lambda: calls.append(1), every=5)
    clock = lambda: now[0]  # noqa: E731
    assert [jobs.run_once(clock=clock) for _ in range(4)] == [1, 1, 1, 0]
    assert len(calls) == 1  # idle ran once, then waits 5 s
    now[0] += 5
    jobs.run_once(clock=clock)
    assert len(calls) == 2


def test_a_failing_job_does_not_stop_the_others(jobs, caplog):
    ran = []
    jobs.register("broken", lambda: 1 / 0, every=1)
    jobs.register("fine", lambda: ran.append(1), every=1)
    jobs.run_once()
    assert ran == [1]
    assert "Worker job broken failed" in caplog.text


def test_run_stops_when_told_and_refuses_unknown_jobs(jobs):
    stop = threading.Event()
    seen = []

    def job():
        seen.append(1)
        if len(seen) == 3:
            stop.set()
        return 1

    jobs.register("count", job, every=60)
    thread = threading.Thread(target=jobs.run, args=(stop,), daemon=True)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive() and len(seen) == 3
    with pytest.raises(ValueError):
        jobs.run(stop, ["nope"])


@pytest.mark.django_db(transaction=True)
def test_a_job_does_not_keep_its_connection_until_it_is_due_again(jobs):
    """With CONN_MAX_AGE 0 (the tests', and DATABASE_POOL's) the connection is given back after
    each job: the server's hourly pruning must not hold a pooled connection for an hour."""
    from django.db import connection

    def query():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return 0

    jobs.register("query", query, every=3600)
    assert connection.settings_dict["CONN_MAX_AGE"] == 0
    jobs.run_once()
    assert connection.connection is None
