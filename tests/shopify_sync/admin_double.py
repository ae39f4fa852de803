"""A local stand-in for Shopify's GraphQL Admin API (the documented subset the pull sync uses).

It answers ``POST /admin/api/2025-07/graphql.json`` on 127.0.0.1 like the real API:

- 401 without the right ``X-Shopify-Access-Token``, 404 for another API version;
- every query is parsed and validated with graphql-core against the committed schema subset
  (shopify_sync/schema/admin-2025-07.graphql), then executed by graphql-core over in-memory
  data: a misspelled field or argument gets the GraphQL error, never an answer;
- connections need ``first`` or ``last`` (at most 250) outside bulk queries;
- cost: a leaky bucket (1,000 points, 50 restored a second). A query's requested cost is
  Shopify's estimate (connection 2 + first x node, object 1, scalar 0, mutation field 10); over
  1,000 is ``MAX_COST_EXCEEDED``; over what is available is ``THROTTLED`` (data null,
  ``extensions.cost`` with ``actualQueryCost: null``); else the actual cost is taken;
- bulk operations: ``bulkOperationRunQuery`` validates its query (a connection required,
  at most five, nested at most two deep, one bulk query at a time), then a thread runs it
  and writes the JSONL result (one object a line, nested connection nodes with ``__parentId``
  after their parent) to a file served at ``url`` (no token needed; ``Range`` honoured), while
  ``node(id:)`` and ``currentBulkOperation`` report ``CREATED``/``RUNNING``/``COMPLETED``.

Run alone for the benchmark: ``python -m tests.shopify_sync.admin_double --products 50000``
prints the port on its first line, then serves until killed.
"""
import argparse
import base64
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
import os
from pathlib import Path
import re
import shutil
import sys
import tempfile
import threading
import time

from graphql import (
    FieldNode, FragmentSpreadNode, GraphQLError, InlineFragmentNode, OperationType, build_schema, execute,
    get_named_type, is_leaf_type, parse, validate, value_from_ast,
)

API_VERSION = "2025-07"
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "shopify_sync" / "schema" / f"admin-{API_VERSION}.graphql"
SCHEMA = build_schema(SCHEMA_PATH.read_text())
MAX_COST = 1000
MAX_PAGE = 250
BULK_WINDOW = 250  # top-level nodes executed at a time while writing a bulk result


def gid(kind: str, n: int) -> str:
    return f"gid://shopify/{kind}/{n}"


def _cursor(i: int) -> str:
    return base64.b64encode(f"i:{i}".encode()).decode()


def _index(cursor: str | None) -> int:
    if cursor is None:
        return -1
    try:
        return int(base64.b64decode(cursor).decode().split(":", 1)[1])
    except (ValueError, IndexError, UnicodeDecodeError):
        raise GraphQLError("Invalid cursor for current pagination sort.") from None


# --- the shop's data --------------------------------------------------------------------------

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


# --- resolvers --------------------------------------------------------------------------------

def _connection(items: list, info, first=None, last=None, after=None, before=None, reverse=False, **_) -> dict:
    context = info.context
    if context.get("bulk"):
        has_next = False
        if info.path.prev is None:  # the root connection: one window at a time (see AdminDouble._bulk)
            start, stop = context["window"]
            context["more"] = stop < len(items)
            window = [(i, items[i]) for i in range(start, min(stop, len(items)))]
        else:
            window = list(enumerate(items))
    else:
        if first is None and last is None:
            raise GraphQLError("you must provide one of first or last")
        if (first or 0) > MAX_PAGE or (last or 0) > MAX_PAGE or (first or 0) < 0 or (last or 0) < 0:
            raise GraphQLError(f"The page size must be between 0 and {MAX_PAGE}")
        order = list(reversed(items)) if reverse else items
        hi = _index(before) if before else len(order)
        positions = list(range(_index(after) + 1, min(hi, len(order))))
        if first is not None:
            chosen, has_next = positions[:first], len(positions) > first
        else:
            chosen, has_next = (positions[-last:] if last else []), hi < len(order)
        window = [(p, order[p]) for p in chosen]
    edges = [{"cursor": _cursor(i), "node": node} for i, node in window]
    return {"edges": edges, "nodes": [e["node"] for e in edges], "pageInfo": {
        "hasNextPage": has_next, "hasPreviousPage": bool(window) and window[0][0] > 0,
        "startCursor": edges[0]["cursor"] if edges else None, "endCursor": edges[-1]["cursor"] if edges else None}}


