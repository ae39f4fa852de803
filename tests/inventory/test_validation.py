"""Strict parsing of inventory commands: what is refused, what is accepted."""
import pytest

from inventory.validation import MAX_QUANTITY, parse_reserve, parse_update
from django_oda_realtime.exceptions import InvalidInput

GOOD = {"inventoryItemId": "12", "quantity": 5, "reason": "Count"}


@pytest.mark.parametrize("data", [
    None, [], "x", {},
    {**GOOD, "quantity": -1}, {**GOOD, "quantity": 1.5}, {**GOOD, "quantity": 5.0}, {**GOOD, "quantity": "5"},
    {**GOOD, "quantity": True}, {**GOOD, "quantity": MAX_QUANTITY + 1}, {**GOOD, "quantity": 10**30},
    {**GOOD, "inventoryItemId": "012"}, {**GOOD, "inventoryItemId": "1.0"}, {**GOOD, "inventoryItemId": 0},
    {**GOOD, "inventoryItemId": -3}, {**GOOD, "inventoryItemId": "abc"}, {**GOOD, "inventoryItemId": None},
    {**GOOD, "inventoryItemId": 2**63}, {**GOOD, "locationId": "x"}, {**GOOD, "locationId": True},
    {**GOOD, "reason": ""}, {**GOOD, "reason": "   "}, {**GOOD, "reason": 7}, {**GOOD, "reason": "x" * 201},
    {**GOOD, "reason": "line\nbreak"}, {**GOOD, "expectedQuantity": -1}, {**GOOD, "expectedQuantity": "3"},
    {**GOOD, "extra": 1}, {"quantity": 5, "reason": "x"},
], ids=lambda d: repr(d)[:60])
def test_update_refuses(data):
    with pytest.raises(InvalidInput):
        parse_update(data)


def test_update_accepts_ids_as_numbers_or_canonical_strings():
    req = parse_update({**GOOD, "locationId": 3, "expectedQuantity": 0})
    assert (req.item_id, req.location_id, req.quantity, req.expected_quantity) == (12, 3, 5, 0)
    assert parse_update({**GOOD, "quantity": 0, "reason": "  Recount  "}).reason == "Recount"


@pytest.mark.parametrize("data", [
    {**GOOD, "quantity": 0}, {**GOOD, "requestId": ""}, {**GOOD, "requestId": "has space"},
    {**GOOD, "requestId": "x" * 65}, {**GOOD, "requestId": 5}, {**GOOD, "expectedQuantity": 1},
    {**GOOD, "reference": "x" * 65},
], ids=lambda d: repr(d)[:60])
def test_reserve_refuses(data):
    with pytest.raises(InvalidInput):
        parse_reserve(data)


def test_reserve_accepts_a_request_id():
    req = parse_reserve({**GOOD, "requestId": "3f2a-9c_1", "reference": "#1001"})
    assert (req.request_id, req.reference, req.quantity) == ("3f2a-9c_1", "#1001", 5)
