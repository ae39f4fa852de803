"""A pull sync that stops (an error after some batches, or its process killed) resumes its job:
the same bulk operation, the JSONL downloaded from the byte after the last committed batch,
the page after the last committed cursor; no duplicates, no batch written twice. Also: the
cost-based throttling is waited out."""
import os
import subprocess
import sys
import threading
import time

from django.db import connection
import pytest

from inventory.models import Product, ProductVariant
from shopify_sync.admin_api import AdminClient, BulkOperationError
from shopify_sync.models import SyncCheckpoint, SyncJob
from shopify_sync.pull import SyncAlreadyRunning, run_pull, writers
from shopify_sync.pull.runner import owner_id
from tests.servers import ROOT, database_url
from tests.shopify_sync.double import catalogue

pytestmark = pytest.mark.django_db(transaction=True)


class Crash(Exception):
    pass


@pytest.fixture
def writes(monkeypatch):
    """The product batches written (record ids each); ``crash_after`` batches, the next one raises."""

    class Writes(list):
        crash_after: int | None = None

    log = Writes()
    real = writers.WRITERS["products"]

    def write(batch, job_id):
        if log.crash_after is not None and len(log) == log.crash_after:
            raise Crash("the process died here")
        log.append([(x.type, x.id) for x in batch])
        return real(batch, job_id)

    monkeypatch.setitem(writers.WRITERS, "products", write)
    return log


def test_bulk_resumes_after_a_crash_without_redoing_a_batch(double, shop, writes):
    catalogue(shop, 60)  # 60 products and 60 variants: 120 JSONL lines, 6 batches of 20
    writes.crash_after = 3
    with pytest.raises(Crash):
        run_pull("products", mode="bulk", batch_size=20)
    job = SyncJob.objects.get()
    checkpoint = SyncCheckpoint.objects.get(job=job)
    assert (job.status, job.processed, checkpoint.line_offset) == ("failed", 30, 60)
    assert job.errors == ["Crash: the process died here"]
    assert Product.objects.count() == 30  # the 4th batch was rolled back with its checkpoint
    done = {record for batch in writes for record in batch}

    writes.crash_after = None
    resumed = run_pull("products", mode="bulk", batch_size=20)

    assert (resumed.pk, resumed.status, resumed.processed, resumed.total) == (job.pk, "completed", 60, 60)
    assert len(double.operations) == 1  # the same bulk operation, not a new one
    assert double.downloads[-1] == {"range": f"bytes={checkpoint.byte_offset}-", "token_sent": False}
    again = [record for batch in writes[3:] for record in batch]
    assert len(again) == 60 and not done & set(again)  # only the lines not yet written
    assert Product.objects.count() == 60 and ProductVariant.objects.count() == 60
    assert SyncCheckpoint.objects.get(job=job).line_offset == 120


def test_pages_resume_from_the_last_committed_cursor(double, shop, writes):
    catalogue(shop, 60)  # pages of 25: 25, 25, 10
    writes.crash_after = 1
    with pytest.raises(Crash):
        run_pull("products", mode="pages")
    cursor = SyncCheckpoint.objects.get().cursor
    assert cursor and Product.objects.count() == 25

    writes.crash_after = None
    job = run_pull("products", mode="pages")

    assert (job.status, job.processed, SyncJob.objects.count()) == ("completed", 60, 1)
    pages = [r["variables"].get("after") for r in double.requests if r["operation"] == "ProductPage"]
    assert pages[0] is None and pages[2] == cursor  # the resumed run asked for the page after the cursor
    assert len(pages) == 4  # 3 pages, the crashed one asked twice
    assert [len(batch) for batch in writes] == [50, 50, 20]
    assert Product.objects.count() == 60


