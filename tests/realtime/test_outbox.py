"""The transactional outbox on PostgreSQL: rows in the caller's transaction, relayed in commit order
with their stored id (django_oda_realtime/outbox.py, docs/design.md#outbox)."""
from datetime import UTC, datetime, timedelta
import threading

from channels.db import database_sync_to_async
from channels.layers import channel_layers
from django.db import connection, connections, transaction
import pytest

from django_oda_realtime import outbox, outbox_relay
from django_oda_realtime.models import OutboxEvent
from django_oda_realtime.publish import publish

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.fixture
def relay_only(settings):
    """No fast path: only the relay publishes (as after a crash of the committing process)."""
    settings.REALTIME = {**settings.REALTIME, "OUTBOX_SEND_ON_COMMIT": False, "OUTBOX_RESUME_DELAY": 0.0}
    outbox._health.update(down_since=None, up_since=None, probed=0.0)
    yield
    outbox._health.update(down_since=None, up_since=None, probed=0.0)


async def subscriber(make_user, token, connect):
    user = await database_sync_to_async(make_user)(perms=["inventory.view_inventorylevel"])
    sock = await connect(token(user))
    await sock.command("subscribe:inventory", {})
    return sock


relay = database_sync_to_async(outbox.relay_once)


async def test_a_transaction_that_commits_late_is_relayed_after_the_one_that_committed_first(
        relay_only, make_user, token, connect):
    """T1 writes its event first (smaller id) but commits after T2: a relay tracking the highest id
    would skip T1's row; this one sends T2's, then T1's once it commits (commit order)."""
    sock = await subscriber(make_user, token, connect)
    t1_written, t1_may_commit = threading.Event(), threading.Event()

    def t1():
        try:
            with transaction.atomic():
                publish("inventory:updated", {"tx": "T1"}, ["inventory:all"])
                t1_written.set()
                assert t1_may_commit.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=t1)
    thread.start()
    assert await database_sync_to_async(t1_written.wait, thread_sensitive=False)(10)

    def t2():
        with transaction.atomic():
            publish("inventory:updated", {"tx": "T2"}, ["inventory:all"])

    await database_sync_to_async(t2)()
    assert await relay() == 1  # T2 only: T1 is not committed
    assert (await sock.receive_event("inventory:updated"))["data"] == {"tx": "T2"}
    t1_may_commit.set()
    await database_sync_to_async(thread.join, thread_sensitive=False)(10)
    assert await relay() == 1
    assert (await sock.receive_event("inventory:updated"))["data"] == {"tx": "T1"}
    rows = await database_sync_to_async(
        lambda: {r.envelope.split('"tx":"')[1][:2]: r for r in OutboxEvent.objects.all()})()
    assert rows["T1"].id < rows["T2"].id  # the late-commit case: id order is not commit order
    assert rows["T2"].seq < rows["T1"].seq  # the commit-order number is
    assert rows["T1"].published_at and rows["T2"].published_at
    assert await relay() == 0 and await sock.nothing(0.3)


async def test_the_committing_process_publishes_at_once_and_marks_its_row(make_user, token, connect):
    sock = await subscriber(make_user, token, connect)

    def change():
        with transaction.atomic():
            publish("inventory:updated", {"n": 1}, ["inventory:all"])
            publish("inventory:updated", {"n": 2}, ["inventory:all"])
            assert len(connection.run_on_commit) == 1  # one fast path per transaction

    await database_sync_to_async(change)()
    assert [(await sock.receive_event("inventory:updated"))["data"]["n"] for _ in range(2)] == [1, 2]
    assert await database_sync_to_async(OutboxEvent.objects.filter(published_at__isnull=True).count)() == 0
    assert await relay() == 0 and await sock.nothing(0.3)


async def test_a_rolled_back_transaction_leaves_no_row(relay_only):
    def change():
        with pytest.raises(RuntimeError), transaction.atomic():
            publish("inventory:updated", {}, ["inventory:all"])
            raise RuntimeError("roll back")

    await database_sync_to_async(change)()
    assert await database_sync_to_async(OutboxEvent.objects.count)() == 0


