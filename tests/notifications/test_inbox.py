"""The offline inbox over REST: kept notifications, read state per user, only one's own (docs/notifications.md)."""
from datetime import timedelta

from channels.db import database_sync_to_async as db
from django.utils import timezone
import pytest
from rest_framework.test import APIClient

from notifications import inbox, services
from notifications.models import BroadcastRead, Notification
from tests.conftest import token_for

pytestmark = pytest.mark.django_db(transaction=True)

LIST, READ, READ_ALL = "/api/notifications/", "/api/notifications/read/", "/api/notifications/read-all/"


def api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
    return client


def alert(user, title="5 failed logins"):
    services.security_alert("failed_logins", title, "Someone keeps trying", user_id=user.pk, username=user.username)


@pytest.fixture
def ada(make_user):
    return make_user("ada")


@pytest.fixture
def bob(make_user):
    return make_user("bob")


def titles(body) -> list[str]:
    return [n["data"]["title"] for n in body["results"]]


def test_addressed_notifications_are_kept_for_their_user_and_broadcasts_for_everyone(ada, bob):
    alert(ada)
    services.announce("Checkout is read-only at 02:00", kind="maintenance", title="Maintenance")

    body = api(ada).get(LIST).json()
    assert titles(body) == ["Maintenance", "5 failed logins"]  # newest first
    assert body["count"] == 2 and body["unreadCount"] == 2
    first = body["results"][1]
    assert first["type"] == "security:alert" and first["read"] is False and first["broadcast"] is False
    assert first["data"]["alert"] == "failed_logins" and isinstance(first["id"], str)
    assert body["results"][0]["broadcast"] is True

    bob_body = api(bob).get(LIST).json()
    assert titles(bob_body) == ["Maintenance"] and bob_body["unreadCount"] == 1
    assert Notification.objects.filter(user=None).count() == 1  # a broadcast is stored once


def test_staff_only_activity_is_not_kept(ada):
    from inventory.models import Product

    Product.objects.create(title="Wool Coat", handle="wool-coat")  # user:activity for the staff room only
    assert Notification.objects.count() == 0


def test_mark_read_on_one_user_leaves_the_other_users_broadcast_unread(ada, bob):
    services.announce("New collection", kind="event")
    alert(ada)
    ids = [n["id"] for n in api(ada).get(LIST).json()["results"]]

    answer = api(ada).post(READ, {"ids": ids}, format="json")
    assert answer.status_code == 200 and answer.json() == {"unreadCount": 0}
    assert api(ada).get(LIST, {"unread": "true"}).json()["results"] == []
    assert all(n["read"] for n in api(ada).get(LIST).json()["results"])
    assert api(bob).get(LIST, {"unread": "true"}).json()["unreadCount"] == 1  # bob has not read the broadcast

    again = api(ada).post(READ, {"ids": ids}, format="json")  # idempotent
    assert again.status_code == 200 and BroadcastRead.objects.count() == 1


def test_mark_all_read(ada, bob):
    for i in range(3):
        alert(ada, f"alert {i}")
    services.announce("New collection", kind="event")
    alert(bob)
    answer = api(ada).post(READ_ALL)
    assert answer.status_code == 200 and answer.json() == {"marked": 4, "unreadCount": 0}
    assert api(ada).get(LIST).json()["unreadCount"] == 0
    assert api(bob).get(LIST).json()["unreadCount"] == 2


def test_a_user_sees_and_marks_only_their_own(ada, bob):
    alert(ada)
    theirs = Notification.objects.get(user=ada)
    mine_alert = alert(bob) or Notification.objects.get(user=bob)

    assert titles(api(bob).get(LIST).json()) == ["5 failed logins"]
    assert api(bob).get(LIST).json()["results"][0]["id"] == str(mine_alert.pk)
    # Someone else's id, alone or with one's own: 404 naming it, and nothing marked.
    for ids in ([theirs.pk], [mine_alert.pk, theirs.pk]):
        answer = api(bob).post(READ, {"ids": ids}, format="json")
        assert answer.status_code == 404, answer.content
        assert answer.json()["ids"] == [str(theirs.pk)] and answer.json()["code"] == "not_found"
    assert Notification.objects.filter(read_at__isnull=False).count() == 0


