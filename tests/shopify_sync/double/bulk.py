"""Bulk operations: the operation record, the checks of a bulk query, its JSONL flattening."""
from dataclasses import dataclass, field
from pathlib import Path

from graphql import FieldNode, InlineFragmentNode, get_named_type, is_leaf_type

from .schema import SCHEMA


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
