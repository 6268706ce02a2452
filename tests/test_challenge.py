"""nitro_attest.challenge: a nonce per attempt, accepted once, with the memory store and with Redis.

The Redis tests use the server at $NITRO_ATTEST_REDIS_URL (default
redis://127.0.0.1:6379/0) under a key prefix of their own, deleted afterwards;
they skip, naming the URL, when no server answers there.
"""

from __future__ import annotations

import functools
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from conftest import redis_unreachable

import nitro_attest
from nitro_attest import PolicyViolation
from nitro_attest import challenge as challenge_module
from nitro_attest.challenge import (
    DEFAULT_LIFETIME,
    DEFAULT_NONCE_SIZE,
    MAX_LIFETIME,
    Challenge,
    Challenger,
    ChallengeStore,
    ConsumeResult,
    MemoryChallengeStore,
    RedisChallengeStore,
)
from nitro_attest.testing import DEFAULT_PCRS, TestPKI

REDIS_URL = os.environ.get("NITRO_ATTEST_REDIS_URL", "redis://127.0.0.1:6379/0")
LIFETIME = timedelta(minutes=5)
SECOND = timedelta(seconds=1)


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI.create()


@pytest.fixture
def policy() -> nitro_attest.Policy:
    return nitro_attest.Policy({0: DEFAULT_PCRS[0], 1: DEFAULT_PCRS[1], 2: DEFAULT_PCRS[2]})


class Clock:
    """A clock the test moves by hand (the test PKI's documents live at a fixed time)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock(pki: TestPKI) -> Clock:
    return Clock(pki.document_time)


# --- Redis --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_module() -> Any:
    redis = pytest.importorskip("redis", reason="redis-py is not installed (pip install 'nitro_attest[redis]')")
    probe = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=2)
    try:
        probe.ping()
    except redis.RedisError as error:
        redis_unreachable(f"no Redis server reachable at {REDIS_URL} (set NITRO_ATTEST_REDIS_URL): {error}")
    finally:
        probe.close()
    return redis


class RedisConnections:
    """Opens clients to the test server and deletes every key under this test's prefix afterwards."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self.prefix = f"nitro_attest_test:{uuid.uuid4().hex}:"
        self.clients: list[Any] = []

    def client(self, **options: Any) -> Any:
        client = self.redis.Redis.from_url(REDIS_URL, socket_timeout=5, **options)
        self.clients.append(client)
        return client

    def store(self, **options: Any) -> RedisChallengeStore:
        return RedisChallengeStore(self.client(**options), prefix=self.prefix)

    def close(self) -> None:
        cleaner = self.client()
        keys = list(cleaner.scan_iter(match=self.prefix + "*"))
        if keys:
            cleaner.delete(*keys)
        for client in self.clients:
            client.close()


@pytest.fixture
def redis_connections(redis_module: Any) -> Iterator[RedisConnections]:
    connections = RedisConnections(redis_module)
    yield connections
    connections.close()


# --- Either store -------------------------------------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
def store_factory(request: pytest.FixtureRequest) -> Callable[[], ChallengeStore]:
    """Makes stores that share one backing state: one memory store, or new clients of one Redis prefix.

    Two of them stand for two verifier processes behind a load balancer.
    """
    if request.param == "memory":
        shared = MemoryChallengeStore()
        return lambda: shared
    connections: RedisConnections = request.getfixturevalue("redis_connections")
    return connections.store


@pytest.fixture
def store(store_factory: Callable[[], ChallengeStore]) -> ChallengeStore:
    return store_factory()


@pytest.fixture
def challenger(store: ChallengeStore, clock: Clock) -> Challenger:
    return Challenger(store, lifetime=LIFETIME, clock=clock)


def answer(pki: TestPKI, challenge: Challenge, **changes: Any) -> bytes:
    """The document a genuine enclave makes for ``challenge`` (with the test PKI)."""
    return pki.document(nonce=challenge.nonce, **changes)


# --- Accepted once ------------------------------------------------------------------------------------


def test_accepted_once_then_refused_as_already_used(
    challenger: Challenger, pki: TestPKI, policy: nitro_attest.Policy
) -> None:
    challenge = challenger.issue()
    data = answer(pki, challenge)
    document = challenger.verify(data, policy, roots=pki.roots)
    assert document.nonce == challenge.nonce
    with pytest.raises(nitro_attest.PolicyViolation, match="already used") as refused:
        challenger.verify(data, policy, roots=pki.roots)
    assert refused.value.code == "nonce"