def test_a_killed_command_is_resumed(double, shop):
    catalogue(shop, 2000)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "TEST_DATABASE_URL": database_url(),
           "SHOPIFY_SHOP_DOMAIN": double.url, "SHOPIFY_ACCESS_TOKEN": double.token}
    proc = subprocess.Popen([sys.executable, "manage.py", "shopify_sync", "products", "--mode", "bulk",
                             "--batch-size", "4"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not SyncCheckpoint.objects.filter(line_offset__gte=200).exists():
            assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the command wrote nothing in 60 s"
            time.sleep(0.02)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    checkpoint = SyncCheckpoint.objects.select_related("job").get()
    assert checkpoint.job.status == "running" and checkpoint.owner.endswith(f":{proc.pid}")
    assert 0 < checkpoint.line_offset < 4000
    stored = Product.objects.count()
    assert stored == checkpoint.job.processed  # counts and rows were committed together

    job = run_pull("products")  # --mode is the job's own once chosen

    assert (job.pk, job.status, job.processed) == (checkpoint.job_id, "completed", 2000)
    assert double.downloads[-1]["range"] == f"bytes={checkpoint.byte_offset}-"
    assert len(double.operations) == 1
    assert Product.objects.count() == 2000 and ProductVariant.objects.count() == 2000


def test_a_job_running_in_a_live_process_is_not_taken_over(double, shop):
    catalogue(shop, 3)
    job = SyncJob.objects.create(resource="products", status="running")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        SyncCheckpoint.objects.create(job=job, mode="pages", owner=owner_id().rsplit(":", 1)[0] + f":{sleeper.pid}")
        with pytest.raises(SyncAlreadyRunning, match=f"job #{job.pk}"):
            run_pull("products")
    finally:
        sleeper.kill()
        sleeper.wait()
    assert run_pull("products").pk == job.pk  # its process is gone: resumed


def test_throttling_is_waited_out(double, shop):
    catalogue(shop, 60)  # 3 pages of 25 products, 577 points requested each
    double.bucket.available = 600  # another client of the shop used most of the bucket
    client = AdminClient.from_settings()

    job = run_pull("products", mode="pages", client=client)

    assert (job.status, job.processed) == ("completed", 60)
    assert double.throttled >= 1 and client.throttled == double.throttled
    assert double.max_throttled_in_a_row == 1  # each wait was long enough: never refused twice running
    assert Product.objects.count() == 60


def test_a_second_run_in_the_same_process_waits_for_the_first(double, shop):
    catalogue(shop, 3)
    double.bulk_delay = 3.0  # the first run waits for Shopify's bulk operation

    def run_first() -> None:
        try:
            run_pull("products", mode="bulk")
        finally:
            connection.close()  # this thread's own connection

    first = threading.Thread(target=run_first)
    first.start()
    try:
        deadline = time.monotonic() + 10
        while not SyncCheckpoint.objects.filter(bulk_operation_id__gt="").exists():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        with pytest.raises(SyncAlreadyRunning):
            run_pull("products")
    finally:
        first.join(30)
    assert SyncJob.objects.get().status == "completed" and Product.objects.count() == 3


def test_restart_abandons_the_unfinished_job(double, shop, writes):
    catalogue(shop, 30)
    writes.crash_after = 1
    with pytest.raises(Crash):
        run_pull("products", mode="pages")
    writes.crash_after = None
    job = run_pull("products", mode="pages", restart=True)
    old = SyncJob.objects.exclude(pk=job.pk).get()
    assert (old.status, old.errors[-1]) == ("failed", "abandoned: restarted")
    assert (job.status, job.processed) == ("completed", 30)


def test_a_failed_bulk_operation_fails_the_job_and_the_next_run_starts_a_new_one(double, shop):
    catalogue(shop, 5)
    double.fail_next_bulk = "TIMEOUT"
    with pytest.raises(BulkOperationError, match=r"ended FAILED \(TIMEOUT\)"):
        run_pull("products", mode="bulk")
    failed = SyncJob.objects.get()
    assert failed.status == "failed" and failed.errors[-1] == "BulkOperationError: Bulk operation ended FAILED (TIMEOUT)"

    job = run_pull("products")

    assert (job.pk, job.status, job.processed, len(double.operations)) == (failed.pk, "completed", 5, 2)
