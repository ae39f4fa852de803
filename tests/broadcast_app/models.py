"""The worked example of docs/extending.md: customers' returns."""
from django.conf import settings
from django.db import models


class Return(models.Model):
    class Status(models.TextChoices):
        REQUESTED = "requested"
        APPROVED = "approved"
        REFUNDED = "refunded"

    customer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="returns")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.REQUESTED)
    reason = models.CharField(max_length=200)
    note = models.CharField(max_length=200, blank=True)  # internal, not watched
