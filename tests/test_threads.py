"""verify() and verify_batch() from many threads at once give the single-threaded verdicts.

Sixteen threads start together (a Barrier), each going through a mix of
good and bad documents in its own deterministic order, half with verify(),
half with verify_batch() (1 or 2 workers). The mix shares certificates the
way real traffic does: good and bad documents with the same root, regional
and zonal links, a bad link next to a good one with the same names, the
high-S twin of a good signature, a second PKI. Every result (accepted, or
the error's class and ``.code``) must equal what one thread alone got for
that document.

The shared caches are the point: the link cache cleared first (cold), left
full (warm), or shrunk to two entries while another thread keeps clearing
every cache of the package (evicting: each lookup may lose a race with an
eviction). On both P-384 backends.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509

import nitro_attest
from nitro_attest import AttestationDocument, NitroAttestError, Policy, document
from nitro_attest import _chain as chain
from nitro_attest import _cose as cose
from nitro_attest._chain import LINK_CACHE, LinkCache
from nitro_attest.testing import DEFAULT_PCRS, TestPKI, derive_key

THREADS = 16
ROUNDS = 2  # each thread goes through the whole mix this many times, reshuffled
Verdict = tuple[str, object]


def verdict(result: AttestationDocument | NitroAttestError) -> Verdict:
    if isinstance(result, NitroAttestError):
        return (type(result).__name__, result.code)
    return ("accepted", result.payload)


def verify_one(data: bytes, mix: Mix) -> Verdict:
    try:
        return verdict(nitro_attest.verify(data, mix.policy, at=mix.at, roots=mix.roots))
    except NitroAttestError as error:
        return verdict(error)


class Mix:
    """The documents, the policy, the time and roots they are judged under, and each one's name."""

    def __init__(self) -> None:
        pki = TestPKI.create()
        other = TestPKI.create(seed="test_threads: a second PKI", region="eu-west-1")
        stranger = TestPKI.create(seed="test_threads: not trusted")
        attacker = derive_key("test_threads: attacker")
        # An hour into the leaves' 3-hour lives: documents a minute old are fresh, an hour old stale.
        self.at = pki.document_time + timedelta(hours=1)
        self.roots: tuple[x509.Certificate, ...] = (*pki.roots, *other.roots)
        self.policy = Policy({0: DEFAULT_PCRS[0]}, max_age=timedelta(minutes=30))
        recent = self.at - timedelta(minutes=1)
        good = pki.document(nonce=b"good", timestamp=recent, high_s=False)
        documents: dict[str, bytes] = {
            "valid": good,
            "valid, another nonce": pki.document(nonce=b"another", timestamp=recent),
            "valid, its high-S twin": pki.document(nonce=b"good", timestamp=recent, high_s=True),
            "valid, second PKI": other.document(nonce=b"other", timestamp=recent),
            "wrong signature": good[:-1] + bytes([good[-1] ^ 1]),
            "signed by another key": pki.document(sign_with=attacker),
            "bad link zonal->instance, same names": pki.reissue("instance", signing_key=attacker).document(),
            "bad link instance->leaf, same names": pki.reissue("leaf", signing_key=attacker).document(),
            "second PKI's leaf under the first PKI's instance": pki.document(chain=other.cabundle, nonce=b"mixed"),
            "untrusted root": stranger.document(),
            "expired leaf": pki.reissue("leaf", not_after=self.at - timedelta(seconds=1)).document(),
            "expired zonal": pki.reissue("zonal", not_after=self.at - timedelta(minutes=5)).document(),
            "timestamp in the future": pki.document(timestamp=self.at + timedelta(minutes=5)),
            "stale": pki.document(timestamp=pki.document_time),
            "policy: wrong PCR0": pki.document(pcrs={**DEFAULT_PCRS, 0: bytes(range(48))}),
            "policy: debug": pki.document(pcrs={**DEFAULT_PCRS, 0: bytes(48), 1: bytes(48), 2: bytes(48)}),
            "unparsable leaf": pki.document(payload_overrides={"certificate": b"\x30\x03\x02\x01\x01"}),
            "schema": pki.document(payload_overrides={"digest": "SHA256"}),
            "truncated": good[:-10],
            "oversized": good + bytes(40_000),
        }
        self.names = list(documents)
        self.documents = list(documents.values())
        assert len(set(self.documents)) == len(self.documents)


@pytest.fixture(scope="module")
def mix() -> Mix:
    return Mix()


def clear_every_cache() -> None:
    LINK_CACHE.clear()
    document._parse_certificate.cache_clear()
    cose._LEAF_POINTS.clear()
    chain._ROOT_DER.clear()


@pytest.fixture(scope="module")
def expected(mix: Mix) -> dict[bytes, Verdict]:
    """Each document's verdict from one thread, on a cold cache; it must not change warm."""
    verdicts = {}
    for data in mix.documents:
        clear_every_cache()
        verdicts[data] = verify_one(data, mix)
    assert [verify_one(data, mix) for data in mix.documents] == list(verdicts.values())
    return verdicts


