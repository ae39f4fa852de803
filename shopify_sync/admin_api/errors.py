"""The Admin API client's exceptions (see the package docstring)."""


class AdminAPIError(Exception):
    """Shopify's Admin API could not answer the request."""

    code = "admin_api_error"


class AuthenticationError(AdminAPIError):
    code = "authentication_failed"


class ThrottledError(AdminAPIError):
    code = "throttled"


class QueryError(AdminAPIError):
    code = "query_error"


class BulkOperationError(AdminAPIError):
    code = "bulk_operation_failed"