def test_a_second_verifier_sharing_the_store_refuses_the_replay(
    store_factory: Callable[[], ChallengeStore], clock: Clock, pki: TestPKI, policy: nitro_attest.Policy
) -> None:
    issuer = Challenger(store_factory(), lifetime=LIFETIME, clock=clock)
    other = Challenger(store_factory(), lifetime=LIFETIME, clock=clock)
    challenge = issuer.issue()
    data = answer(pki, challenge)
    other.verify(data, policy, roots=pki.roots)  # issued by one process, answered to another
    with pytest.raises(nitro_attest.PolicyViolation, match="already used"):
        issuer.verify(data, policy, roots=pki.roots)


def test_the_expected_challenge_is_accepted_as_object_or_bytes(
    challenger: Challenger, pki: TestPKI, policy: nitro_attest.Policy
) -> None:
    first, second = challenger.issue(), challenger.issue()
    challenger.verify(answer(pki, first), policy, challenge=first, roots=pki.roots)
    challenger.verify(answer(pki, second), policy, challenge=second.nonce, roots=pki.roots)


def test_malleated_signature_twin_is_refused_as_a_replay(
    challenger: Challenger, pki: TestPKI, policy: nitro_attest.Policy
) -> None:
    challenge = challenger.issue()
    low = answer(pki, challenge, high_s=False)
    high = answer(pki, challenge, high_s=True)
    # (r, s) and (r, n - s): different bytes, the same payload, both genuine.
    assert low != high
    assert nitro_attest.parse(low).payload == nitro_attest.parse(high).payload
    for twin in (low, high):
        nitro_attest.verify(twin, policy, at=challenger.now(), roots=pki.roots)
    challenger.verify(high, policy, roots=pki.roots)
    with pytest.raises(nitro_attest.PolicyViolation, match="already used") as refused:
        challenger.verify(low, policy, roots=pki.roots)
    assert refused.value.code == "nonce"


# --- Every refusal -----------------------------------------------------------------------------------


def test_unknown_nonce_is_refused(challenger: Challenger, pki: TestPKI, policy: nitro_attest.Policy) -> None:
    never_issued = Challenge(b"\x01" * DEFAULT_NONCE_SIZE, challenger.now() + LIFETIME)
    with pytest.raises(nitro_attest.PolicyViolation, match="unknown") as refused:
        challenger.verify(answer(pki, never_issued), policy, roots=pki.roots)
    assert refused.value.code == "nonce"


def test_nonce_issued_by_another_store_is_unknown(
    store: ChallengeStore, clock: Clock, pki: TestPKI, policy: nitro_attest.Policy
) -> None:
    elsewhere = Challenger(MemoryChallengeStore(), lifetime=LIFETIME, clock=clock)
    here = Challenger(store, lifetime=LIFETIME, clock=clock)
    with pytest.raises(nitro_attest.PolicyViolation, match="unknown"):
        here.verify(answer(pki, elsewhere.issue()), policy, roots=pki.roots)


def test_expired_challenge_is_refused(
    challenger: Challenger, clock: Clock, pki: TestPKI, policy: nitro_attest.Policy
) -> None:
    challenge = challenger.issue()
    assert challenge.expires_at == clock.now + LIFETIME
    # Answered by a fresh document, but after the challenge's expiry.
    data = answer(pki, challenge, timestamp=challenge.expires_at)
    clock.now = challenge.expires_at + SECOND
    with pytest.raises(nitro_attest.PolicyViolation, match="expired") as refused:
        challenger.verify(data, policy, roots=pki.roots)
    assert refused.value.code == "nonce"


def test_challenge_is_refused_at_its_expiry_instant(
    challenger: Challenger, clock: Clock, pki: TestPKI, policy: nitro_attest.Policy
) -> None:
    challenge = challenger.issue()
    data = answer(pki, challenge)
    clock.now = challenge.expires_at
    with pytest.raises(nitro_attest.PolicyViolation, match="expired"):
        challenger.verify(data, policy, roots=pki.roots)


