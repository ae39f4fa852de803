"""Test settings: the project's, on PostgreSQL, with the in-memory layer unless a test asks for Redis."""
import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
os.environ.pop("REDIS_URL", None)

from oda_realtime.settings import *  # noqa: E402,F401,F403

import dj_database_url  # noqa: E402

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"), conn_max_age=0
    )
}
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
REALTIME = {"ALLOWED_ORIGINS": ["https://shop.example.com"], "METRICS_PREFIX": REALTIME["METRICS_PREFIX"]}
INSTALLED_APPS = [*INSTALLED_APPS, "tests.broadcast_app"]  # the Broadcast worked example (docs/extending.md)
