"""``notification`` events: user activity, announcements (command and admin), security alerts."""
import io

from channels.db import database_sync_to_async as db
from django.core.management import call_command
from django.test import Client
import pytest

from inventory.models import Product
from notifications.models import Announcement
from tests.domain import events_named, pending, subscribe

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def staff(make_user, token, connect):
    user = await db(make_user)("staffer", is_staff=True)
    sock = await connect(token(user))
    await subscribe(sock, "staff", rooms=["staff"])
    return sock


@pytest.fixture
async def customer(make_user, token, connect):
    """A non-staff user: may not join ``staff``; subscribed to their notifications and the broadcast."""
    user = await db(make_user)("ada")
    sock = await connect(token(user))
    reply = await sock.command("subscribe:staff")
    assert reply["data"]["refused"] == [{"room": "staff", "reason": "forbidden"}]
    await subscribe(sock, "notifications", rooms=[f"notifications:{user.pk}", "broadcast"])
    sock.user = user
    return sock


def notifications(frames, kind):
    found = events_named(frames, "notification")
    return [f["data"] for f in found if f["type"] == kind]


async def test_login_and_logout_are_user_activity_for_staff_and_the_user(staff, customer, make_user, token, connect):
    maria = await db(make_user)("maria")
    own = await connect(token(maria))

    def login_logout():
        client = Client()
        assert client.login(username="maria", password="pw-123456")
        client.logout()
    await db(login_logout)()

    for sock in (staff, own):
        got = notifications(await pending(sock), "user:activity")
        assert got == [
            {"title": "maria logged in", "message": "", "level": "info", "action": "login",
             "userId": str(maria.pk), "username": "maria"},
            {"title": "maria logged out", "message": "", "level": "info", "action": "logout",
             "userId": str(maria.pk), "username": "maria"},
        ]
    assert await customer.nothing()


async def test_product_created_and_changed(staff, customer):
    def create_and_rename():
        product = Product.objects.create(title="Wool Coat", handle="wool-coat")
        product.title = "Wool Coat II"
        product.save()
        return product
    product = await db(create_and_rename)()
    got = notifications(await pending(staff), "user:activity")
    assert [(g["action"], g["productTitle"], g["productId"]) for g in got] == [
        ("product_created", "Wool Coat", str(product.pk)), ("product_updated", "Wool Coat II", str(product.pk))]
    assert got[0]["title"] == "Product created: Wool Coat"
    assert await customer.nothing()


async def test_announce_command_broadcasts_maintenance(customer, staff, make_user, token, connect):
    unsubscribed = await connect(token(await db(make_user)()))
    await db(call_command)("announce", "Checkout is read-only from 02:00 to 02:30 UTC", kind="maintenance",
                           title="Planned maintenance", stdout=io.StringIO())
    frame = (await customer.receive_event("notification"))
    assert frame["type"] == "system:maintenance"
    announcement = await db(Announcement.objects.get)()
    assert frame["data"] == {
        "title": "Planned maintenance", "message": "Checkout is read-only from 02:00 to 02:30 UTC",
        "level": "warning", "announcementId": str(announcement.pk), "kind": "maintenance",
        "sentAt": frame["data"]["sentAt"],
    }
    assert await unsubscribed.nothing()
    assert await staff.nothing()  # staff did not subscribe to the broadcast room


async def test_admin_sends_a_system_event(customer, make_user):
    await db(make_user)("boss", is_staff=True, is_superuser=True)

    def send_from_admin():
        client = Client()
        assert client.login(username="boss", password="pw-123456")
        response = client.post("/admin/notifications/announcement/add/", {
            "kind": "event", "level": "info", "title": "New collection", "message": "The autumn collection is live"})
        assert response.status_code == 302, response.content[:500]
    await db(send_from_admin)()
    [data] = notifications(await pending(customer), "system:event")
    assert (data["title"], data["message"], data["kind"], data["level"]) == (
        "New collection", "The autumn collection is live", "event", "info")


async def test_repeated_failed_logins_raise_one_security_alert(staff, customer):
    def fail(times):
        for _ in range(times):
            assert not Client().login(username="ada", password="guess")
    await db(fail)(4)
    assert await staff.nothing() and await customer.nothing()
    await db(fail)(1)
    for sock in (staff, customer):  # staff, and the account's owner in notifications:{id}
        [alert] = notifications(await pending(sock), "security:alert")
        assert alert == {
            "title": "5 failed logins for 'ada'",
            "message": "5 failed login attempts for this account in the last 10 minutes.",
            "level": "warning", "alert": "failed_logins", "username": "ada",
            "details": {"failures": 5, "windowSeconds": 600, "ipAddress": None},
        }
    await db(fail)(1)  # the sixth: no new alert
    assert await staff.nothing()


async def test_failed_logins_for_an_unknown_account_alert_staff_only(staff, customer):
    await db(lambda: [Client().login(username="root", password="x") for _ in range(5)])()
    [alert] = notifications(await pending(staff), "security:alert")
    assert alert["username"] == "root"
    assert await customer.nothing()
