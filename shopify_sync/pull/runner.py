"""``run_pull(resource)``: one pull sync job, resumable (docs/shopify.md, "Pull sync").

A job reads Shopify either with a bulk operation (large catalogues: the JSONL result streamed
line by line) or page by page with cursors, and writes batches. Each batch is one transaction
together with the job's ``SyncCheckpoint`` (cursor, or JSONL line and byte offsets) and counts:
after a crash, a kill or an error, running the same resource again continues that job from
its last committed batch (same bulk operation, ``Range`` download from the byte offset).
Progress events come from ``progress.SyncRun``: real counts of top-level records written.
"""
from collections.abc import Callable, Iterator
from dataclasses import dataclass
import json
import logging
import os
import socket
import threading
import zlib

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from .. import progress
from ..admin_api import AdminClient, BulkOperationError
from ..admin_api import bulk as bulk_ops
from ..models import SyncCheckpoint, SyncJob
from . import records as r
from .specs import SPECS, Spec
from .writers import WRITERS, Record, Result

logger = logging.getLogger("shopify_sync.pull")

BATCH_SIZE = 1000        # JSONL lines per transaction (bulk mode)
BULK_THRESHOLD = 2500    # "auto": a bulk operation from this many top-level records up
POLL_INTERVAL = 1.0     # seconds between polls of a running bulk operation (1 cost point each)
STALE_AFTER = 300        # seconds without a heartbeat before another host's running job is taken over
UNFINISHED = (SyncJob.Status.RUNNING, SyncJob.Status.FAILED, SyncJob.Status.PENDING)


class SyncAlreadyRunning(Exception):
    """Another live process is running a job of this resource."""


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


_active: set[int] = set()  # jobs running in this process (the admin action runs them in threads)
_active_lock = threading.Lock()


def _owner_alive(job: SyncJob, checkpoint: SyncCheckpoint) -> bool:
    if checkpoint.owner == owner_id():
        with _active_lock:
            return job.pk in _active
    host, _, pid = checkpoint.owner.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    beat = checkpoint.heartbeat_at
    return bool(checkpoint.owner) and beat is not None and (timezone.now() - beat).total_seconds() < STALE_AFTER


def _lock(resource: str) -> None:
    """One claim at a time per resource (PostgreSQL; SQLite serialises writers anyway)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [zlib.crc32(f"shopify_sync.pull.{resource}".encode())])


def _claim(resource: str, restart: bool) -> tuple[progress.SyncRun, SyncCheckpoint]:
    """The resource's unfinished job resumed (unless ``restart``), or a new job; claimed for this process."""
    with transaction.atomic():
        _lock(resource)
        job = (SyncJob.objects.select_for_update().filter(resource=resource, status__in=UNFINISHED,
                                                           checkpoint__isnull=False).order_by("-created_at").first())
        checkpoint = SyncCheckpoint.objects.select_for_update().get(job=job) if job else None
        if job and job.status == SyncJob.Status.RUNNING and _owner_alive(job, checkpoint):
            raise SyncAlreadyRunning(f"A {resource} sync is already running (job #{job.pk}, {checkpoint.owner})")
        if job and restart:
            job.status, job.finished_at = SyncJob.Status.FAILED, timezone.now()
            job.errors = [*job.errors, "abandoned: restarted"][-progress.MAX_ERRORS:]
            job.save(update_fields=["status", "finished_at", "errors", "updated_at"])
            job = None
        if job:
            logger.info("Resuming %s sync job #%s (%s)", resource, job.pk, checkpoint.mode or "not started")
            checkpoint.owner, checkpoint.heartbeat_at = owner_id(), timezone.now()
            checkpoint.save(update_fields=["owner", "heartbeat_at"])
            run = progress.SyncRun.resume(job)  # its status event goes out on commit
        else:
            run = progress.SyncRun(resource).start()
            checkpoint = SyncCheckpoint.objects.create(job=run.job, owner=owner_id(), heartbeat_at=timezone.now())
        with _active_lock:
            _active.add(run.job.pk)
    return run, checkpoint


@dataclass
class Batch:
    records: list[Record]
    bad: list[str]  # lines or nodes that could not be parsed


