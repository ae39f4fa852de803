"""The HTTP server: ``POST /admin/api/2025-07/graphql.json`` and the bulk result files."""
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
from pathlib import Path
import re
import shutil
import tempfile
import threading
import time

from graphql import GraphQLError, OperationType, execute, parse, validate

from .bulk import BulkOperation, _connections, _is_connection, _nodes
from .schema import API_VERSION, BULK_WINDOW, MAX_COST, SCHEMA, Bucket, _actual, query_cost
from .shop import Shop, gid


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
