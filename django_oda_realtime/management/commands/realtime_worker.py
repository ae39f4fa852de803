"""``manage.py realtime_worker [--once] [--job NAME ...]``: the one background worker.

Runs the periodic jobs the apps registered with ``worker.register`` (docs/shopify.md, *Worker*):
``realtime.outbox`` (the outbox relay, in a thread of its own woken by NOTIFY on PostgreSQL) and
``realtime.outbox.prune`` (docs/design.md#outbox), ``shopify.webhooks`` (apply stored deliveries, retry with backoff) and
``shopify.prune`` (payload retention). Stops cleanly on SIGINT or SIGTERM. Run one per
deployment (several are safe: deliveries are claimed with SKIP LOCKED, but one is enough).
"""
import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from django_oda_realtime import worker


class Command(BaseCommand):
    help = "Run the background worker (outbox relay and pruning, Shopify webhooks applied and retried, payload retention)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Run every due job once, then exit.")
        parser.add_argument("--job", action="append", dest="jobs", metavar="NAME",
                            help=f"Run only this job (repeatable). Known: {', '.join(worker.registered())}")

    def handle(self, *args, once=False, jobs=None, **options):
        unknown = set(jobs or ()) - set(worker.registered())
        if unknown:
            raise CommandError(f"Unknown job(s): {', '.join(sorted(unknown))}; known: {', '.join(worker.registered())}")
        if once:
            done = worker.run_once(jobs)
            self.stdout.write(f"{done} item(s) of work done")
            return
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        worker.run(stop, jobs)
