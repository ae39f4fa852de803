"""Inventory in the admin. A level saved here emits ``inventory:updated`` (post_save) with the admin user."""
from django.contrib import admin, messages

from domain_shared.errors import DomainError

from . import services
from .models import InventoryItem, InventoryLevel, Location, Product, ProductVariant, Reservation, StockMovement


@admin.register(Location)
class LocationAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "address", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "code", "address"]


class VariantInline(admin.TabularInline):
    model = ProductVariant
    extra = 0


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["title", "handle", "vendor", "product_type", "status", "updated_at"]
    list_filter = ["status", "vendor", "product_type"]
    search_fields = ["title", "handle", "vendor", "shopify_id"]
    prepopulated_fields = {"handle": ["title"]}
    inlines = [VariantInline]


@admin.register(ProductVariant)
class ProductVariantAdmin(admin.ModelAdmin):
    list_display = ["__str__", "price", "position"]
    list_filter = ["product__status"]
    search_fields = ["title", "product__title", "inventory_item__sku"]
    list_select_related = ["product"]


@admin.register(InventoryItem)
class InventoryItemAdmin(admin.ModelAdmin):
    list_display = ["sku", "variant", "tracked"]
    list_filter = ["tracked"]
    search_fields = ["sku", "variant__title", "variant__product__title"]
    list_select_related = ["variant__product"]


@admin.register(InventoryLevel)
class InventoryLevelAdmin(admin.ModelAdmin):
    list_display = ["item", "location", "available", "reserved", "low_stock_threshold", "updated_at"]
    list_filter = ["location"]
    search_fields = ["item__sku", "item__variant__product__title", "location__name"]
    list_select_related = ["item", "location"]
    readonly_fields = ["reserved"]  # reserved moves only with reservations

    def save_model(self, request, obj, form, change):
        obj._changed_by = request.user
        obj._change_reason = "Admin edit"
        super().save_model(request, obj, form, change)


@admin.register(Reservation)
class ReservationAdmin(admin.ModelAdmin):
    list_display = ["pk", "item", "location", "quantity", "status", "reason", "reference", "expires_at", "created_by"]
    list_filter = ["status", "location"]
    search_fields = ["item__sku", "reason", "reference", "request_id"]
    list_select_related = ["item", "location", "created_by"]
    actions = ["release_selected"]

    def has_change_permission(self, request, obj=None):
        return False  # reservations change only through the services (actions)

    @admin.action(description="Release selected active reservations", permissions=["view"])
    def release_selected(self, request, queryset):
        if not request.user.has_perm("inventory.change_inventorylevel"):
            self.message_user(request, "You may not change inventory.", messages.ERROR)
            return
        released = 0
        for pk in queryset.filter(status=Reservation.Status.ACTIVE).values_list("pk", flat=True):
            try:
                services.release(pk, reason="Released in admin", user=request.user)
                released += 1
            except DomainError as e:  # an unknown reservation, not enough stock
                self.message_user(request, f"Reservation {pk}: {e.message}", messages.WARNING)
        self.message_user(request, f"Released {released} reservation(s).")


@admin.register(StockMovement)
class StockMovementAdmin(admin.ModelAdmin):
    list_display = ["created_at", "level", "kind", "available_delta", "reserved_delta", "available_after",
                    "reserved_after", "reason", "user"]
    list_filter = ["kind", "level__location"]
    search_fields = ["reason", "level__item__sku", "user__username"]
    list_select_related = ["level", "user"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the ledger is append-only
