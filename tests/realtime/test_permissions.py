"""Who may join which room: the matrix of every room for every kind of user, through a socket."""
from channels.db import database_sync_to_async
import pytest

from orders.models import Customer

pytestmark = pytest.mark.django_db(transaction=True)

INV = "inventory.view_inventorylevel"
ORD = "orders.view_order"
SHOP = "shopify_sync.view_syncjob"


def make_people(make_user):
    people = {
        "superuser": make_user("root", is_staff=True, is_superuser=True),
        "staff_all": make_user("staff-all", is_staff=True, perms=[INV, ORD, SHOP]),
        "staff_inventory": make_user("staff-inv", is_staff=True, perms=[INV]),
        "staff_orders": make_user("staff-ord", is_staff=True, perms=[ORD]),
        "staff_shopify": make_user("staff-shop", is_staff=True, perms=[SHOP]),
        "staff_none": make_user("staff-none", is_staff=True),
        "customer": make_user("cust"),
        "other_customer": make_user("other"),
    }
    mine = Customer.objects.create(user=people["customer"], email="c@example.com", name="C")
    theirs = Customer.objects.create(user=people["other_customer"], email="o@example.com", name="O")
    return people, mine.pk, theirs.pk


# (command, data) -> the room it asks for; then who gets it.
CASES = [
    ("subscribe:inventory", {}, "inventory:all", {"superuser", "staff_all", "staff_inventory"}),
    ("subscribe:inventory", {"locationIds": ["1"]}, "inventory:location:1", {"superuser", "staff_all", "staff_inventory"}),
    ("subscribe:inventory", {"productIds": [7]}, "inventory:product:7", {"superuser", "staff_all", "staff_inventory"}),
    ("subscribe:orders", {}, "orders:all", {"superuser", "staff_all", "staff_orders"}),
    ("subscribe:orders", {"customerId": "MINE"}, "orders:customer:MINE", {"superuser", "staff_all", "staff_orders", "customer"}),
    ("subscribe:orders", {"customerId": "THEIRS"}, "orders:customer:THEIRS", {"superuser", "staff_all", "staff_orders", "other_customer"}),
    ("subscribe:shopify", None, "shopify:all", {"superuser", "staff_all", "staff_shopify"}),
]
EVERYONE = ["superuser", "staff_all", "staff_inventory", "staff_orders", "staff_shopify", "staff_none", "customer", "other_customer"]


@pytest.mark.parametrize("who", EVERYONE)
async def test_room_permission_matrix(who, make_user, token, connect):
    people, mine, theirs = await database_sync_to_async(make_people)(make_user)
    sock = await connect(token(people[who]))
    for command, data, room, allowed in CASES:
        if data and "customerId" in data:
            cid = str(mine if data["customerId"] == "MINE" else theirs)
            data, room = {"customerId": cid}, room.replace("MINE", cid).replace("THEIRS", cid)
        reply = await sock.command(command, data)
        if who in allowed:
            assert reply["data"]["rooms"] == [room], (who, command)
            assert reply["data"]["refused"] == []
        else:
            assert reply["data"]["rooms"] == [], (who, command)
            assert reply["data"]["refused"] == [{"room": room, "reason": "forbidden"}]


@pytest.mark.parametrize("who", EVERYONE)
async def test_everyone_gets_their_own_notifications_and_the_broadcast(who, make_user, token, connect):
    people, _, _ = await database_sync_to_async(make_people)(make_user)
    sock = await connect(token(people[who]))
    reply = await sock.command("subscribe:notifications")
    assert reply["data"]["rooms"] == [f"notifications:{people[who].pk}", "broadcast"]


@pytest.mark.parametrize(
    "spelling",
    ["{pk} ", " {pk}", "0{pk}", "{pk}.0", "+{pk}", "{pk}:x", "{pk}\u0000"],
)
async def test_no_spelling_of_a_customer_id_reaches_another_customers_orders(spelling, make_user, token, connect):
    people, mine, theirs = await database_sync_to_async(make_people)(make_user)
    sock = await connect(token(people["customer"]))
    reply = await sock.command("subscribe:orders", {"customerId": spelling.format(pk=theirs)})
    joined = reply.get("data", {}).get("rooms", [])
    assert not any(r.startswith("orders:") for r in joined)


async def test_a_user_cannot_reach_another_users_rooms_through_any_topic(make_user, token, connect):
    people, _, _ = await database_sync_to_async(make_people)(make_user)
    sock = await connect(token(people["customer"]))
    other = people["other_customer"].pk
    for data in [{"userId": other}, {"room": f"user:{other}"}, [f"notifications:{other}"], f"user:{other}"]:
        reply = await sock.command("subscribe:notifications", data)
        assert reply["error"]["code"] == "validation_error"
    assert (await sock.command("subscribe:user", {"userId": other}))["error"]["code"] == "unknown_command"
    assert (await sock.command(f"subscribe:user:{other}"))["error"]["code"] == "invalid_event"


async def test_unsubscribe_leaves_the_rooms(make_user, token, connect):
    people, _, _ = await database_sync_to_async(make_people)(make_user)
    sock = await connect(token(people["staff_inventory"]))
    await sock.command("subscribe:inventory", {"locationIds": [1, 2]})
    reply = await sock.command("unsubscribe:inventory", {"locationIds": [1]})
    assert reply["data"]["rooms"] == ["inventory:location:1"]
