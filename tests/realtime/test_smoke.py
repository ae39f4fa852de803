import pytest

from realtime import apublish

pytestmark = pytest.mark.django_db(transaction=True)


async def test_connect_subscribe_receive(make_user, token, connect):
    from asgiref.sync import sync_to_async
    user = await sync_to_async(make_user)(perms=["inventory.view_inventorylevel"])
    sock = await connect(token(user))
    assert sock.connected_payload["data"]["userId"] == str(user.pk)
    reply = await sock.command("subscribe:inventory", {"locationIds": ["1"]})
    assert reply["data"]["rooms"] == ["inventory:location:1"]
    await apublish("inventory:updated", {"x": 1}, ["inventory:location:1", "inventory:all"])
    frame = await sock.receive_event("inventory:updated")
    assert frame["data"] == {"x": 1}
    assert await sock.nothing()
