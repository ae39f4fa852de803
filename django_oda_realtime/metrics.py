"""Prometheus metrics of the realtime add-on (``<prefix><noun>_<unit>``; the prefix is
``REALTIME["METRICS_PREFIX"]``, ``realtime_`` by default, ``oda_realtime_`` in this project).

Labels are low-cardinality: protocol, reason, event name, room kind, command name —
never a room, user or connection. Each process exposes its own registry
(``GET /metrics``); see docs/observability.md for multi-process deployments.
Counting on the fan-out path is per event, never per recipient.

The metrics are made on the first access to one of them (``metrics.CONNECTIONS``), not at import:
the prefix is a setting, and this module is imported while settings load. After that they are plain
module attributes (no lookup cost on the fan-out path). ``RealtimeConfig.ready()`` makes them.
"""
import threading

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily

class FastCounter:
    """A counter for the fan-out's per-socket path: a plain int (``Counter.inc`` takes a lock, ~0.3 µs
    per socket per event), exposed at scrape time like any counter of this registry."""

    def __init__(self, name: str, documentation: str) -> None:
        self.name = name
        self.documentation = documentation
        self.value = 0
        REGISTRY.register(self)

    def collect(self):
        yield CounterMetricFamily(self.name, self.documentation, value=self.value)


def _make(prefix: str) -> dict:
    def name(noun: str) -> str:
        return prefix + noun

    return {
        "PREFIX": prefix,
        "CONNECTIONS": Gauge(name("connections"), "Open realtime connections", ["protocol"]),
        "CONNECTS": Counter(name("connects_total"), "Accepted realtime connections", ["protocol"]),
        "REFUSALS": Counter(name("refusals_total"), "Refused connections by reason", ["reason"]),
        "DISCONNECTS": Counter(name("disconnects_total"), "Closed connections by reason", ["reason"]),
        "SUBSCRIPTIONS": Gauge(name("subscriptions"), "Room memberships of local connections", ["room_kind"]),
        "PUBLISHED": Counter(name("events_published_total"), "Events published to the channel layer", ["event"]),
        "PUBLISH_FAILURES": Counter(
            name("publish_failures_total"), "Events that could not be sent to the channel layer", ["event"]
        ),
        "EVENTS_RECEIVED": Counter(name("events_received_total"), "Events received by this process's hub", ["event"]),
        "DELIVERIES": Counter(name("deliveries_total"), "Frames written to sockets for events", ["protocol"]),
        "DROPPED": Counter(
            name("dropped_deliveries_total"), "Deliveries not made (socket closed or too slow)", ["reason"]
        ),
        "LATENCY": Histogram(
            name("delivery_latency_seconds"),
            "From publish to the last local delivery of an event",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        ),
        "COMMANDS": Counter(name("commands_total"), "Client commands by name and outcome", ["command", "outcome"]),
        "RATE_LIMITED": Counter(name("rate_limited_total"), "Client messages refused by the rate limit", ["protocol"]),
        "ERRORS": Counter(name("errors_total"), "Errors by kind", ["kind"]),
        "POLLS_WAITING": Gauge(name("polls_waiting"), "Socket.IO long-polling GETs waiting for packets"),
        "LAYER_UP": Gauge(name("channel_layer_up"), "1 if this process's hub can receive from the channel layer"),
        # The transactional outbox (django_oda_realtime/outbox.py, docs/design.md#outbox), measured by the relay.
        "OUTBOX_BACKLOG": Gauge(name("outbox_backlog"), "Committed outbox rows not yet published"),
        "OUTBOX_OLDEST_AGE": Gauge(name("outbox_oldest_age_seconds"), "Age of the oldest unpublished outbox row"),
        "OUTBOX_LAG": Histogram(
            name("outbox_relay_lag_seconds"),
            "From an event's creation (in its transaction) to its publication from the outbox",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        ),
        # Frames written straight to a daphne connection (django_oda_realtime/server/outlets.py): shows
        # the fast path is taken.
        "DIRECT_WRITES": FastCounter(name("direct_writes"), "Frames written straight to a daphne connection"),
    }


_NAMES = frozenset(
    "PREFIX CONNECTIONS CONNECTS REFUSALS DISCONNECTS SUBSCRIPTIONS PUBLISHED PUBLISH_FAILURES EVENTS_RECEIVED "
    "DELIVERIES DROPPED LATENCY COMMANDS RATE_LIMITED ERRORS LAYER_UP OUTBOX_BACKLOG OUTBOX_OLDEST_AGE OUTBOX_LAG "
    "DIRECT_WRITES POLLS_WAITING".split()
)


def __getattr__(name: str):
    if name not in _NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from .conf import rt_settings

    with _making:  # once, even when two threads ask first (a second registration would raise)
        if "PREFIX" not in globals():
            globals().update(_make(rt_settings.METRICS_PREFIX))
    return globals()[name]


_making = threading.Lock()
