"""Production settings from the environment (issue #17): ``check --deploy`` is clean with the
documented environment (deploy/production.env), pooling and connection reuse exclude each other,
hashed static names with collectstatic. Each runs ``manage.py`` in a subprocess, as an operator would."""
import json
import os
from pathlib import Path
import secrets
import subprocess
import sys

import pytest

from tests.servers import ROOT, database_url

pytestmark = pytest.mark.django_db


def production_env() -> dict[str, str]:
    """deploy/production.env, with a real secret and this test run's database and Redis."""
    env = {}
    for line in (ROOT / "deploy" / "production.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    env["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(64)
    env["DATABASE_URL"] = database_url()
    return env


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("DJANGO_", "DATABASE_", "REALTIME_", "PYTEST")) and k not in ("REDIS_URL", "LOG_FORMAT")}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=60)


def test_check_deploy_is_clean_with_the_documented_production_environment():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_without_it():
    result = manage("check", "--deploy", "--fail-level", "WARNING",
                    env={"DJANGO_SECRET_KEY": secrets.token_urlsafe(64), "DATABASE_URL": database_url()})
    assert result.returncode != 0
    for check in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check in result.stderr


def settings_of(env: dict[str, str], expression: str):
    code = f"import json; from django.conf import settings; from django.db import connection; print(json.dumps({expression}))"
    result = manage("shell", "-c", code, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_environment_reads_through():
    env = production_env()
    got = settings_of(env, "[settings.SECURE_PROXY_SSL_HEADER, settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE,"
                           " settings.SECURE_HSTS_SECONDS, settings.CSRF_TRUSTED_ORIGINS, settings.SECURE_SSL_REDIRECT,"
                           " str(settings.STATIC_ROOT), settings.DATABASES['default']['CONN_MAX_AGE'],"
                           " settings.STORAGES['staticfiles']['BACKEND'], settings.REALTIME['TRUSTED_PROXIES']]")
    assert got == [["HTTP_X_FORWARDED_PROTO", "https"], True, True, 31536000, ["https://rt.example.com"], True,
                   "/var/lib/oda-realtime/static", 60,
                   "django.contrib.staticfiles.storage.ManifestStaticFilesStorage", "127.0.0.1,::1"]


def test_pool_and_conn_max_age_exclude_each_other():
    env = {"DJANGO_SECRET_KEY": "x" * 60, "DATABASE_URL": database_url(), "DATABASE_POOL": "1",
           "DATABASE_CONN_MAX_AGE": "60"}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "exclude each other" in result.stderr


def test_the_pool_serves_queries():
    env = {"DJANGO_SECRET_KEY": "x" * 60, "DATABASE_URL": database_url(), "DATABASE_POOL": '{"min_size": 1, "max_size": 3}'}
    got = settings_of(env, "[connection.cursor().execute('SELECT 1') is not None, type(connection.pool).__name__,"
                           " connection.pool.max_size]")
    assert got == [True, "ConnectionPool", 3]


def test_collectstatic_hashes_names_when_a_proxy_serves_them(tmp_path: Path):
    env = {"DJANGO_SECRET_KEY": "x" * 60, "DATABASE_URL": database_url(), "DJANGO_SERVE_STATIC": "0",
           "DJANGO_STATIC_ROOT": str(tmp_path)}
    result = manage("collectstatic", "--noinput", env=env)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "staticfiles.json").read_text())["paths"]
    hashed = manifest["dashboard/live.js"]
    assert hashed != "dashboard/live.js" and (tmp_path / hashed).exists()


@pytest.mark.parametrize("env", [{"DJANGO_DEBUG": "1"}, {"DJANGO_SECRET_KEY": "x" * 60}], ids=["make-run", "app-serves-static"])
def test_unhashed_names_when_the_app_serves_static(env):
    """``make run`` and the default (the ASGI app serves /static/ from the apps, no collectstatic)."""
    got = settings_of({"DATABASE_URL": database_url(), **env},
                      "getattr(settings, 'STORAGES', {}).get('staticfiles', {}).get('BACKEND')")
    assert got == "django.contrib.staticfiles.storage.StaticFilesStorage"
