"""The order state machines: every allowed step, and refusals."""
import pytest

from orders.lifecycle import InvalidTransition, TRANSITIONS, check, check_order, next_status

ALLOWED = [(field, old, new) for field, table in TRANSITIONS.items() for old, news in table.items() for new in news]


@pytest.mark.parametrize("field,old,new", ALLOWED, ids=[f"{f}:{o}->{n}" for f, o, n in ALLOWED])
def test_allowed(field, old, new):
    check(field, old, new)


@pytest.mark.parametrize("field,old,new", [
    ("status", "pending", "shipped"), ("status", "delivered", "pending"), ("status", "shipped", "cancelled"),
    ("status", "refunded", "pending"), ("status", "pending", "pending"), ("status", "pending", "lost"),
    ("payment_status", "refunded", "paid"), ("payment_status", "voided", "paid"),
    ("fulfillment_status", "fulfilled", "unfulfilled"),
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
