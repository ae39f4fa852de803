"""The Admin API double refuses what Shopify refuses, so the client's mistakes cannot pass.

Also: every query the pull sync sends is valid against the committed schema subset and
within Shopify's single-query cost limit.
"""
import json
import urllib.error
import urllib.request

from graphql import parse, validate
import pytest

from shopify_sync.admin_api import AdminClient, AuthenticationError, BulkOperationError, QueryError
from shopify_sync.admin_api import bulk
from shopify_sync.admin_api.throttle import throttle_wait
from shopify_sync.pull.specs import SPECS
from tests.shopify_sync.double import MAX_COST, SCHEMA, query_cost

ALL_QUERIES = [
    pytest.param(query, {"first": first, "id": "gid://shopify/Product/1"}, id=f"{spec.resource}-{kind}")
    for spec in SPECS.values()
    for kind, query, first in [("page", spec.page_query(), spec.page_size), ("count", spec.count_query(), None),
                               ("bulk", spec.bulk_query(), None)]
    + ([("children", spec.children_query(), 100)] if spec.child else [])  # the runner's sizes
] + [pytest.param(bulk.RUN_QUERY, {"query": "{ x }"}, id="bulk-run"),
     pytest.param(bulk.STATUS_QUERY, {"id": "gid://shopify/BulkOperation/1"}, id="bulk-status")]


@pytest.mark.parametrize(("query", "variables"), ALL_QUERIES)
def test_every_query_of_the_client_is_valid_and_affordable(query, variables):
    document = parse(query)
    assert validate(SCHEMA, document) == []
    assert query_cost(document, variables) <= MAX_COST


def _post(url: str, headers: dict, body: dict) -> tuple[int, dict | str]:
    request = urllib.request.Request(f"{url}/admin/api/2025-07/graphql.json", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", **headers}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_missing_or_wrong_token_is_401(double):
    body = {"query": "{ productsCount { count } }"}
    assert _post(double.url, {}, body)[0] == 401
    assert _post(double.url, {"X-Shopify-Access-Token": "shpat_wrong"}, body)[0] == 401
    status, answer = _post(double.url, {"X-Shopify-Access-Token": double.token}, body)
    assert (status, answer["data"]) == (200, {"productsCount": {"count": 0}})
    with pytest.raises(AuthenticationError, match="HTTP 401"):
        AdminClient(double.url, "shpat_wrong").execute("{ productsCount { count } }")


def test_a_misspelled_field_is_a_graphql_error(double):
    client = AdminClient(double.url, double.token)
    with pytest.raises(QueryError, match="Cannot query field 'titel' on type 'Product'"):
        client.execute("{ products(first: 5) { nodes { id titel } } }")
    with pytest.raises(QueryError, match="Unknown argument 'frist'"):
        client.execute("{ products(frist: 5) { nodes { id } } }")
    with pytest.raises(QueryError, match="first or last"):
        client.execute("{ products { nodes { id } } }")  # outside bulk, a connection needs a size
    with pytest.raises(QueryError, match="exceeds the single query max cost"):
        client.execute("{ products(first: 250) { nodes { variants(first: 250) { nodes { id } } } } }")


def test_a_bad_bulk_query_is_refused(double):
    client = AdminClient(double.url, double.token)
    with pytest.raises(BulkOperationError, match="Cannot query field 'handel'"):
        bulk.start(client, "{ products { edges { node { id handel } } } }")
    with pytest.raises(BulkOperationError, match="at least one connection"):
        bulk.start(client, "{ productsCount { count } }")
    assert double.operations == {}


def test_a_second_bulk_query_waits_for_the_first(double):
    double.bulk_delay = 2.0
    client = AdminClient(double.url, double.token)
    first = bulk.start(client, SPECS["customers"].bulk_query())
    with pytest.raises(BulkOperationError, match="already in progress"):
        bulk.start(client, SPECS["customers"].bulk_query())
    assert bulk.wait(client, first, interval=0.1).status == "COMPLETED"


def test_only_the_shop_gets_the_token(double, shop):
    shop.add_customer("Ada", "Lovelace", "ada@example.com")
    client = AdminClient(double.url, double.token)
    done = bulk.wait(client, bulk.start(client, SPECS["customers"].bulk_query()), interval=0.1)
    lines = [json.loads(line) for line, _ in client.stream_lines(done.url)]
    assert lines[0]["email"] == "ada@example.com"
    assert double.downloads == [{"range": None, "token_sent": False}]
    assert double.token not in repr(client)


def test_http_is_for_loopback_only():
    with pytest.raises(AuthenticationError, match="loopback"):
        AdminClient("http://oda.myshopify.com", "shpat_x")
    assert AdminClient("oda.myshopify.com", "shpat_x").endpoint == \
        "https://oda.myshopify.com/admin/api/2025-07/graphql.json"
    with pytest.raises(AuthenticationError, match="SHOPIFY_ACCESS_TOKEN"):
        AdminClient("oda.myshopify.com", "")


@pytest.mark.parametrize(("cost", "wait"), [
    ({"requestedQueryCost": 577, "throttleStatus": {"currentlyAvailable": 77, "restoreRate": 50}}, 10.05),
    ({"requestedQueryCost": 100, "throttleStatus": {"currentlyAvailable": 100, "restoreRate": 50}}, 0.05),
    (None, 1.0),
], ids=["missing-points-over-rate", "already-enough", "no-cost-data"])
def test_throttle_wait(cost, wait):
    assert throttle_wait(cost) == pytest.approx(wait)
