"""Small builders of shop data for the domain tests (plain functions: call them in a DB thread)."""
import itertools

from inventory.models import InventoryItem, InventoryLevel, Location, Product, ProductVariant

_seq = itertools.count(1)


def make_location(name: str | None = None) -> Location:
    n = next(_seq)
    return Location.objects.create(name=name or f"Store {n}", code=f"store-{n}")


def make_item(title: str = "Linen Shirt", size: str = "M", product: Product | None = None) -> InventoryItem:
    n = next(_seq)
    product = product or Product.objects.create(title=title, handle=f"product-{n}")
    variant = ProductVariant.objects.create(product=product, title=size, price="59.00")
    return InventoryItem.objects.create(variant=variant, sku=f"SKU-{n}")


def make_level(available: int = 10, *, threshold: int = 5, item: InventoryItem | None = None,
               location: Location | None = None) -> InventoryLevel:
    """A level with ``available`` on hand (created without events: bulk_create sends no post_save)."""
    item = item or make_item()
    location = location or make_location()
    InventoryLevel.objects.bulk_create(
        [InventoryLevel(item=item, location=location, available=available, low_stock_threshold=threshold)]
    )
    return InventoryLevel.objects.select_related("item__variant__product", "location").get(item=item, location=location)


async def subscribe(sock, topic: str, data=None, *, rooms=None) -> dict:
    """Subscribe and check the rooms joined (all of ``rooms``, when given)."""
    reply = await sock.command(f"subscribe:{topic}", data)
    assert "error" not in reply, reply
    if rooms is not None:
        assert reply["data"]["rooms"] == rooms, reply
    return reply["data"]


async def pending(sock, timeout: float = 0.2) -> list[dict]:
    """Every frame that arrives until the socket is quiet for ``timeout`` (never cancels the app,
    unlike a timed-out receive)."""
    frames = []
    while not await sock.nothing(timeout):
        frames.append(await sock.receive())
    return frames


def events_named(frames: list[dict], name: str) -> list[dict]:
    return [f for f in frames if f.get("event") == name]
