"""The ``shopify:all`` room and the ``subscribe:shopify`` topic."""
from django_oda_realtime.permissions import has_perm, policy
from django_oda_realtime.subscriptions import expect_mapping, topics

VIEW = "shopify_sync.view_syncjob"
ALL = "shopify:all"


def resolve(user, data) -> list[str]:
    expect_mapping(data, set())
    return [ALL]


def register() -> None:
    policy.register(ALL, has_perm(VIEW))
    topics.register("shopify", resolve)
