"""``python manage.py simulate [--seconds 60] [--rate 2]``: a steady stream of shop activity.

Sales and restocks, reservations made and released, new orders moving through
their lifecycle (reserving stock when confirmed, consuming it when shipped), and
a Shopify product sync with progress every so often. Everything goes through the
services, so every event is the real one.

Events travel through the channel layer: to reach a server running in another
process both must share Redis (``REDIS_URL=redis://127.0.0.1:6379/0`` for the
server and for this command). With the in-memory layer nothing leaves this process.
"""
import random
import time
from datetime import timedelta

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError as DjangoCommandError
from django.db.models import F

from inventory import services as stock
from inventory.models import InventoryLevel, Product, Reservation
from orders import services as order_services
from orders.lifecycle import Status
from orders.models import Customer, Order
from domain_shared.errors import DomainError
from shopify_sync.progress import SyncRun

SYNC_EVERY = 20.0  # seconds between two Shopify syncs


class Command(BaseCommand):
    help = "Simulate shop activity (stock, orders, a Shopify sync) so events flow. Needs REDIS_URL to reach a server."

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=float, default=60.0, help="how long to run; 0 runs until stopped")
        parser.add_argument("--rate", type=float, default=2.0, help="actions per second")
        parser.add_argument("--seed", type=int, default=None, help="random seed, for a repeatable run")

    def handle(self, *args, seconds, rate, seed, **options):
        if rate <= 0 or rate > 1000 or seconds < 0:
            raise DjangoCommandError("--rate must be in (0, 1000] and --seconds >= 0")
        if "InMemory" in settings.CHANNEL_LAYERS["default"]["BACKEND"]:
            self.stderr.write("Warning: REDIS_URL is not set, so events stay in this process and no server sees them.")
        if not InventoryLevel.objects.exists():
            call_command("seed_demo", stdout=self.stdout)
        self.rng = random.Random(seed)
        self.sync: SyncRun | None = None
        self.sync_left = 0
        actions = [(self.sale, 35), (self.restock, 10), (self.reserve, 10), (self.release, 8),
                   (self.new_order, 10), (self.progress_order, 27)]
        funcs, weights = zip(*actions)
        start = time.monotonic()
        next_sync = start  # the first sync starts at once, then one every SYNC_EVERY seconds
        ticks = 0
        while seconds == 0 or time.monotonic() - start < seconds:
            ticks += 1
            try:
                line = self.rng.choices(funcs, weights)[0]()
            except DomainError as e:
                line = f"refused: {e.code}"
            if line:
                self.stdout.write(line)
            now = time.monotonic()
            if self.sync is None and now >= next_sync:
                self.start_sync()
                next_sync = now + SYNC_EVERY
            self.step_sync()
            if ticks % max(1, int(rate * 10)) == 0:
                stock.expire_reservations()
            time.sleep(1.0 / rate)
        if self.sync is not None:
            self.sync.advance(self.sync_left)
            self.sync.finish()
        self.stdout.write(f"Simulated {ticks} actions in {time.monotonic() - start:.0f}s.")

    # -- stock ------------------------------------------------------------------------

    def _level(self, **filters) -> InventoryLevel | None:
        ids = list(InventoryLevel.objects.filter(**filters).values_list("pk", flat=True))
        return InventoryLevel.objects.select_related("item", "location").get(pk=self.rng.choice(ids)) if ids else None

    def sale(self) -> str | None:
        level = self._level(available__gt=F("reserved"))
        if level is None:
            return None
        qty = min(self.rng.randint(1, 3), level.available - level.reserved)
        stock.adjust(level.item_id, level.location_id, -qty, reason="In-store sale")
        return f"sale: {qty} x {level.item.sku} at {level.location.name}"

    def restock(self) -> str | None:
        level = self._level(available__lte=F("reserved") + F("low_stock_threshold") + 3) or self._level()
        if level is None:
            return None
        qty = self.rng.randint(10, 40)
        stock.adjust(level.item_id, level.location_id, qty, reason="Delivery received")
        return f"restock: +{qty} {level.item.sku} at {level.location.name}"

    def reserve(self) -> str | None:
        level = self._level(available__gt=F("reserved"))
        if level is None:
            return None
        r = stock.reserve(level.item_id, level.location_id, 1, reason="Held at the till", ttl=timedelta(seconds=30))
        return f"reserve: 1 x {level.item.sku} (reservation {r.pk})"

    def release(self) -> str | None:
        pk = Reservation.objects.filter(status="active", reference="").values_list("pk", flat=True).first()
        if pk is None:
            return None
        stock.release(pk, reason="Customer changed their mind")
        return f"release: reservation {pk}"

    # -- orders -----------------------------------------------------------------------

    def new_order(self) -> str | None:
        customers = list(Customer.objects.values_list("pk", flat=True))
        level = self._level(available__gt=F("reserved"), location__code="warehouse")
        if not customers or level is None:
            return None
        item = level.item
        order = order_services.create_order(
            Customer.objects.get(pk=self.rng.choice(customers)),
            [(item, str(item.variant), item.sku, 1, item.variant.price)],
        )
        return f"order {order.number}: new ({item.sku})"

    def progress_order(self) -> str | None:
        open_orders = list(
            Order.objects.filter(status__in=[Status.PENDING, Status.CONFIRMED, Status.PROCESSING, Status.SHIPPED])
            .values_list("pk", flat=True)
        )
        if not open_orders:
            return None
        order = Order.objects.get(pk=self.rng.choice(open_orders))
        reservations = Reservation.objects.filter(reference=order.number, status="active")
        if order.status == Status.PENDING and self.rng.random() < 0.1:
            for r in reservations:
                stock.release(r.pk, reason=f"Order {order.number} cancelled")
            order_services.set_status(order.pk, Status.CANCELLED, note="Customer cancelled")
            return f"order {order.number}: cancelled"
        if order.status == Status.PENDING:
            for line in order.lines.exclude(inventory_item=None):
                location = line.inventory_item.levels.filter(location__code="warehouse").values_list(
                    "location_id", flat=True).first()
                if location:
                    stock.reserve(line.inventory_item_id, location, line.quantity, reason="Order confirmed",
                                  reference=order.number, ttl=timedelta(days=2))
        if order.status == Status.PROCESSING:
            for r in reservations:
                stock.fulfill(r.pk, reason=f"Order {order.number} shipped")
        order = order_services.advance(order.pk, note="Simulated")
        return f"order {order.number}: {order.status}"

    # -- Shopify sync -------------------------------------------------------------------

    def start_sync(self) -> None:
        total = Product.objects.count() * 25
        self.sync = SyncRun("products", total).start()
        self.sync_left = total
        self.stdout.write(f"shopify: product sync #{self.sync.job.pk} started ({total} items)")

    def step_sync(self) -> None:
        if self.sync is None:
            return
        n = min(self.sync_left, self.rng.randint(5, 15))
        failed = 1 if self.rng.random() < 0.05 else 0
        self.sync.advance(n, failed=failed, error="Product image missing" if failed else None)
        self.sync_left -= n
        if self.sync_left <= 0:
            self.sync.finish()
            self.stdout.write(f"shopify: product sync #{self.sync.job.pk} completed")
            self.sync = None