def test_challenge_is_accepted_just_before_its_expiry(
    challenger: Challenger, clock: Clock, pki: TestPKI, policy: nitro_attest.Policy
) -> None:
    challenge = challenger.issue()
    data = answer(pki, challenge)
    clock.now = challenge.expires_at - timedelta(milliseconds=1)
    challenger.verify(data, policy, roots=pki.roots)


def test_nonce_other_than_the_expected_challenge_is_refused_and_burns_nothing(
    challenger: Challenger, pki: TestPKI, policy: nitro_attest.Policy
) -> None:
    mine, theirs = challenger.issue(), challenger.issue()
    data = answer(pki, theirs)
    with pytest.raises(nitro_attest.PolicyViolation, match="not the challenge issued to this client") as refused:
        challenger.verify(data, policy, challenge=mine, roots=pki.roots)
    assert refused.value.code == "nonce"
    assert refused.value.failures[0].expected == (mine.nonce.hex(),)
    assert refused.value.failures[0].actual == theirs.nonce.hex()
    # Neither nonce was consumed by the refusal.
    challenger.verify(data, policy, challenge=theirs, roots=pki.roots)
    challenger.verify(answer(pki, mine), policy, challenge=mine, roots=pki.roots)


def test_document_without_nonce_is_refused(challenger: Challenger, pki: TestPKI, policy: nitro_attest.Policy) -> None:
    challenger.issue()
    with pytest.raises(nitro_attest.PolicyViolation, match="carries no nonce") as refused:
        challenger.verify(pki.document(), policy, roots=pki.roots)
    assert refused.value.code == "nonce"


def test_document_with_empty_nonce_is_refused(
    challenger: Challenger, pki: TestPKI, policy: nitro_attest.Policy
) -> None:
    with pytest.raises(nitro_attest.PolicyViolation, match="carries no nonce"):
        challenger.verify(pki.document(nonce=b""), policy, roots=pki.roots)


def test_document_older_than_the_lifetime_is_refused_as_stale(
    challenger: Challenger, clock: Clock, pki: TestPKI, policy: nitro_attest.Policy
) -> None:
    # Only an enclave with a wrong clock could date a document before the challenge it answers.
    clock.advance(LIFETIME + SECOND)
    challenge = challenger.issue()
    with pytest.raises(nitro_attest.PolicyViolation, match="challenge lifetime") as refused:
        challenger.verify(answer(pki, challenge), policy, roots=pki.roots)
    assert refused.value.code == "stale"


def test_policy_max_age_still_applies(
    challenger: Challenger, clock: Clock, pki: TestPKI, policy: nitro_attest.Policy
) -> None:
    strict = nitro_attest.Policy({0: DEFAULT_PCRS[0]}, max_age=timedelta(seconds=10))
    challenge = challenger.issue()
    clock.advance(timedelta(seconds=11))
    with pytest.raises(nitro_attest.PolicyViolation) as refused:
        challenger.verify(answer(pki, challenge), strict, roots=pki.roots)
    assert refused.value.code == "stale"


@pytest.mark.parametrize(
    ("breakage", "error", "code"),
    [
        (
            {"signature": lambda signature: signature[:-1] + bytes([signature[-1] ^ 1])},
            nitro_attest.SignatureInvalid,
            "signature",
        ),
        ({"pcrs": {**DEFAULT_PCRS, 2: b"\x02" * 48}}, nitro_attest.PolicyViolation, "pcr"),
        ({"trailing": b"\x00"}, nitro_attest.MalformedDocument, "cbor"),
    ],
    ids=["bad-signature", "wrong-pcr", "malformed"],
)
def test_a_rejected_document_does_not_burn_the_nonce(
    challenger: Challenger,
    pki: TestPKI,
    policy: nitro_attest.Policy,
    breakage: dict[str, Any],
    error: type[nitro_attest.NitroAttestError],
    code: str,
) -> None:
    challenge = challenger.issue()
    with pytest.raises(error) as refused:
        challenger.verify(answer(pki, challenge, **breakage), policy, roots=pki.roots)
    assert refused.value.code == code
    challenger.verify(answer(pki, challenge), policy, roots=pki.roots)


