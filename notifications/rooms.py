"""The ``staff`` room (user activity, security alerts) and the ``subscribe:staff`` topic.

Logins, logouts and failed logins name people: only staff accounts may join.
"""
from django_oda_realtime.permissions import policy
from django_oda_realtime.subscriptions import expect_mapping, topics

STAFF = "staff"


def is_staff(user, ident) -> bool:
    """Staff accounts (is_staff)."""
    return bool(user.is_staff)


def resolve(user, data) -> list[str]:
    expect_mapping(data, set())
    return [STAFF]


def register() -> None:
    policy.register(STAFF, is_staff)
    topics.register(STAFF, resolve)
