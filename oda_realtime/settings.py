"""Settings for the Oda Realtime project, read from the environment.

Every setting has a default that works for a newcomer (SQLite, the in-memory
channel layer); production sets DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS,
REALTIME_ALLOWED_ORIGINS, DATABASE_URL and REDIS_URL (see docs/security.md).
"""
from datetime import timedelta
from pathlib import Path
import json
import os

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it, or set DJANGO_DEBUG=1 for a development key."
        )
    SECRET_KEY = "dev-only-insecure-key-never-use-in-production-0123456789abcdef"

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")

INSTALLED_APPS = [
    "daphne",
    "dashboard",  # before the admin: its templates/admin/index.html adds the live dashboard link
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
    "channels",
    "django_oda_realtime",
    "inventory",
    "orders",
    "shopify_sync",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "oda_realtime.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = None
ASGI_APPLICATION = "oda_realtime.asgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        # Seconds a connection is kept for reuse (0: one per request or socket command);
        # production: 60 or more (docs/deployment.md). Not with DATABASE_POOL.
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "0")),
        conn_health_checks=env_bool("DATABASE_CONN_HEALTH_CHECKS", True),
    )
}
# DATABASE_POOL: Django's PostgreSQL connection pool (psycopg-pool): "1" for the defaults or a JSON
# object of its options, e.g. {"min_size": 2, "max_size": 10, "timeout": 5}. It manages the
# connections' lifetime itself, so Django refuses it with a CONN_MAX_AGE other than 0.
_pool = os.environ.get("DATABASE_POOL", "").strip()
if _pool and _pool.lower() not in {"0", "false", "no", "off"}:
    if "postgresql" not in DATABASES["default"]["ENGINE"]:
        raise ImproperlyConfigured("DATABASE_POOL needs a PostgreSQL DATABASE_URL")
    if DATABASES["default"]["CONN_MAX_AGE"]:
        raise ImproperlyConfigured(
            "DATABASE_POOL and DATABASE_CONN_MAX_AGE exclude each other: the pool keeps its connections; "
            "unset DATABASE_CONN_MAX_AGE (or set it to 0)"
        )
    try:
        _pool_options = True if _pool.lower() in {"1", "true", "yes", "on"} else json.loads(_pool)
    except ValueError:
        raise ImproperlyConfigured('DATABASE_POOL must be 1 or a JSON object such as {"max_size": 10}') from None
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = _pool_options
if "postgresql" in DATABASES["default"]["ENGINE"]:
    # libpq waits forever for a server that accepts and never answers; ORM calls of sockets run in
    # one thread, so every connect would hang behind it. Bounded, a socket is refused with 4012.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", int(os.environ.get("DATABASE_CONNECT_TIMEOUT", "5"))
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# collectstatic's output: DJANGO_STATIC_ROOT in production (outside the checkout, e.g.
# /var/lib/oda-realtime/static, docs/deployment.md), else staticfiles/ in the checkout.
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT") or BASE_DIR / "staticfiles")
# The ASGI application serves /static/ itself (the admin's and the live dashboard's files,
# found in the apps without collectstatic). Set DJANGO_SERVE_STATIC=0 when a proxy or CDN
# serves STATIC_ROOT instead.
SERVE_STATIC = env_bool("DJANGO_SERVE_STATIC", True)
# Hashed static names (ManifestStaticFilesStorage: long cache lifetimes, no stale files after a
# deploy) need collectstatic's manifest, so they go with a proxy serving STATIC_ROOT: on by default
# when DEBUG is off and DJANGO_SERVE_STATIC=0; DJANGO_STATIC_MANIFEST=0/1 decides otherwise.
if env_bool("DJANGO_STATIC_MANIFEST", not DEBUG and not SERVE_STATIC):
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
    }

# --- HTTPS behind a proxy (docs/deployment.md) ---------------------------------
# DJANGO_SECURE_PROXY_SSL_HEADER=1: the proxy terminates TLS and sets X-Forwarded-Proto; only
# with a proxy that overwrites the header (the shipped nginx and HAProxy configurations do).
if env_bool("DJANGO_SECURE_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT")
# /healthz, /readyz and /metrics answer over plain HTTP: balancers and scrapers call the process directly.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES")
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS")
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD")
# Full origins (https://admin.example.com) whose POSTs pass the CSRF check besides the host's own.
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

# --- Channel layer -----------------------------------------------------------
# REDIS_URL unset: the in-memory layer (one process only). Set: channels-redis.
# The pub/sub layer is the default: subscriptions live in the connection, so a
# Redis restart re-subscribes instead of erasing groups (docs/design.md#redis-restart), and there is
# no per-channel capacity to drop events silently. REALTIME_CHANNEL_LAYER=core
# selects the list-based core layer instead.
REDIS_URL = os.environ.get("REDIS_URL", "")
# One prefix for every Redis channel, group and key of the add-on: REALTIME_REDIS_PREFIX
# (CHANNEL_LAYER_PREFIX, its older name), else derived from the database and the Redis database
# number, so deployments sharing a Redis never hear each other (django_oda_realtime/isolation.py).
from django_oda_realtime.isolation import checked_prefix, deployment_prefix  # noqa: E402
from django_oda_realtime.layers import channel_layers  # noqa: E402

