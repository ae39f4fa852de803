"""``seed_demo`` with DEBUG off (issue #17): no account with a published password, random ones printed once."""
import io
import re

from django.contrib.auth import authenticate
from django.core.management import call_command
import pytest

from inventory.management.commands.seed_demo import USERS

pytestmark = pytest.mark.django_db(transaction=True)


def seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def printed_passwords(output: str) -> dict[str, str]:
    return {username: re.search(rf"^  {username}\s+(\S+)", output, re.M).group(1) for username, *_ in USERS}


def test_with_debug_off_no_demo_password_works_and_the_printed_ones_do(settings):
    settings.DEBUG = False
    output = seed()
    assert "DEBUG is off" in output
    passwords = printed_passwords(output)
    for username, published, *_ in USERS:
        assert published not in output
        assert authenticate(username=username, password=published) is None
        assert passwords[username] != published and authenticate(username=username, password=passwords[username])
    again = printed_passwords(seed())
    assert all(again[u] != passwords[u] for u in passwords)  # a new run, new passwords
    assert authenticate(username="admin", password=passwords["admin"]) is None


def test_with_debug_on_the_published_demo_passwords(settings):
    settings.DEBUG = True
    output = seed()
    assert "admin-demo-pass" in output
    assert authenticate(username="admin", password="admin-demo-pass").is_superuser
