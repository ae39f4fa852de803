"""A fresh PostgreSQL database for the domain benchmarks (bench/domain.py, inbox.py, outbox.py,
webhooks_apply.py): the project's settings with a bench-only secret, no Redis unless the script
sets it up itself, and ``BENCH_DATABASE_URL`` (default ``postgres://postgres@127.0.0.1:5432/<name>``)
dropped, created again and migrated.

    from bench import fresh_db
    fresh_db.prepare("oda_bench_inbox")   # before anything imports Django models
"""
import os
from pathlib import Path
import sys

ROOT = Path(__file__).resolve().parent.parent


def prepare(name: str, log_level: str = "ERROR") -> str:
    """Configure Django for a benchmark on a new, migrated database; returns its URL."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oda_realtime.settings")
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("LOG_LEVEL", log_level)
    url = os.environ.get("BENCH_DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{name}")
    os.environ["DATABASE_URL"] = url
    recreate(url)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return url


def recreate(url: str) -> None:
    import psycopg

    base, _, name = url.rpartition("/")
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
