"""The pull sync: Shopify's products, inventory, orders and customers copied into our models
(docs/shopify.md, "Pull sync"). ``run_pull(resource)`` is the entry point of the
``shopify_sync`` command and of the admin action.
"""
from .runner import SyncAlreadyRunning, run_pull

__all__ = ["SyncAlreadyRunning", "run_pull"]