@pytest.mark.redis
async def test_a_failed_send_is_retried_with_the_same_event_id(relay_only, settings, redis_layer, layer_prefix,
                                                               make_user, token, connect):
    sock = await subscriber(make_user, token, connect)
    listening = channel_layers["default"]  # the layer the in-process hub listens on
    settings.CHANNEL_LAYERS = {"default": {  # the same deployment (prefix), its Redis unreachable
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:1/0", "socket_connect_timeout": 1}],
                   "prefix": layer_prefix},
    }}
    settings.REALTIME = {**settings.REALTIME, "PUBLISH_TIMEOUT": 1.0}
    channel_layers.backends.clear()
    event = await database_sync_to_async(publish)("inventory:updated", {"n": 7}, ["inventory:all"])
    assert await relay() == 0  # the layer is unreachable: the row stays
    row = await database_sync_to_async(OutboxEvent.objects.get)()
    assert row.published_at is None and row.event_id == event.id
    channel_layers.backends["default"] = listening  # the layer is back
    assert await relay() == 1
    frame = await sock.receive_event("inventory:updated")
    assert frame["id"] == event.id and frame["data"] == {"n": 7}


def test_one_sender_at_a_time(relay_only):
    publish("inventory:updated", {}, ["inventory:all"])
    other = connections.create_connection("default")
    with other.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [outbox.RELAY_KEY])
    try:
        assert outbox.relay_once() == 0  # another relay holds the lock
        with other.cursor() as cursor:  # (a closed connection's locks go when its backend exits: later)
            cursor.execute("SELECT pg_advisory_unlock(%s)", [outbox.RELAY_KEY])
    finally:
        other.close()
    assert outbox.relay_once() == 1


@pytest.mark.redis
def test_a_relay_of_another_deployment_on_the_same_database_leaves_the_rows_alone(relay_only, settings, redis_url,
                                                                                  layer_prefix):
    """Two deployments (channel-layer prefixes) on one database: a relay sends only its own
    deployment's rows, under its own sender lock; before, it sent the other's into its own prefix,
    where none of the other's clients listen (docs/design.md#outbox)."""
    first, second = f"{layer_prefix}a", f"{layer_prefix}b"

    def on(prefix):
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                                               "CONFIG": {"hosts": [redis_url], "prefix": prefix}}}
        channel_layers.backends.clear()

    on(first)
    mine = publish("inventory:updated", {"of": "first"}, ["inventory:all"])
    on(second)
    theirs = publish("inventory:updated", {"of": "second"}, ["inventory:all"])
    assert outbox.measure()["backlog"] == 2  # the gauge counts every deployment's rows
    assert outbox.relay_once() == 1
    assert OutboxEvent.objects.get(event_id=theirs.id).published_at is not None
    assert OutboxEvent.objects.get(event_id=mine.id).published_at is None
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:  # the second deployment's sender lock, held: not the first's
            cursor.execute("SELECT pg_advisory_lock(%s)", [outbox.lock_key(outbox.RELAY_KEY, second)])
        on(first)
        assert outbox.relay_once() == 1
    finally:
        other.close()
    assert OutboxEvent.objects.get(event_id=mine.id).published_at is not None


def stored_by(event, prefix: str, age: float = 0.0) -> None:
    """Make ``event``'s row one another deployment (channel-layer ``prefix``) stored ``age`` seconds ago."""
    OutboxEvent.objects.filter(event_id=event.id).update(
        deployment=prefix, created_at=datetime.now(UTC) - timedelta(seconds=age))


def published(event) -> bool:
    return OutboxEvent.objects.get(event_id=event.id).published_at is not None


