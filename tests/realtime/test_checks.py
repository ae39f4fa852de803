"""The add-on's system checks (django_oda_realtime/checks.py): each reports its id and message."""
import os
import subprocess
import sys

from django.core.checks import run_checks
from django.test import override_settings
import pytest

from django_oda_realtime.conf import DEFAULTS
from tests.servers import ROOT


def found(check_id: str, **kwargs) -> list:
    return [m for m in run_checks(**kwargs) if m.id == check_id]


def test_the_project_passes_every_check():
    assert [m for m in run_checks(include_deployment_checks=True) if m.id.startswith("realtime.")
            and m.id != "realtime.W011"] == []


def test_realtime_must_be_a_dict():
    with override_settings(REALTIME=["ALLOWED_ORIGINS"]):
        [message] = found("realtime.E001")
    assert message.msg == "REALTIME must be a dict, not list."


def test_an_unknown_key_names_the_closest_one():
    with override_settings(REALTIME={"PING_INTERVALL": 10, "NOT_A_SETTING_AT_ALL": 1}):
        messages = found("realtime.E002")
    assert [(m.msg, m.hint) for m in messages] == [
        ("Unknown REALTIME setting 'PING_INTERVALL'.", "Did you mean 'PING_INTERVAL'?"),
        ("Unknown REALTIME setting 'NOT_A_SETTING_AT_ALL'.", "See docs/install.md for the settings."),
    ]


@pytest.mark.parametrize("name, value, expected", [
    ("PING_INTERVAL", "25", "a number of seconds >= 0"),
    ("PING_INTERVAL", -1.0, "a number of seconds >= 0"),
    ("MAX_ROOMS_PER_CONNECTION", 2.5, "a whole number >= 0"),
    ("MAX_ROOMS_PER_CONNECTION", True, "a whole number >= 0"),
    ("SOCKETIO_MAX_PENDING", -3, "a whole number >= 0"),
    ("RESUME_MAX_BUFFERED", 0, "a whole number >= 1"),
    ("RESUME_MAX_BUFFERED", "10000", "a whole number >= 1"),
    ("REDIS_POOL_SIZE", 0, "a whole number >= 1"),
    ("OUTBOX", "yes", "True or False"),
    ("OUTBOX_ORPHAN_AFTER", -60, "a number of seconds >= 0"),
    ("OUTBOX_ORPHAN_AFTER", "60", "a number of seconds >= 0"),
    ("ALLOWED_ORIGINS", "https://shop.example.com", "a list of strings"),
    ("TRUSTED_PROXIES", ["10.0.0.0/8", "proxy.local"], "a list of addresses or networks "
                                                       "('proxy.local' does not appear to be an IPv4 or IPv6 network)"),
    ("REDIS_PREFIX", "has space", "1-40 characters of [A-Za-z0-9._-]"),
    ("METRICS_PREFIX", "my-app_", "a Prometheus name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*)"),
    ("BROADCAST_ROOM", "", "a non-empty string"),
])
def test_an_invalid_value_is_reported(name, value, expected):
    with override_settings(REALTIME={name: value}):
        [message] = found("realtime.E003")
    assert message.msg == f"REALTIME[{name!r}] must be {expected}, not {value!r}."


@pytest.mark.parametrize("name, value", [
    ("SOCKETIO_MAX_PENDING", None), ("TRUSTED_PROXIES", "127.0.0.1,::1"), ("PING_INTERVAL", 10),
    ("METRICS_PREFIX", "shop_"), ("REDIS_PREFIX", "staging"), ("ALLOWED_ORIGINS", ("*",)),
    ("RESUME_MAX_BUFFERED", 1), ("OUTBOX_ORPHAN_AFTER", 300),
])
def test_valid_values_pass(name, value):
    with override_settings(REALTIME={name: value}):
        assert found("realtime.E003") == []


def test_every_default_is_valid():
    with override_settings(REALTIME=dict(DEFAULTS)):
        assert found("realtime.E003") == [] and found("realtime.E002") == []


def test_channel_layers_without_a_default_layer():
    with override_settings(CHANNEL_LAYERS={"other": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}):
        [message] = found("realtime.E010")
    assert message.msg == "CHANNEL_LAYERS has no 'default' layer: every socket of the add-on would be closed (4012)."


def test_the_in_memory_layer_is_a_deployment_warning():
    memory = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    with override_settings(CHANNEL_LAYERS=memory, DEBUG=False):
        assert found("realtime.W011") == []  # not without --deploy
        [message] = found("realtime.W011", include_deployment_checks=True)
    assert message.msg.startswith("The in-memory channel layer serves one process only")
    redis = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": {}}}
    with override_settings(CHANNEL_LAYERS=redis, DEBUG=False):
        assert found("realtime.W011", include_deployment_checks=True) == []


def manage_check(tmp_path, settings_code: str) -> subprocess.CompletedProcess:
    """``manage.py check`` of this project with settings changed by ``settings_code`` (a subprocess:
    INSTALLED_APPS cannot change inside a test without running every app's ready() again)."""
    (tmp_path / "changed_settings.py").write_text("from tests.settings import *  # noqa\n" + settings_code)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "changed_settings",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    return subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)


def test_logout_routed_without_the_blacklist_app(tmp_path):
    result = manage_check(tmp_path, 'INSTALLED_APPS = [a for a in INSTALLED_APPS '
                                    'if a != "rest_framework_simplejwt.token_blacklist"]\n')
    assert result.returncode == 0, result.stderr  # a warning
    assert ("?: (realtime.W020) The logout view is routed but rest_framework_simplejwt.token_blacklist is not "
            "installed") in result.stderr
    result = manage_check(tmp_path, 'INSTALLED_APPS = [a for a in INSTALLED_APPS '
                                    'if a != "rest_framework_simplejwt.token_blacklist"]\n'
                                    'ROOT_URLCONF = "django_oda_realtime.ops.urls"\n')  # no logout view routed
    assert result.returncode == 0 and "realtime.W020" not in result.stderr, result.stderr
