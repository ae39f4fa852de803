"""The dashboard's HTTP side: staff only, its token and stats endpoints, the announcement form."""
import json
import re

from channels.db import database_sync_to_async as db
from django.test import Client
import pytest
from rest_framework_simplejwt.tokens import AccessToken

from notifications.models import Announcement
from shopify_sync.models import SyncJob
from tests.domain import make_level

pytestmark = pytest.mark.django_db

LIVE, TOKEN, STATS, ANNOUNCE = "/admin/live/", "/admin/live/token/", "/admin/live/stats/", "/admin/live/announce/"
VIEWERS = ["inventory.view_inventorylevel", "shopify_sync.view_syncjob"]


def page_config(response) -> dict:
    match = re.search(r'<script id="rt-config" type="application/json">(.*?)</script>', response.content.decode(), re.S)
    assert match, response.content[:500]
    return json.loads(match.group(1))


@pytest.fixture
def staff(make_user):
    return make_user("staffer", is_staff=True, perms=[*VIEWERS, "notifications.add_announcement"])


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


@pytest.mark.parametrize("who", ["anonymous", "customer", "inactive_staff"])
def test_only_staff_reach_the_dashboard(client, make_user, who):
    if who != "anonymous":
        client.force_login(make_user(is_staff=who == "inactive_staff", is_active=who != "inactive_staff"))
    response = client.get(LIVE)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert client.post(TOKEN).status_code == 403
    assert client.get(STATS).status_code == 403
    assert client.post(ANNOUNCE, {"kind": "event", "message": "hi"}).status_code == 302
    assert not Announcement.objects.exists()


def test_the_admin_index_links_to_the_dashboard(staff_client):
    body = staff_client.get("/admin/").content.decode()
    assert 'id="live-dashboard-link"' in body and f'href="{LIVE}"' in body
    assert "Inventory levels" in body  # the original index is still there


def test_the_page_carries_its_config_and_the_current_state(staff_client):
    level = make_level(2, threshold=5)  # already low
    make_level(50, threshold=5)  # not low
    job = SyncJob.objects.create(resource="orders", status=SyncJob.Status.RUNNING, total=8, processed=2)
    SyncJob.objects.create(resource="products", status=SyncJob.Status.COMPLETED, total=1, processed=1)
    response = staff_client.get(LIVE)
    assert response.status_code == 200
    config = page_config(response)
    assert config["topics"] == ["inventory", "orders", "shopify", "notifications", "staff"]
    assert (config["tokenUrl"], config["statsUrl"], config["announceUrl"]) == (TOKEN, STATS, ANNOUNCE)
    assert [a["levelId"] for a in config["lowStock"]] == [str(level.pk)]
    assert config["lowStock"][0]["sellable"] == 2
    assert [(j["jobId"], j["percent"]) for j in config["jobs"]] == [(str(job.pk), 25.0)]
    body = response.content.decode()
    assert 'src="/static/dashboard/live.js"' in body and 'id="announce-form"' in body


def test_without_the_view_permissions_the_page_shows_no_domain_data(client, make_user):
    make_level(1, threshold=5)
    SyncJob.objects.create(resource="orders", status=SyncJob.Status.RUNNING)
    client.force_login(make_user(is_staff=True))
    config = page_config(client.get(LIVE))
    assert (config["lowStock"], config["jobs"], config["announceUrl"]) == ([], [], None)
    assert 'id="announce-form"' not in client.get(LIVE).content.decode()


def test_the_token_endpoint_mints_an_access_token_for_the_staff_user(staff, staff_client):
    assert staff_client.get(TOKEN).status_code == 405
    response = staff_client.post(TOKEN)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    body = response.json()
    token = AccessToken(body["token"])  # a valid access token (not a refresh token)
    assert str(token["user_id"]) == str(staff.pk) and token["exp"] == body["expiresAt"]


def test_the_token_endpoint_needs_the_csrf_token(staff):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    assert client.post(TOKEN).status_code == 403
    client.get(LIVE)
    csrf = client.cookies["csrftoken"].value
    assert client.post(TOKEN, headers={"X-CSRFToken": csrf}).status_code == 200


def test_stats_are_this_processes_numbers(staff_client):
    body = staff_client.get(STATS).json()
    assert set(body) >= {"pid", "connections", "connectionsTotal", "subscriptions", "eventsReceived"}
    assert body["connectionsTotal"] == sum(body["connections"].values())


def test_announce_needs_the_permission(client, make_user):
    client.force_login(make_user(is_staff=True))
    assert client.post(ANNOUNCE, {"kind": "event", "message": "hi"}).status_code == 403
    assert not Announcement.objects.exists()


def test_an_invalid_announcement_is_refused_and_nothing_is_stored(staff_client):
    response = staff_client.post(ANNOUNCE, {"kind": "party", "message": "  "}, headers={"Accept": "application/json"})
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"kind", "message"}
    response = staff_client.post(ANNOUNCE, {"kind": "event", "message": ""})
    assert response.status_code == 302  # without JavaScript: back to the page with a message
    assert not Announcement.objects.exists()


@pytest.mark.django_db(transaction=True)
async def test_an_announcement_from_the_form_reaches_every_socket(make_user, token, connect):
    staff = await db(make_user)(is_staff=True, perms=["notifications.add_announcement"])
    anyone = await connect(token(await db(make_user)()))
    reply = await anyone.command("subscribe:notifications")
    assert "broadcast" in reply["data"]["rooms"]
    client = Client()
    await db(client.force_login)(staff)
    response = await db(client.post)(
        ANNOUNCE, {"kind": "maintenance", "title": "Restart", "message": "At 22:00 UTC."},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 200, response.content
    frame = await anyone.receive_event("notification")
    assert frame["type"] == "system:maintenance"
    assert (frame["data"]["title"], frame["data"]["message"], frame["data"]["level"]) == (
        "Restart", "At 22:00 UTC.", "warning")
    assert frame["data"]["announcementId"] == response.json()["announcementId"]