def test_a_process_without_a_prefix_sends_no_other_deployments_rows(relay_only, settings):
    """The in-memory layer (a shell or cron job without REDIS_URL): its relay and fast path send only
    rows stored without a prefix, never a deployment's (they would be lost in its own layer), not
    even orphans; before, it selected every row (docs/design.md#outbox)."""
    assert outbox.deployment() is None
    theirs = publish("inventory:updated", {"of": "theirs"}, ["inventory:all"])
    stored_by(theirs, "rtdeployment01", age=3600)
    mine = publish("inventory:updated", {"of": "mine"}, ["inventory:all"])
    assert outbox.relay_once() == 1
    assert published(mine) and not published(theirs)
    settings.REALTIME = {**settings.REALTIME, "OUTBOX_SEND_ON_COMMIT": True}
    assert published(publish("inventory:updated", {"of": "mine"}, ["inventory:all"]))  # the fast path
    assert not published(theirs)


async def test_a_relay_sends_the_old_rows_of_a_deployment_left_without_a_relay(
        relay_only, redis_layer, layer_prefix, make_user, token, connect):
    """A rollout changed the prefix (Redis database, REDIS_PREFIX, database host): rows of the old
    one, older than OUTBOX_ORPHAN_AFTER, are sent by this deployment's relay, in commit order, once
    no process of the old one relays (holds its leader lock); its fresh rows are left alone. Before,
    nobody ever sent them (docs/design.md#outbox, "Orphaned rows")."""
    sock = await subscriber(make_user, token, connect)
    stale = f"{layer_prefix}old"
    write = database_sync_to_async(lambda n: publish("inventory:updated", {"n": n}, ["inventory:all"]))
    orphan, fresh = await write(1), await write(2)
    await database_sync_to_async(stored_by)(orphan, stale, age=120)
    await database_sync_to_async(stored_by)(fresh, stale)
    own = await write(3)

    def with_their_relay_alive() -> int:
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_lock(%s)", [outbox.lock_key(outbox_relay.LEADER_KEY, stale)])
            return outbox.relay_once()
        finally:
            other.close()

    assert await database_sync_to_async(with_their_relay_alive)() == 1  # its own row only
    assert (await sock.receive_event("inventory:updated", timeout=10))["data"] == {"n": 3}
    later = await write(4)
    assert await relay() == 2
    assert [(await sock.receive_event("inventory:updated", timeout=10))["data"]["n"] for _ in range(2)] == [1, 4]
    assert await sock.nothing(0.3)
    done = await database_sync_to_async(lambda: {e.id: published(e) for e in (orphan, fresh, own, later)})()
    assert done == {orphan.id: True, fresh.id: False, own.id: True, later.id: True}


def test_the_backlog_counts_every_deployments_rows(relay_only, redis_layer):
    """An operator sees rows no relay sends (another prefix's) in the gauges."""
    publish("inventory:updated", {}, ["inventory:all"])
    stored_by(publish("inventory:updated", {}, ["inventory:all"]), "rtelsewhere01", age=30)
    measured = outbox.measure()
    assert measured["backlog"] == 2 and measured["oldest_age"] >= 30


def test_backlog_metrics_and_pruning(relay_only, settings):
    from django_oda_realtime import metrics

    publish("inventory:updated", {}, ["inventory:all"])
    publish("inventory:updated", {}, ["inventory:all"])
    OutboxEvent.objects.update(created_at=datetime.now(UTC) - timedelta(seconds=30))
    measured = outbox.measure()
    assert measured["backlog"] == 2 and measured["oldest_age"] >= 30
    assert metrics.OUTBOX_BACKLOG._value.get() == 2
    assert outbox.relay_once() == 2
    assert outbox.measure()["backlog"] == 0
    assert outbox.prune() == 0  # published just now: kept for OUTBOX_RETENTION
    OutboxEvent.objects.update(published_at=datetime.now(UTC) - timedelta(seconds=settings.REALTIME.get(
        "OUTBOX_RETENTION", 86400) + 1))
    assert outbox.prune() == 2
    assert OutboxEvent.objects.count() == 0


def test_outside_a_transaction_the_row_is_its_own_transaction_and_sent_at_once():
    publish("inventory:updated", {}, ["inventory:all"])
    row = OutboxEvent.objects.get()
    assert row.seq is not None and row.published_at is not None