def test_a_document_from_an_untrusted_root_does_not_burn_the_nonce(
    challenger: Challenger, pki: TestPKI, policy: nitro_attest.Policy
) -> None:
    challenge = challenger.issue()
    with pytest.raises(nitro_attest.CertificateInvalid):
        challenger.verify(answer(pki, challenge), policy)  # the AWS root, not the test PKI's
    challenger.verify(answer(pki, challenge), policy, roots=pki.roots)


def test_store_answering_true_is_a_bug_not_an_acceptance(
    clock: Clock, pki: TestPKI, policy: nitro_attest.Policy
) -> None:
    class YesStore:
        def add(self, nonce: bytes, expires_at: datetime, now: datetime) -> None:
            pass

        def consume(self, nonce: bytes, now: datetime) -> bool:
            return True

    challenger = Challenger(YesStore(), clock=clock)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not a ConsumeResult"):
        challenger.verify(answer(pki, challenger.issue()), policy, roots=pki.roots)


# --- Races -------------------------------------------------------------------------------------------


def race(contenders: list[Callable[[], object]]) -> list[object]:
    """Runs every contender at once (a barrier releases them together); their results or exceptions."""
    barrier = threading.Barrier(len(contenders))
    results: list[object] = [None] * len(contenders)

    def run(position: int) -> None:
        barrier.wait()
        try:
            results[position] = contenders[position]()
        except Exception as error:
            results[position] = error

    threads = [threading.Thread(target=run, args=(position,)) for position in range(len(contenders))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    return results


def test_racing_verifiers_exactly_one_wins(
    store_factory: Callable[[], ChallengeStore], clock: Clock, pki: TestPKI, policy: nitro_attest.Policy
) -> None:
    # Each verifier has its own Challenger and (for Redis) its own connection: separate processes, one store.
    verifiers = [Challenger(store_factory(), lifetime=LIFETIME, clock=clock) for _ in range(4)]
    for _ in range(25):
        challenge = verifiers[0].issue()
        # Two of them get the signature's twin: different bytes, the same answer.
        documents = [answer(pki, challenge, high_s=position % 2 == 0) for position in range(len(verifiers))]
        results = race(
            [
                functools.partial(verifier.verify, data, policy, roots=pki.roots)
                for verifier, data in zip(verifiers, documents, strict=True)
            ]
        )
        winners = [result for result in results if isinstance(result, nitro_attest.AttestationDocument)]
        losers = [result for result in results if isinstance(result, nitro_attest.PolicyViolation)]
        assert len(winners) == 1, results
        assert len(losers) == len(verifiers) - 1, results
        assert all(loser.code == "nonce" and "already used" in loser.message for loser in losers)


def test_racing_consumers_exactly_one_wins(store_factory: Callable[[], ChallengeStore], clock: Clock) -> None:
    stores = [store_factory() for _ in range(8)]
    for round_number in range(100):
        nonce = round_number.to_bytes(4, "big") + os.urandom(28)
        stores[0].add(nonce, clock.now + LIFETIME, clock.now)
        results = race([functools.partial(store.consume, nonce, clock.now) for store in stores])
        assert results.count(ConsumeResult.CONSUMED) == 1, results
        assert results.count(ConsumeResult.ALREADY_USED) == len(stores) - 1, results


# --- Stores ------------------------------------------------------------------------------------------


def test_store_states(store: ChallengeStore, clock: Clock) -> None:
    now = clock.now
    fresh, late, used = os.urandom(32), os.urandom(32), os.urandom(32)
    for nonce in (fresh, late, used):
        store.add(nonce, now + LIFETIME, now)
    assert store.consume(used, now) is ConsumeResult.CONSUMED
    assert store.consume(used, now) is ConsumeResult.ALREADY_USED
    assert store.consume(late, now + LIFETIME) is ConsumeResult.EXPIRED
    assert store.consume(late, now) is ConsumeResult.UNKNOWN  # an expired challenge is forgotten
    assert store.consume(os.urandom(32), now) is ConsumeResult.UNKNOWN
    assert store.consume(fresh, now + LIFETIME - timedelta(milliseconds=1)) is ConsumeResult.CONSUMED


def test_store_refuses_a_nonce_issued_twice(store: ChallengeStore, clock: Clock) -> None:
    nonce = os.urandom(32)
    store.add(nonce, clock.now + LIFETIME, clock.now)
    with pytest.raises(ValueError, match="already issued"):
        store.add(nonce, clock.now + LIFETIME, clock.now)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda store, now: store.add("nonce", now + LIFETIME, now), TypeError, "nonce must be bytes"),
        (lambda store, now: store.add(b"", now + LIFETIME, now), ValueError, "nonce is empty"),
        (lambda store, now: store.add(b"n" * 32, now, now), ValueError, "is not after now"),
        (
            lambda store, now: store.add(b"n" * 32, (now + LIFETIME).replace(tzinfo=None), now),
            TypeError,
            "expires_at must be timezone-aware",
        ),
        (lambda store, now: store.add(b"n" * 32, 300, now), TypeError, "expires_at must be a datetime"),
        (lambda store, now: store.consume(b"n" * 32, now.replace(tzinfo=None)), TypeError, "now must be"),
        (lambda store, now: store.consume(bytearray(32), now), TypeError, "nonce must be bytes"),
    ],
    ids=["nonce-str", "nonce-empty", "already-expired", "naive-expiry", "expiry-int", "naive-now", "bytearray"],
)
def test_store_arguments_are_checked(
    store: ChallengeStore, clock: Clock, call: Callable[[ChallengeStore, datetime], object], error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        call(store, clock.now)


def test_memory_store_evicts_the_oldest_beyond_its_bound(clock: Clock) -> None:
    store = MemoryChallengeStore(max_challenges=3)
    nonces = [bytes([position]) * 32 for position in range(5)]
    for nonce in nonces:
        store.add(nonce, clock.now + LIFETIME, clock.now)
        assert len(store) <= 3
    assert [store.consume(nonce, clock.now) for nonce in nonces] == [
        ConsumeResult.UNKNOWN,
        ConsumeResult.UNKNOWN,
        ConsumeResult.CONSUMED,
        ConsumeResult.CONSUMED,
        ConsumeResult.CONSUMED,
    ]


def test_memory_store_counts_used_challenges_until_they_expire(clock: Clock) -> None:
    store = MemoryChallengeStore(max_challenges=2)
    used, outstanding, newest = b"u" * 32, b"o" * 32, b"n" * 32
    store.add(used, clock.now + LIFETIME, clock.now)
    assert store.consume(used, clock.now) is ConsumeResult.CONSUMED
    store.add(outstanding, clock.now + LIFETIME, clock.now)
    store.add(newest, clock.now + LIFETIME, clock.now)  # the used one, oldest, makes room
    assert len(store) == 2
    assert store.consume(used, clock.now) is ConsumeResult.UNKNOWN  # still refused, with less detail
    assert store.consume(outstanding, clock.now) is ConsumeResult.CONSUMED


def test_memory_store_purges_expired_challenges_on_issue(clock: Clock) -> None:
    store = MemoryChallengeStore()
    for position in range(10):
        store.add(bytes([position]) * 32, clock.now + LIFETIME, clock.now)
    clock.advance(LIFETIME)
    store.add(b"\xff" * 32, clock.now + LIFETIME, clock.now)
    assert len(store) == 1


@pytest.mark.parametrize(
    ("value", "error"), [(0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError), ("9", TypeError)]
)
def test_memory_store_bound_is_checked(value: object, error: type) -> None:
    with pytest.raises(error, match="max_challenges"):
        MemoryChallengeStore(max_challenges=value)  # type: ignore[arg-type]


def test_redis_key_has_the_challenge_lifetime_as_ttl(redis_connections: RedisConnections, clock: Clock) -> None:
    store = redis_connections.store()
    nonce = os.urandom(32)
    store.add(nonce, clock.now + timedelta(seconds=90, microseconds=1), clock.now)
    client = redis_connections.client()
    key = store.key(nonce)
    assert key == redis_connections.prefix + nonce.hex()
    assert 89_000 < client.pttl(key) <= 90_001  # rounded up to the millisecond
    assert store.consume(nonce, clock.now) is ConsumeResult.CONSUMED
    # The "used" mark keeps the challenge's TTL: replays are recognised until then, and nothing lingers.
    assert client.get(key) == b"used"
    assert 0 < client.pttl(key) <= 90_001


def test_redis_store_works_with_decoded_responses(redis_connections: RedisConnections, clock: Clock) -> None:
    store = redis_connections.store(decode_responses=True)
    nonce = os.urandom(32)
    store.add(nonce, clock.now + LIFETIME, clock.now)
    assert store.consume(nonce, clock.now) is ConsumeResult.CONSUMED
    assert store.consume(nonce, clock.now) is ConsumeResult.ALREADY_USED


def test_redis_value_written_by_something_else_is_unknown(redis_connections: RedisConnections, clock: Clock) -> None:
    store = redis_connections.store()
    nonce = os.urandom(32)
    redis_connections.client().set(store.key(nonce), "not a challenge", px=60_000)
    assert store.consume(nonce, clock.now) is ConsumeResult.UNKNOWN


def test_redis_store_checks_its_arguments(redis_connections: RedisConnections) -> None:
    with pytest.raises(TypeError, match="redis-py style client"):
        RedisChallengeStore(object(), prefix="p:")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="prefix must be a str"):
        RedisChallengeStore(redis_connections.client(), prefix=b"p:")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="prefix is empty"):
        RedisChallengeStore(redis_connections.client(), prefix="")
    with pytest.raises(TypeError, match="prefix"):
        RedisChallengeStore(redis_connections.client())  # type: ignore[call-arg]  # no default: name your keys


