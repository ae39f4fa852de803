"""Deployments sharing one Redis never hear each other (issue #11 item 7): every Redis channel,
group and key of the add-on carries a prefix derived from the deployment's identity.

Redis pub/sub ignores the database number: before, a publish from a process on ``…/0`` reached
sockets of a server on ``…/1``, and a second checkout closed the first one's sockets.
"""
import asyncio
import json
import os
import re
import subprocess
import sys

from channels.db import database_sync_to_async
from channels.layers import channel_layers
import dj_database_url
import pytest
import redis as redis_lib
import websockets

from django_oda_realtime import publish
from django_oda_realtime.exceptions import CloseCode
from django_oda_realtime.isolation import deployment_prefix, redis_db_number, redis_prefix
from django_oda_realtime.accounts.revocation import close_sockets
from django_oda_realtime.rooms import group_for
from tests.hardening.support import close_code, pubsub_layer_settings
from tests.realtime.test_cross_process import command, receive_event
from tests.servers import ROOT, ServerProcess, database_url

PG = {"ENGINE": "django.db.backends.postgresql", "HOST": "db.internal", "PORT": 5432, "NAME": "shop"}


@pytest.mark.parametrize(("other", "redis_url"), [
    ({**PG, "NAME": "shop_staging"}, "redis://r:6379/0"),
    ({**PG, "HOST": "db2.internal"}, "redis://r:6379/0"),
    ({**PG, "PORT": 5433}, "redis://r:6379/0"),
    ({**PG, "ENGINE": "django.db.backends.mysql"}, "redis://r:6379/0"),
    (PG, "redis://r:6379/3"),
], ids=["database name", "host", "port", "engine", "redis database number"])
def test_another_deployment_gets_another_prefix(other, redis_url):
    assert deployment_prefix(other, redis_url) != deployment_prefix(PG, "redis://r:6379/0")


def test_the_same_deployment_gets_the_same_prefix_and_a_valid_group_name():
    prefix = deployment_prefix(PG, "redis://:pw@r:6379/0")
    assert prefix == deployment_prefix(dict(PG), "redis://other-password@r:6379")  # db 0 either way
    assert re.fullmatch(r"rt[0-9a-f]{12}", prefix)
    # channels-redis names a group "<prefix>__group__<group>": within its 100 characters.
    group = group_for("inventory:location:" + "9" * 20)
    assert re.fullmatch(r"[A-Za-z0-9._-]+", f"{prefix}__group__{group}")
    assert len(f"{prefix}__group__{group}") < 100


@pytest.mark.parametrize(("url", "number"), [
    ("redis://127.0.0.1:6379/7", 7), ("redis://127.0.0.1:6379", 0), ("rediss://:pw@h:6380/12", 12),
    ("unix:///run/redis.sock?db=4", 4), (None, 0),
])
def test_redis_database_number(url, number):
    assert redis_db_number(url) == number


def test_the_prefix_does_not_come_from_the_secret_key(settings):
    before = redis_prefix()
    settings.SECRET_KEY = "another-" + settings.SECRET_KEY
    assert redis_prefix() == before
    settings.REALTIME = {**settings.REALTIME, "REDIS_PREFIX": "staging"}
    assert redis_prefix() == "staging"


def project_settings(**env) -> dict:
    """The channel layer prefix and REALTIME prefixes the project's settings give for ``env``."""
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.CHANNEL_LAYERS['default']['CONFIG']['prefix'], s.REALTIME['REDIS_PREFIX']]))"
    )
    base = {k: v for k, v in os.environ.items()
            if k not in ("CHANNEL_LAYER_PREFIX", "REALTIME_REDIS_PREFIX") and not k.startswith("PYTEST")}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**base, "DJANGO_SETTINGS_MODULE": "oda_realtime.settings", "DJANGO_SECRET_KEY": "k" * 50, **env},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_project_settings_derive_the_prefix_and_take_one_setting_or_its_alias():
    db = "postgres://u@db.internal:5432/shop"
    derived = deployment_prefix(dj_database_url.parse(db), "redis://r:6379/3")
    assert project_settings(DATABASE_URL=db, REDIS_URL="redis://r:6379/3") == [derived, derived]
    assert project_settings(DATABASE_URL=db, REDIS_URL="redis://r:6379/3", REALTIME_REDIS_PREFIX="prod") == [
        "prod", "prod"]
    assert project_settings(DATABASE_URL=db, REDIS_URL="redis://r:6379/3", CHANNEL_LAYER_PREFIX="legacy") == [
        "legacy", "legacy"]


