"""``realtime.Broadcast``: model changes -> events after commit (docs/extending.md), proven on the worked
example app (tests/broadcast_app, label ``returns``) with the in-memory layer and real ``/ws/`` sockets."""
import asyncio
from contextlib import contextmanager
import json
from pathlib import Path
import re

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async as db
from channels.layers import get_channel_layer
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
import pytest

from django_oda_realtime import Broadcast
from django_oda_realtime.contract import asyncapi
from django_oda_realtime.contract.testing import validate_event
from django_oda_realtime.rooms import group_for
from tests.broadcast_app.models import Return
from tests.domain import pending, subscribe

ROOT = Path(__file__).resolve().parents[2]


class Listener:
    """A channel-layer channel in the groups of ``rooms``: what the hubs of every process would receive."""

    def __init__(self, *rooms: str) -> None:
        self.layer = get_channel_layer()
        self.channel = async_to_sync(self.layer.new_channel)()
        for room in rooms:
            async_to_sync(self.layer.group_add)(group_for(room), self.channel)

    def events(self, name: str | None = None) -> list[dict]:
        async def drain():
            out = []
            while True:
                try:
                    message = await asyncio.wait_for(self.layer.receive(self.channel), 0.1)
                except TimeoutError:
                    return out
                out.append(json.loads(message["json"]))
        return [e for e in async_to_sync(drain)() if name is None or e["event"] == name]


def changed(listener) -> list[tuple]:
    return [(e["data"]["change"], e["data"]["status"], e["data"]["previousStatus"])
            for e in listener.events("returns:changed")]



@contextmanager
def own_queries(expected: int):
    """The queries of the block, less the outbox's own (its row, in a transaction of its own when
    the save was in autocommit, and its relay pass after commit): what a Broadcast costs a save."""
    with CaptureQueriesContext(connection) as ctx:
        yield
    outbox_words = ("realtime_outbox", "advisory", "SAVEPOINT")
    mine = [q["sql"] for q in ctx.captured_queries
            if not any(w in q["sql"] for w in outbox_words) and q["sql"] not in ("BEGIN", "COMMIT")]
    assert len(mine) == expected, mine


@pytest.fixture
def ada(make_user):
    return make_user("ada")


@pytest.mark.django_db(transaction=True)
def test_create_update_delete_are_sent_after_commit_with_the_old_values(ada):
    listener = Listener("returns:all")
    with transaction.atomic():
        ret = Return.objects.create(customer=ada, reason="Too small")
        ret.status = Return.Status.APPROVED
        ret.save()
        assert listener.events() == []  # not before commit
    assert changed(listener) == [("create", "requested", None), ("update", "approved", "requested")]
    pk = ret.pk
    ret.delete()  # outside a transaction: sent once the delete is committed
    deleted = listener.events("returns:changed")
    assert [(e["data"]["change"], e["data"]["returnId"], e["data"]["previousStatus"]) for e in deleted] == [
        ("delete", str(pk), "approved")]


@pytest.mark.django_db(transaction=True)
def test_nothing_is_sent_on_rollback(ada):
    listener = Listener("returns:all")
    with pytest.raises(RuntimeError), transaction.atomic():
        ret = Return.objects.create(customer=ada, reason="Too small")
        ret.status = Return.Status.APPROVED
        ret.save()
        ret.delete()
        raise RuntimeError("rolled back")
    assert listener.events() == []
    assert not Return.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_change_of_an_unwatched_field_sends_nothing(ada, django_assert_num_queries):
    ret = Return.objects.create(customer=ada, reason="Too small")
    listener = Listener("returns:all")
    ret.note = "Called the customer"
    ret.save()  # status unchanged
    with own_queries(1):  # the UPDATE only: no look-up of old values for unwatched fields
        ret.save(update_fields=["note"])
    assert listener.events() == []
    ret.status = Return.Status.REFUNDED
    with own_queries(2):  # one SELECT of the watched fields (for both broadcasts), the UPDATE
        ret.save(update_fields=["status", "note"])
    got = listener.events()
    assert [(e["event"], e["data"]["status"], e["data"]["previousStatus"]) for e in got] == [
        ("returns:statusChanged", "refunded", "requested"), ("returns:changed", "refunded", "requested")]

