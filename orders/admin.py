"""Orders in the admin: states change only through actions, which run the checked transitions."""
from django.contrib import admin, messages

from domain_shared.errors import DomainError

from . import services
from .lifecycle import FulfillmentStatus, PaymentStatus, Status
from .models import Customer, Order, OrderHistory, OrderLine


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["name", "email", "phone", "user", "created_at"]
    list_filter = ["created_at"]
    search_fields = ["name", "email", "phone", "user__username"]
    raw_id_fields = ["user"]


class LineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    raw_id_fields = ["inventory_item"]


class HistoryInline(admin.TabularInline):
    model = OrderHistory
    extra = 0
    can_delete = False
    readonly_fields = ["created_at", "field", "from_value", "to_value", "note", "user"]

    def has_add_permission(self, request, obj=None):
        return False


def _transition(label: str, **change):
    @admin.action(description=label, permissions=["change"])
    def action(modeladmin, request, queryset):
        done = 0
        for pk in queryset.values_list("pk", flat=True):
            try:
                services.update_order(pk, user=request.user, note=f"Admin: {label}", **change)
                done += 1
            except DomainError as e:  # an unknown order, a refused transition
                modeladmin.message_user(request, f"Order {pk}: {e.message}", messages.WARNING)
        modeladmin.message_user(request, f"{label}: {done} order(s).")

    action.__name__ = "mark_" + "_".join(f"{k}_{v}" for k, v in change.items())
    return action


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["number", "customer", "status", "payment_status", "fulfillment_status", "total", "currency",
                    "created_at"]
    list_filter = ["status", "payment_status", "fulfillment_status", "created_at"]
    search_fields = ["number", "customer__name", "customer__email"]
    list_select_related = ["customer"]
    readonly_fields = ["status", "payment_status", "fulfillment_status", "created_at", "updated_at"]
    inlines = [LineInline, HistoryInline]
    actions = [
        _transition("Confirm", status=Status.CONFIRMED),
        _transition("Start processing", status=Status.PROCESSING),
        _transition("Ship", status=Status.SHIPPED, fulfillment_status=FulfillmentStatus.FULFILLED),
        _transition("Mark delivered", status=Status.DELIVERED),
        _transition("Cancel", status=Status.CANCELLED),
        _transition("Refund", status=Status.REFUNDED, payment_status=PaymentStatus.REFUNDED),
        _transition("Mark paid", payment_status=PaymentStatus.PAID),
    ]


@admin.register(OrderHistory)
class OrderHistoryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "order", "field", "from_value", "to_value", "note", "user"]
    list_filter = ["field", "to_value"]
    search_fields = ["order__number", "note", "user__username"]
    list_select_related = ["order", "user"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
