"""The order's three state machines: status, payment and fulfilment, each an enum
with its allowed transitions (checked, never assumed). Pure: no ORM.

status:       pending -> confirmed -> processing -> shipped -> delivered
              pending | confirmed | processing -> cancelled
              delivered | cancelled -> refunded (only once the order was paid)
payment:      pending -> authorized | paid | voided; authorized -> paid | voided;
              paid -> partially_refunded | refunded; partially_refunded -> refunded
fulfillment:  unfulfilled -> partial | fulfilled; partial -> fulfilled;
              fulfilled -> returned
"""
from django.db import models

from domain_shared.errors import DomainError


class InvalidTransition(DomainError):
    """A refused change of state: a domain error (a client command would map it with
    ``domain_shared.errors.as_command_errors``, as inventory's commands do)."""

    code = "invalid_transition"
    default_message = "This change is not allowed from the current state"


class Status(models.TextChoices):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    PROCESSING = "processing"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


class PaymentStatus(models.TextChoices):
    PENDING = "pending"
    AUTHORIZED = "authorized"
    PAID = "paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    VOIDED = "voided"


class FulfillmentStatus(models.TextChoices):
    UNFULFILLED = "unfulfilled"
    PARTIAL = "partial"
    FULFILLED = "fulfilled"
    RETURNED = "returned"


S, P, F = Status, PaymentStatus, FulfillmentStatus

TRANSITIONS: dict[str, dict[str, frozenset[str]]] = {
    "status": {
        S.PENDING: frozenset({S.CONFIRMED, S.CANCELLED}),
        S.CONFIRMED: frozenset({S.PROCESSING, S.CANCELLED}),
        S.PROCESSING: frozenset({S.SHIPPED, S.CANCELLED}),
        S.SHIPPED: frozenset({S.DELIVERED}),
        S.DELIVERED: frozenset({S.REFUNDED}),
        S.CANCELLED: frozenset({S.REFUNDED}),
        S.REFUNDED: frozenset(),
    },
    "payment_status": {
        P.PENDING: frozenset({P.AUTHORIZED, P.PAID, P.VOIDED}),
        P.AUTHORIZED: frozenset({P.PAID, P.VOIDED}),
        P.PAID: frozenset({P.PARTIALLY_REFUNDED, P.REFUNDED}),
        P.PARTIALLY_REFUNDED: frozenset({P.REFUNDED}),
        P.REFUNDED: frozenset(),
        P.VOIDED: frozenset(),
    },
    "fulfillment_status": {
        F.UNFULFILLED: frozenset({F.PARTIAL, F.FULFILLED}),
        F.PARTIAL: frozenset({F.FULFILLED}),
        F.FULFILLED: frozenset({F.RETURNED}),
        F.RETURNED: frozenset(),
    },
}

WAS_PAID = frozenset({P.PAID, P.PARTIALLY_REFUNDED, P.REFUNDED})


def check(field: str, old: str, new: str) -> None:
    """Raise ``InvalidTransition`` unless ``field`` may go from ``old`` to ``new``."""
    table = TRANSITIONS[field]
    if new not in table:
        raise InvalidTransition(f"Unknown {field}: {new!r}", code="invalid_value")
    if new not in table.get(old, frozenset()):
        raise InvalidTransition(f"{field} cannot go from {old} to {new}")


def check_order(current: dict[str, str], changes: dict[str, str]) -> None:
    """Check each changed field, then the rules that span fields (refund needs a payment)."""
    for field, new in changes.items():
        check(field, current[field], new)
    payment = changes.get("payment_status", current["payment_status"])
    if changes.get("status") == S.REFUNDED and payment not in WAS_PAID:
        raise InvalidTransition("An order that was never paid cannot be refunded")


def next_status(status: str) -> str | None:
    """The next step of the happy path, or None at its end."""
    path = [S.PENDING, S.CONFIRMED, S.PROCESSING, S.SHIPPED, S.DELIVERED]
    return path[path.index(status) + 1] if status in path[:-1] else None