# --- Challenger --------------------------------------------------------------------------------------


def test_issue_makes_fresh_nonces_of_the_requested_size(clock: Clock) -> None:
    challenger = Challenger(clock=clock, nonce_size=16)
    challenges = [challenger.issue() for _ in range(50)]
    assert {len(challenge.nonce) for challenge in challenges} == {16}
    assert len({challenge.nonce for challenge in challenges}) == 50
    assert {challenge.expires_at for challenge in challenges} == {clock.now + DEFAULT_LIFETIME}
    assert len(Challenger(clock=clock).issue().nonce) == DEFAULT_NONCE_SIZE == 32


def test_default_challenger_uses_a_memory_store_and_the_real_clock() -> None:
    challenger = Challenger()
    assert isinstance(challenger.store, MemoryChallengeStore)
    before = datetime.now(timezone.utc)
    challenge = challenger.issue()
    assert before + DEFAULT_LIFETIME <= challenge.expires_at <= datetime.now(timezone.utc) + DEFAULT_LIFETIME


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"lifetime": 300}, TypeError, "lifetime must be a timedelta"),
        ({"lifetime": timedelta(0)}, ValueError, "lifetime must be from a millisecond"),
        ({"lifetime": -LIFETIME}, ValueError, "lifetime must be from a millisecond"),
        ({"nonce_size": 15}, ValueError, "16..1024"),
        ({"nonce_size": 1025}, ValueError, "16..1024"),
        ({"nonce_size": True}, TypeError, "nonce_size must be an int"),
        ({"store": object()}, TypeError, "must be a ChallengeStore"),
        ({"clock": "now"}, TypeError, "clock must be a callable"),
    ],
    ids=[
        "lifetime-int",
        "lifetime-zero",
        "lifetime-negative",
        "nonce-small",
        "nonce-large",
        "nonce-bool",
        "store",
        "clock",
    ],
)
def test_challenger_arguments_are_checked(arguments: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        Challenger(**arguments)


def test_a_redis_client_is_not_a_store(redis_connections: RedisConnections) -> None:
    with pytest.raises(TypeError, match=r"RedisChallengeStore\(client\)"):
        Challenger(redis_connections.client())


def test_naive_clock_is_refused() -> None:
    challenger = Challenger(clock=lambda: datetime(2026, 1, 1))
    with pytest.raises(TypeError, match="timezone-aware"):
        challenger.issue()


def test_a_clock_that_returns_no_datetime_is_refused() -> None:
    challenger = Challenger(clock=lambda: "2026-01-01T00:00:00Z")  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match=r"clock\(\) must be a datetime"):
        challenger.issue()


