"""The order state machines: every allowed step, and refusals.

The cases are written out from the lifecycle as docs/events.md ("Transitions are checked")
describes it, not derived from ``TRANSITIONS``, so a wrong or extra entry in the table fails here.
"""
import pytest

from django_oda_realtime.exceptions import CommandError
from domain_shared.errors import as_command_errors
from orders.lifecycle import InvalidTransition, TRANSITIONS, check, check_order, next_status

# docs/events.md: status: pending -> confirmed -> processing -> shipped -> delivered; pending, confirmed or
# processing -> cancelled; delivered or cancelled -> refunded. payment: pending -> authorized | paid |
# voided; authorized -> paid | voided; paid -> partially_refunded | refunded; partially_refunded ->
# refunded. fulfillment: unfulfilled -> partial | fulfilled; partial -> fulfilled; fulfilled -> returned.
DOCUMENTED = [
    ("status", "pending", "confirmed"), ("status", "confirmed", "processing"),
    ("status", "processing", "shipped"), ("status", "shipped", "delivered"),
    ("status", "pending", "cancelled"), ("status", "confirmed", "cancelled"), ("status", "processing", "cancelled"),
    ("status", "delivered", "refunded"), ("status", "cancelled", "refunded"),
    ("payment_status", "pending", "authorized"), ("payment_status", "pending", "paid"),
    ("payment_status", "pending", "voided"), ("payment_status", "authorized", "paid"),
    ("payment_status", "authorized", "voided"), ("payment_status", "paid", "partially_refunded"),
    ("payment_status", "paid", "refunded"), ("payment_status", "partially_refunded", "refunded"),
    ("fulfillment_status", "unfulfilled", "partial"), ("fulfillment_status", "unfulfilled", "fulfilled"),
    ("fulfillment_status", "partial", "fulfilled"), ("fulfillment_status", "fulfilled", "returned"),
]


@pytest.mark.parametrize("field,old,new", DOCUMENTED, ids=[f"{f}:{o}->{n}" for f, o, n in DOCUMENTED])
def test_allowed(field, old, new):
    check(field, old, new)  # raises InvalidTransition if refused


def test_the_table_allows_nothing_the_docs_do_not():
    in_table = {(field, old, new) for field, table in TRANSITIONS.items() for old, news in table.items()
                for new in news}
    assert in_table - set(DOCUMENTED) == set()


@pytest.mark.parametrize("field,old,new", [
    ("status", "pending", "shipped"), ("status", "delivered", "pending"), ("status", "shipped", "cancelled"),
    ("status", "refunded", "pending"), ("status", "pending", "pending"), ("status", "pending", "lost"),
    ("payment_status", "refunded", "paid"), ("payment_status", "voided", "paid"),
    ("fulfillment_status", "fulfilled", "unfulfilled"),
    # the ends of each machine, skipped steps and steps backwards
    ("status", "shipped", "refunded"), ("status", "processing", "delivered"), ("status", "cancelled", "confirmed"),
    ("status", "refunded", "cancelled"), ("status", "confirmed", "pending"),
    ("payment_status", "paid", "voided"), ("payment_status", "authorized", "refunded"),
    ("payment_status", "partially_refunded", "paid"), ("payment_status", "pending", "partially_refunded"),
    ("fulfillment_status", "unfulfilled", "returned"), ("fulfillment_status", "returned", "fulfilled"),
    ("fulfillment_status", "partial", "unfulfilled"), ("fulfillment_status", "partial", "returned"),
], ids=lambda v: str(v))
def test_refused(field, old, new):
    with pytest.raises(InvalidTransition):
        check(field, old, new)


def test_refund_needs_a_payment():
    current = {"status": "cancelled", "payment_status": "pending", "fulfillment_status": "unfulfilled"}
    with pytest.raises(InvalidTransition):
        check_order(current, {"status": "refunded"})
    check_order({**current, "payment_status": "paid"}, {"status": "refunded", "payment_status": "refunded"})


def test_happy_path():
    steps, status = [], "pending"
    while status:
        steps.append(status)
        status = next_status(status)
    assert steps == ["pending", "confirmed", "processing", "shipped", "delivered"]
    assert next_status("cancelled") is None


def test_a_refusal_is_a_domain_error_a_command_maps_to_its_code():
    assert not issubclass(InvalidTransition, CommandError)  # the socket layer does not type domain errors

    @as_command_errors
    def ship(caller, data):
        check("status", "pending", "shipped")

    with pytest.raises(CommandError) as refused:
        ship(None, {})
    assert (refused.value.code, refused.value.message) == ("invalid_transition", "status cannot go from pending to shipped")
