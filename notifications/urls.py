from django.urls import path

from . import views

urlpatterns = [
    path("", views.NotificationListView.as_view(), name="notifications-list"),
    path("read/", views.MarkReadView.as_view(), name="notifications-read"),
    path("read-all/", views.MarkAllReadView.as_view(), name="notifications-read-all"),
    path("push/key/", views.PushKeyView.as_view(), name="notifications-push-key"),
    path("push/subscriptions/", views.PushSubscriptionView.as_view(), name="notifications-push-subscriptions"),
    path("push/preferences/", views.PushPreferencesView.as_view(), name="notifications-push-preferences"),
]
