"""What an idle socket keeps (issue #7: memory per idle connection), checked by what users see.

The memory figures themselves come from ``make bench`` / ``bench/memory.py``; these tests
hold the behaviour of the changes that made them smaller.
"""
import asyncio
import contextvars
import json

from asgiref.local import Local
from asgiref.testing import ApplicationCommunicator
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.contrib.auth.models import Permission
from django.urls import path
import pytest

from django_oda_realtime.db import run_sync_db
from django_oda_realtime.hub import Hub
from django_oda_realtime.routing import application_for

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_permission_revoked_while_connected_is_refused_at_the_next_subscribe(make_user, token, connect):
    # The session keeps its user for the socket's life; Django's permission caches on it must not
    # outlive a check, or a revoked permission would still open the room (and hold memory).
    user = await database_sync_to_async(make_user)("rhea", perms=["inventory.view_inventorylevel"])
    sock = await connect(token(user))
    assert sock.connected_payload["data"]["permissions"] == ["inventory.view_inventorylevel"]

    await database_sync_to_async(user.user_permissions.remove)(
        await database_sync_to_async(Permission.objects.get)(codename="view_inventorylevel")
    )
    reply = await sock.command("subscribe:inventory")
    assert reply["data"]["rooms"] == []
    assert reply["data"]["refused"] == [{"room": "inventory:all", "reason": "forbidden"}]


async def test_orm_calls_leave_the_callers_context_as_it_was(db):
    local = Local()

    def touch():
        local.value = "set in the thread"
        return 7

    before = dict(contextvars.copy_context())
    assert await run_sync_db(touch) == 7
    assert dict(contextvars.copy_context()) == before
    assert not hasattr(local, "value")


class Echo(AsyncWebsocketConsumer):
    async def connect(self):
        await self.accept()
        await self.send(json.dumps({"user": str(self.scope["user"]), "route": self.scope["url_route"]["kwargs"]}))


async def not_http(scope, receive, send):
    raise AssertionError("not an HTTP test")


def websocket_scope(path_, root_path="", query=b""):
    return {"type": "websocket", "path": path_, "root_path": root_path, "query_string": query,
            "headers": [], "subprotocols": []}


async def test_extra_websocket_routes_get_the_authenticated_scope_and_their_url_kwargs(make_user, token):
    user = await database_sync_to_async(make_user)("echo")
    app = application_for(not_http, [path("custom/<int:n>/", Echo.as_asgi())])
    comm = ApplicationCommunicator(app, websocket_scope("/custom/5/", query=f"token={token(user)}".encode()))
    await comm.send_input({"type": "websocket.connect"})
    assert (await comm.receive_output(5))["type"] == "websocket.accept"
    sent = await comm.receive_output(5)
    assert json.loads(sent["text"]) == {"user": "echo", "route": {"n": 5}}
    await comm.send_input({"type": "websocket.disconnect", "code": 1000})
    await comm.wait(2)


async def test_sockets_behind_a_root_path_reach_their_consumer(make_user, token):
    user = await database_sync_to_async(make_user)("rooted")
    from oda_realtime.asgi import application

    scope = websocket_scope("/realtime/ws/", root_path="/realtime", query=f"token={token(user)}".encode())
    comm = ApplicationCommunicator(application, scope)
    await comm.send_input({"type": "websocket.connect"})
    assert (await comm.receive_output(5))["type"] == "websocket.accept"
    connected = json.loads((await comm.receive_output(5))["text"])
    assert connected["event"] == "connected" and connected["data"]["username"] == "rooted"
    await comm.send_input({"type": "websocket.disconnect", "code": 1000})
    await comm.wait(2)


async def test_an_unknown_scope_type_is_an_error_not_a_hang():
    from oda_realtime.asgi import application

    with pytest.raises(ValueError, match="telepathy"):
        await application({"type": "telepathy"}, None, None)


class Member:
    protocol_name = "native"

    def __init__(self, name):
        self.connection_id = name