# -- two servers on one Redis -------------------------------------------------------------------


def redis_db(url: str, number: int) -> str:
    return re.sub(r"(/\d+)?$", f"/{number}", url, count=1)


def derived_server(redis_url: str, relay: bool = True) -> ServerProcess:
    """``manage.py serve`` with no explicit prefix: channel layer and presence derive theirs.

    ``relay=False``: no outbox relay in the process. The outbox belongs to the database, so a
    server of another deployment on the same database (only this test builds one) would relay
    the first deployment's committed events into its own Redis prefix (docs/design.md#outbox)."""
    env = {"CHANNEL_LAYER_PREFIX": "", "REALTIME_PRESENCE_PREFIX": '""'}
    if not relay:
        env["REALTIME_OUTBOX_RELAY_IN_SERVER"] = "false"
    return ServerProcess(redis_url=redis_url, env=env)


def use_deployment_layer(settings, redis_url: str) -> None:
    """Publish from this process as a process of the deployment on ``redis_url`` would."""
    prefix = deployment_prefix(dj_database_url.parse(database_url()), redis_url)
    settings.CHANNEL_LAYERS = pubsub_layer_settings(redis_url, prefix)
    channel_layers.backends.clear()


async def subscribed(server, token: str):
    ws = await websockets.connect(f"{server.ws_url}/ws/?token={token}", proxy=None, ping_interval=None,
                                  open_timeout=10)
    await receive_event(ws, "connected")
    reply = await command(ws, "subscribe:inventory", {"locationIds": ["4"]})
    assert reply["data"]["rooms"] == ["inventory:location:4"], reply
    return ws


async def hears(ws, event: str, timeout: float) -> bool:
    try:
        await receive_event(ws, event, timeout=timeout)
    except TimeoutError:
        return False
    return True


@pytest.mark.django_db(transaction=True)
@pytest.mark.redis
async def test_two_deployments_on_one_redis_do_not_hear_each_other(settings, redis_url, make_user, token):
    """A and A2 share the identity (one deployment, two processes); B differs only in its
    Redis database number, which Redis pub/sub ignores."""
    url_a, url_b = redis_db(redis_url, 0), redis_db(redis_url, 1)
    user = await database_sync_to_async(make_user)(perms=["inventory.view_inventorylevel"])
    raw = token(user)
    with derived_server(url_a) as a, derived_server(url_a) as a2, derived_server(url_b, relay=False) as b:
        sockets = {name: await subscribed(server, raw) for name, server in {"a": a, "a2": a2, "b": b}.items()}
        try:
            # The per-user cap counts each deployment's sockets under its own keys.
            db = dj_database_url.parse(database_url())
            counts = [redis_lib.Redis.from_url(url).zcard(f"{deployment_prefix(db, url)}:presence:{user.pk}")
                      for url in (url_a, url_b)]
            assert counts == [2, 1]

            use_deployment_layer(settings, url_a)
            await database_sync_to_async(publish)("inventory:updated", {"available": 7}, ["inventory:location:4"])
            assert await hears(sockets["a"], "inventory:updated", 5)
            assert await hears(sockets["a2"], "inventory:updated", 5)
            assert not await hears(sockets["b"], "inventory:updated", 1.0)

            # A revocation in deployment A closes A's sockets only.
            await database_sync_to_async(close_sockets)(
                user.pk, CloseCode.TOKEN_REVOKED, "password_changed", "The session was revoked")
            assert await close_code(sockets["a"]) == CloseCode.TOKEN_REVOKED
            assert await close_code(sockets["a2"]) == CloseCode.TOKEN_REVOKED

            # B's socket is still open, and hears its own deployment.
            use_deployment_layer(settings, url_b)
            await database_sync_to_async(publish)("inventory:updated", {"available": 8}, ["inventory:location:4"])
            frame = await asyncio.wait_for(receive_event(sockets["b"], "inventory:updated"), 5)
            assert frame["data"] == {"available": 8}
        finally:
            for ws in sockets.values():
                await ws.close()
