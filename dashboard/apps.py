from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """The staff's live view in the Django admin (issue #6): a client of the realtime server."""

    name = "dashboard"
    verbose_name = "Live dashboard"
