"""How long to wait after a ``THROTTLED`` answer, from its ``extensions.cost``. Pure.

Shopify's GraphQL Admin API is a leaky bucket of query cost points: a query runs only when
its ``requestedQueryCost`` fits in ``throttleStatus.currentlyAvailable``, and the bucket
refills at ``restoreRate`` points a second. So the wait is the missing points over the rate.
"""
DEFAULT_WAIT = 1.0
MARGIN = 0.05  # seconds: the bucket is refilled continuously; don't arrive a hair early
MAX_WAIT = 60.0


def throttle_wait(cost: object, attempt: int = 0) -> float:
    """Seconds to wait before retrying a query refused with ``THROTTLED`` (``cost`` = ``extensions.cost``)."""
    try:
        requested = float(cost["requestedQueryCost"])
        status = cost["throttleStatus"]
        available = float(status["currentlyAvailable"])
        rate = float(status["restoreRate"])
    except (TypeError, KeyError, ValueError):
        return min(MAX_WAIT, DEFAULT_WAIT * 2 ** attempt)  # no cost data: plain exponential backoff
    if rate <= 0:
        return min(MAX_WAIT, DEFAULT_WAIT * 2 ** attempt)
    return min(MAX_WAIT, max(0.0, requested - available) / rate + MARGIN)
