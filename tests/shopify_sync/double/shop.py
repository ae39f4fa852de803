"""The double's shop: products (variants, inventory items, levels), locations, customers, orders."""
import re


def gid(kind: str, n: int) -> str:
    return f"gid://shopify/{kind}/{n}"


class Shop:
    """In-memory products (variants, inventory items, levels), locations, customers, orders."""

    def __init__(self) -> None:
        self.products: list[dict] = []
        self.items: list[dict] = []
        self.customers: list[dict] = []
        self.orders: list[dict] = []
        self.locations: list[dict] = []
        self.nodes: dict[str, dict] = {}
        self._ids: dict[str, int] = {}

    def _next(self, kind: str) -> int:
        self._ids[kind] = self._ids.get(kind, 1000) + 1
        return self._ids[kind]

    def _add(self, kind: str, node: dict) -> dict:
        node["id"] = gid(kind, self._next(kind))
        node["__typename"] = kind
        self.nodes[node["id"]] = node
        return node

    def add_location(self, name: str) -> dict:
        location = self._add("Location", {"name": name, "isActive": True})
        self.locations.append(location)
        return location

    def add_product(self, title: str, *, handle: str | None = None, variants=({"sku": None},), status="ACTIVE",
                    stock=()) -> dict:
        """A product; ``variants``: dicts of sku/title/price; ``stock``: (location, available) for each."""
        now = "2025-07-01T00:00:00Z"
        product = self._add("Product", {
            "title": title, "handle": handle or re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-"),
            "vendor": "Oda", "productType": "Shirt", "status": status, "createdAt": now, "updatedAt": now,
            "variants": []})
        for position, spec in enumerate(variants, 1):
            variant = self._add("ProductVariant", {
                "title": spec.get("title", f"Size {position}"), "price": spec.get("price", "59.00"),
                "position": position, "sku": spec.get("sku"), "updatedAt": now, "product": product})
            variant["displayName"] = f"{title} - {variant['title']}"
            item = self._add("InventoryItem", {"sku": spec.get("sku"), "tracked": True, "updatedAt": now,
                                               "variant": variant, "inventoryLevels": []})
            variant["inventoryItem"] = item
            for location, available in stock:
                level = self._add("InventoryLevel", {"item": item, "location": location, "updatedAt": now,
                                                     "_quantities": {"available": available, "on_hand": available}})
                item["inventoryLevels"].append(level)
            product["variants"].append(variant)
            self.items.append(item)
        self.products.append(product)
        return product

    def add_customer(self, first: str, last: str, email: str | None, phone: str | None = None) -> dict:
        now = "2025-07-01T00:00:00Z"
        customer = self._add("Customer", {"firstName": first, "lastName": last, "email": email, "phone": phone,
                                          "displayName": f"{first} {last}", "createdAt": now, "updatedAt": now})
        self.customers.append(customer)
        return customer

    def add_order(self, name: str, customer: dict | None, lines: list[tuple[dict, int]], *, financial="PAID",
                  fulfillment="UNFULFILLED", cancelled=False, currency="EUR", email=None) -> dict:
        """An order of ``lines``: (variant, quantity) each."""
        now = "2025-07-01T00:00:00Z"
        total = sum(float(v["price"]) * q for v, q in lines)
        order = self._add("Order", {
            "name": name, "email": email or (customer or {}).get("email"), "createdAt": now, "updatedAt": now,
            "cancelledAt": now if cancelled else None, "closedAt": None,
            "displayFinancialStatus": financial, "displayFulfillmentStatus": fulfillment,
            "totalPriceSet": _bag(f"{total:.2f}", currency), "customer": customer, "lineItems": []})
        for variant, quantity in lines:
            order["lineItems"].append(self._add("LineItem", {
                "title": variant["product"]["title"], "name": variant["displayName"], "sku": variant["sku"],
                "quantity": quantity, "originalUnitPriceSet": _bag(variant["price"], currency), "variant": variant}))
        self.orders.append(order)
        return order


def _bag(amount: str, currency: str) -> dict:
    money = {"amount": amount, "currencyCode": currency}
    return {"shopMoney": money, "presentmentMoney": money}


def catalogue(shop: Shop, products: int, *, variants: int = 1, locations: int = 1) -> Shop:
    """``products`` products of ``variants`` variants each, with stock at ``locations`` locations."""
    places = [shop.add_location(f"Warehouse {i}") for i in range(1, locations + 1)]
    for n in range(1, products + 1):
        shop.add_product(f"Product {n}", handle=f"product-{n}",
                         variants=[{"sku": f"SKU-{n}-{v}", "title": f"Size {v}"} for v in range(1, variants + 1)],
                         stock=[(place, (n + i) % 40) for i, place in enumerate(places)])
    return shop
