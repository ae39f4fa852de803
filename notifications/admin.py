"""Staff send announcements from the admin: saving a new one broadcasts it; an action resends."""
from django.contrib import admin

from . import services
from .models import Announcement, BroadcastRead, FailedLogin, Notification, PushDelivery, PushSubscription


@admin.register(Announcement)
class AnnouncementAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "level", "title", "message", "created_by", "sent_at", "times_sent"]
    list_filter = ["kind", "level"]
    search_fields = ["title", "message"]
    fields = ["kind", "level", "title", "message"]
    actions = ["send_again"]

    def has_change_permission(self, request, obj=None):
        return False  # what was sent stays as it was sent

    def save_model(self, request, obj, form, change):
        obj.created_by = request.user
        super().save_model(request, obj, form, change)
        services.send_announcement(obj)

    @admin.action(description="Send the selected announcements again", permissions=["add"])
    def send_again(self, request, queryset):
        for announcement in queryset:
            services.send_announcement(announcement)
        self.message_user(request, f"Sent {queryset.count()} announcement(s).")


@admin.register(FailedLogin)
class FailedLoginAdmin(admin.ModelAdmin):
    list_display = ["created_at", "username", "ip_address"]
    list_filter = ["created_at"]
    search_fields = ["username", "ip_address"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class BroadcastReadInline(admin.TabularInline):
    model = BroadcastRead
    extra = 0
    can_delete = False
    readonly_fields = ["user", "read_at"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    """The inboxes: notifications kept per user, and broadcast ones (user empty) with who read them."""

    list_display = ["created_at", "kind", "title", "user", "read_at"]
    list_filter = ["kind", ("user", admin.EmptyFieldListFilter), "read_at"]
    search_fields = ["user__username", "kind"]
    readonly_fields = ["user", "kind", "data", "created_at", "read_at"]
    inlines = [BroadcastReadInline]
    list_select_related = ["user"]

    @admin.display(description="title")
    def title(self, obj):
        return obj.data.get("title", "") if isinstance(obj.data, dict) else ""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(PushSubscription)
class PushSubscriptionAdmin(admin.ModelAdmin):
    list_display = ["created_at", "user", "endpoint"]
    list_filter = ["created_at"]
    search_fields = ["user__username", "endpoint"]
    readonly_fields = ["user", "endpoint", "p256dh", "auth", "created_at"]

    def has_add_permission(self, request):
        return False


@admin.register(PushDelivery)
class PushDeliveryAdmin(admin.ModelAdmin):
    """Push messages waiting for the worker, with the last error of those being retried."""

    list_display = ["due_at", "subscription", "notification", "attempts", "last_error"]
    list_filter = ["attempts"]
    search_fields = ["subscription__user__username", "last_error"]
    readonly_fields = ["subscription", "notification", "attempts", "due_at", "last_error"]

    def has_add_permission(self, request):
        return False