async def test_concurrent_joins_of_a_room_add_the_group_once_and_keep_no_lock(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    layer = get_channel_layer()
    calls = []
    original = layer.group_add

    async def counting_group_add(group, channel):
        calls.append(group)
        await asyncio.sleep(0.05)  # while the first join waits on the layer, the others queue
        await original(group, channel)

    layer.group_add = counting_group_add
    hub = Hub(layer)
    hub.channel = await layer.new_channel()
    members = [Member(f"c{i}") for i in range(5)]
    await asyncio.gather(*(hub.join(m, "inventory:all") for m in members))
    assert calls == ["rt.inventory.all"]
    assert hub.members("inventory:all") == set(members)
    await asyncio.gather(*(hub.leave(m, "inventory:all") for m in members))
    assert hub.members("inventory:all") == set()
    assert len(hub._group_locks) == 0 and hub.groups == {}


class Recorder(Member):
    def __init__(self, name):
        super().__init__(name)
        self.events = []

    async def deliver(self, event):
        self.events.append(json.loads(event.json)["data"])
        return True


async def test_users_sharing_a_group_get_only_their_own_events_and_the_group_stays_while_one_is_here(settings):
    from django_oda_realtime.events import Event
    from django_oda_realtime.rooms import group_for

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    layer = get_channel_layer()
    a_id = 1
    b_id = next(i for i in range(2, 10_000) if group_for(f"user:{i}") == group_for(f"user:{a_id}"))
    group = group_for(f"user:{a_id}")
    hub = Hub(layer)
    await hub.start()
    try:
        a, b = Recorder("a"), Recorder("b")
        await hub.join(a, f"user:{a_id}")
        await hub.join(b, f"user:{b_id}")
        assert hub.groups == {group: 2}

        await layer.group_send(group, Event.build("notification", {"to": "a"}, [f"user:{a_id}"]).to_layer())
        await hub.leave(a, f"user:{a_id}")
        assert hub.groups == {group: 1}  # b is still here: the process stays in the group
        await layer.group_send(group, Event.build("notification", {"to": "b"}, [f"user:{b_id}"]).to_layer())
        for _ in range(100):
            if b.events:
                break
            await asyncio.sleep(0.01)
        assert a.events == [{"to": "a"}]
        assert b.events == [{"to": "b"}]

        await hub.leave(b, f"user:{b_id}")
        assert hub.groups == {}
        assert group not in layer.groups or hub.channel not in layer.groups[group]
    finally:
        await hub.stop()


async def test_an_open_socket_keeps_no_token_or_headers_in_its_scope(make_user, token):
    from oda_realtime.asgi import application

    user = await database_sync_to_async(make_user)("scoped")
    raw = token(user)
    scope = {**websocket_scope("/ws/", query=f"token={raw}".encode()),
             "headers": [(b"cookie", b"sessionid=secret"), (b"authorization", f"Bearer {raw}".encode())]}
    comm = ApplicationCommunicator(application, scope)
    await comm.send_input({"type": "websocket.connect"})
    assert (await comm.receive_output(5))["type"] == "websocket.accept"
    assert json.loads((await comm.receive_output(5))["text"])["event"] == "connected"
    # The scope the consumer and the middleware keep for the socket's life is this one, updated in place.
    assert scope["user"] == user and scope["realtime.auth"].ok
    assert raw.encode() not in repr(scope).encode() and b"secret" not in repr(scope).encode()
    assert scope["headers"] == () and scope["query_string"] == b""
    await comm.send_input({"type": "websocket.disconnect", "code": 1000})
    await comm.wait(2)


async def test_a_command_that_checks_a_permission_does_not_pin_it_for_later_subscribes(make_user, token, connect):
    from django_oda_realtime.commands import register

    register("test:can_view", lambda caller, data: {"can": caller.user.has_perm("inventory.view_inventorylevel")})
    user = await database_sync_to_async(make_user)("cmd", perms=["inventory.view_inventorylevel"])
    sock = await connect(token(user))
    assert (await sock.command("test:can_view"))["data"] == {"can": True}

    await database_sync_to_async(user.user_permissions.clear)()
    reply = await sock.command("subscribe:inventory")
    assert reply["data"]["refused"] == [{"room": "inventory:all", "reason": "forbidden"}]
