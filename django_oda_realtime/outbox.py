"""The transactional outbox: events written with the change that caused them, then relayed.

``publish()`` stores each event (its encoded envelope and id) in ``realtime_outbox`` inside the
caller's transaction (autocommit: a transaction of its own). After commit the committing process
publishes its rows at once (``OUTBOX_SEND_ON_COMMIT``, the fast path); the relay (``relay_once``,
run by ``manage.py realtime_worker`` and by a thread of each server process, one relaying at a
time: ``outbox_relay``) publishes whatever is left: rows of a process that died after commit,
rows that failed while Redis was down. A pass sends its deployment's rows (channel-layer prefix);
a relay also takes over another deployment's rows left without a relay (``OUTBOX_ORPHAN_AFTER``).
Either way rows go out in commit order, one sender at a time, with the stored event id, so a
retry is a duplicate the hubs drop, never a second event. docs/design.md#outbox.
"""
from datetime import UTC, datetime, timedelta
import hashlib
import logging
import threading
import time

from asgiref.sync import async_to_sync
from django.core.signals import setting_changed
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.db.models import Count, F, Min, Q

from . import metrics
from .conf import rt_settings
from .events import Event

__all__ = ["deployment", "lock_key", "measure", "prune", "relay_once", "send_after_commit", "send_now", "store"]

logger = logging.getLogger("realtime.outbox")
publish_logger = logging.getLogger("realtime.publish")

COMMIT_ORDER_KEY = 0x6F64615F6F627831  # the commit-order lock of migration 0002_outbox
RELAY_KEY = 0x6F64615F6F627832  # one sender at a time across processes (PostgreSQL)
CHANNEL = "realtime_outbox"  # NOTIFY channel of migration 0002_outbox

_local_lock = threading.Lock()  # SQLite: one sender at a time in this process
_health = {"down_since": None, "up_since": None, "probed": 0.0}
_measured = [0.0]


