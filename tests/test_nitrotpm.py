"""NitroTPM documents: the three real ones verify, the kinds never mix, and every rejection has its input.

The look-alike NitroTPM documents are the test PKI's documents with ``pcrs``
replaced by ``nitrotpm_pcrs`` (24 registers shaped like a real instance's) and
a ``-tpm`` module ID: same envelope, chain and signing code as enclave ones.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from conftest import manifest_params, read_vector

import nitro_attest
from nitro_attest import (
    AttestationDocument,
    CertificateInvalid,
    DocumentTimeInvalid,
    MalformedDocument,
    PCRValue,
    Policy,
    PolicyViolation,
    SignatureInvalid,
    VerifiedDocument,
)
from nitro_attest.document import require_verified
from nitro_attest.nitrotpm import (
    NITROTPM_PCR_MEANINGS,
    NitroTPMDocument,
    NitroTPMPolicy,
    TPMPCRValue,
    VerifiedNitroTPMDocument,
    parse_nitrotpm,
    verify_nitrotpm,
)
from nitro_attest.testing import OMIT, TestPKI

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
TPM_MODULE_ID = "i-0123456789abcdef0-tpm0000000000000000"
# A real instance's shape: firmware and boot PCRs set, 11-16 zero, 17-22 at the TPM's all-ones reset value.
TPM_PCRS: dict[int, bytes] = {
    **{index: bytes([index + 1]) * 48 for index in range(11)},
    **{index: bytes(48) for index in range(11, 17)},
    **{index: b"\xff" * 48 for index in range(17, 23)},
    23: bytes(48),
}


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI.create()


def tpm_document(pki: TestPKI, **keywords: Any) -> bytes:
    """A look-alike NitroTPM document; ``nitrotpm_pcrs`` and other payload fields may be overridden."""
    overrides: dict[str, object] = {"pcrs": OMIT, "nitrotpm_pcrs": TPM_PCRS, "module_id": TPM_MODULE_ID}
    overrides.update(keywords.pop("payload_overrides", {}))
    return pki.document(payload_overrides=overrides, **keywords)


def verified(pki: TestPKI, data: bytes, policy: NitroTPMPolicy | None = None) -> VerifiedNitroTPMDocument:
    return verify_nitrotpm(data, policy or NitroTPMPolicy.any_instance(), at=pki.document_time, roots=pki.roots)


def own_time(entry: dict[str, Any]) -> datetime:
    return _EPOCH + timedelta(milliseconds=entry["timestamp_ms"])


# --------------------------------------------------------------------------- the real documents


@pytest.mark.parametrize("entry", manifest_params("real-nitrotpm"))
def test_real_nitrotpm_document_verifies_at_its_own_time(entry: dict[str, Any]) -> None:
    data = read_vector(entry)
    parsed = parse_nitrotpm(data)
    # Pinned as an Attestable AMI policy would: boot manager code and Secure Boot policy.
    policy = NitroTPMPolicy({4: parsed.pcrs[4], 7: parsed.pcrs[7].hex().upper()}, module_id="i-*-tpm*")
    document = verify_nitrotpm(data, policy, at=own_time(entry))
    assert type(document) is VerifiedNitroTPMDocument
    assert not isinstance(document, AttestationDocument)
    assert document.verified_at == document.timestamp == own_time(entry)
    assert document.module_id == entry["module_id"]
    assert sorted(document.pcrs) == list(range(24))
    assert all(len(pcr.value) == 48 and pcr.index == index for index, pcr in document.pcrs.items())
    assert document.pcrs[17].value == b"\xff" * 48  # the TPM's reset value of PCR17-22
    assert document.pcrs[4].meaning == "boot manager code"
    assert document.nonce is not None and len(document.nonce) == entry["nonce_len"]
    assert document.user_data is None


@pytest.mark.parametrize("entry", manifest_params("real-nitrotpm"))
def test_real_nitrotpm_document_is_refused_by_verify_naming_nitrotpm(entry: dict[str, Any]) -> None:
    with pytest.raises(MalformedDocument, match=r"a NitroTPM document \(nitrotpm_pcrs\).*verify_nitrotpm") as caught:
        nitro_attest.verify(read_vector(entry), Policy.any_enclave(allow_debug=True), at=own_time(entry))
    assert caught.value.code == "schema"
    with pytest.raises(MalformedDocument, match="NitroTPM"):
        nitro_attest.parse(read_vector(entry))


@pytest.mark.parametrize("entry", manifest_params("real-nitrotpm"))
def test_real_nitrotpm_document_is_expired_now(entry: dict[str, Any]) -> None:
    with pytest.raises(CertificateInvalid) as caught:
        verify_nitrotpm(read_vector(entry), NitroTPMPolicy.any_instance())
    assert caught.value.code == "expired"


@pytest.mark.parametrize("entry", manifest_params("real"))
def test_enclave_document_is_refused_by_verify_nitrotpm_naming_the_enclave_kind(entry: dict[str, Any]) -> None:
    with pytest.raises(MalformedDocument, match=r"Nitro Enclaves attestation document \(pcrs\).*nitro_attest\.verify"):
        verify_nitrotpm(read_vector(entry), NitroTPMPolicy.any_instance(), at=own_time(entry))


# --------------------------------------------------------------------------- look-alike documents


def test_lookalike_document_verifies(pki: TestPKI) -> None:
    data = tpm_document(pki, nonce=b"n" * 32, public_key=b"k")
    document = verified(pki, data, NitroTPMPolicy({4: TPM_PCRS[4], 12: TPM_PCRS[12]}, nonce=b"n" * 32))
    pcr4 = document.pcrs[4]
    assert pcr4 == TPMPCRValue(4, TPM_PCRS[4]) and pcr4 == TPM_PCRS[4] and pcr4 == TPM_PCRS[4].hex().upper()
    assert document.public_key == b"k"
    assert document.payload == parse_nitrotpm(data).payload
    assert json.loads(json.dumps(document.as_dict()))["pcrs"]["4"]["meaning"] == "boot manager code"
    assert document.as_dict()["kind"] == "nitrotpm" and "verified_at" in document.as_dict()


def test_an_enclave_lookalike_is_refused_by_the_nitrotpm_path(pki: TestPKI) -> None:
    with pytest.raises(MalformedDocument, match="Nitro Enclaves attestation document"):
        verified(pki, pki.document())
    with pytest.raises(MalformedDocument, match="Nitro Enclaves attestation document"):
        parse_nitrotpm(pki.document())


def test_a_nitrotpm_lookalike_is_refused_by_verify_and_verify_batch(pki: TestPKI) -> None:
    data = tpm_document(pki)
    with pytest.raises(MalformedDocument, match="a NitroTPM document"):
        nitro_attest.verify(data, Policy.any_enclave(), at=pki.document_time, roots=pki.roots)
    [result] = nitro_attest.verify_batch([data], Policy.any_enclave(), at=pki.document_time, roots=pki.roots)
    assert isinstance(result, MalformedDocument) and "a NitroTPM document" in str(result)


@pytest.mark.parametrize("reader", ["verify", "verify_nitrotpm"])
def test_a_document_with_both_pcr_maps_is_neither_kind(pki: TestPKI, reader: str) -> None:
    data = pki.document(payload_overrides={"nitrotpm_pcrs": TPM_PCRS})
    with pytest.raises(MalformedDocument, match="both pcrs and nitrotpm_pcrs"):
        if reader == "verify":
            nitro_attest.verify(data, Policy.any_enclave(), at=pki.document_time, roots=pki.roots)
        else:
            verified(pki, data)


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ([TPM_PCRS[0]], "nitrotpm_pcrs must be a map, got list"),
        ({}, "nitrotpm_pcrs has 0 entries"),
        ({index: bytes(48) for index in range(33)}, "nitrotpm_pcrs has 33 entries"),
        ({32: bytes(48)}, "nitrotpm_pcrs key 32 is not an index"),
        ({"4": bytes(48)}, "nitrotpm_pcrs key '4' is not an index"),
        ({True: bytes(48)}, "nitrotpm_pcrs key True is not an index"),
        ({4: bytes(32)}, "nitrotpm_pcrs: PCR4 must be a 48-byte string"),
        ({4: "00" * 48}, "nitrotpm_pcrs: PCR4 must be a 48-byte string"),
    ],
)
def test_malformed_nitrotpm_pcrs(pki: TestPKI, value: object, needle: str) -> None:
    with pytest.raises(MalformedDocument) as caught:
        verified(pki, tpm_document(pki, payload_overrides={"nitrotpm_pcrs": value}))
    assert caught.value.code == "schema"
    assert needle in caught.value.message


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"certificate": OMIT}, "payload lacks certificate"),
        ({"digest": "SHA256"}, "digest must be 'SHA384'"),
        ({"module_id": ""}, "module_id must be a non-empty text string"),
        ({"nonce": 7}, "nonce must be a byte string"),
    ],
)
def test_the_shared_schema_applies(pki: TestPKI, overrides: dict[str, object], needle: str) -> None:
    with pytest.raises(MalformedDocument, match=needle):
        verified(pki, tpm_document(pki, payload_overrides=overrides))


def test_strict_decoding_applies(pki: TestPKI) -> None:
    with pytest.raises(MalformedDocument) as caught:
        verified(pki, tpm_document(pki, trailing=b"\x00"))
    assert caught.value.code == "cbor"
    with pytest.raises(MalformedDocument) as caught:
        verified(pki, tpm_document(pki, protected=bytes.fromhex("a10126")))  # ES256
    assert caught.value.code == "cose"
    with pytest.raises(TypeError, match="data must be bytes"):
        verify_nitrotpm("a document", NitroTPMPolicy.any_instance())  # type: ignore[arg-type]


def test_the_signature_is_checked(pki: TestPKI) -> None:
    with pytest.raises(SignatureInvalid):
        verified(pki, tpm_document(pki, signature=lambda raw: raw[:-1] + bytes([raw[-1] ^ 1])))


def test_the_chain_is_checked(pki: TestPKI) -> None:
    data = tpm_document(pki)
    with pytest.raises(CertificateInvalid, match="not a trusted root") as caught:
        verify_nitrotpm(data, NitroTPMPolicy.any_instance(), at=pki.document_time)  # the AWS root, not the test one
    assert caught.value.code == "chain"
    with pytest.raises(CertificateInvalid) as caught:
        verified(pki, tpm_document(pki, chain=(pki.root, pki.regional, pki.instance)))
    assert caught.value.code == "chain"
    with pytest.raises(CertificateInvalid) as caught:
        verify_nitrotpm(data, NitroTPMPolicy.any_instance(), at=pki.document_time + timedelta(days=2), roots=pki.roots)
    assert caught.value.code == "expired"


def test_the_time_is_checked(pki: TestPKI) -> None:
    with pytest.raises(DocumentTimeInvalid):
        verified(pki, tpm_document(pki, timestamp=pki.document_time + timedelta(minutes=5)))


# --------------------------------------------------------------------------- policies


@pytest.mark.parametrize(
    ("policy", "code", "needle"),
    [
        (NitroTPMPolicy({4: TPM_PCRS[5]}), "pcr", "NitroTPM PCR4 is 0505"),
        (NitroTPMPolicy({24: bytes(48)}), "pcr", "NitroTPM PCR24 is constrained but absent"),
        (NitroTPMPolicy.any_instance(nonce=b"other"), "nonce", "nonce does not match"),
        (NitroTPMPolicy.any_instance(user_data=b"u"), "user_data", "the document has none"),
        (NitroTPMPolicy.any_instance(public_key=b"k"), "public_key", "public_key does not match"),
        (NitroTPMPolicy.any_instance(module_id="i-*-enc*"), "module_id", "does not match 'i-*-enc*'"),
    ],
)
def test_policy_rejections(pki: TestPKI, policy: NitroTPMPolicy, code: str, needle: str) -> None:
    with pytest.raises(PolicyViolation) as caught:
        verified(pki, tpm_document(pki, nonce=b"n"), policy)
    assert caught.value.code == code
    assert needle in caught.value.message


def test_stale_document(pki: TestPKI) -> None:
    data = tpm_document(pki)
    policy = NitroTPMPolicy.any_instance(max_age=timedelta(minutes=5))
    verify_nitrotpm(data, policy, at=pki.document_time + timedelta(minutes=5), roots=pki.roots)
    with pytest.raises(PolicyViolation) as caught:
        verify_nitrotpm(data, policy, at=pki.document_time + timedelta(minutes=6), roots=pki.roots)
    assert caught.value.code == "stale"


def test_every_failure_is_reported(pki: TestPKI) -> None:
    document = verified(pki, tpm_document(pki))
    failures = NitroTPMPolicy({0: TPM_PCRS[1], 7: [TPM_PCRS[7], TPM_PCRS[8]]}, nonce=b"x").explain(document)
    assert [(failure.code, failure.index) for failure in failures] == [("pcr", 0), ("nonce", None)]
    assert failures[0].expected == (TPM_PCRS[1].hex(),) and failures[0].actual == TPM_PCRS[0].hex()


def test_kinds_of_policy_never_cross(pki: TestPKI) -> None:
    tpm = tpm_document(pki)
    with pytest.raises(TypeError, match=r"NitroTPMPolicy, not Policy \(an enclave Policy never judges"):
        verify_nitrotpm(tpm, Policy.any_enclave(), at=pki.document_time, roots=pki.roots)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"must be a nitro_attest\.Policy, not NitroTPMPolicy"):
        nitro_attest.verify(pki.document(), NitroTPMPolicy.any_instance(), roots=pki.roots)  # type: ignore[arg-type]
    document = verified(pki, tpm)
    # Neither policy judges the other kind's document, even when asked to skip the trust check.
    with pytest.raises(TypeError, match="VerifiedDocument"):
        Policy.any_enclave().explain(document, allow_unverified=True)  # type: ignore[call-overload]
    enclave = nitro_attest.verify(pki.document(), Policy.any_enclave(), at=pki.document_time, roots=pki.roots)
    with pytest.raises(TypeError, match="VerifiedNitroTPMDocument"):
        NitroTPMPolicy.any_instance().explain(enclave, allow_unverified=True)  # type: ignore[call-overload]
    # And a NitroTPM document is not what code acting on enclaves accepts.
    assert not isinstance(document, VerifiedDocument)
    with pytest.raises(TypeError, match="not VerifiedNitroTPMDocument"):
        require_verified(document, "the recipient")


def test_a_parsed_document_is_refused_by_name(pki: TestPKI) -> None:
    parsed = parse_nitrotpm(tpm_document(pki))
    assert type(parsed) is NitroTPMDocument
    policy = NitroTPMPolicy.any_instance()
    with pytest.raises(TypeError, match=r"VerifiedNitroTPMDocument .*parse_nitrotpm\(\) verifies nothing"):
        policy.explain(parsed)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="not a parsed NitroTPMDocument"):
        policy.check(parsed, pki.document_time)  # type: ignore[call-overload]
    assert policy.explain(parsed, pki.document_time, allow_unverified=True) == ()


def test_pins(pki: TestPKI) -> None:
    document = verified(pki, tpm_document(pki))
    by_value = NitroTPMPolicy({4: document.pcrs[4], 7: {TPM_PCRS[7].hex().upper(), TPM_PCRS[8]}})
    assert by_value.pcrs == {4: frozenset({TPM_PCRS[4]}), 7: frozenset({TPM_PCRS[7], TPM_PCRS[8]})}
    assert by_value.explain(document) == ()
    assert hash(by_value) == hash(NitroTPMPolicy({4: TPM_PCRS[4], 7: [TPM_PCRS[8], TPM_PCRS[7]]}))
    assert repr(NitroTPMPolicy({4: "ab" * 48}, nonce=b"n")) == f"NitroTPMPolicy({{4: '{'ab' * 48}'}}, nonce=b'n')"
    assert repr(NitroTPMPolicy.any_instance()) == "NitroTPMPolicy.any_instance()"


@pytest.mark.parametrize(
    ("arguments", "error", "needle"),
    [
        ({}, ValueError, "NitroTPMPolicy.any_instance"),
        ({"pcrs": {4: PCRValue(4, bytes(48))}}, TypeError, "an enclave's PCR"),
        ({"pcrs": {4: [PCRValue(4, bytes(48))]}}, TypeError, "an enclave's PCR"),
        ({"pcrs": {4: "ab"}}, ValueError, "expected 96 hex digits"),
        ({"pcrs": {4: []}}, ValueError, "no allowed values"),
        ({"pcrs": {"4": bytes(48)}}, TypeError, "PCR indices are integers"),
        ({"pcrs": {32: bytes(48)}}, ValueError, "PCR index must be an integer 0..31"),
        ({"pcrs": [bytes(48)]}, TypeError, "pcrs must be a mapping of TPM PCR index"),
        ({"pcrs": {4: bytes(48)}, "max_age": timedelta(seconds=-1)}, ValueError, "max_age"),
        ({"pcrs": {4: bytes(48)}, "nonce": "n"}, TypeError, "nonce must be bytes"),
        ({"pcrs": {4: bytes(48)}, "module_id": ""}, TypeError, "module_id"),
    ],
)
def test_unusable_policy(arguments: dict[str, Any], error: type[Exception], needle: str) -> None:
    with pytest.raises(error, match=needle):
        NitroTPMPolicy(**arguments)


def test_tpm_pcr_values() -> None:
    pcr = TPMPCRValue(7, b"\x07" * 48)
    assert pcr.meaning == "Secure Boot policy" == NITROTPM_PCR_MEANINGS[7]
    assert TPMPCRValue(20, bytes(48)).meaning is None
    assert bytes(pcr) == b"\x07" * 48 and str(pcr) == "07" * 48 == pcr.hex()
    assert repr(pcr) == f"TPMPCRValue(7, '{'07' * 48}')"
    assert pcr != TPMPCRValue(6, b"\x07" * 48) and pcr != "zz" and pcr != 7
    # The same number and bytes on an enclave mean something else: never equal.
    assert pcr != PCRValue(7, b"\x07" * 48)
    assert hash(pcr) == hash(b"\x07" * 48)
    with pytest.raises(ValueError, match=r"index must be an integer 0\.\.31"):
        TPMPCRValue(32, bytes(48))
    with pytest.raises(ValueError, match="index must be an integer"):
        TPMPCRValue(True, bytes(48))
    with pytest.raises(ValueError, match="must be 48 bytes"):
        TPMPCRValue(1, bytes(32))
