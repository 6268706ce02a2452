"""The atheris harnesses of fuzz/, exercised without atheris.

Every seed of every harness (this repository's vectors, documents made by the
test PKI, the harness's own structured inputs and, when present, ../shared's
documents) and every regression input goes through the harness's
``test_one_input``, so the harnesses' oracles run in every test run and cannot
rot between campaigns. Each finding of the fuzzing campaign (fuzz/CAMPAIGN.md)
is pinned twice: as the input the harness found, and from the public API.
"""

from __future__ import annotations

import base64
import contextlib
import importlib
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import absent_reason
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

import nitro_attest
from nitro_attest import NitroAttestError, Policy
from nitro_attest.testing import TestPKI

FUZZ_DIR = Path(__file__).resolve().parents[1] / "fuzz"
# The harnesses import their shared module by its bare name, as they do when
# run as scripts; imported by name here too, so type-checking this file alone
# needs no search path for fuzz/ (run mypy on fuzz/ to check the harnesses).
sys.path.insert(0, str(FUZZ_DIR))
_fuzz_common = importlib.import_module("_fuzz_common")
fuzz_native = importlib.import_module("fuzz_native")
fuzz_parse = importlib.import_module("fuzz_parse")
fuzz_verify = importlib.import_module("fuzz_verify")
fuzz_recipient = importlib.import_module("fuzz_recipient")
fuzz_eif = importlib.import_module("fuzz_eif")
fuzz_boot_secrets = importlib.import_module("fuzz_boot_secrets")

HARNESSES: dict[str, ModuleType] = {
    "parse": fuzz_parse,
    "verify": fuzz_verify,
    "native": fuzz_native,
    "recipient": fuzz_recipient,
    "eif": fuzz_eif,
    "boot_secrets": fuzz_boot_secrets,
}


def replay(harness: ModuleType, data: bytes) -> None:
    if harness is fuzz_native and not fuzz_native.native_available():
        pytest.skip(fuzz_native.NATIVE_MISSING)
    harness.test_one_input(data)


def seed_params(source: Callable[[ModuleType], list[tuple[str, bytes]]], missing: str | None = None) -> list[Any]:
    params = [
        pytest.param(harness, data, id=f"{name}/{seed}")
        for name, harness in HARNESSES.items()
        for seed, data in source(harness)
    ]
    if not params and missing is not None:
        return [pytest.param(None, b"", id="shared-absent", marks=pytest.mark.skip(reason=missing))]
    return params


@pytest.mark.parametrize(("harness", "data"), seed_params(lambda harness: harness.own_seeds()))
def test_own_seeds(harness: ModuleType, data: bytes) -> None:
    replay(harness, data)


@pytest.mark.parametrize(
    ("harness", "data"),
    # Only the harnesses whose inputs exist in ../shared have shared seeds (not the EIF one).
    seed_params(lambda harness: getattr(harness, "shared_seeds", list)(), missing=absent_reason("vectors")),
)
def test_shared_seeds(harness: ModuleType, data: bytes) -> None:
    replay(harness, data)


def test_seed_sources_are_not_empty() -> None:
    """A harness without seeds would make the replay above vacuous."""
    for name, harness in HARNESSES.items():
        assert len(harness.own_seeds()) >= 20, name


def test_byte_reader_defaults_to_the_first_option() -> None:
    """The harnesses list the harmless option first: an exhausted input must pick it."""
    reader = _fuzz_common.ByteReader(b"\x05")
    assert reader.integer(0, 3) == 1
    assert (reader.integer(10, 20), reader.pick("abc"), reader.blob(9), reader.boolean()) == (10, "a", b"", False)


def test_accepted_mutant_keeps_the_signed_content() -> None:
    """The no-silent-accept oracle is not vacuous: a mutation that keeps the signed bytes (tag 18 added) verifies."""
    pki = TestPKI.create()
    data = pki.document(nonce=b"n")
    mutant = b"\xd2" + data
    document = nitro_attest.verify(mutant, Policy.any_enclave(), at=pki.document_time, roots=pki.roots)
    original = nitro_attest.parse(data)
    assert (document.protected_header, document.payload, document.signature) == (
        original.protected_header,
        original.payload,
        original.signature,
    )


# -- the oracles fire: a broken library makes the harnesses fail ------------------------------------


