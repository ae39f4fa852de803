"""Fixtures of the operations tests."""
from tests.clients import close_clients  # noqa: F401  (autouse: clients left open are closed)
