"""Shopify sync models (minimal skeleton; issue #3 completes them)."""
from django.db import models


class SyncJob(models.Model):
    resource = models.CharField(max_length=20)
    status = models.CharField(max_length=20, default="pending")