def _record(data: object) -> Record:
    if not isinstance(data, dict):
        raise r.BadRecord("not a JSON object")
    kind, sid = r.parse_gid(data.get("id"))
    parent = r.shopify_id(data["__parentId"]) if data.get("__parentId") else None
    return Record(kind, sid, data, parent)


class PullJob:
    """One run of a job: reading from Shopify, writing batches, keeping the checkpoint."""

    def __init__(self, run: progress.SyncRun, checkpoint: SyncCheckpoint, spec: Spec, client: AdminClient,
                 batch_size: int, sleep: Callable[[float], None]) -> None:
        self.run, self.checkpoint, self.spec, self.client = run, checkpoint, spec, client
        self.batch_size, self.sleep = batch_size, sleep
        self.write = WRITERS[spec.resource]

    # --- writing --------------------------------------------------------------------------

    def commit(self, batch: Batch, **position) -> None:
        """Write ``batch`` and move the checkpoint to ``position``, in one transaction."""
        job = self.run.job
        with transaction.atomic():
            result = self._write(batch)
            for name, value in position.items():
                setattr(self.checkpoint, name, value)
            self.checkpoint.heartbeat_at = timezone.now()
            self.checkpoint.save()
            SyncJob.objects.filter(pk=job.pk).update(processed=F("processed") + result.processed,
                                                     failed=F("failed") + result.failed, updated_at=timezone.now())
        for error in result.errors[:-1]:
            self.run.add_error(error)
        self.run.advance(result.processed, failed=result.failed, error=(result.errors or [None])[-1])

    def _write(self, batch: Batch) -> Result:
        job_id = self.run.job.pk
        try:
            with transaction.atomic():
                result = self.write(batch.records, job_id)
        except IntegrityError:
            # A row the bulk statement could not take (e.g. two Shopify products swapping handles):
            # write each top-level record with its children alone; the failing ones are counted.
            result = Result()
            for group in _groups(batch.records):
                try:
                    with transaction.atomic():
                        part = self.write(group, job_id)
                except IntegrityError as e:
                    part = Result(processed=sum(1 for x in group if x.parent is None))  # read, not stored
                    for record in group:
                        part.fail(record, f"not stored: {str(e).splitlines()[0][:200]}")
                result.processed += part.processed
                result.failed += part.failed
                result.errors += part.errors
        result.failed += len(batch.bad)
        result.errors += batch.bad
        return result

    # --- bulk ---------------------------------------------------------------------------------

    def bulk(self) -> None:
        cp = self.checkpoint
        if not cp.bulk_url:
            if not cp.bulk_operation_id:
                cp.bulk_operation_id = bulk_ops.start(self.client, self.spec.bulk_query())
                cp.save(update_fields=["bulk_operation_id"])
            done = bulk_ops.wait(self.client, cp.bulk_operation_id, interval=POLL_INTERVAL, max_interval=POLL_INTERVAL,
                                 sleep=self.sleep, on_poll=self._beat)
            if done.status != "COMPLETED":
                cp.bulk_operation_id = ""  # the next run starts a new operation
                cp.save(update_fields=["bulk_operation_id"])
                raise BulkOperationError(f"Bulk operation ended {done.status}"
                                         + (f" ({done.error_code})" if done.error_code else ""))
            if not done.url:
                return  # no object at all: nothing to write
            cp.bulk_url = done.url
            cp.save(update_fields=["bulk_url"])
        lines, offset = 0, cp.byte_offset
        batch = Batch([], [])
        for line, end in self.client.stream_lines(cp.bulk_url, cp.byte_offset):
            lines += 1
            if line.strip():
                try:
                    batch.records.append(_record(json.loads(line)))
                except (ValueError, r.BadRecord) as e:
                    batch.bad.append(f"line {cp.line_offset + lines}: {str(e)[:200]}")
            offset = end
            if lines >= self.batch_size:
                self.commit(batch, line_offset=cp.line_offset + lines, byte_offset=offset)
                lines, batch = 0, Batch([], [])
        if lines:
            self.commit(batch, line_offset=cp.line_offset + lines, byte_offset=offset)

    def _beat(self, status: bulk_ops.BulkStatus) -> None:
        """Each poll while Shopify runs the operation: the heartbeat, and a progress event (nothing
        written yet, but watchers see the job is alive)."""
        SyncCheckpoint.objects.filter(pk=self.checkpoint.pk).update(heartbeat_at=timezone.now())
        self.run.advance(0)

    # --- pages --------------------------------------------------------------------------------

    def pages(self) -> None:
        spec, cp = self.spec, self.checkpoint
        while True:
            data = self.client.execute(spec.page_query(), {"first": spec.page_size, "after": cp.cursor or None})
            found = data.get(spec.root) or {}
            info = found.get("pageInfo") or {}
            batch = Batch([], [])
            for node in found.get("nodes") or []:
                self._flatten(node, batch)
            self.commit(batch, cursor=info.get("endCursor") or cp.cursor)
            if not info.get("hasNextPage"):
                return

    def _flatten(self, node: dict, batch: Batch) -> None:
        """A paged node as bulk would give it: the node, then its children with ``__parentId``."""
        children = node.pop(self.spec.child, None) if self.spec.child else None
        try:
            batch.records.append(_record(node))
        except r.BadRecord as e:
            batch.bad.append(str(e))
            return
        if children is None:
            return
        for child in self._children(node["id"], children):
            child["__parentId"] = node["id"]
            try:
                batch.records.append(_record(child))
            except r.BadRecord as e:
                batch.bad.append(str(e))

    def _children(self, parent_gid: str, page: dict) -> Iterator[dict]:
        while True:
            yield from page.get("nodes") or []
            info = page.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                return
            node = self.client.execute(self.spec.children_query(), {
                "id": parent_gid, "first": 100, "after": info.get("endCursor")}).get("node") or {}
            page = node.get(self.spec.child) or {}


