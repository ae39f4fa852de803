"""The contract of the inventory events and commands (docs/events.md, Inventory; docs/contract.md)."""
from django_oda_realtime.contract import describe_command, describe_topic, register_event
from django_oda_realtime.contract.builtin import ERROR_DATA
from django_oda_realtime.contract.schema import DATETIME, ID, ID_ARG, array, boolean, integer, nullable, obj, string

from . import events
from .models import Reservation, StockMovement
from .rooms import ALL

ROOMS = [ALL, "inventory:location:{locationId}", "inventory:product:{productId}"]
SKU = nullable(string(description="null for a Shopify variant without a SKU (docs/shopify.md)"))
LEVEL_IDS = {"levelId": ID, "inventoryItemId": ID, "sku": SKU, "variantId": ID, "productId": ID,
             "locationId": ID}
NUMBERS = {"available": integer(description="On hand, reserved units included"),
           "reserved": integer(description="Held by active reservations"),
           "sellable": integer(description="available - reserved")}
# Ids in commands: JSON integers or canonical decimal strings (docs/events.md, Client commands).
CLIENT_ID = {"anyOf": [integer(minimum=1), string(pattern=r"^[1-9][0-9]{0,18}$")]}
REASON = string(minLength=1, maxLength=200)

register_event(events.INVENTORY_UPDATED, obj({
    **LEVEL_IDS, **NUMBERS,
    "previousAvailable": integer(), "previousReserved": integer(), "delta": integer(), "reservedDelta": integer(),
    "lowStockThreshold": integer(), "change": string(enum=StockMovement.Kind.values), "reason": string(),
    "userId": nullable(ID), "updatedAt": DATETIME,
}), rooms=ROOMS, description="A level's numbers changed (services, or a plain save).")

register_event(events.INVENTORY_LOW_STOCK, obj({
    **LEVEL_IDS, "productTitle": string(), "variantTitle": string(), **NUMBERS, "lowStockThreshold": integer(),
}), rooms=ROOMS, description="A level's sellable stock fell to or below its threshold.")

register_event(events.INVENTORY_RESERVATION, obj({
    "reservationId": ID, "action": string(enum=["created", "released", "expired", "fulfilled"]),
    "status": string(enum=Reservation.Status.values), "inventoryItemId": ID, "sku": nullable(string()), "variantId": ID,
    "productId": ID, "locationId": ID, "quantity": integer(minimum=1), "reason": string(), "reference": string(),
    "expiresAt": DATETIME, "userId": nullable(ID),
}), rooms=ROOMS, description="A reservation was created, released, expired or fulfilled.")

COMMAND_ERRORS = {"permission_denied": "the user lacks inventory.change_inventorylevel",
                  "not_found": "unknown item or location, or the item is not stocked there",
                  "location_required": "no locationId and the item is not at exactly one location",
                  "insufficient_stock": "not enough sellable stock; a quantity below what is reserved"}

describe_command(events.INVENTORY_UPDATE, data=obj(
    {"inventoryItemId": CLIENT_ID, "quantity": integer(minimum=0, maximum=1_000_000), "reason": REASON},
    optional={"locationId": CLIENT_ID, "expectedQuantity": integer(minimum=0)},
), result=obj({"inventoryItemId": ID, "locationId": ID, "available": integer(), "reserved": integer()}),
    errors={**COMMAND_ERRORS, "conflict": "expectedQuantity is stale"},
    description="Set an item's quantity on hand at a location.")

describe_command(events.INVENTORY_RESERVE, data=obj(
    {"inventoryItemId": CLIENT_ID, "quantity": integer(minimum=1, maximum=1_000_000), "reason": REASON},
    optional={"locationId": CLIENT_ID, "requestId": string(pattern=r"^[A-Za-z0-9_-]{1,64}$"),
              "reference": string(maxLength=64)},
), result=obj({"reservationId": ID, "inventoryItemId": ID, "locationId": ID, "quantity": integer(),
               "status": string(enum=Reservation.Status.values), "expiresAt": DATETIME,
               "requestId": nullable(string()), "duplicate": boolean()}),
    errors={**COMMAND_ERRORS, "request_id_reused": "the requestId was used for a different reservation"},
    description="Reserve sellable units (idempotent with requestId).")

for name, command in [(events.INVENTORY_UPDATE_ERROR, events.INVENTORY_UPDATE),
                      (events.INVENTORY_RESERVATION_ERROR, events.INVENTORY_RESERVE)]:
    register_event(name, ERROR_DATA, error=True, direct=True, description=f"{command} without an ack failed.")

describe_topic("inventory", data=obj(optional={"locationIds": array(ID_ARG, maxItems=100),
                                               "productIds": array(ID_ARG, maxItems=100)}),
               rooms=ROOMS, description="Locations' and products' rooms; inventory:all when neither is given.")
