"""``manage.py serve`` serves the project's ASGI_APPLICATION (the add-on knows no project), or --application."""
from django.core.management import CommandError, call_command
from django.test import override_settings
import pytest

from django_oda_realtime.management.commands.serve import application_path


def test_the_application_comes_from_asgi_application():
    with override_settings(ASGI_APPLICATION="shopsite.asgi.application"):
        assert application_path(None) == "shopsite.asgi:application"
        assert application_path("other.asgi:app") == "other.asgi:app"


@pytest.mark.parametrize("value", [None, "", "application"])
def test_without_one_the_command_says_what_to_set(value):
    with override_settings(ASGI_APPLICATION=value), pytest.raises(CommandError) as raised:
        call_command("serve", "--port", "1")
    assert str(raised.value) == (
        'No ASGI application to serve: set ASGI_APPLICATION in your settings (e.g. "mysite.asgi.application") '
        "or pass --application mysite.asgi:application")
