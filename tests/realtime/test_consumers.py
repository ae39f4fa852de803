"""The /ws/ socket: the connected frame, acks, bad input answered with error events, the socket stays."""
from channels.db import database_sync_to_async
import pytest

from django_oda_realtime import apublish
from django_oda_realtime.commands import register

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def sock(make_user, token, connect):
    user = await database_sync_to_async(make_user)("dana", perms=["inventory.view_inventorylevel"])
    return await connect(token(user))


async def test_connected_frame_lists_relevant_permissions(sock):
    frame = sock.connected_payload
    assert frame["event"] == frame["type"] == "connected"
    assert frame["data"]["permissions"] == ["inventory.view_inventorylevel"]
    assert isinstance(frame["data"]["serverTime"], float)


@pytest.mark.parametrize(
    "raw, code",
    [
        ("not json", "invalid_json"),
        ('{"event": 3}', "invalid_frame"),
        ('{"event": "x", "unknown": 1}', "invalid_frame"),
    ],
)
async def test_bad_frames_get_an_error_event_and_the_socket_stays(sock, raw, code):
    await sock.comm.send_to(text_data=raw)
    frame = await sock.receive_event("error")
    assert frame["code"] == code and frame["data"]["code"] == code
    assert (await sock.command("subscribe:inventory"))["data"]["rooms"] == ["inventory:all"]


async def test_unknown_command_without_ack_gets_an_error_event(sock):
    await sock.send("inventory:teleport", {"x": 1})
    frame = await sock.receive_event("error")
    assert frame["code"] == "unknown_command"
    assert frame["data"]["request"] == {"x": 1}


async def test_subscribe_without_ack_emits_subscribed(sock):
    await sock.send("subscribe:inventory", {"locationIds": ["2"]})
    frame = await sock.receive_event("subscribed")
    assert frame["data"] == {"topic": "inventory", "rooms": ["inventory:location:2"], "refused": []}


@pytest.mark.parametrize("data", [[1], "x", 5, {"locationIds": "1"}, {"locationIds": [{"a": 1}]}, {"locationIds": ["a" * 65]}, {"locationIds": list(range(101))}])
async def test_invalid_subscription_data_is_refused(sock, data):
    reply = await sock.command("subscribe:inventory", data)
    assert reply["error"]["code"] == "validation_error"


async def test_a_handler_crash_is_an_internal_error_not_a_dead_socket(sock, caplog):
    def boom(caller, data):
        raise ZeroDivisionError("hidden detail")

    register("test:boom", boom)
    reply = await sock.command("test:boom", {})
    assert reply["error"] == {"code": "internal_error", "message": "Internal error"}
    assert (await sock.command("ping"))["event"] == "pong"


async def test_oversized_message_closes_with_4009(sock, settings):
    settings.REALTIME = {**settings.REALTIME, "MAX_MESSAGE_BYTES": 1000}
    await sock.send("subscribe:inventory", {"productIds": ["x" * 40] * 30})
    frame = await sock.receive_event("error")
    assert frame["code"] == "message_too_big"
    closing = await sock.comm.receive_output(2)
    assert closing == {"type": "websocket.close", "code": 4009}


async def test_unknown_path_is_refused(connect, make_user, token):
    user = await database_sync_to_async(make_user)()
    sock = await connect(token(user), path="/nope/", expect_ok=False)
    assert sock.accepted is False


async def test_subscriptions_past_max_rooms_per_connection_are_refused_and_the_joined_rooms_still_deliver(
    sock, settings
):
    # The socket holds its own user room from the start (docs/protocol.md): with a bound of 4 it may join 3 more.
    settings.REALTIME = {**settings.REALTIME, "MAX_ROOMS_PER_CONNECTION": 4}
    reply = await sock.command("subscribe:inventory", {"productIds": ["1", "2"]})
    assert reply["data"] == {"topic": "inventory", "rooms": ["inventory:product:1", "inventory:product:2"],
                             "refused": []}
    reply = await sock.command("subscribe:inventory", {"productIds": ["3", "4", "5"]})
    assert reply["data"] == {"topic": "inventory", "rooms": ["inventory:product:3"], "refused": [
        {"room": "inventory:product:4", "reason": "too_many_rooms"},
        {"room": "inventory:product:5", "reason": "too_many_rooms"},
    ]}
    reply = await sock.command("subscribe:inventory", {})  # the next subscription: refused, not an error
    assert reply["data"] == {"topic": "inventory", "rooms": [],
                             "refused": [{"room": "inventory:all", "reason": "too_many_rooms"}]}

    for n in ("1", "2", "3", "4"):
        await apublish("inventory:updated", {"product": n}, [f"inventory:product:{n}"])
    got = [(await sock.receive_event("inventory:updated"))["data"]["product"] for _ in range(3)]
    assert got == ["1", "2", "3"]
    assert await sock.nothing(0.3)  # nothing from the refused room

    # A room left makes space again.
    assert (await sock.command("unsubscribe:inventory", {"productIds": ["1"]}))["data"]["rooms"] == [
        "inventory:product:1"]
    assert (await sock.command("subscribe:inventory", {"productIds": ["4"]}))["data"]["rooms"] == [
        "inventory:product:4"]