def deployment() -> str | None:
    """The channel-layer prefix of this process, which a row is stored with and relayed through:
    None on a layer without one (in memory, one process)."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if not type(layer).__module__.startswith("channels_redis."):
        return None
    from .history_redis import layer_hosts

    return layer_hosts(layer)[1]


def lock_key(base: int, deployment: str | None) -> int:
    """The advisory lock ``base`` (``RELAY_KEY``, ``outbox_relay.LEADER_KEY``) of one deployment:
    each deployment on a database has its own sender lock and elects its own relay (its rows are
    its own); ``base`` itself without a deployment."""
    if deployment is None:
        return base
    return int.from_bytes(hashlib.sha256(f"{base:x}:{deployment}".encode()).digest()[:8], "big", signed=True)


def _relayable(mine: str | None, adopted: list[str] = (), cutoff: datetime | None = None) -> Q:
    """The rows a pass of deployment ``mine`` sends: its own and those stored without a deployment
    (before migration 0003, or on a layer without a prefix), and the rows of the ``adopted``
    deployments created before ``cutoff`` (orphans, ``_Adopted``). A process without a prefix (in
    memory) sends only rows without one: another deployment's would be lost in its layer
    (docs/design.md#outbox, "One database, one deployment")."""
    unprefixed = Q(deployment__isnull=True) | Q(deployment="")
    if mine is None:
        return unprefixed
    relayable = Q(deployment=mine) | unprefixed
    if adopted:
        relayable |= Q(deployment__in=adopted, created_at__lt=cutoff)
    return relayable


def store(event: Event, using: str | None = None) -> bool:
    """Write ``event`` to the outbox in the current transaction; False (logged) if it could not be."""
    from .models import OutboxEvent

    try:
        OutboxEvent.objects.using(using or DEFAULT_DB_ALIAS).bulk_create([OutboxEvent(
            event=event.name, event_id=event.id, rooms=list(event.rooms), envelope=event.json,
            created_at=datetime.fromtimestamp(event.published_at, UTC), deployment=deployment(),
        )])
    except Exception as e:  # noqa: BLE001  publish() never raises: it sends without the outbox
        logger.error("Storing %s in the outbox failed (%s); sending it directly", event.name, type(e).__name__)
        return False
    return True


def send_now(using: str | None = None, events: list[Event] = ()) -> None:
    """The fast path, right after commit: relay what is pending, if no other sender is at it.

    Each of ``events`` (this transaction's) not sent now is logged and counted as a publish
    failure, as before the outbox; its row stays for the relay."""
    if not rt_settings.OUTBOX_SEND_ON_COMMIT:
        return
    try:
        sent, reason, counted = _relay(using or DEFAULT_DB_ALIAS, None, fast=True)
    except Exception as e:  # noqa: BLE001  the relay publishes it later
        sent, reason, counted = {}, type(e).__name__, None
        logger.warning("Relaying the outbox after commit failed (%s)", reason)
    for event in events:
        if event.id in sent:
            event.position = sent[event.id]  # what publish() returned now carries it, as without the outbox
    unsent = [event for event in events if event.id not in sent]
    if reason and unsent:
        for event in _still_stored(using or DEFAULT_DB_ALIAS, unsent):
            if event.id != counted:  # the send that failed counted its own
                metrics.PUBLISH_FAILURES.labels(event.name).inc()
            publish_logger.error("Publishing %s failed: %s; the outbox relay sends it later", event.name, reason)


def _still_stored(alias: str, events: list[Event]) -> list[Event]:
    """``events`` whose rows committed: not those of a savepoint rolled back after the transaction's
    first publish (its callback had them already). Only on the failure path: one query."""
    from .models import OutboxEvent

    try:
        stored = set(OutboxEvent.objects.using(alias).filter(event_id__in=[e.id for e in events])
                     .values_list("event_id", flat=True))
    except DatabaseError:
        return events  # unknown: report them all
    return [event for event in events if event.id in stored]


class _AfterCommit:
    """The one fast-path callback of a transaction, with the events it published."""

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self.events: list[Event] = []

    def __call__(self) -> None:
        send_now(self.alias, self.events)


def send_after_commit(event: Event, using: str | None = None) -> None:
    """Run the fast path once after the current transaction commits (one callback per transaction)."""
    alias = using or DEFAULT_DB_ALIAS
    for entry in connections[alias].run_on_commit:
        if isinstance(entry[1], _AfterCommit):
            entry[1].events.append(event)
            return
    callback = _AfterCommit(alias)
    callback.events.append(event)
    transaction.on_commit(callback, using=alias, robust=True)


class _Lock:
    """One sender at a time: a session advisory lock on PostgreSQL, a process lock otherwise."""

    def __init__(self, alias: str, mine: str | None) -> None:
        self.conn = connections[alias]
        self.key = lock_key(RELAY_KEY, mine)
        self.got = False

    def __enter__(self) -> bool:
        if self.conn.vendor == "postgresql":
            with self.conn.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [self.key])
                self.got = cursor.fetchone()[0]
        else:
            self.got = _local_lock.acquire(blocking=False)
        return self.got

    def __exit__(self, *exc) -> None:
        if not self.got:
            return
        if self.conn.vendor == "postgresql":
            with self.conn.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [self.key])
        else:
            _local_lock.release()


def relay_once(using: str | None = None, *, limit: int | None = None) -> int:
    """Publish committed, unpublished rows in commit order; returns how many were published.

    Stops at the first row the channel layer refuses (so order per room holds) and waits for the
    layer to answer again for ``OUTBOX_RESUME_DELAY`` before the next try. Also the test helper:
    call it to relay synchronously.
    """
    return len(_relay(using or DEFAULT_DB_ALIAS, limit, fast=False)[0])


