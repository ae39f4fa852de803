"""publish(): delivery after commit, nothing on rollback, on the in-memory layer and on Redis."""
from channels.db import database_sync_to_async
from django.db import transaction
import pytest

import django_oda_realtime as realtime
from django_oda_realtime.events import Event
from django_oda_realtime.publish import publish

pytestmark = pytest.mark.django_db(transaction=True)


async def subscriber(make_user, token, connect, rooms_data=None):
    user = await database_sync_to_async(make_user)(perms=["inventory.view_inventorylevel"])
    sock = await connect(token(user))
    await sock.command("subscribe:inventory", rooms_data or {})
    return sock


def publish_in_transaction(commit: bool):
    try:
        with transaction.atomic():
            publish("inventory:updated", {"available": 5}, ["inventory:all"])
            if not commit:
                raise RuntimeError("roll back")
    except RuntimeError:
        pass


async def test_publish_in_a_committed_transaction_is_delivered(any_layer, make_user, token, connect):
    sock = await subscriber(make_user, token, connect)
    await database_sync_to_async(publish_in_transaction)(True)
    frame = await sock.receive_event("inventory:updated")
    assert frame["data"] == {"available": 5}
    assert frame["type"] == "inventory:updated"
    assert frame["id"] and frame["timestamp"].endswith("+00:00")


async def test_a_rolled_back_transaction_sends_nothing(any_layer, make_user, token, connect):
    sock = await subscriber(make_user, token, connect)
    await database_sync_to_async(publish_in_transaction)(False)
    assert await sock.nothing(0.5)


async def test_publish_outside_a_transaction_sends_at_once(any_layer, make_user, token, connect):
    sock = await subscriber(make_user, token, connect)
    await database_sync_to_async(publish)("inventory:updated", {"n": 1}, "inventory:all")
    assert (await sock.receive_event("inventory:updated"))["data"] == {"n": 1}


async def test_one_event_to_several_rooms_arrives_once(any_layer, make_user, token, connect):
    sock = await subscriber(make_user, token, connect, {"locationIds": [1], "productIds": [2]})
    await sock.command("subscribe:inventory", {})
    await realtime.apublish("inventory:updated", {"n": 2}, ["inventory:all", "inventory:location:1", "inventory:product:2"])
    assert (await sock.receive_event("inventory:updated"))["data"] == {"n": 2}
    assert await sock.nothing(0.3)


async def test_only_subscribers_of_the_room_receive(any_layer, make_user, token, connect):
    sub = await subscriber(make_user, token, connect, {"locationIds": [1]})
    other = await subscriber(make_user, token, connect, {"locationIds": [2]})
    await realtime.apublish("inventory:updated", {}, ["inventory:location:1"])
    await sub.receive_event("inventory:updated")
    assert await other.nothing(0.3)


async def test_notification_type_is_the_notification_kind(make_user, token, connect):
    user = await database_sync_to_async(make_user)()
    sock = await connect(token(user))
    await sock.command("subscribe:notifications")
    await realtime.apublish("notification", {"message": "Down at 2am"}, ["broadcast"], type="system:maintenance")
    frame = await sock.receive_event("notification")
    assert (frame["event"], frame["type"], frame["data"]["message"]) == ("notification", "system:maintenance", "Down at 2am")


@pytest.mark.django_db(transaction=False)
def test_on_commit_callback_is_registered_not_run(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        with transaction.atomic():
            publish("inventory:updated", {}, ["inventory:all"])
    assert len(callbacks) == 1


def test_invalid_rooms_are_a_programming_error():
    with pytest.raises(ValueError):
        publish("inventory:updated", {}, [])
    with pytest.raises(ValueError):
        publish("inventory:updated", {}, ["bad.room"])


def test_event_is_encoded_once_with_the_envelope():
    event = Event.build("inventory:updated", {"itemId": "3"}, ["inventory:all"])
    assert event.json.startswith('{"event":"inventory:updated","type":"inventory:updated","data":{"itemId":"3"}')
    assert Event.from_layer(event.to_layer()).json == event.json


def test_publish_with_redis_down_neither_raises_nor_hangs(settings, caplog):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:1/0", "socket_connect_timeout": 1}]},
        }
    }
    settings.REALTIME = {**settings.REALTIME, "PUBLISH_TIMEOUT": 1.5}
    from channels.layers import channel_layers
    import time

    channel_layers.backends.clear()
    started = time.monotonic()
    publish("inventory:updated", {}, ["inventory:all"])
    assert time.monotonic() - started < 3
    assert "Publishing inventory:updated failed" in caplog.text


def test_public_api_is_pinned():
    assert sorted(realtime.__all__) == ["Broadcast", "Change", "Event", "apublish", "publish"]
