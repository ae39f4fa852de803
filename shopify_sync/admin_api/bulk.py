"""Bulk query operations: start one, wait for it, and where its JSONL result is.

Lifecycle (shopify.dev, "Perform bulk operations"): ``bulkOperationRunQuery`` answers with an
operation in ``CREATED``; it goes ``RUNNING`` then ``COMPLETED`` (with ``url``, valid seven days)
or ``FAILED``/``CANCELED``/``EXPIRED``. Each JSONL line is one object; an object of a nested
connection names its parent's id in ``__parentId`` and comes after its parent.
"""
from collections.abc import Callable
from dataclasses import dataclass
import time

from .client import AdminClient
from .errors import BulkOperationError

RUN_QUERY = """
mutation RunBulkQuery($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { id status }
    userErrors { field message }
  }
}
"""

STATUS_QUERY = """
query BulkOperationStatus($id: ID!) {
  node(id: $id) {
    ... on BulkOperation { id status errorCode objectCount rootObjectCount fileSize url partialDataUrl }
  }
}
"""

DONE = {"COMPLETED", "FAILED", "CANCELED", "EXPIRED"}


@dataclass(frozen=True)
class BulkStatus:
    id: str
    status: str
    error_code: str | None = None
    object_count: int = 0
    root_object_count: int = 0
    url: str | None = None


def start(client: AdminClient, query: str) -> str:
    """Start a bulk query; its operation id."""
    data = client.execute(RUN_QUERY, {"query": query})
    payload = data.get("bulkOperationRunQuery") or {}
    errors = payload.get("userErrors") or []
    if errors:
        raise BulkOperationError("Shopify refused the bulk query: "
                                 + "; ".join(str(e.get("message")) for e in errors[:3]))
    operation = payload.get("bulkOperation") or {}
    if not operation.get("id"):
        raise BulkOperationError("Shopify started no bulk operation")
    return operation["id"]


def status(client: AdminClient, operation_id: str) -> BulkStatus:
    node = client.execute(STATUS_QUERY, {"id": operation_id}).get("node")
    if not node:
        raise BulkOperationError(f"Bulk operation {operation_id} not found")
    return BulkStatus(id=node["id"], status=node["status"], error_code=node.get("errorCode"),
                      object_count=int(node.get("objectCount") or 0),
                      root_object_count=int(node.get("rootObjectCount") or 0), url=node.get("url"))


def wait(client: AdminClient, operation_id: str, *, interval: float = 1.0, max_interval: float = 10.0,
         sleep: Callable[[float], None] = time.sleep, on_poll: Callable[[BulkStatus], None] | None = None
         ) -> BulkStatus:
    """Poll until the operation is done (intervals growing to ``max_interval``); its last status."""
    while True:
        current = status(client, operation_id)
        if on_poll:
            on_poll(current)
        if current.status in DONE:
            return current
        sleep(interval)
        interval = min(max_interval, interval * 1.5)