def _relay(alias: str, limit: int | None, *, fast: bool) -> tuple[dict[str, str | None], str, str | None]:
    """One pass: ({id: history position} of the events sent, why the pass stopped short: "" if it
    did not, the id of the event whose send failed: ``publish._send`` counted that failure)."""
    from .models import OutboxEvent

    if not _layer_ready(fast):
        return {}, "channel layer unavailable", None
    rows = []
    sent: list[tuple[int, str | None]] = []
    mine = deployment()
    with _Lock(alias, mine) as got, _Adopted(alias, mine if got and not fast else None) as adopted:
        if not got:
            return {}, "", None  # another sender is at it
        rows = list(
            OutboxEvent.objects.using(alias)
            .filter(_relayable(mine, adopted.deployments, adopted.cutoff), published_at__isnull=True)
            .order_by(F("seq").asc(nulls_last=True), "id")
            .values_list("id", "event", "event_id", "rooms", "envelope", "created_at")
            [: limit or rt_settings.OUTBOX_BATCH]
        )
        if rows:
            sent = async_to_sync(_send_in_order)(rows)
        if sent:
            now = datetime.now(UTC)
            OutboxEvent.objects.using(alias).filter(id__in=[ident for ident, _ in sent]).update(published_at=now)
            created = {row[0]: row[5] for row in rows}
            for ident, _ in sent:
                metrics.OUTBOX_LAG.observe(max(0.0, (now - created[ident]).total_seconds()))
    event_ids = {row[2]: position for row, (_, position) in zip(rows, sent)}
    if len(sent) < len(rows):
        _health["down_since"] = _health["down_since"] or time.monotonic()
        _health["up_since"] = None
        return event_ids, "channel layer failed", rows[len(sent)][2]
    return event_ids, "", None


class _Adopted:
    """The other deployments whose orphaned rows a relay pass of deployment ``mine`` sends too
    (docs/design.md#outbox, "Orphaned rows"): those with an unpublished row created more than
    ``OUTBOX_ORPHAN_AFTER`` seconds ago and no relay of their own (nobody holds their leader lock,
    ``outbox_relay.LEADER_KEY``): a rollout that changed the prefix left them behind. On PostgreSQL
    the pass holds each one's sender and leader locks, so none of its processes sends or starts
    relaying meanwhile. None for ``mine`` (a fast path, a process without a prefix): no query."""

    MAX = 20  # deployments adopted per pass

    def __init__(self, alias: str, mine: str | None) -> None:
        self.conn = connections[alias]
        self.alias = alias
        self.mine = mine
        self.deployments: list[str] = []
        self.cutoff: datetime | None = None
        self.held: list[int] = []

    def __enter__(self) -> "_Adopted":
        from .models import OutboxEvent
        from .outbox_relay import LEADER_KEY

        if self.mine is None:
            return self
        self.cutoff = datetime.now(UTC) - timedelta(seconds=rt_settings.OUTBOX_ORPHAN_AFTER)
        candidates = list(
            OutboxEvent.objects.using(self.alias)
            .filter(published_at__isnull=True, created_at__lt=self.cutoff, deployment__gt="")
            .exclude(deployment=self.mine).values_list("deployment", flat=True).distinct()[: self.MAX]
        )
        if self.conn.vendor != "postgresql":
            self.deployments = candidates  # one process is assumed: nobody else relays
            return self
        for theirs in candidates:
            keys = [lock_key(RELAY_KEY, theirs), lock_key(LEADER_KEY, theirs)]
            with self.conn.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s), pg_try_advisory_lock(%s)", keys)
                got = [key for key, ok in zip(keys, cursor.fetchone()) if ok]
            if len(got) == len(keys):
                self.held += got
                self.deployments.append(theirs)
            else:
                self._unlock(got)  # it has a relay, or a sender at work: its rows are its own
        return self

    def __exit__(self, *exc) -> None:
        held, self.held = self.held, []
        self._unlock(held)

    def _unlock(self, keys: list[int]) -> None:
        if keys:
            with self.conn.cursor() as cursor:
                cursor.execute("SELECT " + ", ".join(["pg_advisory_unlock(%s)"] * len(keys)), keys)


