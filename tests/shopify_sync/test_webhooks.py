"""``POST /shopify/webhooks/``: signatures over the raw body, deduplication, bad requests."""
import base64
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
import hashlib
import hmac
import json
import threading

from channels.db import database_sync_to_async as db
from django.db import connections
from django.test import Client
import pytest

from shopify_sync.models import WebhookDelivery
from shopify_sync.webhooks import sign
from tests.domain import subscribe

SECRET = "whsec-current-0123456789"
OLD_SECRET = "whsec-previous-9876543210"
URL = "/shopify/webhooks/"
BODY = json.dumps({"id": 632910392, "title": "Linen Shirt", "status": "active", "handle": "linen-shirt",
                   "body_html": "<p>long description</p>", "vendor": "Oda", "variants": [],
                   "updated_at": "2025-01-10T12:00:00-05:00"}).encode()


def now_iso(seconds_ago: float = 0) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds_ago)).isoformat().replace("+00:00", "Z")


@pytest.fixture(autouse=True)
def secrets(settings):
    settings.SHOPIFY_WEBHOOK_SECRET = SECRET
    settings.SHOPIFY_WEBHOOK_OLD_SECRET = ""
    settings.SHOPIFY_WEBHOOK_MAX_BYTES = 64 * 1024


SIGNED = object()


def post(body=BODY, *, signature=SIGNED, event_id="evt-1", webhook_id="wh-1", topic="products/update",
         content_type="application/json", client=None, **headers):
    extra = {"HTTP_X_SHOPIFY_TOPIC": topic, "HTTP_X_SHOPIFY_SHOP_DOMAIN": "oda.myshopify.com",
             "HTTP_X_SHOPIFY_API_VERSION": "2025-01", "HTTP_X_SHOPIFY_TRIGGERED_AT": now_iso()}
    if signature is not False:
        extra["HTTP_X_SHOPIFY_HMAC_SHA256"] = sign(body, SECRET) if signature is SIGNED else signature
    if event_id:
        extra["HTTP_X_SHOPIFY_EVENT_ID"] = event_id
    if webhook_id:
        extra["HTTP_X_SHOPIFY_WEBHOOK_ID"] = webhook_id
    extra.update(headers)
    return (client or Client()).generic("POST", URL, body, content_type=content_type, **extra)


@pytest.mark.django_db
def test_a_signed_webhook_is_stored_once():
    first, again = post(), post()
    assert (first.status_code, first.json()) == (200, {"status": "accepted"})
    assert (again.status_code, again.json()) == (200, {"status": "duplicate"})
    delivery = WebhookDelivery.objects.get()
    assert (delivery.topic, delivery.event_id, delivery.webhook_id, delivery.shop_domain) == (
        "products/update", "evt-1", "wh-1", "oda.myshopify.com")
    assert delivery.payload["title"] == "Linen Shirt"


@pytest.mark.django_db
def test_dedupe_on_event_id_and_on_webhook_id():
    assert post(event_id="e1", webhook_id="w1").json()["status"] == "accepted"
    assert post(event_id="e1", webhook_id="w2").json()["status"] == "duplicate"  # same event, another delivery
    assert post(event_id=None, webhook_id="w1").json()["status"] == "duplicate"
    other = BODY.replace(b"Linen", b"Silk ")  # another body: the digest does not match either
    assert post(other, event_id=None, webhook_id="w3").json()["status"] == "accepted"
    assert post(other, event_id="e1", webhook_id="w4").json()["status"] == "duplicate"
    assert WebhookDelivery.objects.count() == 2


def _hex(body):
    return hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


BAD_SIGNATURES = {
    "missing": False,
    "empty": "",
    "wrong secret": base64.b64encode(hmac.new(b"nope", BODY, hashlib.sha256).digest()).decode(),
    "hex digest": _hex(BODY),
    "truncated": sign(BODY, SECRET)[:20],
    "not base64": "!!!not-base64!!!",
    "non-ascii": "é" * 44,
    "signature of a re-serialised body": sign(json.dumps(json.loads(BODY), separators=(",", ":")).encode(), SECRET),
    "sha1": base64.b64encode(hmac.new(SECRET.encode(), BODY, hashlib.sha1).digest()).decode(),
}


@pytest.mark.django_db
@pytest.mark.parametrize("name", BAD_SIGNATURES)
def test_bad_signatures_are_401_and_store_nothing(name):
    response = post(signature=BAD_SIGNATURES[name])
    assert (response.status_code, response.json()) == (401, {"error": "invalid_signature"})
    assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db
def test_a_body_changed_after_signing_is_refused():
    assert post(BODY.replace(b"Linen", b"Silk "), signature=sign(BODY, SECRET)).status_code == 401


@pytest.mark.django_db
def test_old_secret_accepted_during_rotation_only(settings):
    signed_old = sign(BODY, OLD_SECRET)
    assert post(signature=signed_old).status_code == 401
    settings.SHOPIFY_WEBHOOK_OLD_SECRET = OLD_SECRET
    assert post(signature=signed_old).status_code == 200


@pytest.mark.django_db
def test_no_secret_configured_refuses_everything(settings):
    settings.SHOPIFY_WEBHOOK_SECRET = ""
    assert post(signature=sign(BODY, "")).status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_wrong_method_is_405(method):
    response = getattr(Client(), method)(URL)
    assert response.status_code == 405 and response["Allow"] == "POST"


