from django.urls import path

from . import views

app_name = "shopify_sync"
urlpatterns = [path("webhooks/", views.webhook, name="webhook")]