def flip_in_nonce_input() -> bytes:
    """A fuzz_verify input: base "plain", no edit, one bit flipped inside the signed nonce, defaults after."""
    base: bytes = fuzz_verify._BASE_DOCUMENTS[0]
    at = base.index(b"nonce-0001")
    # mode built, run choices (3), base 0, no edit, 1 mutation: operation 0 (flip a bit) at ``at``, bit 0
    return bytes([0, 0, 0, 0, 0, 0, 1, 0]) + at.to_bytes(2, "big") + b"\x00"


def test_verify_harness_catches_a_silent_accept(monkeypatch: pytest.MonkeyPatch) -> None:
    data = flip_in_nonce_input()
    fuzz_verify.test_one_input(data)  # the real library rejects the changed nonce
    monkeypatch.setattr(nitro_attest, "verify", lambda data, *args, **kwargs: nitro_attest.parse(data))
    monkeypatch.setattr(
        nitro_attest, "verify_batch", lambda documents, *args, **kwargs: [nitro_attest.parse(d) for d in documents]
    )
    with pytest.raises(_fuzz_common.Finding, match="signature"):
        fuzz_verify.test_one_input(data)


def test_verify_harness_catches_a_batch_disagreement(monkeypatch: pytest.MonkeyPatch) -> None:
    rejected = nitro_attest.SignatureInvalid("signature", "made up")
    monkeypatch.setattr(nitro_attest, "verify_batch", lambda documents, *args, **kwargs: [rejected for _ in documents])
    with pytest.raises(_fuzz_common.Finding, match="verify_batch"):
        fuzz_verify.test_one_input(b"")  # base "plain", unchanged: verify() accepts it


def test_native_harness_catches_a_wrong_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    if not fuzz_native.native_available():
        pytest.skip(fuzz_native.NATIVE_MISSING)
    real = fuzz_native.verify_p384_many

    def lenient_nettle(jobs: Any, *, workers: int, backend: str) -> list[bool]:
        verdicts: list[bool] = real(jobs, workers=workers, backend=backend)
        return [True] * len(verdicts) if backend == "nettle" else verdicts

    fuzz_native.test_one_input(bytes([0, 0, 0, 0, 0, 5]))  # one job, its signature's bits flipped
    monkeypatch.setattr(fuzz_native, "verify_p384_many", lenient_nettle)
    with pytest.raises(_fuzz_common.Finding, match="nettle True, cryptography False"):
        fuzz_native.test_one_input(bytes([0, 0, 0, 0, 0, 5]))


# -- regressions: inputs the harnesses found ----------------------------------------------------------
#
# The fuzz_verify inputs are the crash files libFuzzer wrote, read by the
# harness as it is today: if its input format changes, rebuild them from the
# reproducers below rather than deleting them.

REGRESSIONS = [
    pytest.param(
        fuzz_verify,
        # F1, found by fuzz_verify in its first minute (fixed in e51cca9): a certificate re-signed
        # with notBefore 0001-01-01T00:00:00Z (GeneralizedTime); verify_batch() raised OverflowError.
        base64.b64decode("AAAAAAcBCisAAAAAAAAAAJwCTyVCgPEisDX2wg=="),
        id="verify-F1-not-before-year-1",
    ),
    pytest.param(
        fuzz_verify,
        # F4, found by fuzz_verify after 24 s of the campaign, in a work-in-progress _cbor.py
        # (fixed 22 s later): a definite-length map whose last key would start past the end of
        # the payload; parse() read data[len(data)] and raised IndexError.
        base64.b64decode("AP8oB2RJPIpCAABy//0AAAAAIYlJVihJVigHJF4="),
        id="verify-F4-map-key-past-the-end",
    ),
    pytest.param(
        fuzz_verify,
        # Not a library bug: once F1 was fixed, a document with a notBefore of year 1 verified, and
        # the harness's own re-check computed notBefore - 60 s and overflowed (campaign run 4).
        base64.b64decode("ADAAjgADAwIqU3LSNcQvuOI="),
        id="verify-oracle-not-before-year-1",
    ),
    pytest.param(
        fuzz_parse,
        # F4 reduced by hand: the payload {1: [0, 0], <nothing>} declares 2 entries, and the
        # 4 bytes after its head pass the "count fits the input" check; the second key is past the end.
        bytes.fromhex("8444a1013822a045a2018200005860") + bytes(96),
        id="parse-F4-map-key-past-the-end",
    ),
]


@pytest.mark.parametrize(("harness", "data"), REGRESSIONS)
def test_regression_inputs(harness: ModuleType, data: bytes) -> None:
    replay(harness, data)


