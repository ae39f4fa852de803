"""Orders: customers (optionally a Django user: theirs to watch), orders with three
checked state machines (``lifecycle``), their lines and their history.

Writes of the states go through ``orders.services`` (checked transitions); the admin
changes them through actions. A plain ``save()`` anywhere is checked too: a transition
the lifecycle forbids raises ``ValidationError`` and writes nothing, and every saved
change sends one ``order:updated`` (``receivers``, docs/events.md). Not covered:
``QuerySet.update()`` and ``bulk_update()`` (no signal; use the services or ``save()``).
Writes from Shopify pass ``check_lifecycle=False``: Shopify's state is the truth there.
"""
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from . import lifecycle
from .lifecycle import FulfillmentStatus, PaymentStatus, Status

# The fields whose change is an ``order:updated`` (states first: the lifecycle checks them).
STATE_FIELDS = ("status", "payment_status", "fulfillment_status")
TRACKED_FIELDS = (*STATE_FIELDS, "total", "currency", "customer_id", "number")


class Customer(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="customer"
    )
    email = models.EmailField(unique=True, null=True, blank=True, help_text="None for Shopify guests without one")
    name = models.CharField(max_length=200)
    phone = models.CharField(max_length=40, blank=True)
    shopify_id = models.BigIntegerField(null=True, blank=True, unique=True)
    shopify_updated_at = models.DateTimeField(null=True, blank=True, help_text="Shopify's updated_at last applied")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Order(models.Model):
    Status = Status
    PaymentStatus = PaymentStatus
    FulfillmentStatus = FulfillmentStatus

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders", null=True, blank=True,
                                 help_text="None for a Shopify order without a customer")
    number = models.CharField(max_length=32, unique=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    payment_status = models.CharField(max_length=20, choices=PaymentStatus.choices, default=PaymentStatus.PENDING)
    fulfillment_status = models.CharField(
        max_length=20, choices=FulfillmentStatus.choices, default=FulfillmentStatus.UNFULFILLED
    )
    total = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    currency = models.CharField(max_length=3, default="EUR")
    shopify_id = models.BigIntegerField(null=True, blank=True, unique=True)
    shopify_name = models.CharField(max_length=64, blank=True, help_text="Shopify's name (#1001); number is shopify-<id>")
    shopify_updated_at = models.DateTimeField(null=True, blank=True, help_text="Shopify's updated_at last applied")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=Status.values), name="order_status_valid"),
            models.CheckConstraint(condition=Q(payment_status__in=PaymentStatus.values), name="order_payment_valid"),
            models.CheckConstraint(
                condition=Q(fulfillment_status__in=FulfillmentStatus.values), name="order_fulfillment_valid"
            ),
            models.CheckConstraint(condition=Q(total__gte=0), name="order_total_not_negative"),
        ]

    def __str__(self) -> str:
        return self.number

    def save(self, *args, check_lifecycle: bool = True, **kwargs) -> None:
        """Save; a state change the lifecycle forbids raises ``ValidationError`` (nothing written).

        Reads the stored row first: the ``post_save`` receiver builds ``order:updated`` from it.
        """
        stored = None
        if self.pk is not None and not kwargs.get("force_insert"):
            stored = type(self).objects.filter(pk=self.pk).values(*TRACKED_FIELDS).first()
        if stored is not None and check_lifecycle:
            self.check_transitions(stored)
        self._rt_previous = stored
        super().save(*args, **kwargs)

    def clean(self) -> None:
        """``full_clean()`` (model forms) reports a forbidden transition like ``save()`` refuses it."""
        super().clean()
        stored = type(self).objects.filter(pk=self.pk).values(*TRACKED_FIELDS).first() if self.pk else None
        if stored is not None:
            self.check_transitions(stored)

    def check_transitions(self, stored: dict) -> None:
        """``ValidationError`` keyed by the first field whose change the lifecycle forbids."""
        changes = {f: getattr(self, f) for f in STATE_FIELDS if getattr(self, f) != stored[f]}
        for field, new in changes.items():
            try:
                lifecycle.check(field, stored[field], new)
            except lifecycle.InvalidTransition as e:
                raise ValidationError({field: [e.message]}, code="invalid_transition") from e
        try:
            lifecycle.check_order({f: stored[f] for f in STATE_FIELDS}, changes)  # the rules across fields
        except lifecycle.InvalidTransition as e:
            raise ValidationError({"status": [e.message]}, code="invalid_transition") from e


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    inventory_item = models.ForeignKey(
        "inventory.InventoryItem", null=True, blank=True, on_delete=models.SET_NULL, related_name="order_lines"
    )
    title = models.CharField(max_length=300)
    sku = models.CharField(max_length=64, blank=True)
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)
    shopify_variant_id = models.BigIntegerField(null=True, blank=True, db_index=True,
                                                help_text="Links the line when the variant arrives later")

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(quantity__gt=0), name="order_line_quantity_positive")]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.title}"


class OrderHistory(models.Model):
    """One row per changed field of an order: from, to, who and why."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="history")
    field = models.CharField(max_length=20)
    from_value = models.CharField(max_length=20, blank=True)
    to_value = models.CharField(max_length=20)
    note = models.CharField(max_length=300, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "order history"

    def __str__(self) -> str:
        return f"{self.order_id} {self.field}: {self.from_value} -> {self.to_value}"