def _count(items_of):
    def resolve(root, info, query=None, limit=10000):
        n = len(items_of(info.context["shop"]))
        if limit is not None and n > limit:
            return {"count": limit, "precision": "AT_LEAST"}
        return {"count": n, "precision": "EXACT"}
    return resolve


def _wire(schema) -> None:
    q, m = schema.query_type.fields, schema.mutation_type.fields
    roots = {"products": lambda s: s.products, "inventoryItems": lambda s: s.items,
             "customers": lambda s: s.customers, "orders": lambda s: s.orders}
    for name, items_of in roots.items():
        q[name].resolve = (lambda of: lambda root, info, **a: _connection(of(info.context["shop"]), info, **a))(items_of)
    q["productsCount"].resolve = _count(lambda s: s.products)
    q["productVariantsCount"].resolve = _count(lambda s: s.items)
    q["customersCount"].resolve = _count(lambda s: s.customers)
    q["ordersCount"].resolve = _count(lambda s: s.orders)
    q["node"].resolve = lambda root, info, id: info.context["double"].find(id)
    q["currentBulkOperation"].resolve = lambda root, info, type="QUERY": info.context["double"].current()
    m["bulkOperationRunQuery"].resolve = lambda root, info, query: info.context["double"].run_bulk(query)
    for type_name, field_name in (("Product", "variants"), ("InventoryItem", "inventoryLevels"),
                                  ("Order", "lineItems")):
        schema.type_map[type_name].fields[field_name].resolve = (
            lambda f: lambda obj, info, **a: _connection(obj[f], info, **a))(field_name)
    schema.type_map["InventoryLevel"].fields["quantities"].resolve = lambda obj, info, names: [
        {"id": f"{obj['id']}-{n}", "name": n, "quantity": obj["_quantities"][n]}
        for n in names if n in obj["_quantities"]]
    schema.type_map["Node"].resolve_type = lambda obj, info, t: (
        obj["__typename"] if isinstance(obj, dict) else "BulkOperation")


_wire(SCHEMA)


# --- cost -------------------------------------------------------------------------------------

def _args(node: FieldNode, field_def, variables) -> dict:
    values = {}
    for arg in node.arguments:
        definition = field_def.args.get(arg.name.value)
        if definition is not None:
            values[arg.name.value] = value_from_ast(arg.value, definition.type, variables)
    return values


def query_cost(document, variables: dict, *, bulk: bool = False) -> int:
    """Shopify's requested cost estimate of the operation in ``document``."""
    fragments = {d.name.value: d for d in document.definitions if d.kind == "fragment_definition"}
    operation = next(d for d in document.definitions if d.kind == "operation_definition")

    def cost(selection_set, parent) -> int:
        total = 0
        for sel in selection_set.selections if selection_set else []:
            if isinstance(sel, InlineFragmentNode):
                kind = SCHEMA.get_type(sel.type_condition.name.value) if sel.type_condition else parent
                total += cost(sel.selection_set, kind)
                continue
            if isinstance(sel, FragmentSpreadNode):
                fragment = fragments[sel.name.value]
                total += cost(fragment.selection_set, SCHEMA.get_type(fragment.type_condition.name.value))
                continue
            name = sel.name.value
            if name.startswith("__"):
                continue
            field_def = parent.fields[name]
            kind = get_named_type(field_def.type)
            if is_leaf_type(kind):
                continue
            inner = cost(sel.selection_set, kind)
            if kind.name.endswith("Connection"):
                args = _args(sel, field_def, variables)
                size = 1 if bulk else (args.get("first") or args.get("last") or 1)
                total += 2 + size * inner
            elif kind.name.endswith("Edge") or kind.name == "PageInfo":
                total += inner
            else:
                total += 1 + inner
        return total

    if operation.operation == OperationType.MUTATION:
        return 10 * len(operation.selection_set.selections)
    return max(1, cost(operation.selection_set, SCHEMA.query_type))


