from django.contrib import admin

from . import processing
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


@admin.action(description="Retry now (attempts start over)", permissions=["retry"])
def retry_now(modeladmin, request, queryset):
    count = processing.retry(queryset)
    modeladmin.message_user(request, f"{count} delivery(ies) will be applied again by the worker.")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "topic", "status", "attempts", "short_error", "result", "next_attempt_at",
                    "processed_at", "event_id"]
    list_filter = ["status", "topic", "shop_domain", "api_version"]
    search_fields = ["topic", "shop_domain", "event_id", "webhook_id", "error", "result"]
    date_hierarchy = "received_at"
    actions = [retry_now]

    def has_retry_permission(self, request) -> bool:
        """Retrying needs the model's change permission (the rows themselves stay read-only)."""
        return request.user.has_perm("shopify_sync.change_webhookdelivery")

    @admin.display(description="error")
    def short_error(self, obj) -> str:
        return obj.error[:120]
