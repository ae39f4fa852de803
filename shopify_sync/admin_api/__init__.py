"""A small client of Shopify's GraphQL Admin API (pinned version): queries with cost-based
throttling, bulk query operations and their JSONL results streamed line by line.

Errors (``errors.py``): ``AdminAPIError`` and its subclasses ``AuthenticationError`` (401/403:
the token is missing, wrong or lacks a scope), ``ThrottledError`` (still throttled after the
retries), ``QueryError`` (the API refused the query), ``BulkOperationError`` (a bulk operation
failed, was cancelled or could not start).
"""
from .client import API_VERSION, AdminClient
from .errors import AdminAPIError, AuthenticationError, BulkOperationError, QueryError, ThrottledError

__all__ = ["API_VERSION", "AdminClient", "AdminAPIError", "AuthenticationError", "BulkOperationError",
           "QueryError", "ThrottledError"]
