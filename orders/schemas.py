"""The contract of ``order:updated`` and ``subscribe:orders`` (docs/events.md, Orders; docs/contract.md)."""
from django_oda_realtime.contract import describe_topic, register_event
from django_oda_realtime.contract.schema import DATETIME, ID, ID_ARG, boolean, mapping, nullable, obj, string

from . import events
from .lifecycle import FulfillmentStatus, PaymentStatus, Status
from .rooms import ALL

ROOMS = [ALL, "orders:customer:{customerId}"]
STATES = {"status": Status.values, "paymentStatus": PaymentStatus.values,
          "fulfillmentStatus": FulfillmentStatus.values}


def _change(values: list[str]) -> dict:
    return obj({"from": nullable(string(enum=values)), "to": string(enum=values)})


register_event(events.ORDER_UPDATED, obj({
    "orderId": ID, "number": string(), "customerId": nullable(ID),
    "status": string(enum=Status.values), "previousStatus": nullable(string(enum=Status.values)),
    "paymentStatus": string(enum=PaymentStatus.values), "fulfillmentStatus": string(enum=FulfillmentStatus.values),
    "changes": {**mapping(), "properties": {**{key: _change(values) for key, values in STATES.items()},
                                            **{key: obj({"from": nullable(string()), "to": nullable(string())})
                                               for key in ("total", "currency", "customerId", "number")}},
                "additionalProperties": False, "description": "What changed: from -> to (from is null on creation)"},
    "created": boolean(), "total": string(pattern=r"^-?[0-9]+(\.[0-9]+)?$", description="A decimal, as a string"),
    "currency": string(), "note": string(), "userId": nullable(ID), "updatedAt": DATETIME,
}), rooms=ROOMS, description="An order was created, or its status, payment or fulfillment status changed.")

describe_topic("orders", data=obj(optional={"customerId": {"anyOf": [ID_ARG, {"type": "null"}]}}), rooms=ROOMS,
               description="One customer's orders (their own user, or orders.view_order), else orders:all.")
