"""``python manage.py seed_demo``: a small, realistic shop to look at (idempotent).

Locations, products with variants and stock, customers (one linked to a customer
login), orders in several states, and staff with roles through groups:
``admin`` (superuser), ``manager`` (view and change everything in the shop),
``viewer`` (view only), ``customer`` (sees only their own orders). Running it
again changes nothing but the demo passwords, which it resets and prints.

The published demo passwords (``admin-demo-pass``...) are set only with ``DEBUG`` on
(``make run``). With ``DEBUG`` off each login gets a new random password, printed once:
a demo run on a reachable server must not have a superuser anyone can look up (issue #17).
"""
from decimal import Decimal
import random
import secrets

from django.conf import settings

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand
from django.db import transaction

from inventory import services as stock
from inventory.models import InventoryItem, InventoryLevel, Location, Product, ProductVariant
from orders import services as order_services
from orders.lifecycle import Status
from orders.models import Customer, Order

SHOP_APPS = ["inventory", "orders", "shopify_sync", "notifications"]

LOCATIONS = [
    ("warehouse", "Central Warehouse", "Industriveien 12, Oslo"),
    ("oslo", "Oslo Flagship", "Karl Johans gate 21, Oslo"),
    ("bergen", "Bergen Store", "Torgallmenningen 8, Bergen"),
]

PRODUCTS = [
    # handle, title, vendor, type, price, variants, sku prefix
    ("linen-shirt", "Linen Shirt", "Oda Studio", "Shirts", "59.00", ["S", "M", "L"], "LIN-SHIRT"),
    ("merino-sweater", "Merino Sweater", "Oda Studio", "Knitwear", "119.00", ["S", "M", "L"], "MER-SWTR"),
    ("wool-coat", "Wool Coat", "Nordvik", "Outerwear", "289.00", ["M", "L"], "WOOL-COAT"),
    ("selvedge-jeans", "Selvedge Jeans", "Indigo & Co", "Denim", "129.00", ["30", "32", "34"], "SLV-JEAN"),
    ("leather-sneakers", "Leather Sneakers", "Fjell", "Shoes", "149.00", ["41", "42", "43", "44"], "LTH-SNKR"),
    ("silk-scarf", "Silk Scarf", "Oda Studio", "Accessories", "49.00", ["One size"], "SILK-SCRF"),
]

CUSTOMERS = [
    ("ada@example.com", "Ada Lovelace", "customer"),
    ("grace@example.com", "Grace Hopper", None),
    ("alan@example.com", "Alan Turing", None),
    ("katherine@example.com", "Katherine Johnson", None),
    ("edsger@example.com", "Edsger Dijkstra", None),
]

# number, customer email, lines (sku, qty), how far along the lifecycle
ORDERS = [
    ("#1001", "ada@example.com", [("LIN-SHIRT-M", 1), ("SILK-SCRF-ONE-SIZE", 1)], Status.DELIVERED),
    ("#1002", "grace@example.com", [("WOOL-COAT-L", 1)], Status.SHIPPED),
    ("#1003", "alan@example.com", [("SLV-JEAN-32", 2)], Status.PROCESSING),
    ("#1004", "ada@example.com", [("MER-SWTR-S", 1)], Status.CONFIRMED),
    ("#1005", "katherine@example.com", [("LTH-SNKR-42", 1)], Status.PENDING),
    ("#1006", "edsger@example.com", [("LIN-SHIRT-L", 2)], Status.PENDING),
]

USERS = [
    # username, password, flags, group
    ("admin", "admin-demo-pass", {"is_staff": True, "is_superuser": True}, None),
    ("manager", "manager-demo-pass", {"is_staff": True}, "manager"),
    ("viewer", "viewer-demo-pass", {"is_staff": True}, "viewer"),
    ("customer", "customer-demo-pass", {}, None),
]


