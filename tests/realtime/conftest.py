"""Fixtures of the add-on's unit tests."""
from channels.layers import get_channel_layer
import pytest

from django_oda_realtime.hub import Hub
from tests.clients import close_clients  # noqa: F401  (autouse: clients left open are closed)


@pytest.fixture
async def hub(settings):
    """A started hub of its own on channels' in-memory layer (not the loop's ``get_hub()``)."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    hub = Hub(get_channel_layer())
    await hub.start()
    yield hub
    await hub.stop()