REDIS_PREFIX = checked_prefix(
    os.environ.get("REALTIME_REDIS_PREFIX") or os.environ.get("CHANNEL_LAYER_PREFIX")
    or deployment_prefix(DATABASES["default"], REDIS_URL)
)
CHANNEL_LAYER_PREFIX = REDIS_PREFIX
CHANNEL_LAYERS = channel_layers(
    REDIS_URL, CHANNEL_LAYER_PREFIX, core=os.environ.get("REALTIME_CHANNEL_LAYER", "pubsub") == "core"
)

# --- Authentication ----------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
}

SIMPLE_JWT = {
    "ALGORITHM": "HS256",  # pinned: the decoder accepts this algorithm only
    "SIGNING_KEY": os.environ.get("JWT_SIGNING_KEY", SECRET_KEY),
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=int(os.environ.get("JWT_ACCESS_MINUTES", "15"))),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=1),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
}

# --- Realtime ----------------------------------------------------------------
REALTIME = {
    "ALLOWED_ORIGINS": env_list("REALTIME_ALLOWED_ORIGINS", ""),
    # Count each user's sockets across processes (the per-user cap) in Redis when there is one.
    "PRESENCE_REDIS_URL": REDIS_URL or None,
    "REDIS_PREFIX": REDIS_PREFIX,
    # The metric names of this project's dashboards and alerts (docs/observability.md).
    "METRICS_PREFIX": "oda_realtime_",
}
# Any other realtime setting from REALTIME_<NAME> (JSON values: numbers, lists), e.g.
# REALTIME_IDLE_TIMEOUT=90. See django_oda_realtime/conf.py for the names and defaults.
for _name, _value in os.environ.items():
    if _name.startswith("REALTIME_") and _name not in (
        "REALTIME_ALLOWED_ORIGINS", "REALTIME_CHANNEL_LAYER", "REALTIME_REDIS_PREFIX"
    ):
        try:
            REALTIME[_name[len("REALTIME_"):]] = json.loads(_value)
        except ValueError:
            REALTIME[_name[len("REALTIME_"):]] = _value

SHOPIFY_WEBHOOK_SECRET = os.environ.get("SHOPIFY_WEBHOOK_SECRET", "")
SHOPIFY_WEBHOOK_OLD_SECRET = os.environ.get("SHOPIFY_WEBHOOK_OLD_SECRET", "")
SHOPIFY_SHOP_DOMAIN = os.environ.get("SHOPIFY_SHOP_DOMAIN", "")  # e.g. oda.myshopify.com (pull sync)
SHOPIFY_ACCESS_TOKEN = os.environ.get("SHOPIFY_ACCESS_TOKEN", "")  # Admin API token (pull sync)
# Webhook replay window and worker retries/retention (docs/shopify.md); unset: the code's defaults.
for _name in ("MAX_AGE", "MAX_ATTEMPTS", "RETRY_BASE", "RETRY_MAX", "RETENTION_DAYS"):
    if os.environ.get(f"SHOPIFY_WEBHOOK_{_name}", "").strip():
        globals()[f"SHOPIFY_WEBHOOK_{_name}"] = int(os.environ[f"SHOPIFY_WEBHOOK_{_name}"])

# LOG_FORMAT=plain (default, for development) or json (production: one JSON object a line
# with connection_id, user_id, reason... as fields; docs/observability.md). Tokens are redacted in both.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain").strip().lower()
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact": {"()": "django_oda_realtime.ops.logging.RedactSecretsFilter"},
        "request": {"()": "django_oda_realtime.server.accesslog.RequestContextFilter"},  # request_id on a request's records
        "throttle": {"()": "django_oda_realtime.ops.logging.RepeatThrottleFilter", "interval": 60.0},
    },
    "formatters": {
        "plain": {"class": "django_oda_realtime.ops.logging.PlainFormatter", "format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"class": "django_oda_realtime.ops.logging.JsonFormatter"},
    },
    "handlers": {
        # stdout, with the access log (docs/observability.md): one stream for a log pipeline.
        "console": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": LOG_FORMAT,
                    "filters": ["redact", "request"]},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.channels.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # Not Django's default handlers (with DEBUG, a plain stderr console, e.g. "Unauthorized: ..."
        # for every 401): django.* records go to the root's console like every other record.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        # Its receive loop logs a traceback every second while Redis is down (docs/observability.md).
        "channels_redis.pubsub": {"filters": ["throttle"]},
    },
}

# Notifications inbox and Web Push (docs/notifications.md). Keys: ``manage.py webpush_keys``.
NOTIFICATIONS_RETENTION_DAYS = int(os.environ.get("NOTIFICATIONS_RETENTION_DAYS", "30"))
WEBPUSH_VAPID_PRIVATE_KEY = os.environ.get("WEBPUSH_VAPID_PRIVATE_KEY", "")  # empty: push messages wait
WEBPUSH_VAPID_PUBLIC_KEY = os.environ.get("WEBPUSH_VAPID_PUBLIC_KEY", "")
WEBPUSH_VAPID_SUBJECT = os.environ.get("WEBPUSH_VAPID_SUBJECT", "mailto:ops@example.com")
WEBPUSH_MAX_ATTEMPTS = int(os.environ.get("WEBPUSH_MAX_ATTEMPTS", "8"))
WEBPUSH_RETRY_BASE_SECONDS = float(os.environ.get("WEBPUSH_RETRY_BASE_SECONDS", "30"))
WEBPUSH_ALLOW_HTTP_ENDPOINTS = False  # https only; the tests' local push service is plain http
