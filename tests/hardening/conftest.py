"""Fixtures of the hardening tests: one daphne per module where the tests can share it."""
import uuid

from channels.layers import channel_layers
import pytest

from tests.clients import close_clients  # noqa: F401  (autouse: clients left open are closed)
from tests.conftest import require_redis
from tests.hardening.support import pubsub_layer_settings


@pytest.fixture(scope="module")
def module_prefix(django_db_setup):
    """A channel-layer (and presence) prefix shared by a module's server(s) and its tests."""
    from django.conf import settings

    require_redis(settings.TEST_REDIS_URL)
    return f"hard{uuid.uuid4().hex[:10]}"


@pytest.fixture
def module_layer(settings, module_prefix):
    """This process publishes on the Redis pub/sub layer the module's servers listen to."""
    settings.CHANNEL_LAYERS = pubsub_layer_settings(settings.TEST_REDIS_URL, module_prefix)
    channel_layers.backends.clear()
    return settings.CHANNEL_LAYERS