def _groups(batch: list[Record]) -> list[list[Record]]:
    """The batch cut into top-level records each with its children (orphans alone)."""
    groups, index = [], {}
    for record in batch:
        if record.parent is not None and record.parent in index:
            groups[index[record.parent]].append(record)
        else:
            if record.parent is None:
                index[record.id] = len(groups)
            groups.append([record])
    return groups


def _count(client: AdminClient, spec: Spec) -> int | None:
    found = client.execute(spec.count_query()).get(spec.count) or {}
    count = found.get("count")
    return count if isinstance(count, int) else None


def run_pull(resource: str, *, mode: str = "auto", client: AdminClient | None = None, batch_size: int = BATCH_SIZE,
             restart: bool = False, sleep: Callable[[float], None] | None = None) -> SyncJob:
    """Sync ``resource`` from Shopify (resuming its unfinished job unless ``restart``); the finished job.

    ``mode``: ``bulk``, ``pages`` or ``auto`` (bulk from ``BULK_THRESHOLD`` records up). Raises
    the ``admin_api`` error that stopped the job, after marking the job failed with it.
    """
    if resource not in SPECS:
        raise ValueError(f"Unknown resource {resource!r}; one of {', '.join(SPECS)}")
    if mode not in ("auto", "bulk", "pages"):
        raise ValueError("mode is one of auto, bulk, pages")
    client = client or AdminClient.from_settings()  # a missing shop or token raises before any job
    sleep = sleep or client.sleep
    run, checkpoint = _claim(resource, restart)
    spec = SPECS[resource]
    pull = PullJob(run, checkpoint, spec, client, batch_size, sleep)
    try:
        if not checkpoint.mode:
            total = _count(client, spec)
            run.set_total(total)
            SyncJob.objects.filter(pk=run.job.pk).update(total=total)
            chosen = mode if mode != "auto" else ("bulk" if total is None or total >= BULK_THRESHOLD else "pages")
            checkpoint.mode = chosen
            checkpoint.save(update_fields=["mode"])
        if checkpoint.mode == SyncCheckpoint.Mode.BULK:
            pull.bulk()
        else:
            pull.pages()
    except BaseException as e:
        run.fail(e)
        raise
    else:
        run.finish()
    finally:
        with _active_lock:
            _active.discard(run.job.pk)
    return run.job