def test_the_worker_registers_the_relay_and_pruning():
    from django_oda_realtime import worker

    assert {"realtime.outbox", "realtime.outbox.prune"} <= set(worker.registered())


def test_the_relay_is_woken_by_the_commit_on_postgresql(relay_only):
    """The commit trigger NOTIFYs: a relay waiting up to 60 s wakes when a row commits."""
    wait = outbox_relay.Leader("default")
    assert wait.lead()  # takes the leader lock and LISTENs
    woke = threading.Event()
    waiting = threading.Thread(target=lambda: (wait(60), woke.set()), daemon=True)
    waiting.start()
    try:
        with transaction.atomic():
            publish("inventory:updated", {}, ["inventory:all"])
            assert not woke.wait(0.5)  # not before the commit
        assert woke.wait(10)
    finally:
        waiting.join(60)
        wait.close()


def passes(queries) -> int:
    """Relay passes among captured queries (each takes the relay's advisory lock once)."""
    return sum("pg_try_advisory_lock" in q["sql"] for q in queries)


def outbox_writes(queries) -> int:
    return sum(q["sql"].startswith('INSERT INTO "realtime_outbox"') for q in queries)


def test_the_fast_path_runs_one_pass_per_transaction_that_stored_a_row_and_none_otherwise(settings):
    """A pass is 4 queries (lock, select, mark, unlock): only after a commit that stored a row."""
    from django.test.utils import CaptureQueriesContext

    def captured(fn) -> list:
        with CaptureQueriesContext(connection) as queries:
            fn()
        return queries.captured_queries

    def rolled_back():
        with transaction.atomic():
            try:
                with transaction.atomic():
                    publish("inventory:updated", {}, ["inventory:all"])
                    raise ValueError("rolled back")
            except ValueError:
                pass

    def two_in_one():
        with transaction.atomic():
            publish("inventory:updated", {"n": 1}, ["inventory:all"])
            publish("inventory:updated", {"n": 2}, ["inventory:all"])

    def no_event():
        with transaction.atomic():
            OutboxEvent.objects.filter(pk=-1).update(published_at=None)

    outside = captured(lambda: publish("inventory:updated", {}, ["inventory:all"]))
    statements = [q for q in outside if q["sql"] not in ("BEGIN", "COMMIT")]  # Django 5.2 records those too
    assert (outbox_writes(outside), passes(outside), len(statements)) == (1, 1, 5)
    undone = captured(rolled_back)
    assert (outbox_writes(undone), passes(undone)) == (1, 0)  # its row rolled back: nothing to send
    assert passes(captured(no_event)) == 0
    both = captured(two_in_one)
    assert (outbox_writes(both), passes(both)) == (2, 1)
    assert OutboxEvent.objects.filter(published_at__isnull=True).count() == 0
    settings.REALTIME = {**settings.REALTIME, "OUTBOX": False}
    assert captured(lambda: publish("inventory:updated", {}, ["inventory:all"])) == []


def test_a_send_failure_is_reported_for_committed_events_only(settings):
    """An event published in a savepoint rolled back after the transaction's first publish is not
    reported as a failed publish: it never existed."""
    from django_oda_realtime import metrics

    settings.CHANNEL_LAYERS = {"default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:1/0", "socket_connect_timeout": 1}]},
    }}
    settings.REALTIME = {**settings.REALTIME, "PUBLISH_TIMEOUT": 1.0}
    channel_layers.backends.clear()
    failures = metrics.PUBLISH_FAILURES.labels("inventory:updated")
    before = failures._value.get()
    try:
        with transaction.atomic():
            publish("inventory:updated", {"n": 1}, ["inventory:all"])
            try:
                with transaction.atomic():
                    publish("inventory:updated", {"n": 2}, ["inventory:all"])
                    raise ValueError("rolled back")
            except ValueError:
                pass
        assert failures._value.get() - before == 1
        assert OutboxEvent.objects.filter(published_at__isnull=True).count() == 1
    finally:
        outbox._health.update(down_since=None, up_since=None, probed=0.0)