class Command(BaseCommand):
    help = "Create (or complete) a small demo shop with staff and customer logins."

    def handle(self, *args, **options):
        with transaction.atomic():
            users = self.users()
            items = self.catalogue()
            self.stock(items)
            customers = self.customers(users)
            self.orders(customers, items)
        self.stdout.write(self.style.SUCCESS(
            f"Demo shop ready: {Location.objects.count()} locations, {Product.objects.count()} products, "
            f"{InventoryItem.objects.count()} SKUs, {Customer.objects.count()} customers, "
            f"{Order.objects.count()} orders."
        ))
        if settings.DEBUG:
            self.stdout.write("Demo logins (development only):")
        else:
            self.stdout.write(self.style.WARNING(
                "DEBUG is off: the demo logins got random passwords (shown once; run seed_demo again for new ones):"))
        for username, _, _, group in USERS:
            role = group or ("superuser" if username == "admin" else "own orders only")
            self.stdout.write(f"  {username:<9} {self.passwords[username]:<20} {role}")

    def users(self) -> dict:
        perms = Permission.objects.filter(content_type__app_label__in=SHOP_APPS)
        manager, _ = Group.objects.get_or_create(name="manager")
        manager.permissions.set(perms.filter(codename__regex=r"^(view|change|add)_"))
        viewer, _ = Group.objects.get_or_create(name="viewer")
        viewer.permissions.set(perms.filter(codename__startswith="view_"))
        groups = {"manager": manager, "viewer": viewer}
        User = get_user_model()
        users = {}
        self.passwords = {}
        for username, password, flags, group in USERS:
            if not settings.DEBUG:
                password = secrets.token_urlsafe(12)
            self.passwords[username] = password
            user, _ = User.objects.get_or_create(username=username, defaults=flags)
            for flag, value in flags.items():
                setattr(user, flag, value)
            user.set_password(password)
            user.save()
            if group:
                user.groups.set([groups[group]])
            users[username] = user
        return users

    def catalogue(self) -> dict[str, InventoryItem]:
        items = {}
        for handle, title, vendor, kind, price, sizes, prefix in PRODUCTS:
            product, _ = Product.objects.get_or_create(
                handle=handle, defaults={"title": title, "vendor": vendor, "product_type": kind}
            )
            for position, size in enumerate(sizes, 1):
                sku = f"{prefix}-{size.upper().replace(' ', '-')}"
                item = InventoryItem.objects.filter(sku=sku).first()
                if item is None:
                    variant = ProductVariant.objects.create(
                        product=product, title=size, price=Decimal(price), position=position
                    )
                    item = InventoryItem.objects.create(variant=variant, sku=sku)
                items[sku] = item
        return items

    def stock(self, items) -> None:
        rng = random.Random(42)
        locations = [
            Location.objects.get_or_create(code=code, defaults={"name": name, "address": address})[0]
            for code, name, address in LOCATIONS
        ]
        for sku, item in items.items():
            for location in locations:
                quantity = rng.randint(40, 120) if location.code == "warehouse" else rng.randint(4, 30)
                if not InventoryLevel.objects.filter(item=item, location=location).exists():
                    stock.set_quantity(item.pk, location.pk, quantity, reason="Initial stock count")

    def customers(self, users) -> dict[str, Customer]:
        out = {}
        for email, name, username in CUSTOMERS:
            customer, _ = Customer.objects.get_or_create(email=email, defaults={"name": name})
            if username and customer.user_id is None:
                customer.user = users[username]
                customer.save(update_fields=["user"])
            out[email] = customer
        return out

    def orders(self, customers, items) -> None:
        for number, email, lines, target in ORDERS:
            if Order.objects.filter(number=number).exists():
                continue
            order = order_services.create_order(
                customers[email],
                [(items[sku], str(items[sku].variant), sku, qty, items[sku].variant.price) for sku, qty in lines],
                number=number,
            )
            while order.status != target:
                order = order_services.advance(order.pk, note="Demo data")
