"""The sync progress API: throttled progress, status on start/end/failure, through a socket."""
from channels.db import database_sync_to_async as db
import pytest

from shopify_sync.models import SyncJob
from shopify_sync.progress import Throttle, sync_job
from tests.domain import events_named, pending, subscribe

pytestmark = pytest.mark.django_db(transaction=True)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_throttle():
    clock = FakeClock()
    throttle = Throttle(0.25, clock)
    seen = []
    for step in range(10):
        clock.now = step * 0.1
        seen.append(throttle.ready())
    assert seen == [True, False, False, True, False, False, True, False, False, True]


@pytest.fixture
async def watcher(make_user, token, connect):
    sock = await connect(token(await db(make_user)(perms=["shopify_sync.view_syncjob"])))
    await subscribe(sock, "shopify", rooms=["shopify:all"])
    return sock


async def test_progress_is_throttled_and_ends_with_the_last_state(watcher):
    clock = FakeClock()

    def run():
        with sync_job("products", total=1000, clock=clock) as job:
            for i in range(1000):
                clock.now = i * 0.001  # 1000 items a second: 1 s in all
                job.advance(failed=1 if i == 500 else 0, error="Image missing" if i == 500 else None)
        return job.job.pk

    job_id = await db(run)()
    frames = await pending(watcher)
    names = [f["event"] for f in frames]
    assert names[0] == "shopify:syncStatus" and names[-1] == "shopify:syncStatus"
    progress = [f["data"] for f in events_named(frames, "shopify:product:progress")]
    assert 4 <= len(progress) <= 6  # at most 4 a second, plus the last one
    assert [p["processed"] for p in progress] == sorted(p["processed"] for p in progress)
    assert progress[-1] == {"jobId": str(job_id), "resource": "products", "status": "running", "processed": 1000,
                            "failed": 1, "total": 1000, "percent": 100.0}
    start, end = frames[0]["data"], frames[-1]["data"]
    assert (start["status"], start["processed"], start["finishedAt"]) == ("running", 0, None)
    assert (end["status"], end["processed"], end["failed"], end["errors"]) == ("completed", 1000, 1, ["Image missing"])
    assert end["durationSeconds"] >= 0 and end["startedAt"] and end["finishedAt"]


async def test_a_failing_sync_reports_failed_and_reraises(watcher):
    def run():
        with pytest.raises(ConnectionError):
            with sync_job("orders", total=10) as job:
                job.advance(3)
                raise ConnectionError("Shopify answered 502")
        return SyncJob.objects.get()

    job = await db(run)()
    assert (job.status, job.processed, job.errors) == ("failed", 3, ["ConnectionError: Shopify answered 502"])
    frames = await pending(watcher)
    assert [f["event"] for f in frames] == ["shopify:syncStatus", "shopify:order:progress", "shopify:syncStatus"]
    assert frames[-1]["data"]["status"] == "failed"
    assert frames[-1]["data"]["errors"] == ["ConnectionError: Shopify answered 502"]


@pytest.mark.parametrize("resource,event", [("inventory", "shopify:inventory:progress"),
                                            ("customers", "shopify:customer:progress")])
async def test_each_resource_has_its_progress_event(watcher, resource, event):
    def run():
        with sync_job(resource) as job:
            job.advance(2)
    await db(run)()
    frames = await pending(watcher)
    assert [f["data"]["processed"] for f in events_named(frames, event)] == [2]
    assert events_named(frames, event)[0]["data"]["percent"] is None  # no total known


async def test_no_sync_events_without_the_permission(make_user, token, connect):
    sock = await connect(token(await db(make_user)(perms=["inventory.view_inventorylevel"])))
    reply = await sock.command("subscribe:shopify")
    assert reply["data"]["refused"] == [{"room": "shopify:all", "reason": "forbidden"}]

    def run():
        with sync_job("products", total=1) as job:
            job.advance()
    await db(run)()
    assert await sock.nothing()


def test_unknown_resource_is_refused():
    with pytest.raises(ValueError):
        with sync_job("widgets"):
            pass
