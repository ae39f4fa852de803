"""Closing a user's live sockets on every process: logout, deactivation, password change,
and dropping rooms when permissions are removed (issue #5).

Each is one control message to the user's own room ``user:{id}``, which every socket
of the user is in; the hubs of all processes deliver it within a second.
"""
from django.utils import timezone

from .exceptions import CloseCode
from .publish import send_control
from .rooms import user_room


def revoke_tokens(user, reason: str = "token_revoked") -> None:
    """Refuse the user's access tokens issued until now, and close their live sockets."""
    from .models import TokenRevocation

    TokenRevocation.objects.update_or_create(user_id=user.pk, defaults={"not_before": timezone.now()})
    close_sockets(user.pk, CloseCode.TOKEN_REVOKED, reason, "The session was revoked")


def close_sockets(user_id, code: CloseCode, reason: str, message: str) -> None:
    send_control([user_room(user_id)], "close", code=int(code), reason=reason, message=message)


def recheck_rooms(user_ids) -> None:
    """Make the users' sockets leave the rooms they may no longer join."""
    rooms = [user_room(pk) for pk in user_ids]
    if rooms:
        send_control(rooms, "recheck")
