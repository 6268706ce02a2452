"""kms.evaluate on NitroTPM documents, key policies from files, and "allowed" never next to a failing request.

KMS fills ``kms:RecipientAttestation:NitroTPMPCR<n>`` from a NitroTPM document
and ``ImageSha384``/``PCR<n>`` from an enclave's, each "effective only when
the Recipient parameter specifies" a document of its kind (KMS developer
guide, "Condition keys for NitroTPM" and "... for Nitro Enclaves"): the other
kind's keys are absent, not unknown.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import manifest_params, read_vector
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

import nitro_attest
from nitro_attest import Policy, VerifiedDocument
from nitro_attest.kms import (
    IMAGE_SHA384_KEY,
    NITROTPM_PCR_KEY_PREFIX,
    KmsDecision,
    KmsPolicyError,
    attestation_condition,
    evaluate,
    parse_key_policy,
    pcr_constraints,
)
from nitro_attest.nitrotpm import (
    NitroTPMPolicy,
    TPMPCRValue,
    VerifiedNitroTPMDocument,
    parse_nitrotpm,
    verify_nitrotpm,
)
from nitro_attest.testing import DEFAULT_PCRS, OMIT, TestPKI

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
TPM_PCRS = {index: bytes([0xA0 + index]) * 48 for index in range(24)}  # hex with letters: case matters


def tpm_key(pcr: int) -> str:
    return f"{NITROTPM_PCR_KEY_PREFIX}{pcr}"


def key_policy(conditions: dict[str, Any] | None = None, *statements: dict[str, Any]) -> dict[str, Any]:
    allow: dict[str, Any] = {"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}
    if conditions is not None:
        allow["Condition"] = conditions
    return {"Version": "2012-10-17", "Statement": [allow, *statements]}


def spki(key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI.create()


@pytest.fixture(scope="module")
def rsa_spki() -> bytes:
    return spki(rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key())


def tpm_document(pki: TestPKI, **keywords: Any) -> VerifiedNitroTPMDocument:
    data = pki.document(
        payload_overrides={"pcrs": OMIT, "nitrotpm_pcrs": TPM_PCRS, "module_id": "i-0123456789abcdef0-tpm0"},
        **keywords,
    )
    return verify_nitrotpm(data, NitroTPMPolicy.any_instance(), at=pki.document_time, roots=pki.roots)


def enclave_document(pki: TestPKI, **keywords: Any) -> VerifiedDocument:
    return nitro_attest.verify(pki.document(**keywords), Policy.any_enclave(), at=pki.document_time, roots=pki.roots)


def reasons_text(decision: KmsDecision) -> str:
    return "\n".join(decision.reasons)


# --------------------------------------------------------------------------- NitroTPM condition keys


@pytest.mark.parametrize("entry", manifest_params("real-nitrotpm"))
def test_real_nitrotpm_document_is_judged_on_its_tpm_pcrs(entry: dict[str, Any]) -> None:
    data = read_vector(entry)
    document = verify_nitrotpm(
        data, NitroTPMPolicy.any_instance(), at=_EPOCH + timedelta(milliseconds=entry["timestamp_ms"])
    )
    pins = attestation_condition([document.pcrs[4], document.pcrs[7]])
    assert pins == {"StringEqualsIgnoreCase": {tpm_key(4): document.pcrs[4].hex(), tpm_key(7): document.pcrs[7].hex()}}
    decision = evaluate(key_policy(pins), document)
    assert decision.allowed and decision.unevaluated == ()
    assert f"{tpm_key(4)} (NitroTPM PCR4): expected one of ['{document.pcrs[4].hex()}'], actual" in reasons_text(
        decision
    )
    # These documents bind a raw 65-byte EC point, not a DER RSA key: KMS could not answer them.
    assert decision.obstacles == (
        "the document's public_key is not a SubjectPublicKeyInfo (DER): KMS encrypts its response "
        "(CiphertextForRecipient) to it with RSAES-OAEP",
    )
    assert not decision.would_succeed
    assert decision.reasons[-1].startswith("decision: kms:Decrypt allowed by Statement[0], but the request would fail")
    # The enclave keys are absent from a NitroTPM request: pinning ImageSha384 never allows an instance.
    enclave_pins = {"StringEqualsIgnoreCase": {IMAGE_SHA384_KEY: document.pcrs[0].hex()}}
    assert not evaluate(key_policy(enclave_pins), document).allowed


def test_nitrotpm_keys_are_evaluated_on_a_nitrotpm_document(pki: TestPKI, rsa_spki: bytes) -> None:
    document = tpm_document(pki, public_key=rsa_spki)
    decision = evaluate(
        key_policy({"StringEquals": {tpm_key(4): TPM_PCRS[4].hex(), tpm_key(12): TPM_PCRS[12].hex()}}), document
    )
    assert decision.allowed and decision.would_succeed and decision.obstacles == ()
    assert decision.reasons[-1] == "decision: kms:Decrypt allowed by Statement[0]"
    assert "note: a NitroTPM document" in reasons_text(decision)
    wrong = evaluate(key_policy({"StringEquals": {tpm_key(4): TPM_PCRS[5].hex()}}), document)
    assert not wrong.allowed and "implicitly denied" in wrong.reasons[-1]
    # Key names are case-insensitive, values as the operator says: upper-case hex fails StringEquals.
    upper = evaluate(
        key_policy({"StringEquals": {"KMS:recipientattestation:nitrotpmpcr4": TPM_PCRS[4].hex().upper()}}), document
    )
    assert not upper.allowed and "use StringEqualsIgnoreCase or lower-case hex" in reasons_text(upper)
    # A TPM PCR the document lacks is an absent key.
    assert evaluate(key_policy({"Null": {tpm_key(30): "true"}}), document).allowed


def test_enclave_keys_are_absent_for_a_nitrotpm_document(pki: TestPKI) -> None:
    document = tpm_document(pki)
    decision = evaluate(key_policy({"StringEquals": {"kms:RecipientAttestation:PCR4": TPM_PCRS[4].hex()}}), document)
    assert not decision.allowed and decision.unevaluated == ()
    assert "a Nitro Enclaves key, which a NitroTPM document never fills" in reasons_text(decision)
    # So a "deny unless ImageSha384 is ..." statement denies every NitroTPM document.
    deny = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "kms:Decrypt",
        "Resource": "*",
        "Condition": {"StringNotEquals": {IMAGE_SHA384_KEY: DEFAULT_PCRS[0].hex()}},
    }
    denied = evaluate(key_policy(None, deny), document)
    assert not denied.allowed and "denied explicitly by Statement[1]" in denied.reasons[-1]


def test_nitrotpm_keys_are_absent_for_an_enclave_document(pki: TestPKI) -> None:
    document = enclave_document(pki)
    decision = evaluate(key_policy({"StringEqualsIgnoreCase": {tpm_key(4): DEFAULT_PCRS[4].hex()}}), document)
    assert not decision.allowed
    assert decision.unevaluated == ()  # evaluated: absent, not unknown
    assert "actual absent (positive on an absent key; a NitroTPM key, which an enclave's document never fills)" in (
        reasons_text(decision)
    )
    assert evaluate(key_policy({"Null": {tpm_key(4): "true"}}), document).allowed
    assert evaluate(key_policy({"StringNotEqualsIfExists": {tpm_key(4): "00" * 48}}), document).allowed


def test_nitrotpm_keys_are_absent_for_actions_without_a_recipient(pki: TestPKI) -> None:
    document = tpm_document(pki)
    statement = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "kms:Encrypt",
        "Resource": "*",
        "Condition": {"Null": {tpm_key(4): "true"}},
    }
    decision = evaluate({"Statement": [statement]}, document, action="kms:Encrypt")
    assert (
        decision.allowed and decision.would_succeed and decision.obstacles == ()
    )  # no Recipient, no public key needed


@pytest.mark.parametrize("name", ["NitroTPMPCR32", "NitroTPMPCR04", "NitroTPMPCR", "NitroTPMPCR-1"])
def test_unknown_nitrotpm_keys_are_refused(name: str) -> None:
    with pytest.raises(KmsPolicyError, match=r"unknown attestation key.*NitroTPMPCR31"):
        parse_key_policy(key_policy({"StringEquals": {f"kms:RecipientAttestation:{name}": "00"}}))


def test_nitrotpm_keys_have_their_own_field() -> None:
    [condition] = parse_key_policy(key_policy({"StringEquals": {tpm_key(23): "00"}})).statements[0].conditions
    assert (condition.pcr, condition.nitrotpm_pcr) == (None, 23)
    [condition] = parse_key_policy(key_policy({"StringEquals": {IMAGE_SHA384_KEY: "00"}})).statements[0].conditions
    assert (condition.pcr, condition.nitrotpm_pcr) == (0, None)


def test_an_enclave_policy_cannot_be_made_from_nitrotpm_keys() -> None:
    statement = parse_key_policy(key_policy({"StringEquals": {tpm_key(4): TPM_PCRS[4].hex()}})).statements[0]
    with pytest.raises(KmsPolicyError, match="a NitroTPM key: a Policy pins enclave PCRs"):
        pcr_constraints(statement)


def test_attestation_condition_for_tpm_pcrs() -> None:
    pcr = TPMPCRValue(7, TPM_PCRS[7])
    assert attestation_condition([pcr]) == {"StringEqualsIgnoreCase": {tpm_key(7): TPM_PCRS[7].hex()}}
    with pytest.raises(ValueError, match="mixes an enclave's PCRs and NitroTPM PCRs"):
        attestation_condition([pcr, nitro_attest.PCRValue(1, DEFAULT_PCRS[1])])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="PCR7 is given twice"):
        attestation_condition([pcr, pcr])
    with pytest.raises(TypeError, match="PCRValue or TPMPCRValue"):
        attestation_condition([TPM_PCRS[7]])  # type: ignore[arg-type]


def test_a_parsed_nitrotpm_document_is_refused_by_name(pki: TestPKI) -> None:
    document = tpm_document(pki)
    parsed = parse_nitrotpm(document.raw)
    with pytest.raises(TypeError, match=r"VerifiedNitroTPMDocument .*parse_nitrotpm\(\) verifies nothing"):
        evaluate(key_policy(), parsed)  # type: ignore[call-overload]
    assert evaluate(key_policy(), parsed, allow_unverified=True).allowed
    with pytest.raises(TypeError, match=r"VerifiedDocument .*or a VerifiedNitroTPMDocument .*not bytes"):
        evaluate(key_policy(), document.raw)  # type: ignore[call-overload]


# --------------------------------------------------------------------------- obstacles: no "allowed" when it would fail


@pytest.mark.parametrize(
    ("public_key", "obstacle"),
    [
        (None, "the document has no public_key"),
        (b"", "the document has an empty public_key"),
        (b"\x04" + bytes(64), "is not a SubjectPublicKeyInfo (DER)"),
        ("ec", "is an EC (secp384r1) key, not an RSA key"),
    ],
)
def test_a_document_kms_cannot_answer_is_not_a_success(
    pki: TestPKI, public_key: bytes | str | None, obstacle: str
) -> None:
    if public_key == "ec":
        public_key = spki(ec.generate_private_key(ec.SECP384R1()).public_key())
    assert not isinstance(public_key, str)
    for document in (enclave_document(pki, public_key=public_key), tpm_document(pki, public_key=public_key)):
        decision = evaluate(key_policy(), document)
        assert decision.allowed  # the key policy's verdict
        assert not decision.would_succeed
        [found] = decision.obstacles
        assert obstacle in found
        # The verdict and the failure in one line; no line says "allowed" alone.
        assert (
            decision.reasons[-1]
            == f"decision: kms:Decrypt allowed by Statement[0], but the request would fail: {found}"
        )
        assert not any("would fail" in reason for reason in decision.reasons[:-1])


def test_a_denied_request_keeps_its_obstacles(pki: TestPKI) -> None:
    decision = evaluate(key_policy({"StringEquals": {IMAGE_SHA384_KEY: "00" * 48}}), enclave_document(pki))
    assert not decision.allowed and not decision.would_succeed
    assert decision.obstacles and "would fail" not in decision.reasons[-1]


def test_an_rsa_key_has_no_obstacle(pki: TestPKI, rsa_spki: bytes) -> None:
    decision = evaluate(key_policy(), enclave_document(pki, public_key=rsa_spki))
    assert decision.would_succeed and decision.obstacles == ()


# --------------------------------------------------------------------------- key policies from files


def test_a_key_policy_file(pki: TestPKI, tmp_path: Path) -> None:
    path = tmp_path / "key-policy.json"
    path.write_text(json.dumps(key_policy({"StringEquals": {tpm_key(4): TPM_PCRS[4].hex()}})), encoding="utf-8")
    document = tpm_document(pki)
    assert evaluate(path, document).allowed
    assert parse_key_policy(path) == parse_key_policy(path.read_text(encoding="utf-8"))
    # A str is JSON text, never a file name.
    with pytest.raises(KmsPolicyError, match="not valid JSON"):
        evaluate(str(path), document)
    with pytest.raises(FileNotFoundError):
        evaluate(tmp_path / "absent.json", document)


def test_an_oversized_key_policy_file_is_refused_unread(pki: TestPKI, tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    path.write_bytes(b" " * (64 * 1024 * 1024))
    with pytest.raises(KmsPolicyError, match=r"over 32768 bytes"):
        evaluate(path, tpm_document(pki))
