"""Ending a user's access: logout, deactivation, password change, removed permissions (issues #5, #11).

Two ways reach a live socket, so that no single lost message leaves one open (docs/security.md):

- At once: one control message to the user's own room ``user:{id}``, which every socket of the
  user is in; the hubs of all processes deliver it within a second (``close_sockets``,
  ``recheck_rooms``). Redis down at that moment loses it.
- Within ``REVOCATION_RECHECK_INTERVAL``: each process's hub asks the database, in one query per
  ``RECHECK_BATCH`` sockets, about the users of all its open sockets (``recheck_sockets``) and
  closes those of deleted or inactive users (4004) and those whose token was issued at or before
  the user's ``TokenRevocation.not_before`` (4005).

A token counts as revoked when its ``iat`` is at or before ``not_before`` (``is_revoked``): the
same rule at the handshake, on ``auth:refresh``, at ``Session.open`` after the user's room is
joined, on the periodic re-check and on the refresh endpoint.
"""
import asyncio
import logging

from django.db import DatabaseError
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from ..conf import rt_settings
from ..exceptions import CloseCode
from ..publish import send_control
from ..rooms import user_room

logger = logging.getLogger("realtime.revocation")

RECHECK_BATCH = 1000  # sockets (so at most users) per query of the periodic re-check

INACTIVE = ("user_inactive", CloseCode.USER_INACTIVE, "The user was deactivated")
REVOKED = ("token_revoked", CloseCode.TOKEN_REVOKED, "The session was revoked")


def revoke_tokens(user, reason: str = "token_revoked") -> None:
    """Refuse the user's tokens issued until now (access and refresh), and close their live sockets."""
    from ..models import TokenRevocation

    now = timezone.now()
    # Never moved back (two logouts at once, or from hosts whose clocks differ a little).
    if not TokenRevocation.objects.filter(user_id=user.pk, not_before__lt=now).update(not_before=now):
        TokenRevocation.objects.get_or_create(user_id=user.pk, defaults={"not_before": now})
    close_sockets(user.pk, CloseCode.TOKEN_REVOKED, reason, "The session was revoked")
    forget_sessions(user.pk)


def forget_sessions(user_id) -> None:
    """Delete the user's resumable sessions (docs/security.md#resume): a resume also needs a valid
    token, so a store that does not answer now only leaves records that expire with the window."""
    from asgiref.sync import async_to_sync

    from ..history_sessions import make_sessions

    async def delete():
        # Bounded like a publish: a hung Redis must not hold up the logout (docs/security.md, Faults).
        async with asyncio.timeout(rt_settings.PUBLISH_TIMEOUT):
            await make_sessions().delete_user_sessions(user_id)

    try:
        async_to_sync(delete)()
    except Exception as e:
        logger.error("Could not delete the resumable sessions of a user: %s", type(e).__name__)


def close_sockets(user_id, code: CloseCode, reason: str, message: str) -> None:
    send_control([user_room(user_id)], "close", code=int(code), reason=reason, message=message)


def recheck_rooms(user_ids) -> None:
    """Make the users' sockets leave the rooms they may no longer join."""
    rooms = [user_room(pk) for pk in dict.fromkeys(user_ids)]
    if rooms:
        send_control(rooms, "recheck")


def is_revoked(issued_at, not_before) -> bool:
    """True if a token issued at ``issued_at`` (its ``iat``, epoch seconds) is revoked by
    ``not_before`` (a datetime, or None: never revoked). A token without a numeric ``iat`` is."""
    if not_before is None:
        return False
    if not isinstance(issued_at, (int, float)) or isinstance(issued_at, bool):
        return True
    return issued_at <= not_before.timestamp()


def access_state(user_ids) -> dict[str, tuple[bool, object]]:
    """``{str(user id): (is_active, not_before or None)}`` for the users that exist, one query per
    ``RECHECK_BATCH`` users (a missing id: the user was deleted)."""
    from django.contrib.auth import get_user_model

    from ..models import TokenRevocation

    User = get_user_model()
    revoked_at = TokenRevocation.objects.filter(user_id=OuterRef("pk")).values("not_before")[:1]
    ids = list(dict.fromkeys(user_ids))
    state = {}
    for start in range(0, len(ids), RECHECK_BATCH):
        rows = (User.objects.filter(pk__in=ids[start:start + RECHECK_BATCH])
                .annotate(realtime_not_before=Subquery(revoked_at))
                .values_list("pk", "is_active", "realtime_not_before"))
        for pk, active, not_before in rows:
            state[str(pk)] = (active, not_before)
    return state


def verdict(state: dict, user_id: str, issued_at) -> tuple[str, CloseCode, str] | None:
    """Why a socket of ``user_id`` with a token issued at ``issued_at`` must close, or None."""
    found = state.get(str(user_id))
    if found is None or not found[0]:
        return INACTIVE
    if is_revoked(issued_at, found[1]):
        return REVOKED
    return None


def check_access(user_id, issued_at) -> tuple[str, CloseCode, str] | None:
    """``verdict`` for one socket, from the database now."""
    return verdict(access_state([user_id]), user_id, issued_at)


def close_message(why: tuple[str, CloseCode, str]) -> dict:
    """The control message a socket closes itself with (the shape ``send_control`` sends)."""
    reason, code, message = why
    return {"action": "close", "code": int(code), "reason": reason, "message": message}


async def recheck_sockets(connections) -> int:
    """Close the sockets among ``connections`` whose user lost access; how many were closed.

    Run by the hub every ``REVOCATION_RECHECK_INTERVAL``: one query per ``RECHECK_BATCH`` sockets
    (at most that many users), so what a round holds at once does not grow with the number of
    sockets (allocator slack on an idle server, docs/benchmarks.md#before-and-after-the-outlet-redesign-issue-12-2026-11-28).
    A database error skips the rest of the round (no socket is closed for it) and is logged in one line.
    """
    closed = 0
    for start in range(0, len(connections), RECHECK_BATCH):
        done = await _recheck_batch(connections[start:start + RECHECK_BATCH])
        if done is None:
            break
        closed += done
    return closed


async def _recheck_batch(connections) -> int | None:
    """``recheck_sockets`` for one batch; None if the database failed."""
    from ..db import run_sync_db

    sockets = [(conn, session) for conn in connections
               if (session := getattr(conn, "session", None)) is not None and not getattr(conn, "closed", False)]
    if not sockets:
        return 0
    try:
        state = await run_sync_db(access_state, [str(session.user.pk) for _, session in sockets])
    except DatabaseError as e:
        logger.error("Revocation re-check skipped, the database failed: %s", type(e).__name__)
        return None
    closed = 0
    for conn, session in sockets:
        if conn.session is not session or getattr(conn, "closed", False):
            continue  # closed or re-authenticated while the query ran
        why = verdict(state, str(session.user.pk), getattr(session, "issued_at", None))
        if why is not None:
            await conn.control(close_message(why))
            closed += 1
    return closed