def _actual(data) -> int:
    if isinstance(data, dict):
        own = 1 if "id" in data else 0
        return own + sum(_actual(v) for k, v in data.items() if k != "nodes" or "edges" not in data)
    if isinstance(data, list):
        return sum(_actual(v) for v in data)
    return 0


class Bucket:
    """Shopify's leaky bucket of cost points."""

    def __init__(self, maximum: float = 1000.0, rate: float = 50.0, clock=time.monotonic) -> None:
        self.maximum, self.rate, self.clock = maximum, rate, clock
        self.available = maximum
        self.last = clock()

    def refill(self) -> float:
        now = self.clock()
        self.available = min(self.maximum, self.available + (now - self.last) * self.rate)
        self.last = now
        return self.available

    def status(self) -> dict:
        return {"maximumAvailable": self.maximum, "currentlyAvailable": round(self.available, 1),
                "restoreRate": self.rate}


# --- bulk operations --------------------------------------------------------------------------

@dataclass
class BulkOperation:
    id: str
    query: str
    status: str = "CREATED"
    objectCount: int = 0
    rootObjectCount: int = 0
    fileSize: int | None = None
    url: str | None = None
    partialDataUrl: str | None = None
    errorCode: str | None = None
    createdAt: str = "2025-07-01T00:00:00Z"
    completedAt: str | None = None
    type: str = "QUERY"
    path: Path | None = field(default=None, repr=False)


def _connections(selection_set, parent, depth=0) -> list[int]:
    """The depth of each connection field in a bulk query."""
    found = []
    for sel in selection_set.selections if selection_set else []:
        if isinstance(sel, InlineFragmentNode):
            found += _connections(sel.selection_set, SCHEMA.get_type(sel.type_condition.name.value), depth)
            continue
        if not isinstance(sel, FieldNode) or sel.name.value.startswith("__"):
            continue
        kind = get_named_type(parent.fields[sel.name.value].type)
        if is_leaf_type(kind):
            continue
        if kind.name.endswith("Connection"):
            found.append(depth)
            found += _connections(sel.selection_set, kind, depth + 1)
        else:
            found += _connections(sel.selection_set, kind, depth)
    return found


def _nodes(connection: dict) -> list:
    if "edges" in connection:
        return [edge["node"] for edge in connection["edges"]]
    return connection.get("nodes") or []


def _is_connection(value) -> bool:
    return isinstance(value, dict) and ("edges" in value or "nodes" in value) and "pageInfo" not in value \
        and (isinstance(value.get("edges"), list) or isinstance(value.get("nodes"), list))