@pytest.mark.django_db(transaction=True)
def test_old_values_come_from_the_database_not_from_a_stale_instance(ada):
    ret = Return.objects.create(customer=ada, reason="Too small")
    stale = Return.objects.get(pk=ret.pk)
    Return.objects.filter(pk=ret.pk).update(status=Return.Status.APPROVED)  # not covered: sends nothing
    listener = Listener("returns:all")
    assert listener.events() == []
    stale.status = Return.Status.REFUNDED
    stale.save()
    assert changed(listener) == [("update", "refunded", "approved")]


@pytest.mark.django_db(transaction=True)
def test_fixture_loads_send_nothing(ada, tmp_path):
    fixture = tmp_path / "returns.json"
    fixture.write_text(json.dumps([{"model": "returns.return", "pk": 900, "fields": {
        "customer": ada.pk, "status": "approved", "reason": "Fixture", "note": ""}}]))
    listener = Listener("returns:all", f"returns:customer:{ada.pk}")
    call_command("loaddata", str(fixture), verbosity=0)
    call_command("loaddata", str(fixture), verbosity=0)  # an update of the same row: raw too
    assert Return.objects.get(pk=900).status == "approved"
    assert listener.events() == []


@pytest.mark.django_db(transaction=True)
def test_rooms_are_a_function_of_the_instance(ada, make_user):
    bob = make_user("bob")
    own, other = Listener(f"returns:customer:{ada.pk}"), Listener(f"returns:customer:{bob.pk}")
    ret = Return.objects.create(customer=ada, reason="Too small")
    assert changed(own) == [("create", "requested", None)]
    assert other.events() == []
    ret.delete()
    assert [e["data"]["change"] for e in own.events("returns:changed")] == ["delete"]


@pytest.mark.django_db(transaction=True)
def test_when_and_on_filter_what_is_sent(ada):
    sent = []
    broadcast = Broadcast(Return, event="returns:refunded", on=["update"], fields=["status"],
                          when=lambda ret, change: ret.status == Return.Status.REFUNDED,
                          payload=lambda ret, change: {"returnId": str(ret.pk), "changed": sorted(change.changed)},
                          rooms=["returns:customer:{customer_id}"])
    try:
        listener = Listener(f"returns:customer:{ada.pk}")
        ret = Return.objects.create(customer=ada, reason="Too small")  # on=update only
        ret.status = Return.Status.APPROVED
        ret.save()  # when() is false
        ret.status = Return.Status.REFUNDED
        ret.save()
        sent = [e["data"] for e in listener.events("returns:refunded")]
    finally:
        broadcast.disconnect()
    assert sent == [{"returnId": str(ret.pk), "changed": ["status"]}]


def test_a_declaration_with_unknown_fields_or_kinds_fails_at_once():
    with pytest.raises(ValueError, match="has no field"):
        Broadcast(Return, event="x:y", fields=["colour"], payload=dict, rooms=["returns:all"])
    with pytest.raises(ValueError, match="on must name"):
        Broadcast(Return, event="x:y", on=["save"], payload=dict, rooms=["returns:all"])
    with pytest.raises(ValueError, match="has no 'shop_id'"):
        Broadcast(Return, event="x:y", payload=dict, rooms=["returns:shop:{shop_id}"])


