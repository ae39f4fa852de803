"""Login and token refresh throttled per account and per client address (issue #11 item 4):
a growing delay with 429 and ``Retry-After``, shared by every process through Redis.

Before: 300 wrong passwords got 300 × 401, then the right one worked.
"""
import asyncio
import json
import urllib.error
import urllib.request
import uuid

from channels.db import database_sync_to_async
import pytest
from rest_framework_simplejwt.tokens import RefreshToken

from django_oda_realtime.accounts.throttling import ACCOUNT, ADDRESS, AuthThrottle, Backoff, MemoryStore, RedisStore, address_subject
from tests.servers import ServerProcess

PASSWORD = "right-pass-123"
ACCOUNT_FREE, ADDRESS_FREE, BASE, CAP = 3, 5, 1.0, 2.0


# -- the pure core --------------------------------------------------------------------------------


@pytest.mark.parametrize(("failures", "delay"), [
    (1, 0), (5, 0), (6, 1.0), (7, 2.0), (8, 4.0), (13, 128.0), (14, 256.0), (15, 300.0), (10_000, 300.0),
])
def test_the_delay_doubles_after_the_free_failures_up_to_the_cap(failures, delay):
    assert Backoff(free=5, base=1.0, cap=300.0, window=900.0).delay(failures) == delay


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_memory_store_blocks_forgets_and_resets():
    clock = Clock()
    mem = MemoryStore(clock)
    policy = Backoff(free=2, base=1.0, cap=4.0, window=60.0)
    assert [mem.fail("k", policy) for _ in range(5)] == [0, 0, 1.0, 2.0, 4.0]
    assert mem.wait(["k", "other"]) == 4.0
    clock.now += 3
    assert mem.wait(["k"]) == 1.0
    clock.now += 1
    assert mem.wait(["k"]) <= 0
    assert mem.fail("k", policy) == 4.0  # capped
    mem.reset("k")
    assert mem.wait(["k"]) <= 0 and mem.fail("k", policy) == 0
    clock.now += 61  # forgotten a window after the last failure
    assert [mem.fail("k", policy) for _ in range(3)] == [0, 0, 1.0]


def test_memory_store_stays_bounded():
    clock = Clock()
    mem = MemoryStore(clock, max_keys=100)
    policy = Backoff(free=0, base=1.0, cap=1.0, window=60.0)
    for i in range(1000):
        mem.fail(f"k{i}", policy)
    assert len(mem.failures) <= 101 and len(mem.blocked) <= 101
    assert mem.wait(["k999"]) == 1.0  # the newest are kept


def test_a_success_clears_the_account_but_not_the_address():
    mem = MemoryStore(Clock())
    policy = Backoff(free=0, base=10.0, cap=10.0, window=60.0)
    throttle = AuthThrottle("login", mem, {ACCOUNT: policy, ADDRESS: policy})
    subjects = {ACCOUNT: "alice", ADDRESS: "198.51.100.1"}
    throttle.failed(subjects)
    assert throttle.wait(subjects) == 10.0
    throttle.succeeded(subjects)
    assert throttle.wait({ACCOUNT: "alice"}) <= 0
    assert throttle.wait({ADDRESS: "198.51.100.1"}) == 10.0


@pytest.mark.parametrize(("address", "subject"), [
    ("198.51.100.7", "198.51.100.7"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
    ("::ffff:198.51.100.7", "198.51.100.7"),
    ("unknown", "unknown"),
])
def test_addresses_count_per_host_and_ipv6_per_64(address, subject):
    assert address_subject(address) == subject


@pytest.mark.redis
def test_the_redis_store_counts_like_the_memory_one(redis_url):
    store = RedisStore(redis_url)
    key = f"test-throttle-{uuid.uuid4().hex}"
    policy = Backoff(free=2, base=5.0, cap=20.0, window=60.0)
    try:
        assert [store.fail(key, policy) for _ in range(5)] == [0, 0, 5.0, 10.0, 20.0]
        assert 19 < store.wait([key, key + "-other"]) <= 20
        store.reset(key)
        assert store.wait([key]) == 0 and store.fail(key, policy) == 0
        assert 0 < store.redis.pttl(key) <= 60_000  # forgotten a window after the last failure
    finally:
        store.reset(key)


# -- two server processes on one Redis ------------------------------------------------------------


def post(server, path: str, body: dict, address: str) -> tuple[int, dict, dict]:
    """POST JSON as a client at ``address`` (behind the trusted proxy 127.0.0.1)."""
    request = urllib.request.Request(
        f"{server.url}{path}", data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "X-Forwarded-For": address},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read() or b"{}")


async def login(server, username: str, password: str, address: str):
    return await asyncio.to_thread(post, server, "/api/auth/token/", {"username": username, "password": password},
                                   address)


