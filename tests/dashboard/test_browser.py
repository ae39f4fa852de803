"""The live dashboard in real headless Chromium (Debian's ``chromium``, driven by Playwright).

A staff user logs into the admin, follows the index's link to the dashboard, and
watches it as this test process changes stock, runs a Shopify sync and sends an
announcement: on the Redis layer shared with the daphne subprocess, as in production.
The screenshot is saved as ``test-output/dashboard.png``.
"""
from concurrent.futures import ThreadPoolExecutor
import os
from pathlib import Path

from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connections
import pytest

from inventory import services as inventory_services
from shopify_sync.progress import SyncRun, sync_job
from tests.domain import make_level
from tests.servers import ROOT, ServerProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.slow]

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
OUTPUT = ROOT / "test-output"
PASSWORD = "staff-pass-123"
STAFF_PERMS = [
    "inventory.view_inventorylevel", "orders.view_order", "shopify_sync.view_syncjob",
    "notifications.add_announcement",
]


def require_browser():
    """Fail (never skip) without Chromium or Playwright: CI must have both."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"The dashboard's browser test needs Chromium at {CHROMIUM}: `apt-get install -y chromium` "
                    "(.ci/run installs it), or set CHROMIUM to its path.")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        pytest.fail(f"Playwright is missing ({e}): `make venv` installs requirements.txt")
    return sync_playwright


def in_thread(fn, *args, **kwargs):
    """Run ``fn`` in a plain thread: Playwright's sync API owns an event loop in this one,
    and ``publish`` must not run inside it."""
    def call():
        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()  # this thread's connection, before the test database is dropped

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result(timeout=30)


def run_sync(resource: str, total: int, steps: int, *, finish: bool):
    if finish:
        with sync_job(resource, total, interval=0) as job:
            for _ in range(steps):
                job.advance()
        return job.job
    run = SyncRun(resource, total, interval=0).start()
    for _ in range(steps):
        run.advance()
    return run.job


def test_staff_watch_the_shop_move_on_the_live_dashboard(redis_layer, redis_url, layer_prefix, make_user, tmp_path):
    sync_playwright = require_browser()
    from playwright.sync_api import expect

    staff = make_user("staffer", is_staff=True, perms=STAFF_PERMS)
    # A hash the server's own hashers verify (the test settings use MD5, the server does not).
    staff.password = PBKDF2PasswordHasher().encode(PASSWORD, "dashboardsalt", iterations=1000)
    staff.save(update_fields=["password"])
    level = make_level(10, threshold=3)
    sku = level.item.sku
    OUTPUT.mkdir(exist_ok=True)

    with ServerProcess(redis_url=redis_url, layer_prefix=layer_prefix) as server, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1360, "height": 1000},
        )
        page = context.new_page()
        page.set_default_timeout(10_000)
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            page.goto(f"{server.url}/admin/login/?next=/admin/")
            page.fill("#id_username", "staffer")
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            page.click("#live-dashboard-link th a")  # the link on the admin index
            expect(page.locator("#rt-status")).to_have_attribute("data-state", "live")
            expect(page.locator("#rt-status")).to_contain_text("staffer")
            expect(page.locator("#rt-rooms")).to_contain_text("inventory:all")
            expect(page.locator("#rt-rooms")).to_contain_text("shopify:all")
            expect(page.locator("#count-connections")).to_have_text("1")  # this page's socket
            expect(page.locator("#lowstock")).to_contain_text("No low stock")

            # A stock change in this process: 10 -> 2 crosses the threshold (3).
            in_thread(inventory_services.adjust, level.item_id, level.location_id, -8, reason="Breakage")
            row = page.locator('#feed li[data-event="inventory:updated"]')
            expect(row).to_have_count(1)
            expect(row).to_contain_text(f"{sku} at location {level.location_id}: 10 → 2 (-8)")
            expect(row).to_contain_text("Breakage")
            expect(page.locator('#feed li[data-event="inventory:lowStock"]')).to_contain_text(sku)
            expect(page.locator("#count-events")).to_have_text("2")
            expect(page.locator('#rates tr[data-kind="inventory"] .rt-total')).to_have_text("2")
            expect(page.locator("#count-lowstock")).to_have_text("1")
            expect(page.locator("#lowstock")).to_contain_text(f"{sku} at location {level.location_id}: 2 sellable")

            # Shopify syncs: one finished, one still running at 3 of 10.
            done = in_thread(run_sync, "products", 4, 4, finish=True)
            running = in_thread(run_sync, "inventory", 10, 3, finish=False)
            expect(page.locator(f'#jobs [data-job="{done.pk}"]')).to_contain_text("completed")
            expect(page.locator(f'#jobs [data-job="{done.pk}"] progress')).to_have_attribute("value", "4")
            running_job = page.locator(f'#jobs [data-job="{running.pk}"]')
            expect(running_job).to_contain_text("running")
            expect(running_job).to_contain_text("3 / 10 30%")
            expect(page.locator("#count-syncs")).to_have_text("1")

            # The feed filter shows one kind only.
            page.select_option("#feed-filter", "shopify")
            expect(page.locator('#feed li[data-kind="inventory"]').first).to_be_hidden()
            expect(page.locator('#feed li[data-kind="shopify"]').first).to_be_visible()
            page.select_option("#feed-filter", "")
            expect(row).to_be_visible()

            # An announcement from the dashboard's form reaches every socket, this one included.
            page.select_option("#id_kind", "maintenance")
            page.fill("#id_title", "Planned maintenance")
            page.fill("#id_message", "The back office restarts at 22:00 UTC.")
            page.click("#announce-form button[type=submit]")
            expect(page.locator("#announce-result")).to_contain_text("Sent")
            notice = page.locator('#feed li[data-event="notification"]').first
            expect(notice).to_contain_text("system:maintenance: Planned maintenance — The back office restarts")

            page.select_option("#feed-filter", "")
            page.screenshot(path=str(OUTPUT / "dashboard.png"), full_page=True)
        except Exception:
            page.screenshot(path=str(OUTPUT / "dashboard-failure.png"), full_page=True)
            raise
        finally:
            context.close()
    assert errors == [], errors