# -- through real /ws/ sockets -----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_the_room_rule_is_enforced_on_subscribe_and_events_arrive(make_user, token, connect):
    ada = await db(make_user)("ada")
    bob = await db(make_user)("bob")
    staff = await db(make_user)("sam", perms=["returns.view_return"])
    ada_sock, bob_sock, staff_sock = [await connect(token(u)) for u in (ada, bob, staff)]

    await subscribe(ada_sock, "returnsByCustomer", {"customerId": ada.pk}, rooms=[f"returns:customer:{ada.pk}"])
    reply = await bob_sock.command("subscribe:returnsByCustomer", {"customerId": ada.pk})
    assert reply["data"]["refused"] == [{"room": f"returns:customer:{ada.pk}", "reason": "forbidden"}]
    reply = await bob_sock.command("subscribe:returnsByCustomer")  # returns:all needs returns.view_return
    assert reply["data"]["refused"] == [{"room": "returns:all", "reason": "forbidden"}]
    reply = await bob_sock.command("subscribe:returnsByCustomer", {"customerId": "not an id!"})
    assert reply["error"]["code"] == "validation_error"
    await subscribe(staff_sock, "returnsByCustomer", {"customerId": ada.pk}, rooms=[f"returns:customer:{ada.pk}"])
    await subscribe(staff_sock, "returnsByCustomer", rooms=["returns:all"])

    ret = await db(Return.objects.create)(customer=ada, reason="Too small")
    for sock in (ada_sock, staff_sock):
        frame = await sock.receive_event("returns:changed")
        assert frame["data"] == {"returnId": str(ret.pk), "change": "create", "status": "requested",
                                 "reason": "Too small", "previousStatus": None}
        assert validate_event(frame["event"], frame["type"], frame["data"]) == []
    assert await bob_sock.nothing()


@pytest.mark.django_db(transaction=True)
async def test_the_command_acks_with_its_result_and_the_broadcasts_follow(make_user, token, connect):
    ada = await db(make_user)("ada")
    clerk = await db(make_user)("clerk", perms=["returns.view_return", "returns.change_return"])
    ret = await db(Return.objects.create)(customer=ada, reason="Too small")
    ada_sock, clerk_sock = await connect(token(ada)), await connect(token(clerk))
    await subscribe(ada_sock, "returnsByCustomer", {"customerId": str(ada.pk)})

    denied = await ada_sock.command("returns:accept", {"returnId": ret.pk})
    assert denied["error"]["code"] == "permission_denied"
    missing = await clerk_sock.command("returns:accept", {"returnId": 999999})
    assert missing["error"]["code"] == "not_found"
    invalid = await clerk_sock.command("returns:accept", {"returnId": ret.pk, "extra": 1})
    assert invalid["error"]["code"] == "validation_error"
    await clerk_sock.send("returns:accept", {"returnId": "x y"})  # no ack: the error event
    assert (await clerk_sock.receive_event("returns:acceptError"))["code"] == "validation_error"

    reply = await clerk_sock.command("returns:accept", {"returnId": ret.pk})
    assert reply["data"] == {"returnId": str(ret.pk), "status": "approved"}
    frame = await ada_sock.receive_event("returns:changed")
    assert (frame["data"]["change"], frame["data"]["previousStatus"]) == ("update", "requested")
    await clerk_sock.send("returns:accept", {"returnId": ret.pk})  # no ack: the result event
    assert (await clerk_sock.receive_event("returns:accepted"))["data"]["status"] == "approved"


# -- the contract and the docs ------------------------------------------------------------------


def test_declared_broadcasts_are_in_the_asyncapi_contract():
    document = asyncapi.document()
    messages = document["components"]["messages"]
    changed_message = messages[asyncapi.key("returns:changed")]
    data = changed_message["payload"]["properties"]["data"]
    assert set(data["required"]) == {"returnId", "change", "status", "reason", "previousStatus"}
    assert "returns:statusChanged" in {m.get("name") for m in messages.values()}
    assert {"room_returns.all", "room_returns.customer"} <= set(document["channels"])
    customer_room = document["channels"]["room_returns.customer"]
    assert customer_room["x-join-rule"] == "The customer themselves, or staff who may view returns."
    assert "Joined with subscribe:returnsByCustomer." in customer_room["description"]
    assert not [p for p in asyncapi.problems() if "returns" in p]
    assert validate_event("returns:changed", None, {"returnId": 1}) != []  # an int id, missing keys


def tutorial_block() -> str:
    text = (ROOT / "docs/extending.md").read_text()
    return re.search(r"<!-- tutorial: start -->\n```python\n(.*?)```", text, re.S).group(1)


