"""The schema subset (validated against, executed by graphql-core), its resolvers over the
shop, Shopify's query cost estimate and the leaky bucket."""
import base64
from pathlib import Path
import time

from graphql import (
    FieldNode, FragmentSpreadNode, GraphQLError, InlineFragmentNode, OperationType, build_schema, get_named_type,
    is_leaf_type, value_from_ast,
)

API_VERSION = "2025-07"
SCHEMA_PATH = Path(__file__).resolve().parents[3] / "shopify_sync" / "schema" / f"admin-{API_VERSION}.graphql"
SCHEMA = build_schema(SCHEMA_PATH.read_text())
MAX_COST = 1000
MAX_PAGE = 250
BULK_WINDOW = 250  # top-level nodes executed at a time while writing a bulk result


def _cursor(i: int) -> str:
    return base64.b64encode(f"i:{i}".encode()).decode()


def _index(cursor: str | None) -> int:
    if cursor is None:
        return -1
    try:
        return int(base64.b64decode(cursor).decode().split(":", 1)[1])
    except (ValueError, IndexError, UnicodeDecodeError):
        raise GraphQLError("Invalid cursor for current pagination sort.") from None


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