def test_ids_that_do_not_exist_are_404_and_change_nothing(ada):
    alert(ada)
    mine = Notification.objects.get()
    answer = api(ada).post(READ, {"ids": [mine.pk, mine.pk + 1000]}, format="json")
    assert answer.status_code == 404 and answer.json()["ids"] == [str(mine.pk + 1000)]
    mine.refresh_from_db()
    assert mine.read_at is None


@pytest.mark.parametrize("body", [{}, {"ids": []}, {"ids": "1"}, {"ids": ["x"]}, {"ids": [-1]}, {"ids": [None]},
                                  {"ids": [1] * 501}, {"ids": [2**70]}],
                         ids=["missing", "empty", "string", "not-int", "negative", "null", "too-many", "huge"])
def test_malformed_mark_read_is_400(ada, body):
    alert(ada)
    answer = api(ada).post(READ, body, format="json")
    assert answer.status_code == 400, answer.content
    assert "ids" in answer.json()
    assert Notification.objects.get().read_at is None


def test_anonymous_is_401_and_session_auth_works(ada, client):
    alert(ada)
    assert APIClient().get(LIST).status_code == 401
    client.force_login(ada)  # a login is user:activity to user:{id}: kept too
    body = client.get(LIST).json()
    assert titles(body) == ["ada logged in", "5 failed logins"] and body["unreadCount"] == 2


def test_pages(ada):
    for i in range(25):
        alert(ada, f"alert {i}")
    first = api(ada).get(LIST).json()
    assert len(first["results"]) == 20 and first["count"] == 25 and first["next"]
    second = api(ada).get(LIST, {"page": 2}).json()
    assert [t for t in titles(second)] == [f"alert {i}" for i in range(4, -1, -1)]
    assert len(api(ada).get(LIST, {"page_size": 5}).json()["results"]) == 5


def test_old_notifications_are_pruned_by_the_worker_job(ada, settings):
    import notifications.jobs

    settings.NOTIFICATIONS_RETENTION_DAYS = 7
    alert(ada, "old")
    alert(ada, "recent")
    Notification.objects.filter(data__title="old").update(created_at=timezone.now() - timedelta(days=8))
    job = notifications.jobs.worker._jobs["notifications.prune"]
    job.due = 0.0  # due now, whenever an earlier test last ran it (it runs hourly)
    notifications.jobs.worker.run_once(["notifications.prune"])
    assert list(Notification.objects.values_list("data__title", flat=True)) == ["recent"]


def test_the_admin_shows_them(ada, make_user, client):
    alert(ada)
    services.announce("New collection", kind="event", title="Autumn")
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    page = client.get("/admin/notifications/notification/")
    assert page.status_code == 200
    assert "5 failed logins" in page.content.decode() and "Autumn" in page.content.decode()
    one = Notification.objects.get(user=ada)
    assert client.get(f"/admin/notifications/notification/{one.pk}/change/").status_code == 200


async def test_connected_carries_the_unread_count(ada, connect):
    await db(alert)(ada)
    await db(services.announce)("New collection", kind="event")
    sock = await connect(token_for(ada))
    assert sock.connected_payload["data"]["unreadCount"] == 2
    await db(inbox.mark_all_read)(ada)
    frame = await sock.receive_event("notifications:read")
    assert frame["data"] == {"ids": None, "all": True, "unreadCount": 0}
    again = await connect(token_for(ada))
    assert again.connected_payload["data"]["unreadCount"] == 0


async def test_the_unread_ones_over_the_socket(ada, bob, connect):
    for i in range(3):
        await db(alert)(ada, f"alert {i}")
    await db(alert)(bob, "bob's")
    sock = await connect(token_for(ada))
    reply = await sock.command("notifications:unread", {"limit": 2})
    assert reply["data"]["unreadCount"] == 3
    assert [n["data"]["title"] for n in reply["data"]["notifications"]] == ["alert 2", "alert 1"]
    assert reply["data"]["notifications"][0]["type"] == "security:alert"
    for bad in ({"limit": 0}, {"limit": "5"}, {"other": 1}, [1]):
        error = await sock.command("notifications:unread", bad)
        assert error["error"]["code"] == "validation_error" and "data" not in error, error
    assert (await sock.command("notifications:unread"))["data"]["unreadCount"] == 3