async def _send_in_order(rows) -> list[tuple[int, str | None]]:
    """(row id, history position) of each row sent, in order, up to the first the layer refuses."""
    from .publish import _send

    sent = []
    for ident, name, event_id, rooms, envelope, created_at in rows:
        event = Event(name, event_id, tuple(rooms), envelope, created_at.timestamp())
        if not await _send(event):
            break
        sent.append((ident, event.position))
    return sent


def _layer_ready(fast: bool) -> bool:
    """True unless the layer failed lately and has not answered for ``OUTBOX_RESUME_DELAY`` since."""
    if _health["down_since"] is None:
        return True
    now = time.monotonic()
    if fast and now - _health["probed"] < 1.0:
        return False  # a request does not pay for a probe more than once a second
    _health["probed"] = now
    from .publish import _layer_answers

    if not async_to_sync(_layer_answers)():
        _health["up_since"] = None
        return False
    _health["up_since"] = _health["up_since"] or now
    if now - _health["up_since"] < rt_settings.OUTBOX_RESUME_DELAY:
        return False
    logger.warning("Channel layer answers again: relaying the outbox backlog")
    _health["down_since"] = _health["up_since"] = None
    return True


def relay_job() -> int:
    """The worker job ``realtime.outbox``: one relay pass, and the metrics at most once a second.

    A database error (down, restarting, hung past its timeout) is logged once, by type only (its
    text may quote values), and the pass retried at the next turn."""
    try:
        done = relay_once()
        if time.monotonic() - _measured[0] >= 1.0:
            _measured[0] = time.monotonic()
            measure()
    except DatabaseError as e:
        if not _db_failing[0]:
            logger.warning("Outbox relay: database error (%s); retrying", type(e).__name__)
        _db_failing[0] = True
        connections[DEFAULT_DB_ALIAS].close()
        return 0
    if _db_failing[0]:
        logger.warning("Outbox relay: the database answers again")
        _db_failing[0] = False
    return done


_db_failing = [False]


def _settings_changed(*, setting: str, **kwargs) -> None:
    """Another channel layer (tests): forget what the old one did."""
    if setting in ("CHANNEL_LAYERS", "REALTIME"):
        _health.update(down_since=None, up_since=None, probed=0.0)


setting_changed.connect(_settings_changed)


def measure(using: str | None = None) -> dict:
    """Set the backlog metrics (rows not yet published, of every deployment on the database: orphans
    show; age of the oldest) and return them."""
    from .models import OutboxEvent

    agg = OutboxEvent.objects.using(using or DEFAULT_DB_ALIAS).filter(published_at__isnull=True).aggregate(
        backlog=Count("id"), oldest=Min("created_at"))
    age = (datetime.now(UTC) - agg["oldest"]).total_seconds() if agg["oldest"] else 0.0
    metrics.OUTBOX_BACKLOG.set(agg["backlog"])
    metrics.OUTBOX_OLDEST_AGE.set(max(0.0, age))
    return {"backlog": agg["backlog"], "oldest_age": age}


def prune(using: str | None = None) -> int:
    """Delete rows published more than ``OUTBOX_RETENTION`` seconds ago (worker job ``realtime.outbox.prune``)."""
    from .models import OutboxEvent

    cutoff = datetime.now(UTC) - timedelta(seconds=rt_settings.OUTBOX_RETENTION)
    deleted, _ = OutboxEvent.objects.using(using or DEFAULT_DB_ALIAS).filter(published_at__lt=cutoff).delete()
    return deleted


def prune_job() -> int:
    """The worker job ``realtime.outbox.prune``; a database error is logged by type and retried next turn."""
    try:
        return prune()
    except DatabaseError as e:
        logger.warning("Outbox pruning: database error (%s); retrying later", type(e).__name__)
        connections[DEFAULT_DB_ALIAS].close()
        return 0

