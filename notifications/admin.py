"""Staff send announcements from the admin: saving a new one broadcasts it; an action resends."""
from django.contrib import admin

from . import services
from .models import Announcement, FailedLogin


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
