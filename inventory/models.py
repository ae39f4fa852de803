"""Inventory: locations, the catalogue, stock levels, reservations and the movement ledger.

Invariants kept by the database whatever the code path (issue #3, #5):
``0 <= reserved <= available`` on every level, reservations of a positive quantity,
and one client request id per user for reservations (idempotent retries).
``available`` is the quantity on hand; ``available - reserved`` is what can still be sold.
Writes go through ``inventory.services``; a plain ``save()`` of a level still emits its event.
"""
from django.conf import settings
from django.db import models
from django.db.models import F, Q


class Location(models.Model):
    name = models.CharField(max_length=200)
    code = models.SlugField(max_length=50, unique=True)
    address = models.CharField(max_length=300, blank=True)
    is_active = models.BooleanField(default=True)
    shopify_id = models.BigIntegerField(null=True, blank=True, unique=True)
    shopify_updated_at = models.DateTimeField(null=True, blank=True, help_text="Shopify's updated_at last applied")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        DRAFT = "draft"
        ARCHIVED = "archived"

    title = models.CharField(max_length=200)
    handle = models.SlugField(max_length=200, unique=True)
    vendor = models.CharField(max_length=100, blank=True)
    product_type = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    shopify_id = models.BigIntegerField(null=True, blank=True, unique=True)
    shopify_updated_at = models.DateTimeField(null=True, blank=True, help_text="Shopify's updated_at last applied")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


class ProductVariant(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="variants")
    title = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    position = models.PositiveIntegerField(default=1)
    shopify_id = models.BigIntegerField(null=True, blank=True, unique=True)

    class Meta:
        ordering = ["product_id", "position", "pk"]

    def __str__(self) -> str:
        return f"{self.product.title} / {self.title}"


class InventoryItem(models.Model):
    variant = models.OneToOneField(ProductVariant, on_delete=models.CASCADE, related_name="inventory_item")
    sku = models.CharField(max_length=64, unique=True, null=True, blank=True,
                           help_text="None for a Shopify variant without one (or whose SKU another item holds)")
    tracked = models.BooleanField(default=True)
    shopify_id = models.BigIntegerField(null=True, blank=True, unique=True)

    class Meta:
        ordering = ["sku"]

    def __str__(self) -> str:
        return self.sku


class InventoryLevel(models.Model):
    item = models.ForeignKey(InventoryItem, on_delete=models.CASCADE, related_name="levels")
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="levels")
    available = models.IntegerField(default=0, help_text="Quantity on hand, reserved units included.")
    reserved = models.IntegerField(default=0, help_text="Units held by active reservations.")
    low_stock_threshold = models.IntegerField(default=5, help_text="Alert when sellable stock falls to this.")
    shopify_updated_at = models.DateTimeField(null=True, blank=True, help_text="Shopify's updated_at last applied")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["item_id", "location_id"]
        constraints = [
            models.UniqueConstraint(fields=["item", "location"], name="inventory_level_item_location_unique"),
            models.CheckConstraint(condition=Q(available__gte=0), name="inventory_level_available_not_negative"),
            models.CheckConstraint(condition=Q(reserved__gte=0), name="inventory_level_reserved_not_negative"),
            models.CheckConstraint(
                condition=Q(reserved__lte=F("available")), name="inventory_level_reserved_within_available"
            ),
            models.CheckConstraint(
                condition=Q(low_stock_threshold__gte=0), name="inventory_level_threshold_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.item_id}@{self.location_id}: {self.available} ({self.reserved} reserved)"

    @property
    def sellable(self) -> int:
        return self.available - self.reserved


class Reservation(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        RELEASED = "released"
        EXPIRED = "expired"
        FULFILLED = "fulfilled"

    item = models.ForeignKey(InventoryItem, on_delete=models.CASCADE, related_name="reservations")
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="reservations")
    quantity = models.IntegerField()
    reason = models.CharField(max_length=200)
    reference = models.CharField(max_length=64, blank=True, help_text="e.g. the order number")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    expires_at = models.DateTimeField(db_index=True)
    request_id = models.CharField(max_length=64, null=True, blank=True, help_text="The client's id, for retries")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="reservation_quantity_positive"),
            models.UniqueConstraint(
                fields=["created_by", "request_id"],
                condition=Q(request_id__isnull=False),
                name="reservation_request_id_unique_per_user",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.item_id}@{self.location_id} ({self.status})"


class StockMovement(models.Model):
    """The ledger: one row per change of a level, with its deltas, reason and user."""

    class Kind(models.TextChoices):
        SET = "set"
        ADJUST = "adjust"
        RESERVE = "reserve"
        RELEASE = "release"
        EXPIRE = "expire"
        FULFILL = "fulfill"
        SAVE = "save"  # a plain save() outside the services (admin, shell)
        SHOPIFY = "shopify"  # applied from a Shopify webhook

    level = models.ForeignKey(InventoryLevel, on_delete=models.CASCADE, related_name="movements")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    available_delta = models.IntegerField()
    reserved_delta = models.IntegerField(default=0)
    available_after = models.IntegerField()
    reserved_after = models.IntegerField()
    reason = models.CharField(max_length=200, blank=True)
    reservation = models.ForeignKey(Reservation, null=True, blank=True, on_delete=models.SET_NULL)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.kind} {self.available_delta:+d} on level {self.level_id}"
