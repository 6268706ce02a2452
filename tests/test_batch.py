"""verify_batch() gives verify()'s verdict for every input, and the link cache cannot change a verdict."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import manifest_entries, read_vector
from cryptography.hazmat.primitives.serialization import Encoding

import nitro_attest
import nitro_attest._batch
from nitro_attest import AttestationDocument, NitroAttestError, Policy
from nitro_attest._backend import P384Job
from nitro_attest._chain import LINK_CACHE, LinkCache
from nitro_attest.testing import TestPKI, derive_key

ANY = Policy.any_enclave(allow_debug=True)
VECTORS = Path(__file__).resolve().parents[1] / "vectors"
Outcome = tuple[str, object]


@pytest.fixture(autouse=True)
def cold_cache() -> Iterator[None]:
    LINK_CACHE.clear()
    yield
    LINK_CACHE.clear()


def outcome(result: AttestationDocument | NitroAttestError) -> Outcome:
    if isinstance(result, NitroAttestError):
        return (type(result).__name__, result.code)
    return ("verified", result.payload)


def one_by_one(documents: Sequence[bytes], at: datetime, roots: Sequence[object] | None) -> list[Outcome]:
    outcomes = []
    for data in documents:
        try:
            outcomes.append(outcome(nitro_attest.verify(data, ANY, at=at, roots=roots)))  # type: ignore[arg-type]
        except NitroAttestError as error:
            outcomes.append(outcome(error))
    return outcomes


def assert_same_verdicts(documents: Sequence[bytes], at: datetime, roots: Sequence[object] | None) -> None:
    """verify_batch (cold cache, 1 and 2 workers, then warm) against verify (cold, then warm)."""
    LINK_CACHE.clear()
    expected = one_by_one(documents, at, roots)
    assert one_by_one(documents, at, roots) == expected  # a warm cache changes nothing either
    for workers in (1, 2):
        LINK_CACHE.clear()
        for _ in range(2):  # cold, then warm
            batch = nitro_attest.verify_batch(documents, ANY, at=at, roots=roots, workers=workers)  # type: ignore[arg-type]
            assert [outcome(result) for result in batch] == expected


def mutations(data: bytes, count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    mutants = []
    for _ in range(count):
        mutant = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            position = rng.randrange(len(mutant))
            choice = rng.random()
            if choice < 0.6:
                mutant[position] ^= 1 << rng.randrange(8)
            elif choice < 0.8:
                mutant[position] = rng.randrange(256)
            elif choice < 0.9:
                del mutant[position]
            else:
                mutant.insert(position, rng.randrange(256))
        mutants.append(bytes(mutant))
    return mutants


def test_recorded_vectors(signature_backend: str) -> None:
    pki = TestPKI.create()
    files = sorted(VECTORS.glob("*.cbor"))
    assert len(files) > 100
    # One batch per verification time used by the manifest is what a caller would do;
    # the document time of the test PKI covers most vectors, the rest are checked singly below.
    documents = [path.read_bytes() for path in files]
    assert_same_verdicts(documents, pki.document_time, pki.roots)
    assert_same_verdicts(documents, pki.document_time + timedelta(hours=5), pki.roots)


def test_mutations_of_a_test_pki_document(signature_backend: str) -> None:
    pki = TestPKI.create()
    original = pki.document(nonce=b"n", user_data=b"u")
    documents = [original, original, *mutations(original, 1500, seed=1)]
    assert_same_verdicts(documents, pki.document_time, pki.roots)


@pytest.mark.parametrize("entry", manifest_entries("real")[:4] or [None], ids=lambda entry: entry and entry["file"])
def test_real_documents_and_their_mutations(signature_backend: str, entry: dict[str, object] | None) -> None:
    if entry is None:
        pytest.skip("../shared/vectors is absent")
    original = read_vector(entry)
    at = nitro_attest.parse(original).timestamp
    assert_same_verdicts([original, *mutations(original, 400, seed=2)], at, None)


def test_all_real_documents_in_one_batch(signature_backend: str) -> None:
    entries = manifest_entries("real", "real-nitrotpm", "negative")
    if not entries:
        pytest.skip("../shared/vectors is absent")
    documents = [read_vector(entry) for entry in entries]
    # At one time most are expired: the verdicts (and codes) must still agree.
    assert_same_verdicts(documents, nitro_attest.parse(documents[0]).timestamp, None)
    for data in documents[:8]:
        try:
            at = nitro_attest.parse(data).timestamp
        except NitroAttestError:
            continue
        assert_same_verdicts([data], at, None)


def test_batch_keeps_order_and_reports_each_error() -> None:
    pki = TestPKI.create()
    good = pki.document()
    results = nitro_attest.verify_batch(
        [b"", good, b"\x84", good[:-1] + b"\x00"], ANY, at=pki.document_time, roots=pki.roots
    )
    assert [outcome(result)[0] for result in results] == [
        "MalformedDocument",
        "verified",
        "MalformedDocument",
        "SignatureInvalid",
    ]


def test_batch_arguments_are_checked() -> None:
    with pytest.raises(TypeError):
        nitro_attest.verify_batch([], "not a policy")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        nitro_attest.verify_batch([], ANY, workers=0)
    assert nitro_attest.verify_batch([], ANY) == []


# -- the link cache --------------------------------------------------------------------------------


def link(pki: TestPKI, issuer: str, subject: str) -> tuple[bytes, bytes]:
    return (getattr(pki, issuer).public_bytes(Encoding.DER), getattr(pki, subject).public_bytes(Encoding.DER))


def test_a_verified_document_fills_the_cache() -> None:
    pki = TestPKI.create()
    nitro_attest.verify(pki.document(), ANY, at=pki.document_time, roots=pki.roots)
    assert len(LINK_CACHE) == 4
    assert link(pki, "instance", "leaf") in LINK_CACHE


@pytest.mark.parametrize("batch", [False, True])
def test_a_failed_link_never_enters(batch: bool) -> None:
    pki = TestPKI.create()
    forged = pki.reissue("leaf", signing_key=derive_key("attacker"))
    data = forged.document()
    if batch:
        (result,) = nitro_attest.verify_batch([data], ANY, at=pki.document_time, roots=pki.roots)
        assert isinstance(result, NitroAttestError) and result.code == "chain"
    else:
        with pytest.raises(NitroAttestError) as caught:
            nitro_attest.verify(data, ANY, at=pki.document_time, roots=pki.roots)
        assert caught.value.code == "chain"
    assert link(forged, "instance", "leaf") not in LINK_CACHE
    assert link(forged, "zonal", "instance") in LINK_CACHE  # the links that did verify


def test_a_cached_link_is_still_checked_for_validity() -> None:
    pki = TestPKI.create()
    data = pki.document()
    nitro_attest.verify(data, ANY, at=pki.document_time, roots=pki.roots)
    after_instance = pki.instance.not_valid_after_utc + timedelta(seconds=1)
    with pytest.raises(NitroAttestError) as caught:
        nitro_attest.verify(data, ANY, at=after_instance, roots=pki.roots)
    assert caught.value.code == "expired"
    (result,) = nitro_attest.verify_batch([data], ANY, at=after_instance, roots=pki.roots)
    assert isinstance(result, NitroAttestError) and result.code == "expired"


def test_a_look_alike_certificate_is_not_served_from_the_cache() -> None:
    """Same subject and issuer names as a cached link, other key: verified afresh, and rejected."""
    pki = TestPKI.create()
    nitro_attest.verify(pki.document(), ANY, at=pki.document_time, roots=pki.roots)
    attacker = derive_key("attacker")
    look_alike = pki.reissue("instance", key=attacker, signing_key=attacker)
    assert look_alike.instance.subject == pki.instance.subject
    assert look_alike.instance.issuer == pki.instance.issuer
    with pytest.raises(NitroAttestError) as caught:
        nitro_attest.verify(look_alike.document(), ANY, at=pki.document_time, roots=pki.roots)
    assert caught.value.code == "chain"


def test_the_cache_is_a_bounded_lru() -> None:
    cache = LinkCache(maxsize=2)
    cache.add((b"a", b"1"))
    cache.add((b"b", b"2"))
    assert (b"a", b"1") in cache  # now the most recently used
    cache.add((b"c", b"3"))
    assert (b"b", b"2") not in cache
    assert (b"a", b"1") in cache and (b"c", b"3") in cache and len(cache) == 2
    with pytest.raises(ValueError):
        LinkCache(maxsize=0)


def test_paths_enter_the_cache_only_when_every_check_passed() -> None:
    pki = TestPKI.create()
    good = nitro_attest.parse(pki.document())
    forged = nitro_attest.parse(pki.reissue("leaf", signing_key=derive_key("attacker")).document())
    with pytest.raises(NitroAttestError):
        nitro_attest.verify(forged.raw, ANY, at=pki.document_time, roots=pki.roots)
    assert not LINK_CACHE.has_path(forged.chain_der)
    nitro_attest.verify(good.raw, ANY, at=pki.document_time, roots=pki.roots)
    assert LINK_CACHE.has_path(good.chain_der)
    # A remembered path does not make the forged leaf's path (same names, other signature) pass.
    with pytest.raises(NitroAttestError) as caught:
        nitro_attest.verify(forged.raw, ANY, at=pki.document_time, roots=pki.roots)
    assert caught.value.code == "chain"


def test_a_remembered_path_still_needs_a_trusted_root() -> None:
    pki = TestPKI.create()
    data = pki.document()
    nitro_attest.verify(data, ANY, at=pki.document_time, roots=pki.roots)
    with pytest.raises(NitroAttestError) as caught:
        nitro_attest.verify(data, ANY, at=pki.document_time)  # the AWS root only
    assert caught.value.code == "chain"


def test_batch_does_no_signature_work_verify_would_not(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch checks no signature verify() would not: none past a broken name, no document signature on a dead path."""
    pki = TestPKI.create()
    renamed = pki.reissue("leaf", issuer_name=pki.zonal.subject)  # the leaf's issuer name no longer chains
    expired = pki.reissue("instance", not_after=pki.document_time - timedelta(hours=1))
    counted: list[int] = []
    real = nitro_attest._batch.verify_p384_many

    def counting(jobs: list[P384Job], **options: Any) -> list[bool]:
        counted.append(len(jobs))
        return real(jobs, **options)

    monkeypatch.setattr(nitro_attest._batch, "verify_p384_many", counting)
    results = nitro_attest.verify_batch(
        [renamed.document(), expired.document()], ANY, at=pki.document_time, roots=pki.roots
    )
    assert [outcome(result) for result in results] == [
        ("CertificateInvalid", "chain"),
        ("CertificateInvalid", "expired"),
    ]
    # root->regional, regional->zonal, zonal->instance (shared), then the expired instance's two links;
    # no link past the broken name, and neither document's own signature.
    assert sum(counted) == 5
