import logging
import threading

from django.contrib import admin
from django.db import connection

from . import processing
from .models import SyncCheckpoint, SyncJob, WebhookDelivery

logger = logging.getLogger("shopify_sync.pull")
SYNC_THREADS: list[threading.Thread] = []  # the admin action's runs (joined by tests)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Written by sync code and the webhook endpoint only."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class SyncCheckpointInline(admin.StackedInline):
    """Where a pull sync job is (the bulk result's signed link is not shown)."""

    model = SyncCheckpoint
    fields = ["mode", "cursor", "bulk_operation_id", "line_offset", "byte_offset", "owner", "heartbeat_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("shopify_sync.view_syncjob")  # part of the job: no permission of its own


@admin.register(SyncJob)
class SyncJobAdmin(ReadOnlyAdmin):
    list_display = ["pk", "resource", "status", "processed", "failed", "total", "started_at", "finished_at"]
    list_filter = ["resource", "status"]
    search_fields = ["resource", "status"]
    date_hierarchy = "created_at"
    actions = ["sync_from_shopify"]
    inlines = [SyncCheckpointInline]

    def has_sync_permission(self, request) -> bool:
        return request.user.has_perm("shopify_sync.add_syncjob")

    @admin.action(description="Sync these resources from Shopify (resumes an unfinished job)",
                  permissions=["sync"])
    def sync_from_shopify(self, request, queryset):
        resources = sorted(set(queryset.values_list("resource", flat=True)))
        for resource in resources:
            thread = threading.Thread(target=_pull_in_background, args=(resource,), name=f"shopify-sync-{resource}",
                                      daemon=True)
            SYNC_THREADS.append(thread)
            thread.start()
        self.message_user(request, f"Shopify sync started: {', '.join(resources)}. Progress shows here and on "
                                   "the live dashboard; large catalogues are better run with manage.py shopify_sync.")


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


def _pull_in_background(resource: str) -> None:
    """The admin action's run, off the request: a crash leaves a job that the next run resumes."""
    from .pull import run_pull

    try:
        run_pull(resource)
    except Exception as e:  # the job is marked failed with its error; the thread just ends
        logger.warning("Shopify %s sync from the admin failed: %s", resource, e)
    finally:
        connection.close()