def test_a_lifetime_past_the_maximum_is_refused() -> None:
    with pytest.raises(ValueError, match="lifetime must be from a millisecond"):
        Challenger(lifetime=MAX_LIFETIME + timedelta(milliseconds=1))
    assert Challenger(lifetime=MAX_LIFETIME).lifetime == MAX_LIFETIME


def test_settings_cannot_be_changed_after_their_checks() -> None:
    challenger = Challenger(nonce_size=16)
    with pytest.raises(AttributeError):
        challenger.nonce_size = 1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        challenger.lifetime = timedelta(days=365)  # type: ignore[misc]
    with pytest.raises(AttributeError):
        MemoryChallengeStore(max_challenges=2).max_challenges = 10**9  # type: ignore[misc]


def test_an_answer_is_refused_when_its_challenge_expires_during_verification(
    store: ChallengeStore, clock: Clock, pki: TestPKI, policy: nitro_attest.Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The expiry is checked at consume time: a verification slowed past the expiry must not let it in."""
    challenger = Challenger(store, lifetime=timedelta(seconds=1), clock=clock)
    challenge = challenger.issue()
    clock.advance(timedelta(milliseconds=999))
    slow_verify = challenge_module.verify

    def verify_that_takes_five_seconds(*args: Any, **kwargs: Any) -> nitro_attest.AttestationDocument:
        document = slow_verify(*args, **kwargs)
        clock.advance(timedelta(seconds=5))
        return document

    monkeypatch.setattr(challenge_module, "verify", verify_that_takes_five_seconds)
    with pytest.raises(PolicyViolation, match=r"expired|unknown") as refused:
        challenger.verify(answer(pki, challenge), policy, roots=pki.roots)
    assert refused.value.code == "nonce"


def test_roots_may_be_any_iterable(challenger: Challenger, pki: TestPKI, policy: nitro_attest.Policy) -> None:
    challenge = challenger.issue()
    document = challenger.verify(answer(pki, challenge), policy, roots=iter(pki.roots))
    assert document.nonce == challenge.nonce


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda c, pki, data, policy: c.verify(data, "policy", roots=pki.roots), TypeError, "nitro_attest.Policy"),
        (lambda c, pki, data, policy: c.verify(data, policy, roots=()), ValueError, "roots is empty"),
        (
            lambda c, pki, data, policy: c.verify(
                data, nitro_attest.Policy({0: DEFAULT_PCRS[0]}, nonce=b"n"), roots=pki.roots
            ),
            ValueError,
            "pins a nonce",
        ),
        (
            lambda c, pki, data, policy: c.verify(
                data,
                nitro_attest.Policy.any_of(policy, nitro_attest.Policy({0: DEFAULT_PCRS[0]}, nonce=b"n")),
                roots=pki.roots,
            ),
            ValueError,
            "pins a nonce",
        ),
        (
            lambda c, pki, data, policy: c.verify(data, policy, challenge="n", roots=pki.roots),
            TypeError,
            "challenge must be a Challenge or bytes",
        ),
        (
            lambda c, pki, data, policy: c.verify(data, policy, challenge=bytearray(b"n"), roots=pki.roots),
            TypeError,
            "challenge must be a Challenge or bytes",
        ),
        (
            lambda c, pki, data, policy: c.verify(data, policy, challenge=b"", roots=pki.roots),
            ValueError,
            "nonce is empty",
        ),
        (lambda c, pki, data, policy: c.verify("data", policy, roots=pki.roots), TypeError, "data must be bytes"),
    ],
    ids=[
        "policy-type",
        "roots-empty",
        "policy-nonce",
        "any-of-nonce",
        "challenge-str",
        "challenge-bytearray",
        "challenge-empty",
        "data-str",
    ],
)
def test_verify_arguments_are_checked_and_burn_nothing(
    challenger: Challenger,
    pki: TestPKI,
    policy: nitro_attest.Policy,
    call: Callable[..., object],
    error: type,
    message: str,
) -> None:
    challenge = challenger.issue()
    data = answer(pki, challenge)
    with pytest.raises(error, match=message):
        call(challenger, pki, data, policy)
    challenger.verify(data, policy, roots=pki.roots)


def test_challenge_checks_its_fields(clock: Clock) -> None:
    with pytest.raises(ValueError, match="nonce is empty"):
        Challenge(b"", clock.now)
    with pytest.raises(TypeError, match="timezone-aware"):
        Challenge(b"n", clock.now.replace(tzinfo=None))
    with pytest.raises(TypeError, match="nonce must be bytes"):
        Challenge("n", clock.now)  # type: ignore[arg-type]