# -- the findings themselves, from the public API -----------------------------------------------------


def with_not_before(der: bytes, time: bytes, signing_key: ec.EllipticCurvePrivateKey | None) -> bytes:
    """The certificate with its notBefore replaced by the DER ``time``, re-signed when ``signing_key`` is given."""
    tbs, algorithm, signature = _fuzz_common.der_children(der)
    fields = _fuzz_common.der_children(tbs)
    fields[4] = _fuzz_common.der_element(
        0x30, time + _fuzz_common.der_children(fields[4])[1]
    )  # validity: (notBefore, notAfter)
    tbs = _fuzz_common.der_element(0x30, b"".join(fields))
    if signing_key is not None:
        signature = _fuzz_common.der_element(0x03, b"\x00" + signing_key.sign(tbs, ec.ECDSA(hashes.SHA384())))
    return _fuzz_common.der_element(0x30, tbs + algorithm + signature)


YEAR_1 = b"\x18\x0f00010101000000Z"  # GeneralizedTime 0001-01-01T00:00:00Z
YEAR_0 = b"\x18\x0f00000101000000Z"  # GeneralizedTime 0000-01-01T00:00:00Z (no such year)
ANY_ENCLAVE = Policy.any_enclave()


def only_nitro_attest_errors(call: Callable[[], object]) -> None:
    with contextlib.suppress(NitroAttestError):
        call()


# F1 and F2 (fixed in e51cca9, "no date overflow"): verify_batch() reads every
# certificate's validity before any signature (chain.pending_links); it
# computed notBefore - 60 s (OverflowError for year 1), and cryptography
# raises ValueError for a year 0 as soon as the date is read. verify() did the
# same once the links verified.
@pytest.mark.parametrize("time", [YEAR_1, YEAR_0], ids=["F1-year-1", "F2-year-0"])
def test_forged_chain_with_extreme_not_before_is_rejected_by_verify_batch(time: bytes) -> None:
    """Anyone can send it: cabundle[0] is the public AWS root, the zonal certificate after it is unsigned."""
    pki = TestPKI.create()
    aws_root = nitro_attest.AWS_NITRO_ROOT_G1.public_bytes(Encoding.DER)
    zonal = with_not_before(pki.zonal.public_bytes(Encoding.DER), time, None)
    data = pki.document(payload_overrides={"cabundle": [aws_root, zonal]})
    with pytest.raises(NitroAttestError):
        nitro_attest.verify(data, ANY_ENCLAVE)
    results = nitro_attest.verify_batch([data], ANY_ENCLAVE)
    assert isinstance(results[0], NitroAttestError)


@pytest.mark.parametrize("time", [YEAR_1, YEAR_0], ids=["F1-year-1", "F2-year-0"])
def test_signed_chain_with_extreme_not_before(time: bytes) -> None:
    """The same certificate re-signed by its (test) issuer: verify() reaches the validity check too."""
    pki = TestPKI.create()
    zonal = with_not_before(pki.zonal.public_bytes(Encoding.DER), time, pki.regional_key)
    bundle = [pki.root.public_bytes(Encoding.DER), pki.regional.public_bytes(Encoding.DER), zonal]
    data = pki.document(payload_overrides={"cabundle": [*bundle, pki.instance.public_bytes(Encoding.DER)]})
    only_nitro_attest_errors(lambda: nitro_attest.verify(data, ANY_ENCLAVE, at=pki.document_time, roots=pki.roots))
    nitro_attest.verify_batch([data], ANY_ENCLAVE, at=pki.document_time, roots=pki.roots)  # never raises for bytes


def test_document_at_the_end_of_time_verified_at_its_own_timestamp() -> None:
    """F3 (fixed in e51cca9): a signed document stamped 9999-12-31T23:59:59, verified at its own time (as the
    README suggests for archived documents); check_document_time computed at + 60 s, past datetime's range."""
    end = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)
    pki = TestPKI.create()
    for level in ("root", "regional", "zonal", "instance", "leaf"):
        pki = pki.reissue(level, not_after=end)  # keys are kept, so every link still holds
    data = pki.document(timestamp=end)
    assert nitro_attest.verify(data, ANY_ENCLAVE, at=end, roots=pki.roots).timestamp == end
    assert nitro_attest.verify_batch([data], ANY_ENCLAVE, at=end, roots=pki.roots)[0] == nitro_attest.verify(
        data, ANY_ENCLAVE, at=end, roots=pki.roots
    )