@pytest.mark.django_db
def test_bad_requests():
    assert post(content_type="text/plain").status_code == 415
    assert post(content_type="application/x-www-form-urlencoded").status_code == 415
    big = json.dumps({"id": 1, "pad": "x" * 70_000}).encode()
    assert post(big).status_code == 413
    assert post(b"{not json").status_code == 400
    assert post(b"[1, 2]").status_code == 400
    assert post(b"\xff\xfe").status_code == 400
    assert post(topic="").status_code == 400
    assert post(topic="products/update; DROP").status_code == 400
    assert post(event_id=None, webhook_id=None).status_code == 400
    assert post(event_id="x" * 101, webhook_id=None).status_code == 400
    assert not WebhookDelivery.objects.exists()
    assert post(content_type="application/json; charset=utf-8").status_code == 200


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_parallel_duplicates_are_processed_once():
    barrier = threading.Barrier(8)

    def deliver(i):
        try:
            barrier.wait(timeout=10)
            return post(event_id="evt-race", webhook_id=f"wh-{i}").json()["status"]
        finally:
            connections.close_all()

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(deliver, range(8)))
    assert sorted(statuses) == ["accepted"] + ["duplicate"] * 7
    assert WebhookDelivery.objects.count() == 1


@pytest.mark.django_db(transaction=True)
async def test_received_is_broadcast_with_a_summary_once(make_user, token, connect):
    sock = await connect(token(await db(make_user)(perms=["shopify_sync.view_syncjob"])))
    await subscribe(sock, "shopify", rooms=["shopify:all"])
    outsider = await connect(token(await db(make_user)()))
    await outsider.command("subscribe:shopify")

    await db(post)()
    frame = await sock.receive_event("shopify:webhook:received")
    data = frame["data"]
    assert data == {
        "webhookId": "wh-1", "eventId": "evt-1", "topic": "products/update", "shop": "oda.myshopify.com",
        "apiVersion": "2025-01", "receivedAt": data["receivedAt"],
        "summary": {"id": "632910392", "title": "Linen Shirt", "status": "active", "handle": "linen-shirt"},
    }
    assert "body_html" not in frame["data"]["summary"]
    await db(post)()  # the same delivery again: nothing sent
    assert await sock.nothing()
    assert await outsider.nothing()


# -- replay (issue #11 item 5) ---------------------------------------------------------------

ORDER = json.dumps({"id": 450789469, "name": "#1001", "financial_status": "paid", "fulfillment_status": None,
                    "line_items": [], "updated_at": "2025-01-10T12:00:00-05:00", "cancelled_at": None}).encode()


@pytest.mark.django_db
def test_the_same_signed_body_under_new_ids_is_a_duplicate():
    assert post(event_id="e1", webhook_id="w1").json()["status"] == "accepted"
    assert post(event_id="e2", webhook_id="w2").json()["status"] == "duplicate"
    assert post(event_id=None, webhook_id="w3").json()["status"] == "duplicate"
    assert WebhookDelivery.objects.count() == 1


@pytest.mark.django_db
def test_one_body_under_two_topics_that_fit_it_is_two_deliveries():
    # orders/updated and orders/paid legitimately carry the same body.
    assert post(ORDER, topic="orders/updated", event_id="e1", webhook_id="w1").json()["status"] == "accepted"
    assert post(ORDER, topic="orders/paid", event_id="e2", webhook_id="w2").json()["status"] == "accepted"
    assert post(ORDER, topic="orders/paid", event_id="e3", webhook_id="w3").json()["status"] == "duplicate"
    assert sorted(WebhookDelivery.objects.values_list("topic", flat=True)) == ["orders/paid", "orders/updated"]


RELABELS = {
    "product as order": (BODY, "orders/updated"),
    "product as delete": (BODY, "products/delete"),
    "product as customer": (BODY, "customers/update"),
    "unpaid order as paid": (ORDER.replace(b'"paid"', b'"pending"'), "orders/paid"),
    "order as cancelled": (ORDER, "orders/cancelled"),
    "order as product": (ORDER, "products/update"),
    "order as privacy request": (ORDER, "customers/redact"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("name", RELABELS)
def test_a_body_relabelled_with_a_topic_it_does_not_fit_is_refused(name):
    body, topic = RELABELS[name]
    response = post(body, topic=topic, event_id="relabelled", webhook_id="relabelled")
    assert (response.status_code, response.json()) == (400, {"error": "topic_mismatch"})
    assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db
def test_unknown_topics_are_not_shape_checked():
    assert post(topic="collections/update").json()["status"] == "accepted"


@pytest.mark.django_db
def test_a_delivery_older_than_the_retry_horizon_is_refused(settings):
    response = post(HTTP_X_SHOPIFY_TRIGGERED_AT=now_iso(5 * 3600 + 60))
    assert (response.status_code, response.json()) == (400, {"error": "stale_delivery"})
    assert post(HTTP_X_SHOPIFY_TRIGGERED_AT=now_iso(4 * 3600 + 60)).json()["status"] == "accepted"  # a late retry
    settings.SHOPIFY_WEBHOOK_MAX_AGE = 600
    assert post(event_id="e9", webhook_id="w9", topic="products/create",
                HTTP_X_SHOPIFY_TRIGGERED_AT=now_iso(601)).status_code == 400
    assert WebhookDelivery.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["", "yesterday", "2025-01-10T12:00:00", "9" * 120])
def test_a_missing_or_unreadable_triggered_at_is_refused(value):
    assert post(HTTP_X_SHOPIFY_TRIGGERED_AT=value).json() == {"error": "invalid_headers"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_parallel_replays_under_new_ids_store_one():
    barrier = threading.Barrier(8)

    def deliver(i):
        try:
            barrier.wait(timeout=10)
            return post(event_id=f"evt-{i}", webhook_id=f"wh-{i}").json()["status"]
        finally:
            connections.close_all()

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(deliver, range(8)))
    assert sorted(statuses) == ["accepted"] + ["duplicate"] * 7
    assert WebhookDelivery.objects.count() == 1
