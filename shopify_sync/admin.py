from django.contrib import admin

from .models import SyncJob, WebhookDelivery


class ReadOnlyAdmin(admin.ModelAdmin):
    """Written by sync code and the webhook endpoint only."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SyncJob)
class SyncJobAdmin(ReadOnlyAdmin):
    list_display = ["pk", "resource", "status", "processed", "failed", "total", "started_at", "finished_at"]
    list_filter = ["resource", "status"]
    search_fields = ["resource", "status"]
    date_hierarchy = "created_at"


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "topic", "shop_domain", "event_id", "webhook_id", "api_version", "processed_at"]
    list_filter = ["topic", "shop_domain", "api_version"]
    search_fields = ["topic", "shop_domain", "event_id", "webhook_id"]
    date_hierarchy = "received_at"
