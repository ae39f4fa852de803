"""The progress API for sync code (issue #3)::

    with sync_job("products", total=len(products)) as job:
        for product in products:
            ...
            job.advance()              # or job.advance(failed=1, error="...")

Emits ``shopify:syncStatus`` on start, completion and failure, and
``shopify:<singular>:progress`` at most once per ``interval`` seconds however
fast ``advance`` is called, always including the last state (flushed on exit).
The job row is written when progress is emitted, not on every ``advance``.
Use it outside ``transaction.atomic()``: inside one, every event waits for commit.
The clock is injectable for tests (DRF's ``SimpleRateThrottle.timer``).
"""
from collections.abc import Callable, Iterator
from contextlib import contextmanager
import time

from django.utils import timezone

from . import signals
from .events import SINGULAR
from .models import SyncJob

DEFAULT_INTERVAL = 0.25  # at most 4 progress events a second per job
MAX_ERRORS = 50


class Throttle:
    """True at most once per ``interval`` of ``clock()`` (the first call always). Pure."""

    def __init__(self, interval: float, clock: Callable[[], float]) -> None:
        self.interval = interval
        self.clock = clock
        self.last: float | None = None

    def ready(self) -> bool:
        now = self.clock()
        if self.last is not None and now - self.last < self.interval:
            return False
        self.last = now
        return True


class SyncRun:
    """One running sync job: counts, errors, and the events that report them."""

    def __init__(self, resource: str, total: int | None = None, *, interval: float = DEFAULT_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if resource not in SINGULAR:
            raise ValueError(f"Unknown sync resource {resource!r}; one of {', '.join(SINGULAR)}")
        if total is not None and total < 0:
            raise ValueError("total cannot be negative")
        self.resource = resource
        self.total = total
        self.throttle = Throttle(interval, clock)
        self.job: SyncJob | None = None
        self._sent: tuple[int, int] | None = None

    def start(self) -> "SyncRun":
        self.job = SyncJob.objects.create(
            resource=self.resource, total=self.total, status=SyncJob.Status.RUNNING, started_at=timezone.now()
        )
        signals.sync_status.send(sender=SyncJob, job=self.job)
        return self

    @classmethod
    def resume(cls, job: SyncJob, **options) -> "SyncRun":
        """Continue an unfinished ``job`` (the pull sync's resume): running again, its counts kept."""
        run = cls(job.resource, job.total, **options)
        run.job = job
        job.status = SyncJob.Status.RUNNING
        job.finished_at = None
        job.save(update_fields=["status", "finished_at", "updated_at"])
        signals.sync_status.send(sender=SyncJob, job=job)
        return run

    def advance(self, n: int = 1, *, failed: int = 0, error: str | None = None) -> None:
        """``n`` more items processed, ``failed`` of them failed (with ``error``)."""
        job = self.job
        job.processed += n
        job.failed += failed
        if error:
            self._error(error)
        if self.throttle.ready():
            self._emit_progress()

    def add_error(self, message: str) -> None:
        """Keep an error message with the job (its last 50), without advancing."""
        self._error(message)

    def set_total(self, total: int) -> None:
        self.job.total = total

    def _error(self, message: str) -> None:
        self.job.errors = [*self.job.errors, str(message)[:300]][-MAX_ERRORS:]

    def _emit_progress(self) -> None:
        job = self.job
        job.save(update_fields=["processed", "failed", "errors", "total", "updated_at"])
        self._sent = (job.processed, job.failed)
        signals.sync_progress.send(sender=SyncJob, job=job)

    def _end(self, status: str) -> None:
        if self._sent != (self.job.processed, self.job.failed):
            self._emit_progress()  # the last state is always sent
        self.job.status = status
        self.job.finished_at = timezone.now()
        self.job.save()
        signals.sync_status.send(sender=SyncJob, job=self.job)

    def finish(self) -> None:
        self._end(SyncJob.Status.COMPLETED)

    def fail(self, error: BaseException | str) -> None:
        message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        self._error(message)
        self._end(SyncJob.Status.FAILED)


@contextmanager
def sync_job(resource: str, total: int | None = None, **options) -> Iterator[SyncRun]:
    """Run a sync job: started on enter, completed on a clean exit, failed (and re-raised) on an error."""
    run = SyncRun(resource, total, **options).start()
    try:
        yield run
    except BaseException as e:
        run.fail(e)
        raise
    run.finish()
