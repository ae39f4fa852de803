"""What a user sees of a pull sync: progress events with real counts on a socket, a clear
failure for bad credentials, the command's output, and the admin action."""
from channels.db import database_sync_to_async as db
from django.core.management import CommandError, call_command
from django.urls import reverse
import pytest

from orders.models import Customer
from shopify_sync.admin import SYNC_THREADS
from shopify_sync.admin_api import AuthenticationError
from shopify_sync.models import SyncJob
from shopify_sync.pull import run_pull
from tests.domain import events_named, pending, subscribe

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def watcher(make_user, token, connect):
    sock = await connect(token(await db(make_user)(perms=["shopify_sync.view_syncjob"])))
    await subscribe(sock, "shopify", rooms=["shopify:all"])
    return sock


def customers(shop, n: int) -> None:
    for i in range(n):
        shop.add_customer(f"Customer{i}", "Test", f"c{i}@example.com")


async def test_progress_events_carry_the_real_counts(watcher, double, shop):
    customers(shop, 250)  # pages of 100: 100, 200, 250

    job = await db(run_pull)("customers", mode="pages")

    frames = await pending(watcher, 0.5)
    statuses = [f["data"] for f in events_named(frames, "shopify:syncStatus")]
    assert [s["status"] for s in statuses] == ["running", "completed"]
    assert statuses[-1]["processed"] == 250 and statuses[-1]["jobId"] == str(job.pk)
    progress = [f["data"] for f in events_named(frames, "shopify:customer:progress")]
    assert progress and {p["processed"] for p in progress} <= {100, 200, 250}
    assert progress[-1] == {"jobId": str(job.pk), "resource": "customers", "status": "running", "processed": 250,
                            "failed": 0, "total": 250, "percent": 100.0}
    assert frames[-1]["event"] == "shopify:syncStatus"


async def test_a_bad_token_fails_the_job_with_a_clear_error(watcher, double, settings):
    settings.SHOPIFY_ACCESS_TOKEN = "shpat_wrong_secret_value"

    with pytest.raises(AuthenticationError):
        await db(run_pull)("products")

    job = await db(SyncJob.objects.get)()
    assert job.status == "failed"
    assert job.errors[-1].startswith("AuthenticationError: Shopify refused the access token")
    frames = await pending(watcher)
    failed = events_named(frames, "shopify:syncStatus")[-1]["data"]
    assert failed["status"] == "failed" and "SHOPIFY_ACCESS_TOKEN" in failed["errors"][-1]
    assert "shpat_wrong_secret_value" not in str(frames) + str(job.errors)


def test_missing_settings_start_no_job(settings):
    settings.SHOPIFY_SHOP_DOMAIN = ""
    settings.SHOPIFY_ACCESS_TOKEN = "shpat_x"
    with pytest.raises(AuthenticationError, match="SHOPIFY_SHOP_DOMAIN is not set"):
        run_pull("customers")
    assert not SyncJob.objects.exists()


def test_the_command(double, shop, settings, capsys):
    customers(shop, 3)
    call_command("shopify_sync", "customers")
    assert "customers: job #" in capsys.readouterr().out
    assert Customer.objects.filter(shopify_id__isnull=False).count() == 3
    settings.SHOPIFY_ACCESS_TOKEN = "shpat_wrong"
    with pytest.raises(CommandError, match="Shopify refused the access token"):
        call_command("shopify_sync", "customers", "--restart")
    assert SyncJob.objects.filter(status="failed").count() == 1


def test_the_admin_action(double, shop, client, make_user):
    customers(shop, 5)
    old = SyncJob.objects.create(resource="customers", status="completed")
    url = reverse("admin:shopify_sync_syncjob_changelist")
    viewer = make_user(is_staff=True, perms=["shopify_sync.view_syncjob"])
    client.force_login(viewer)
    assert "sync_from_shopify" not in client.get(url).content.decode()  # viewing is not syncing
    client.post(url, {"action": "sync_from_shopify", "_selected_action": [old.pk]})
    assert SyncJob.objects.count() == 1

    client.force_login(make_user(is_staff=True, perms=["shopify_sync.view_syncjob", "shopify_sync.add_syncjob"]))
    response = client.post(url, {"action": "sync_from_shopify", "_selected_action": [old.pk]}, follow=True)
    assert "Shopify sync started: customers" in response.content.decode()
    for thread in SYNC_THREADS:
        thread.join(30)
    job = SyncJob.objects.exclude(pk=old.pk).get()
    assert (job.resource, job.status, job.processed) == ("customers", "completed", 5)
    assert Customer.objects.filter(shopify_id__isnull=False).count() == 5
    page = client.get(reverse("admin:shopify_sync_syncjob_change", args=[job.pk])).content.decode()
    assert "Pages" in page and "Line offset" in page  # the checkpoint inline