class AdminDouble:
    """The server: ``start()``, ``url``, ``shop``, the request log, ``stop()``."""

    def __init__(self, shop: Shop | None = None, *, token: str = "shpat_test_token", maximum: float = 1000.0,
                 rate: float = 50.0, bulk_delay: float = 0.0) -> None:
        self.shop = shop or Shop()
        self.token = token
        self.bucket = Bucket(maximum, rate)
        self.bulk_delay = bulk_delay  # seconds a bulk operation stays RUNNING before it writes
        self.operations: dict[str, BulkOperation] = {}
        self.lock = threading.RLock()
        self.requests: list[dict] = []  # one per GraphQL request: operation name, variables, cost, throttled
        self.downloads: list[dict] = []  # one per bulk file request: range, token header sent
        self.throttled = 0
        self.max_throttled_in_a_row = 0
        self._in_a_row = 0
        self.fail_next_bulk: str | None = None  # an errorCode: the next bulk operation FAILS with it
        self.jsonl_tail = ""  # appended to each bulk result (tests of damaged lines)
        self.dir = Path(tempfile.mkdtemp(prefix="shopify-double-"))
        self.server: ThreadingHTTPServer | None = None

    # server lifecycle
    def start(self, port: int = 0) -> "AdminDouble":
        double = self

        class Handler(_Handler):
            pass

        Handler.double = double
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="shopify-double", daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # GraphQL
    def graphql(self, body: dict) -> dict:
        query, variables = body.get("query"), body.get("variables") or {}
        if not isinstance(query, str) or not isinstance(variables, dict):
            return {"errors": [{"message": "Parameter 'query' is missing or not a string"}]}
        try:
            document = parse(query)
        except GraphQLError as e:
            return {"errors": [e.formatted]}
        errors = validate(SCHEMA, document)
        if errors:
            return {"errors": [e.formatted for e in errors]}
        try:
            requested = query_cost(document, variables)
        except (GraphQLError, KeyError, StopIteration) as e:
            return {"errors": [{"message": str(e)}]}
        name = next((d.name.value for d in document.definitions
                     if d.kind == "operation_definition" and d.name), None)
        with self.lock:
            available = self.bucket.refill()
            if requested > MAX_COST:
                self.requests.append({"operation": name, "variables": variables, "cost": requested, "throttled": False})
                return {"errors": [{"message": f"Query cost is {requested}, which exceeds the single query max "
                                               f"cost limit ({MAX_COST}).",
                                    "extensions": {"code": "MAX_COST_EXCEEDED", "cost": requested,
                                                   "maxCost": MAX_COST}}]}
            if requested > available:
                self.throttled += 1
                self._in_a_row += 1
                self.max_throttled_in_a_row = max(self.max_throttled_in_a_row, self._in_a_row)
                self.requests.append({"operation": name, "variables": variables, "cost": requested, "throttled": True})
                return {"errors": [{"message": "Throttled", "extensions": {
                    "code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
                    "extensions": {"cost": {"requestedQueryCost": requested, "actualQueryCost": None,
                                            "throttleStatus": self.bucket.status()}}}
            self._in_a_row = 0
            result = execute(SCHEMA, document, variable_values=variables,
                             context_value={"shop": self.shop, "double": self})
            actual = min(requested, max(1, _actual(result.data)))
            self.bucket.available -= actual
            self.requests.append({"operation": name, "variables": variables, "cost": requested, "throttled": False})
            answer = {"data": result.data}
            if result.errors:
                answer["errors"] = [e.formatted for e in result.errors]
            answer["extensions"] = {"cost": {"requestedQueryCost": requested, "actualQueryCost": actual,
                                             "throttleStatus": self.bucket.status()}}
            return answer

    def find(self, node_id: str):
        return self.operations.get(node_id) or self.shop.nodes.get(node_id)

    def current(self):
        return list(self.operations.values())[-1] if self.operations else None

    def run_bulk(self, query: str) -> dict:
        def refuse(message, code="INVALID"):
            return {"bulkOperation": None, "userErrors": [{"field": ["query"], "message": message, "code": code}]}

        if any(op.status in ("CREATED", "RUNNING") for op in self.operations.values()):
            return refuse("A bulk query operation for this app and shop is already in progress: "
                          f"{self.current().id}.", "OPERATION_IN_PROGRESS")
        try:
            document = parse(query)
        except GraphQLError as e:
            return refuse(f"Invalid bulk query: {e.message}")
        errors = validate(SCHEMA, document)
        if errors:
            return refuse("Invalid bulk query: " + "; ".join(e.message for e in errors))
        operation = next(d for d in document.definitions if d.kind == "operation_definition")
        if operation.operation != OperationType.QUERY:
            return refuse("Invalid bulk query: only queries are allowed")
        depths = _connections(operation.selection_set, SCHEMA.query_type)
        if not depths:
            return refuse("Bulk queries must contain at least one connection.")
        if len(depths) > 5:
            return refuse("Bulk queries cannot contain more than 5 connections.")
        if max(depths) > 2:
            return refuse("Bulk queries cannot contain connections with a nesting depth greater than 2.")
        op = BulkOperation(id=gid("BulkOperation", 900 + len(self.operations) + 1), query=query)
        self.operations[op.id] = op
        threading.Thread(target=self._bulk, args=(op, document), daemon=True, name="shopify-double-bulk").start()
        return {"bulkOperation": op, "userErrors": []}

    def _bulk(self, op: BulkOperation, document) -> None:
        time.sleep(0.05)
        op.status = "RUNNING"
        if self.bulk_delay:
            time.sleep(self.bulk_delay)
        if self.fail_next_bulk:
            op.status, op.errorCode, self.fail_next_bulk = "FAILED", self.fail_next_bulk, None
            return
        path = self.dir / f"{op.id.rsplit('/', 1)[1]}.jsonl"
        start = 0
        with path.open("w") as out:
            while True:
                context = {"shop": self.shop, "double": self, "bulk": True, "window": (start, start + BULK_WINDOW)}
                with self.lock:
                    result = execute(SCHEMA, document, context_value=context)
                if result.errors:
                    op.status, op.errorCode = "FAILED", "INTERNAL_SERVER_ERROR"
                    return
                for connection in result.data.values():
                    for node in _nodes(connection):
                        op.rootObjectCount += 1
                        self._emit(node, None, out, op)
                if not context.get("more"):
                    break
                start += BULK_WINDOW
            out.write(self.jsonl_tail)
            op.objectCount += self.jsonl_tail.count("\n")
        op.path = path
        op.fileSize = path.stat().st_size
        if op.objectCount:
            op.url = f"{self.url}/bulk-results/{path.name}?X-Goog-Signature=test"
        op.completedAt = "2025-07-01T00:00:01Z"
        op.status = "COMPLETED"

    def _emit(self, node: dict, parent: str | None, out, op: BulkOperation) -> None:
        line = {k: v for k, v in node.items() if not _is_connection(v)}
        if parent:
            line["__parentId"] = parent
        out.write(json.dumps(line, separators=(",", ":")) + "\n")
        op.objectCount += 1
        for value in node.values():
            if _is_connection(value):
                for child in _nodes(value):
                    self._emit(child, node["id"], out, op)


class _Handler(BaseHTTPRequestHandler):
    double: AdminDouble
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json", extra=None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path != f"/admin/api/{API_VERSION}/graphql.json":
            return self._send(404, b'{"errors":"Not Found"}')
        if self.headers.get("X-Shopify-Access-Token") != self.double.token:
            return self._send(401, b'{"errors":"[API] Invalid API key or access token (unrecognized login or '
                                   b'wrong password)"}')
        try:
            body = json.loads(raw)
        except ValueError:
            return self._send(400, b'{"errors":"Bad Request"}')
        answer = self.double.graphql(body if isinstance(body, dict) else {})
        self._send(200, json.dumps(answer, default=_jsonable).encode())

    def do_GET(self) -> None:
        match = re.match(r"^/bulk-results/([0-9]+\.jsonl)\?", self.path)
        path = self.double.dir / match.group(1) if match else None
        if path is None or not path.exists():
            return self._send(404, b"not found", "text/plain")
        size = path.stat().st_size
        wanted = re.match(r"^bytes=(\d+)-$", self.headers.get("Range") or "")
        self.double.downloads.append({"range": self.headers.get("Range"),
                                      "token_sent": "X-Shopify-Access-Token" in self.headers})
        start = int(wanted.group(1)) if wanted else 0
        if start >= size and wanted:
            return self._send(416, b"", "text/plain", {"Content-Range": f"bytes */{size}"})
        self.send_response(206 if wanted else 200)
        self.send_header("Content-Type", "application/jsonl")
        self.send_header("Content-Length", str(size - start))
        if wanted:
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        self.end_headers()
        with path.open("rb") as f:
            f.seek(start)
            shutil.copyfileobj(f, self.wfile, 64 * 1024)


def _jsonable(value):
    if isinstance(value, BulkOperation):
        return {k: v for k, v in vars(value).items() if k != "path"}
    raise TypeError(type(value))


def catalogue(shop: Shop, products: int, *, variants: int = 1, locations: int = 1) -> Shop:
    """``products`` products of ``variants`` variants each, with stock at ``locations`` locations."""
    places = [shop.add_location(f"Warehouse {i}") for i in range(1, locations + 1)]
    for n in range(1, products + 1):
        shop.add_product(f"Product {n}", handle=f"product-{n}",
                         variants=[{"sku": f"SKU-{n}-{v}", "title": f"Size {v}"} for v in range(1, variants + 1)],
                         stock=[(place, (n + i) % 40) for i, place in enumerate(places)])
    return shop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--variants", type=int, default=1)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default=os.environ.get("SHOPIFY_ACCESS_TOKEN", "shpat_test_token"))
    args = parser.parse_args()
    double = AdminDouble(catalogue(Shop(), args.products, variants=args.variants), token=args.token).start(args.port)
    print(double.server.server_address[1], flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        double.stop()
        sys.exit(0)


if __name__ == "__main__":
    main()
