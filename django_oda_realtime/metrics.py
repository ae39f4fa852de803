"""Prometheus metrics of the realtime add-on (``oda_realtime_<noun>_<unit>``).

Labels are low-cardinality: protocol, reason, event name, room kind, command name —
never a room, user or connection. Each process exposes its own registry
(``GET /metrics``); see docs/observability.md for multi-process deployments.
Counting on the fan-out path is per event, never per recipient.
"""
from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily

CONNECTIONS = Gauge("oda_realtime_connections", "Open realtime connections", ["protocol"])
CONNECTS = Counter("oda_realtime_connects_total", "Accepted realtime connections", ["protocol"])
REFUSALS = Counter("oda_realtime_refusals_total", "Refused connections by reason", ["reason"])
DISCONNECTS = Counter("oda_realtime_disconnects_total", "Closed connections by reason", ["reason"])
SUBSCRIPTIONS = Gauge("oda_realtime_subscriptions", "Room memberships of local connections", ["room_kind"])
PUBLISHED = Counter("oda_realtime_events_published_total", "Events published to the channel layer", ["event"])
PUBLISH_FAILURES = Counter(
    "oda_realtime_publish_failures_total", "Events that could not be sent to the channel layer", ["event"]
)
EVENTS_RECEIVED = Counter("oda_realtime_events_received_total", "Events received by this process's hub", ["event"])
DELIVERIES = Counter("oda_realtime_deliveries_total", "Frames written to sockets for events", ["protocol"])
DROPPED = Counter("oda_realtime_dropped_deliveries_total", "Deliveries not made (socket closed or too slow)", ["reason"])
LATENCY = Histogram(
    "oda_realtime_delivery_latency_seconds",
    "From publish to the last local delivery of an event",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
COMMANDS = Counter("oda_realtime_commands_total", "Client commands by name and outcome", ["command", "outcome"])
RATE_LIMITED = Counter("oda_realtime_rate_limited_total", "Client messages refused by the rate limit", ["protocol"])
ERRORS = Counter("oda_realtime_errors_total", "Errors by kind", ["kind"])
LAYER_UP = Gauge("oda_realtime_channel_layer_up", "1 if this process's hub can receive from the channel layer")
# The transactional outbox (django_oda_realtime/outbox.py, docs/design.md#outbox), measured by the relay.
OUTBOX_BACKLOG = Gauge("oda_realtime_outbox_backlog", "Committed outbox rows not yet published")
OUTBOX_OLDEST_AGE = Gauge("oda_realtime_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row")
OUTBOX_LAG = Histogram(
    "oda_realtime_outbox_relay_lag_seconds",
    "From an event's creation (in its transaction) to its publication from the outbox",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


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


# Frames written straight to a daphne connection (django_oda_realtime/server/outlets.py): shows the fast path is taken.
DIRECT_WRITES = FastCounter("oda_realtime_direct_writes", "Frames written straight to a daphne connection")
