"""``manage.py shopify_sync products|inventory|orders|customers``: pull from Shopify's Admin API.

Resumes the resource's unfinished job (after a crash, a kill or an error) unless ``--restart``.
Shop and token: SHOPIFY_SHOP_DOMAIN, SHOPIFY_ACCESS_TOKEN (docs/shopify.md, "Pull sync").
"""
from django.core.management.base import BaseCommand, CommandError

from shopify_sync.admin_api import AdminAPIError
from shopify_sync.pull import SyncAlreadyRunning, run_pull
from shopify_sync.pull.specs import SPECS


class Command(BaseCommand):
    help = "Copy products, inventory, orders or customers from Shopify (resumes an unfinished job)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("resource", choices=list(SPECS))
        parser.add_argument("--mode", choices=["auto", "bulk", "pages"], default="auto",
                            help="bulk operation, cursor pages, or auto: bulk from 2,500 records up")
        parser.add_argument("--restart", action="store_true", help="abandon the unfinished job and start anew")
        parser.add_argument("--batch-size", type=int, default=1000, help="JSONL lines per transaction (bulk)")

    def handle(self, *args, resource: str, mode: str, restart: bool, batch_size: int, **options) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        try:
            job = run_pull(resource, mode=mode, restart=restart, batch_size=batch_size)
        except (AdminAPIError, SyncAlreadyRunning) as e:
            raise CommandError(str(e)) from None
        self.stdout.write(f"{resource}: job #{job.pk} {job.status}, {job.processed} processed, "
                          f"{job.failed} failed, in {job.duration:.1f} s")
