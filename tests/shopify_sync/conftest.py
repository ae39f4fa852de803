"""The Admin API double for the pull sync tests, wired into settings (SHOPIFY_SHOP_DOMAIN/TOKEN)."""
import pytest

from tests.shopify_sync.double import AdminDouble, Shop


@pytest.fixture
def shop():
    return Shop()


@pytest.fixture
def double(shop, settings):
    """A started double (1,000-point bucket, 50 points/s) that the pull sync's settings point at."""
    server = AdminDouble(shop).start()
    settings.SHOPIFY_SHOP_DOMAIN = server.url
    settings.SHOPIFY_ACCESS_TOKEN = server.token
    yield server
    server.stop()
