"""``AdminClient``: GraphQL queries to one shop's Admin API, throttling respected, and the
download of a bulk operation's JSONL result as a stream of lines.

The shop and token come from ``settings.SHOPIFY_SHOP_DOMAIN`` and ``settings.SHOPIFY_ACCESS_TOKEN``
(environment variables of the same names). The token is sent only to the shop, in the
``X-Shopify-Access-Token`` header, and never to the bulk result's storage URL; it appears in no
log line and no error message. Plain ``http://`` is accepted for loopback hosts only (the test
double); any other shop is reached over HTTPS.
"""
from collections.abc import Callable, Iterator
import http.client
import json
import logging
import time
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
import urllib.request

from django.conf import settings

from .errors import AdminAPIError, AuthenticationError, QueryError, ThrottledError
from .throttle import throttle_wait

logger = logging.getLogger("shopify_sync.admin_api")

API_VERSION = "2025-07"  # pinned: the schema subset in shopify_sync/schema/ is this version's
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
MAX_THROTTLE_RETRIES = 10
MAX_NETWORK_RETRIES = 3
CHUNK = 64 * 1024


def base_url(shop: str) -> str:
    """``https://<shop>`` for a shop domain; ``http://`` kept only for loopback hosts."""
    shop = (shop or "").strip().rstrip("/")
    if not shop:
        raise AuthenticationError("SHOPIFY_SHOP_DOMAIN is not set")
    if "://" not in shop:
        shop = f"https://{shop}"
    parts = urlsplit(shop)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.path or parts.query:
        raise AuthenticationError("SHOPIFY_SHOP_DOMAIN must be a host name such as oda.myshopify.com")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK:
        raise AuthenticationError("SHOPIFY_SHOP_DOMAIN: plain http is allowed for loopback test servers only")
    return f"{parts.scheme}://{parts.netloc}"


def _messages(errors: list) -> str:
    texts = [str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors[:3]]
    return "; ".join(texts)[:500]


def _is_throttled(errors: list) -> bool:
    return any(isinstance(e, dict) and (e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors)


class AdminClient:
    """One shop's GraphQL Admin API at the pinned ``API_VERSION``."""

    def __init__(self, shop: str, token: str, *, api_version: str = API_VERSION, timeout: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not token:
            raise AuthenticationError("SHOPIFY_ACCESS_TOKEN is not set")
        self.base = base_url(shop)
        self.endpoint = f"{self.base}/admin/api/{api_version}/graphql.json"
        self._token = token
        self.timeout = timeout
        self.sleep = sleep
        self.last_cost: dict | None = None
        self.throttled = 0  # THROTTLED answers received (and waited out)

    @classmethod
    def from_settings(cls, **options) -> "AdminClient":
        return cls(getattr(settings, "SHOPIFY_SHOP_DOMAIN", ""), getattr(settings, "SHOPIFY_ACCESS_TOKEN", ""),
                   **options)

    def __repr__(self) -> str:
        return f"<AdminClient {self.base}>"  # never the token

    def _post(self, body: bytes) -> dict:
        request = urllib.request.Request(self.endpoint, data=body, method="POST", headers={
            "Content-Type": "application/json", "Accept": "application/json",
            "X-Shopify-Access-Token": self._token,
        })
        for attempt in range(MAX_NETWORK_RETRIES + 1):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read())
            except HTTPError as e:
                e.close()  # the error response holds the connection (its code and headers stay readable)
                if e.code in (401, 403):
                    raise AuthenticationError(
                        f"Shopify refused the access token for {self.base} (HTTP {e.code}): check "
                        "SHOPIFY_ACCESS_TOKEN and the app's access scopes") from None
                if e.code == 429 or e.code >= 500:
                    if attempt < MAX_NETWORK_RETRIES:
                        retry_after = e.headers.get("Retry-After") if e.headers else None
                        self.sleep(float(retry_after) if (retry_after or "").isdigit() else 2.0 ** attempt)
                        continue
                raise AdminAPIError(f"Shopify answered HTTP {e.code} for {self.endpoint}") from None
            except (URLError, TimeoutError, ConnectionError) as e:
                if attempt < MAX_NETWORK_RETRIES:
                    self.sleep(2.0 ** attempt)
                    continue
                raise AdminAPIError(f"Could not reach {self.base}: {getattr(e, 'reason', e)}") from None
            except ValueError as e:
                raise AdminAPIError(f"Shopify's answer was not JSON: {e}") from None
        raise AdminAPIError("unreachable")  # pragma: no cover

    def execute(self, query: str, variables: dict | None = None) -> dict:
        """The ``data`` of a query; waits out ``THROTTLED`` answers as their ``extensions.cost`` says."""
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        for attempt in range(MAX_THROTTLE_RETRIES + 1):
            answer = self._post(body)
            if not isinstance(answer, dict):
                raise AdminAPIError("Shopify's answer was not a JSON object")
            cost = (answer.get("extensions") or {}).get("cost")
            self.last_cost = cost
            errors = answer.get("errors") or []
            if errors and _is_throttled(errors):
                self.throttled += 1
                if attempt == MAX_THROTTLE_RETRIES:
                    break
                wait = throttle_wait(cost, attempt)
                logger.info("Shopify throttled a query (cost %s); retrying in %.2f s",
                            (cost or {}).get("requestedQueryCost"), wait)
                self.sleep(wait)
                continue
            if errors:
                raise QueryError(f"Shopify refused the query: {_messages(errors)}")
            data = answer.get("data")
            if not isinstance(data, dict):
                raise AdminAPIError("Shopify's answer had no data")
            return data
        raise ThrottledError(f"Shopify still throttled the query after {MAX_THROTTLE_RETRIES} retries")

    def stream_lines(self, url: str, start: int = 0) -> Iterator[tuple[bytes, int]]:
        """Each line of the file at ``url`` from byte ``start`` on, with the byte offset after it.

        Streamed: one line in memory at a time. Asks for ``Range: bytes=start-``; a server that
        ignores it (200) has its first ``start`` bytes read and dropped. No Shopify token is sent:
        the URL is a signed link to storage.
        """
        headers = {"Range": f"bytes={start}-"} if start else {}
        request = urllib.request.Request(url, headers=headers)
        try:
            response = urllib.request.urlopen(request, timeout=self.timeout)
        except HTTPError as e:
            e.close()  # the error response holds the connection
            if e.code == 416 and start:
                return  # nothing after ``start``: the file was read to its end
            raise AdminAPIError(f"Downloading the bulk result failed (HTTP {e.code})") from None
        except (URLError, TimeoutError, ConnectionError) as e:
            raise AdminAPIError(f"Could not download the bulk result: {getattr(e, 'reason', e)}") from None
        with response:
            offset = 0
            if start and response.status != 206:
                while offset < start:
                    chunk = response.read(min(CHUNK, start - offset))
                    if not chunk:
                        return
                    offset += len(chunk)
            offset = start
            try:
                for line in response:
                    offset += len(line)
                    yield line, offset
            except (OSError, http.client.HTTPException) as e:
                raise AdminAPIError(f"The bulk result download broke off at byte {offset}: {e}") from None