def test_the_mix_covers_every_outcome(mix: Mix, expected: dict[bytes, Verdict]) -> None:
    by_name = {name: expected[data] for name, data in zip(mix.names, mix.documents, strict=True)}
    assert sum(outcome[0] == "accepted" for outcome in by_name.values()) == 4
    assert {outcome[1] for outcome in by_name.values() if outcome[0] != "accepted"} == {
        "signature",
        "chain",
        "expired",
        "time",
        "stale",
        "pcr",
        "debug",
        "certificate",
        "schema",
        "cbor",
        "size",
    }
    assert by_name["bad link zonal->instance, same names"] == ("CertificateInvalid", "chain")
    assert by_name["policy: wrong PCR0"] == ("PolicyViolation", "pcr")


def hammer(
    mix: Mix, *, on_start: Callable[[], None] | None = None, background: Callable[[threading.Event], None] | None = None
) -> list[list[tuple[bytes, Verdict]]]:
    """Every thread's (document, verdict) pairs; any exception other than a NitroAttestError fails the test."""
    barrier = threading.Barrier(THREADS + (background is not None))
    results: list[list[tuple[bytes, Verdict]]] = [[] for _ in range(THREADS)]
    failures: list[BaseException] = []
    done = threading.Event()

    def worker(index: int) -> None:
        rng = random.Random(index)
        try:
            barrier.wait()
            for _ in range(ROUNDS):
                order = list(mix.documents)
                rng.shuffle(order)
                if index % 2 == 0:
                    results[index] += [(data, verify_one(data, mix)) for data in order]
                else:
                    batch = nitro_attest.verify_batch(
                        order, mix.policy, at=mix.at, roots=mix.roots, workers=1 + index % 4 // 2
                    )
                    results[index] += [(data, verdict(result)) for data, result in zip(order, batch, strict=True)]
        except BaseException as exc:  # reported below, with the others
            failures.append(exc)

    def disturber() -> None:
        assert background is not None
        barrier.wait()
        background(done)

    threads = [threading.Thread(target=worker, args=(index,), name=f"hammer-{index}") for index in range(THREADS)]
    if background is not None:
        threads.append(threading.Thread(target=disturber, name="hammer-disturber"))
    if on_start is not None:
        on_start()
    for thread in threads:
        thread.start()
    for thread in threads[:THREADS]:
        thread.join(timeout=120)
    done.set()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck"
    if failures:
        raise failures[0]
    return results


def assert_single_threaded_verdicts(
    results: Sequence[Sequence[tuple[bytes, Verdict]]], mix: Mix, expected: dict[bytes, Verdict]
) -> None:
    names = dict(zip(mix.documents, mix.names, strict=True))
    for index, pairs in enumerate(results):
        assert len(pairs) == ROUNDS * len(mix.documents), f"thread {index} did not finish its rounds"
        wrong = [(names[data], got, expected[data]) for data, got in pairs if got != expected[data]]
        assert not wrong, f"thread {index} ({'verify' if index % 2 == 0 else 'verify_batch'}): {wrong[:3]}"


@pytest.fixture
def restore_cache() -> Iterator[None]:
    yield
    clear_every_cache()


def test_cold_cache(signature_backend: str, mix: Mix, expected: dict[bytes, Verdict], restore_cache: None) -> None:
    results = hammer(mix, on_start=clear_every_cache)
    assert_single_threaded_verdicts(results, mix, expected)


def test_warm_cache(signature_backend: str, mix: Mix, expected: dict[bytes, Verdict], restore_cache: None) -> None:
    clear_every_cache()
    for data in mix.documents:
        verify_one(data, mix)
    assert len(LINK_CACHE) > 0
    results = hammer(mix)
    assert_single_threaded_verdicts(results, mix, expected)


def test_evicting_cache(
    signature_backend: str,
    mix: Mix,
    expected: dict[bytes, Verdict],
    restore_cache: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A link cache of two entries (every add evicts) while another thread clears every cache, over and over."""
    tiny = LinkCache(maxsize=2)
    monkeypatch.setattr(chain, "LINK_CACHE", tiny)

    def keep_clearing(done: threading.Event) -> None:
        while not done.wait(0.0005):
            tiny.clear()
            document._parse_certificate.cache_clear()
            cose._LEAF_POINTS.clear()
            chain._ROOT_DER.clear()

    results = hammer(mix, background=keep_clearing)
    assert_single_threaded_verdicts(results, mix, expected)


def test_one_shared_batch_call_per_thread_of_the_same_documents(
    signature_backend: str, mix: Mix, expected: dict[bytes, Verdict], restore_cache: None
) -> None:
    """Every thread verifies the same list in one verify_batch call: the same links submitted 16 times at once."""
    clear_every_cache()
    barrier = threading.Barrier(THREADS)
    outcomes: list[Any] = [None] * THREADS

    def run(index: int) -> None:
        barrier.wait()
        try:
            batch = nitro_attest.verify_batch(mix.documents, mix.policy, at=mix.at, roots=mix.roots, workers=2)
            outcomes[index] = [verdict(result) for result in batch]
        except BaseException as exc:  # compared below
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(index,)) for index in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    want = [expected[data] for data in mix.documents]
    assert all(outcome == want for outcome in outcomes), [o for o in outcomes if o != want][:1]
