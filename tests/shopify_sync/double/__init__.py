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

Run alone for the benchmark: ``python -m tests.shopify_sync.double --products 50000``
prints the port on its first line, then serves until killed.

Modules: ``shop`` (the in-memory data), ``schema`` (the schema subset, its resolvers, the query
cost and the leaky bucket), ``bulk`` (bulk operations, their JSONL), ``server`` (HTTP).
"""
from .schema import API_VERSION, MAX_COST, SCHEMA, query_cost
from .server import AdminDouble
from .shop import Shop, catalogue, gid

__all__ = ["API_VERSION", "MAX_COST", "SCHEMA", "AdminDouble", "Shop", "catalogue", "gid", "query_cost"]