@pytest.fixture(scope="module")
def servers(django_db_setup):
    from django.conf import settings

    from tests.conftest import require_redis

    require_redis(settings.TEST_REDIS_URL)
    prefix = f"thr{uuid.uuid4().hex[:10]}"
    env = {
        "REALTIME_REDIS_PREFIX": prefix, "REALTIME_TRUSTED_PROXIES": '["127.0.0.1"]',
        "REALTIME_LOGIN_THROTTLE_ACCOUNT_FAILURES": str(ACCOUNT_FREE),
        "REALTIME_LOGIN_THROTTLE_ADDRESS_FAILURES": str(ADDRESS_FREE),
        "REALTIME_LOGIN_THROTTLE_BASE_DELAY": str(BASE), "REALTIME_LOGIN_THROTTLE_MAX_DELAY": str(CAP),
    }
    with ServerProcess(redis_url=settings.TEST_REDIS_URL, layer_prefix=prefix, env=env) as a, \
            ServerProcess(redis_url=settings.TEST_REDIS_URL, layer_prefix=prefix, env=env) as b:
        yield a, b


pytestmark_db = pytest.mark.django_db(transaction=True)


def server_user(make_user):
    """A user whose password the servers can check: the test settings hash with MD5, which the
    project's settings do not know, so the hash is PBKDF2 (with few iterations: a quick check)."""
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    user = make_user()
    user.password = PBKDF2PasswordHasher().encode(PASSWORD, "throttlesalt", iterations=1000)
    user.save(update_fields=["password"])
    return user


@pytestmark_db
@pytest.mark.redis
async def test_failures_on_one_process_count_on_the_other_then_the_delay_ends(servers, make_user):
    a, b = servers
    user = await database_sync_to_async(server_user)(make_user)
    address = "203.0.113.10"
    statuses = [(await login(server, user.username, "wrong", address))[0] for server in (a, b, a, b)]
    assert statuses == [401, 401, 401, 401]  # the 4th is the first over ACCOUNT_FREE: it starts a block

    # Blocked on the other process, from another address too, even with the right password.
    status, headers, body = await login(a, user.username, PASSWORD, "203.0.113.11")
    assert status == 429, body
    retry_after = int(headers["Retry-After"])
    assert 1 <= retry_after <= CAP
    assert (await login(b, user.username, PASSWORD, address))[0] == 429

    await asyncio.sleep(retry_after)  # the delay, not a lockout
    status, _, body = await login(b, user.username, PASSWORD, address)
    assert status == 200 and "access" in body
    # The success cleared the account: the next mistake is a plain 401.
    assert (await login(a, user.username, "wrong", address))[0] == 401


@pytestmark_db
@pytest.mark.redis
async def test_one_address_spraying_many_user_names_is_throttled(servers, make_user):
    a, b = servers
    sprayer = "203.0.113.20"
    names = [f"nobody-{uuid.uuid4().hex[:8]}" for _ in range(ADDRESS_FREE + 2)]
    statuses = [(await login((a, b)[i % 2], name, "guess", sprayer))[0] for i, name in enumerate(names[:-1])]
    assert statuses == [401] * (ADDRESS_FREE + 1)  # one failure per name: no account is over its limit
    status, headers, _ = await login(a, names[-1], "guess", sprayer)
    assert status == 429 and 1 <= int(headers["Retry-After"]) <= CAP

    # Another client is not affected.
    user = await database_sync_to_async(server_user)(make_user)
    assert (await login(b, user.username, PASSWORD, "203.0.113.21"))[0] == 200


@pytestmark_db
@pytest.mark.redis
async def test_token_refresh_is_throttled_too(servers, make_user):
    a, b = servers
    user = await database_sync_to_async(make_user)(password=PASSWORD)
    refresh = str(await database_sync_to_async(RefreshToken.for_user)(user))
    address = "203.0.113.30"

    def refresh_with(server, raw):
        return post(server, "/api/auth/token/refresh/", {"refresh": raw}, address)

    statuses = [(await asyncio.to_thread(refresh_with, (a, b)[i % 2], f"garbage-{i}"))[0]
                for i in range(ADDRESS_FREE + 1)]
    assert statuses == [401] * (ADDRESS_FREE + 1)
    status, headers, _ = await asyncio.to_thread(refresh_with, a, refresh)
    assert status == 429 and "Retry-After" in headers
    await asyncio.sleep(int(headers["Retry-After"]))
    status, _, body = await asyncio.to_thread(refresh_with, b, refresh)
    assert status == 200 and "access" in body


def test_with_redis_down_attempts_are_not_throttled_and_the_view_answers(caplog):
    from tests.servers import free_port

    dead = RedisStore(f"redis://127.0.0.1:{free_port()}/0")
    policy = Backoff(free=0, base=10.0, cap=10.0, window=60.0)
    throttle = AuthThrottle("login", dead, {ACCOUNT: policy, ADDRESS: policy})
    subjects = {ACCOUNT: "alice", ADDRESS: "198.51.100.1"}
    throttle.failed(subjects)
    assert throttle.wait(subjects) == 0.0
    assert "Login throttle store unavailable (ConnectionError)" in caplog.text
