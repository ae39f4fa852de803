"""The socket session (django_oda_realtime/sockets/session.py) on its own, under either protocol.

A session over a recording socket and a hub of its own: ``handle`` returns the ``Reply`` a
protocol encodes (ack data, or error code, message and error event), and the recording
socket gets the events of the session's rooms. Each test asserts what a client would get.
"""
import asyncio

from channels.db import database_sync_to_async
from django.db import DatabaseError
import pytest

from django_oda_realtime.commands import register
from django_oda_realtime.exceptions import CommandError
from django_oda_realtime.sockets.session import Session
from tests.conftest import token_for
from tests.realtime.recording import RecordingSocket, eventually, send

pytestmark = pytest.mark.django_db(transaction=True)

VIEW = "inventory.view_inventorylevel"


@pytest.fixture
async def open_session(hub, make_user):
    """``await open_session(perms)`` -> (session, its recording socket, the ``connected`` payload)."""
    sessions = []

    async def opened(perms=()):
        user = await database_sync_to_async(make_user)(perms=list(perms))
        socket = RecordingSocket("s", str(user.pk))
        session = Session(user, socket, hub, "native")
        sessions.append(session)
        return session, socket, await session.open()

    yield opened
    for session in sessions:
        await session.close()  # safe again after a test's own close


async def test_open_joins_the_users_own_room_and_says_who_is_connected(open_session, hub):
    session, socket, connected = await open_session(perms=[VIEW])
    own = f"user:{session.user.pk}"
    assert connected["userId"] == str(session.user.pk) and connected["rooms"] == [own]
    assert connected["permissions"] == [VIEW] and connected["connectionId"] == session.connection_id
    await send(hub, "notification", {"hi": 1}, [own])
    await eventually(lambda: socket.events == [{"hi": 1}], "the event of the user's own room")


async def test_subscribe_answers_with_rooms_joined_and_refused_and_the_rooms_deliver(open_session, hub):
    session, socket, _ = await open_session(perms=[VIEW])
    reply = await session.handle("subscribe:inventory", {"productIds": ["4"]})
    assert reply.ok and reply.result_event == "subscribed"
    assert reply.data == {"topic": "inventory", "rooms": ["inventory:product:4"], "refused": []}
    refused = await session.handle("subscribe:orders", {})  # no orders.view_order
    assert refused.data == {"topic": "orders", "rooms": [], "refused": [{"room": "orders:all", "reason": "forbidden"}]}
    await send(hub, "inventory:updated", {"n": 1}, ["inventory:product:4"])
    await send(hub, "order:updated", {"n": 2}, ["orders:all"])
    await send(hub, "inventory:updated", {"n": 3}, ["inventory:product:4"])
    await eventually(lambda: len(socket.events) >= 2, "the subscribed room's events")
    assert socket.events == [{"n": 1}, {"n": 3}]


async def test_unsubscribe_stops_the_events_but_never_leaves_the_users_own_room(open_session, hub):
    session, socket, _ = await open_session(perms=[VIEW])
    await session.handle("subscribe:inventory", {})
    reply = await session.handle("unsubscribe:inventory", {})
    assert reply.ok and reply.result_event == "unsubscribed" and reply.data == {"topic": "inventory",
                                                                              "rooms": ["inventory:all"]}
    own = f"user:{session.user.pk}"
    await send(hub, "inventory:updated", {"n": 1}, ["inventory:all"])
    await send(hub, "notification", {"n": 2}, [own])
    await eventually(lambda: socket.events, "the own room's event")
    assert socket.events == [{"n": 2}]


@pytest.mark.parametrize("event, code", [
    ("not an event", "invalid_event"), (5, "invalid_event"), ("inventory:teleport", "unknown_command"),
])
async def test_bad_commands_get_an_error_reply_with_the_request(open_session, event, code):
    session, _, _ = await open_session()
    reply = await session.handle(event, {"x": 1})
    assert (reply.error_code, reply.error_event, reply.request) == (code, "error", {"x": 1})
    assert reply.error_message


async def test_a_commands_result_is_the_reply_and_its_failures_get_their_code(open_session):
    def sync_double(caller, data):
        from django.contrib.auth import get_user_model

        assert get_user_model().objects.filter(pk=caller.user.pk).exists()  # a sync handler may use the ORM
        return {"double": data["n"] * 2, "by": str(caller.user.pk)}

    async def async_refuse(caller, data):
        raise CommandError("Not today", code="not_today")

    def database_down(caller, data):
        raise DatabaseError("connection refused to 10.0.0.5")

    def crash(caller, data):
        raise ZeroDivisionError("hidden detail")

    register("test:double", sync_double, result_event="test:doubled")
    register("test:refuse", async_refuse, error_event="test:refused")
    register("test:db", database_down)
    register("test:crash", crash)
    session, _, _ = await open_session()

    reply = await session.handle("test:double", {"n": 21})
    assert (reply.data, reply.result_event) == ({"double": 42, "by": str(session.user.pk)}, "test:doubled")
    reply = await session.handle("test:refuse", {"when": "now"})
    assert (reply.error_code, reply.error_message, reply.error_event, reply.request) == (
        "not_today", "Not today", "test:refused", {"when": "now"})
    reply = await session.handle("test:db", None)
    assert (reply.error_code, reply.error_message) == ("unavailable", "The service is temporarily unavailable")
    reply = await session.handle("test:crash", None)
    assert (reply.error_code, reply.error_message) == ("internal_error", "Internal error")  # no detail leaks
    assert (await session.handle("test:double", {"n": 1})).data["double"] == 2  # the session goes on


async def test_auth_refresh_refuses_another_users_token_on_its_own_error_event(open_session, make_user):
    session, _, _ = await open_session()
    other = await database_sync_to_async(make_user)()
    reply = await session.handle("auth:refresh", {"token": token_for(other)})
    assert (reply.error_code, reply.error_event) == ("token_user_mismatch", "auth:error")
    reply = await session.handle("auth:refresh", {"token": token_for(session.user)})
    assert reply.ok and reply.result_event == "auth:refreshed" and reply.data["expiresAt"] > 0


async def test_after_close_commands_are_refused_and_no_event_arrives(open_session, hub):
    session, socket, _ = await open_session(perms=[VIEW])
    await session.handle("subscribe:inventory", {})
    await session.close()
    reply = await session.handle("subscribe:inventory", {})
    assert reply.error_code == "connection_closed"
    await send(hub, "inventory:updated", {"n": 1}, ["inventory:all", f"user:{session.user.pk}"])
    # A second socket of the room is the marker: once it has the event, the closed one would have too.
    marker = RecordingSocket("marker")
    await hub.join(marker, "inventory:all")
    await send(hub, "inventory:updated", {"n": 2}, ["inventory:all"])
    await eventually(lambda: marker.events == [{"n": 2}], "the marker socket's event")
    assert socket.events == []


async def test_a_close_during_a_subscribe_leaves_no_room_behind(open_session, hub):
    session, socket, _ = await open_session(perms=[VIEW])
    subscribing = asyncio.ensure_future(session.handle("subscribe:inventory", {"productIds": [str(n) for n in range(50)]}))
    await asyncio.sleep(0)  # the subscribe has started
    await session.close()
    reply = await subscribing
    assert reply.ok or reply.error_code == "connection_closed"
    marker = RecordingSocket("marker")
    await hub.join(marker, "inventory:product:49")
    rooms = [f"inventory:product:{n}" for n in range(50)]
    await send(hub, "inventory:updated", {"n": 1}, rooms)
    await eventually(lambda: marker.events == [{"n": 1}], "the marker socket's event")
    assert socket.events == []