def test_the_tutorial_code_is_the_test_apps_code():
    source = (ROOT / "tests/broadcast_app/apps.py").read_text()
    ready = re.search(r"# -- tutorial: start\n(.*?)        # -- tutorial: end", source, re.S).group(1)
    documented = tutorial_block()
    assert documented.strip().endswith(ready.strip())
    lines = [line for line in documented.splitlines() if line.strip() and not line.strip().startswith("#")]
    assert len(lines) < 20, lines


@pytest.mark.django_db(transaction=True)
async def test_the_tutorial_works_as_written(make_user, token, connect):
    staff = await db(make_user)("sam", perms=["returns.view_return"])
    ada = await db(make_user)("ada")
    staff_sock, ada_sock = await connect(token(staff)), await connect(token(ada))
    await subscribe(staff_sock, "returns", rooms=["returns:all"])
    refused = await ada_sock.command("subscribe:returns")
    assert refused["data"]["refused"] == [{"room": "returns:all", "reason": "forbidden"}]

    def approve():
        ret = Return.objects.create(customer=ada, reason="Too small")  # on=["update"]: nothing
        ret.status = "approved"
        ret.save()
        return ret
    ret = await db(approve)()
    frames = [f for f in await pending(staff_sock) if f["event"] == "returns:statusChanged"]
    assert [f["data"] for f in frames] == [
        {"returnId": str(ret.pk), "status": "approved", "previousStatus": "requested"}]
    assert await ada_sock.nothing()


# -- the ported app: notifications' product activity -------------------------------------------


@pytest.mark.django_db
def test_a_broadcast_event_is_checked_against_the_contract_as_the_declaring_apps(
        monkeypatch, published_events_match_contract, django_capture_on_commit_callbacks):
    from inventory.models import Product
    from notifications import events

    real = events.product_payload
    monkeypatch.setattr(events, "product_payload", lambda product, created: {**real(product, created), "x": 1})
    with django_capture_on_commit_callbacks(execute=True):
        Product.objects.create(title="Wool Coat", handle="wool-coat")  # saved by test code
    violations = list(published_events_match_contract.violations)
    published_events_match_contract.violations.clear()  # expected here
    assert violations and all(v.endswith("(published by notifications.apps)") for v in violations), violations


def test_the_worked_app_on_the_docs_page_is_the_test_apps_code():
    text = (ROOT / "docs/extending.md").read_text()
    live = (ROOT / "tests/broadcast_app/live.py").read_text()
    models = (ROOT / "tests/broadcast_app/models.py").read_text().split("\n", 1)[1]
    assert f"```python\n# returns/live.py\n{live}```" in text
    assert f"```python\n# returns/models.py\n{models}```" in text


@pytest.mark.django_db(transaction=True)
def test_without_watched_fields_every_save_sends_and_nothing_is_looked_up(make_user, django_assert_num_queries):
    from inventory.models import Product

    staff = Listener("staff")
    product = Product.objects.create(title="Wool Coat", handle="wool-coat")
    product.vendor = "Oda"
    with own_queries(1):  # the UPDATE only
        product.save()
    got = [(e["type"], e["data"]["action"]) for e in staff.events("notification")]
    assert got == [("user:activity", "product_created"), ("user:activity", "product_updated")]


@pytest.mark.django_db(transaction=True)
def test_a_watched_foreign_key_is_compared_by_id_without_loading_it(ada, make_user, django_assert_num_queries):
    bob = make_user("bob")
    ret = Return.objects.create(customer=ada, reason="Too small")
    seen = []
    broadcast = Broadcast(Return, event="returns:moved", on=["update"], fields=["customer"],
                          payload=lambda r, change: seen.append(dict(change.old)) or {},
                          rooms=["returns:customer:{customer_id}"])
    try:
        listener = Listener(f"returns:customer:{bob.pk}")
        ret = Return.objects.get(pk=ret.pk)
        ret.reason = "Too big"
        with django_assert_num_queries(2):  # SELECT of the old values, UPDATE: the customer is not loaded
            ret.save()
        ret.customer_id = bob.pk
        ret.save(update_fields=["customer_id"])
    finally:
        broadcast.disconnect()
    assert seen == [{"customer": ada.pk}]
    assert [e["event"] for e in listener.events()] == ["returns:moved"]
