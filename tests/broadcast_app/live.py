"""The rest of the worked app of docs/extending.md: a room per customer, a broadcast of every change, a command."""
from django.db import transaction

from django_oda_realtime import Broadcast, commands
from django_oda_realtime.contract import describe_command, register_event
from django_oda_realtime.contract.builtin import ERROR_DATA
from django_oda_realtime.contract.schema import ID, ID_ARG, nullable, obj, string
from django_oda_realtime.exceptions import InvalidInput, NotFound, PermissionDenied
from django_oda_realtime.rooms import normalize_id
from django_oda_realtime.subscriptions import expect_mapping

from .models import Return

CHANGE = "returns.change_return"


def own_returns(user, ident) -> bool:
    """The customer themselves, or staff who may view returns."""
    return ident == str(user.pk) or user.has_perm("returns.view_return")


def return_payload(ret, change) -> dict:
    return {"returnId": str(ret.pk), "change": change.kind, "status": ret.status, "reason": ret.reason,
            "previousStatus": change.old.get("status")}


def return_rooms(ret, change) -> list[str]:
    return ["returns:all", f"returns:customer:{ret.customer_id}"]


def accept(caller, data) -> dict:
    """``returns:accept {returnId}``: sync, so it runs in a worker thread and may use the ORM."""
    if not caller.user.has_perm(CHANGE):
        raise PermissionDenied("You may not accept returns")
    return_id = normalize_id(expect_mapping(data, {"returnId"}).get("returnId"))
    if return_id is None:
        raise InvalidInput("returnId must be an id")
    with transaction.atomic():
        ret = Return.objects.select_for_update().filter(pk=return_id).first()
        if ret is None:
            raise NotFound("No such return")
        ret.status = Return.Status.APPROVED
        ret.save(update_fields=["status"])  # both broadcasts send, after commit
    return {"returnId": str(ret.pk), "status": ret.status}  # the ack's data


def register() -> None:
    Broadcast(
        Return,
        event="returns:changed",
        fields=["status"],
        payload=return_payload,
        rooms=return_rooms,
        join={"returns:all": "returns.view_return", "returns:customer:{customerId}": own_returns},
        topic="returnsByCustomer",
        schema=obj({"returnId": ID, "change": string(enum=["create", "update", "delete"]), "status": string(),
                    "reason": string(), "previousStatus": nullable(string())}),
        description="A return was opened, changed status, or was deleted.",
    )
    commands.register("returns:accept", accept, error_event="returns:acceptError",
                      result_event="returns:accepted")
    describe_command("returns:accept", data=obj({"returnId": ID_ARG}),
                     result=obj({"returnId": ID, "status": string()}),
                     errors={"permission_denied": "needs returns.change_return", "not_found": "no such return"})
    register_event("returns:accepted", obj({"returnId": ID, "status": string()}), direct=True,
                   description="returns:accept without an ack succeeded.")
    register_event("returns:acceptError", ERROR_DATA, error=True, direct=True,
                   description="returns:accept without an ack failed.")
