"""Real Nitro documents (../shared/vectors): every genuine one verifies, every other one is rejected for its reason."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from conftest import absent_reason, manifest_entries, manifest_params, read_vector

import nitro_attest
from nitro_attest import (
    AttestationDocument,
    CertificateInvalid,
    MalformedDocument,
    NitroAttestError,
    Policy,
    PolicyViolation,
    SignatureInvalid,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# negative/ file -> (exception class, code, why: the entry's manifest note in one line).
NEGATIVE_EXPECTED: dict[str, tuple[type[NitroAttestError], str, str]] = {
    "negative/eternis-neg-1.cbor": (
        SignatureInvalid,
        "signature",
        "genuine AWS chain, but the payload was altered after signing (nonce zeroed)",
    ),
    "negative/blocky-nitrite-neg-1.cbor": (
        MalformedDocument,
        "cose",
        "self-signed mock whose unprotected header is CBOR null (Nitro requires an empty map)",
    ),
    "negative/marlin-oyster-neg-1.cbor": (
        CertificateInvalid,
        "chain",
        "Oyster mock signed by its own key: cabundle[0] is not the AWS root",
    ),
    "negative/marlin-oyster-neg-2.cbor": (
        CertificateInvalid,
        "chain",
        "Oyster mock with PCR16: cabundle[0] is not the AWS root",
    ),
    "negative/base-nitro-validator-neg-1.cbor": (
        MalformedDocument,
        "cbor",
        "real document pasted with 3 bytes missing while CBOR lengths still count them",
    ),
}


def own_time(entry: dict[str, Any]) -> datetime:
    """The document's own timestamp (all leaf certificates are long expired)."""
    return _EPOCH + timedelta(milliseconds=entry["timestamp_ms"])


def verify_at_own_time(entry: dict[str, Any], policy: Policy) -> AttestationDocument:
    return nitro_attest.verify(read_vector(entry), policy, at=own_time(entry))


def optional_len(value: bytes | None) -> int | None:
    return None if value is None else len(value)


@pytest.mark.parametrize("entry", manifest_params("real"))
def test_real_document_verifies_any_enclave(entry: dict[str, Any]) -> None:
    document = verify_at_own_time(entry, Policy.any_enclave(allow_debug=True))

    assert document.module_id == entry["module_id"]
    assert (document.timestamp - _EPOCH) // timedelta(milliseconds=1) == entry["timestamp_ms"]
    assert len(document.pcrs) == entry["pcr_count"]
    assert [index for index, pcr in document.pcrs.items() if not pcr.is_zero] == entry["nonzero_pcr_indexes"]
    assert {str(index): pcr.hex() for index, pcr in document.pcrs.items() if not pcr.is_zero} == entry[
        "pcr_hex_nonzero"
    ]
    assert optional_len(document.user_data) == entry["user_data_len"]
    assert optional_len(document.nonce) == entry["nonce_len"]
    assert optional_len(document.public_key) == entry["public_key_len"]
    assert document.is_debug == entry["debug_mode_pcr0_all_zero"]
    assert len(document.cabundle) == entry["cabundle_count"]


@pytest.mark.parametrize("entry", manifest_params("real"))
def test_real_document_verifies_with_pinned_pcrs(entry: dict[str, Any]) -> None:
    # As users paste them: upper-case hex, every non-zero PCR of the document.
    pins = {int(index): value.upper() for index, value in entry["pcr_hex_nonzero"].items()}
    policy = Policy(pins, allow_debug=entry["debug_mode_pcr0_all_zero"])
    document = verify_at_own_time(entry, policy)
    assert document.module_id == entry["module_id"]

    # The pins are really compared: one changed digit is a PCR violation.
    index, value = next(iter(pins.items()))
    wrong = {**pins, index: ("0" if value[0] != "0" else "1") + value[1:]}
    with pytest.raises(PolicyViolation) as caught:
        verify_at_own_time(entry, Policy(wrong, allow_debug=entry["debug_mode_pcr0_all_zero"]))
    assert caught.value.code == "pcr"


@pytest.mark.parametrize("entry", manifest_params("real"))
def test_real_document_is_expired_now(entry: dict[str, Any]) -> None:
    with pytest.raises(CertificateInvalid) as caught:
        nitro_attest.verify(read_vector(entry), Policy.any_enclave(allow_debug=True))
    assert caught.value.code == "expired"


@pytest.mark.parametrize("entry", manifest_params("real"))
def test_pcr4_is_the_parent_instance_id(entry: dict[str, Any]) -> None:
    """PCR4 = SHA-384(48 zero bytes || instance ID), the ID being module_id's ``i-...`` before ``-enc``."""
    instance_id, separator, _ = entry["module_id"].partition("-enc")
    if not separator or not instance_id.startswith("i-"):
        pytest.skip(f"module_id {entry['module_id']!r} does not start with an instance ID followed by '-enc'")
    document = nitro_attest.parse(read_vector(entry))
    expected = hashlib.sha384(bytes(48) + instance_id.encode("utf-8")).digest()
    assert document.pcrs[4].value == expected


@pytest.mark.parametrize("entry", manifest_params("real-nitrotpm"))
def test_nitrotpm_document_is_malformed(entry: dict[str, Any]) -> None:
    # Genuine AWS signatures, but 'nitrotpm_pcrs' instead of 'pcrs': not an Enclaves document.
    with pytest.raises(MalformedDocument) as caught:
        verify_at_own_time(entry, Policy.any_enclave(allow_debug=True))
    assert caught.value.code == "schema"


@pytest.mark.parametrize("entry", manifest_params("negative"))
def test_negative_document_is_rejected(entry: dict[str, Any]) -> None:
    family, code, _why = NEGATIVE_EXPECTED[entry["file"]]
    at = own_time(entry) if "timestamp_ms" in entry else None
    with pytest.raises(NitroAttestError) as caught:
        nitro_attest.verify(read_vector(entry), Policy.any_enclave(allow_debug=True), at=at)
    assert type(caught.value) is family, repr(caught.value)
    assert caught.value.code == code, repr(caught.value)


def test_every_negative_vector_has_an_expected_code() -> None:
    files = {entry["file"] for entry in manifest_entries("negative")}
    if not files:
        pytest.skip(absent_reason("vectors/MANIFEST.json"))
    assert files == set(NEGATIVE_EXPECTED)
