"""One test per rule of DESIGN.md sections 2-5, each breaking that rule alone with the test PKI's factory.

Every rejection asserts the exact exception family and ``.code``; every
"accept" decision of section 2 has its own test. The documents are made here,
not read from ``vectors/`` (test_vectors.py checks those).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtensionOID, ObjectIdentifier
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nitro_attest
from nitro_attest import (
    AttestationDocument,
    CertificateInvalid,
    DocumentTimeInvalid,
    MalformedDocument,
    NitroAttestError,
    PCRValue,
    Policy,
    PolicyViolation,
    SignatureInvalid,
)
from nitro_attest.testing import DEFAULT_PCRS, OMIT, Raw, TestPKI, derive_key, encode_map

# Every rule here holds for both CBOR scans, the C one and the Python reference.
pytestmark = pytest.mark.usefixtures("cbor_scan")

FAMILY: Mapping[str, type[NitroAttestError]] = {
    **dict.fromkeys(("size", "cbor", "cose", "schema"), MalformedDocument),
    "signature": SignatureInvalid,
    **dict.fromkeys(("certificate", "chain", "expired"), CertificateInvalid),
    "time": DocumentTimeInvalid,
    **dict.fromkeys(("pcr", "debug", "nonce", "user_data", "public_key", "stale"), PolicyViolation),
}
P384_ORDER = nitro_attest._backend.P384_ORDER
PIN_PCR0 = Policy({0: DEFAULT_PCRS[0]})
ZERO = bytes(48)
DEBUG_PCRS = {**DEFAULT_PCRS, 0: ZERO, 1: ZERO, 2: ZERO}
UNKNOWN_OID = ObjectIdentifier("1.3.6.1.5.5.7.13.99")


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI.create()


def verify(
    pki: TestPKI,
    data: bytes,
    policy: Policy = PIN_PCR0,
    *,
    at: datetime | None = None,
    roots: tuple[x509.Certificate, ...] | None = None,
) -> AttestationDocument:
    return nitro_attest.verify(data, policy, at=at or pki.document_time, roots=roots or pki.roots)


def rejects(
    pki: TestPKI,
    data: bytes,
    code: str,
    policy: Policy = PIN_PCR0,
    *,
    at: datetime | None = None,
    roots: tuple[x509.Certificate, ...] | None = None,
) -> NitroAttestError:
    """Asserts that ``data`` is rejected with exactly ``code`` (and its family); returns the error."""
    with pytest.raises(NitroAttestError) as raised:
        verify(pki, data, policy, at=at, roots=roots)
    error = raised.value
    assert error.code == code, str(error)
    assert type(error) is FAMILY[code]
    return error


def set_part(index: int, value: object) -> Callable[[list[object]], object]:
    def edit(parts: list[object]) -> object:
        parts[index] = value
        return parts

    return edit


def milliseconds(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(milliseconds=1)


def uint64(value: int) -> Raw:
    """An integer with an 8-byte argument: valid CBOR, not the shortest encoding."""
    return Raw(b"\x1b" + value.to_bytes(8, "big"))


def basic_constraints(ca: bool, path_length: int | None, critical: bool = True) -> x509.Extension[Any]:
    return x509.Extension(ExtensionOID.BASIC_CONSTRAINTS, critical, x509.BasicConstraints(ca, path_length))


def key_usage(*, digital_signature: bool, non_repudiation: bool = False, cert_sign: bool) -> x509.Extension[Any]:
    value = x509.KeyUsage(digital_signature, non_repudiation, False, False, False, cert_sign, False, False, False)
    return x509.Extension(ExtensionOID.KEY_USAGE, True, value)


def unknown_extension(*, critical: bool, size: int = 2) -> x509.Extension[Any]:
    return x509.Extension(
        UNKNOWN_OID, critical, x509.UnrecognizedExtension(UNKNOWN_OID, b"\x05\x00".ljust(size, b"\0"))
    )


def padded(pki: TestPKI, payload_size: int) -> bytes:
    """A document whose payload is exactly ``payload_size`` bytes (padded by an unknown key)."""
    base = len(cbor2.loads(pki.document())[2])
    data = pki.document(payload_overrides={"padding": bytes(payload_size - base - 8 - 3)})
    assert len(cbor2.loads(data)[2]) == payload_size
    return data


# ---------------------------------------------------------------------------
# Section 2: decoding rules
# ---------------------------------------------------------------------------


def test_size_document_over_32_kib_is_rejected(pki: TestPKI) -> None:
    data = pki.document(payload_overrides={"padding": bytes(33 * 1024)})
    assert len(data) > 32 * 1024
    rejects(pki, data, "size")


def test_size_payload_over_16_kib_is_rejected(pki: TestPKI) -> None:
    data = padded(pki, 16 * 1024 + 1)
    assert len(data) < 32 * 1024
    rejects(pki, data, "size")


def test_size_payload_of_exactly_16_kib_is_accepted(pki: TestPKI) -> None:
    verify(pki, padded(pki, 16 * 1024))


def test_depth_payload_nesting_over_4_is_rejected(pki: TestPKI) -> None:
    rejects(pki, pki.document(payload_overrides={"future": [[[[]]]]}), "cbor")
    rejects(pki, pki.document(payload_overrides={"future": {"a": {"b": {"c": {}}}}}), "cbor")


def test_depth_payload_nesting_of_4_is_accepted(pki: TestPKI) -> None:
    verify(pki, pki.document(payload_overrides={"future": [[[]]]}))


def test_depth_thousands_of_nested_arrays_are_rejected_without_recursion_error(pki: TestPKI) -> None:
    rejects(pki, pki.document(payload_overrides={"future": Raw(b"\x81" * 5000 + b"\x00")}), "cbor")
    rejects(pki, b"\x81" * 30_000 + b"\x00", "cbor")


def test_trailing_bytes_after_the_document_are_rejected(pki: TestPKI) -> None:
    rejects(pki, pki.document(trailing=b"\x00"), "cbor")
    rejects(pki, pki.document(trailing=pki.document()), "cbor")


def test_trailing_bytes_inside_the_payload_are_rejected(pki: TestPKI) -> None:
    rejects(pki, pki.document(payload_bytes=lambda payload: payload + b"\xf6"), "cbor")


def test_trailing_bytes_inside_the_protected_header_are_rejected(pki: TestPKI) -> None:
    rejects(pki, pki.document(protected=bytes.fromhex("a1013822") + b"\x00"), "cbor")


def test_truncated_and_empty_documents_are_rejected(pki: TestPKI) -> None:
    data = pki.document()
    for cut in (0, 1, 10, len(data) // 2, len(data) - 1):
        rejects(pki, data[:cut], "cbor")


def test_duplicate_key_in_payload_is_rejected(pki: TestPKI) -> None:
    rejects(pki, pki.document(payload_extra=[("nonce", b"second")]), "cbor")
    rejects(pki, pki.document(payload_extra=[("pcrs", {0: ZERO})]), "cbor")


def test_duplicate_pcr_index_is_rejected(pki: TestPKI) -> None:
    pcrs = Raw(encode_map([*DEFAULT_PCRS.items(), (0, ZERO)]))
    rejects(pki, pki.document(payload_overrides={"pcrs": pcrs}), "cbor")


def test_duplicate_key_in_an_unknown_field_is_rejected(pki: TestPKI) -> None:
    rejects(pki, pki.document(payload_overrides={"future": Raw(encode_map([("a", 1), ("a", 1)]))}), "cbor")


def test_duplicate_key_in_protected_header_is_rejected(pki: TestPKI) -> None:
    rejects(pki, pki.document(protected=encode_map([(1, -35), (1, -35)])), "cbor")


def test_duplicate_key_in_unprotected_header_is_rejected(pki: TestPKI) -> None:
    rejects(pki, pki.document(envelope=set_part(1, Raw(encode_map([(4, b"k"), (4, b"k")])))), "cbor")


# What to pass to TestPKI.document() to put a tag somewhere it is not allowed.
MISPLACED_TAGS: dict[str, dict[str, Any]] = {
    "outer-98-cose-sign": {"tag": 98},
    "outer-61-cwt": {"tag": 61},
    "outer-55799-self-described": {"tag": 55799},
    "18-twice": {"tag": 18, "envelope": lambda parts: cbor2.CBORTag(18, parts)},
    "payload-bstr-24": {"envelope": lambda parts: [*parts[:2], cbor2.CBORTag(24, parts[2]), parts[3]]},
    "protected-bstr-24": {"envelope": lambda parts: [cbor2.CBORTag(24, parts[0]), *parts[1:]]},
    "payload-self-described": {"payload_bytes": lambda payload: b"\xd9\xd9\xf7" + payload},
    "protected-tagged": {"protected": cbor2.dumps(cbor2.CBORTag(55799, {1: -35}))},
    "timestamp-tag-1": {"payload_overrides": {"timestamp": cbor2.CBORTag(1, 1767240000000)}},
    "pcr-tag-64": {"payload_overrides": {"pcrs": {**DEFAULT_PCRS, 0: cbor2.CBORTag(64, DEFAULT_PCRS[0])}}},
    "cabundle-set-tag": {"payload_overrides": {"cabundle": cbor2.CBORTag(258, [])}},
    "unknown-field-tag-0": {"payload_overrides": {"future": cbor2.CBORTag(0, "2026-01-01T00:00:00Z")}},
}


@pytest.mark.parametrize("hooks", list(MISPLACED_TAGS.values()), ids=list(MISPLACED_TAGS))
def test_tags_other_than_an_outer_18_are_rejected(pki: TestPKI, hooks: dict[str, Any]) -> None:
    rejects(pki, pki.document(**hooks), "cbor")


@pytest.mark.parametrize(
    ("tag", "value"),
    [
        pytest.param(36, "Content-Type: text/plain\r\n\r\nhello", id="mime"),
        pytest.param(35, "(a+)+$", id="regex"),
        pytest.param(28, [1], id="shareable"),
        pytest.param(29, 0, id="shared-reference"),
        pytest.param(1, 10**30, id="epoch-overflow"),
        pytest.param(30, [1, 0], id="rational-division-by-zero"),
        pytest.param(4, [1, 2**64], id="decimal-fraction"),
        pytest.param(258, [[], []], id="set-of-unhashable"),
    ],
)
def test_tag_decoders_never_run_on_untrusted_input(pki: TestPKI, tag: int, value: object) -> None:
    """Tags whose cbor2 decoders would parse MIME, compile regexes or share references are refused first."""
    rejects(pki, pki.document(payload_overrides={"future": cbor2.CBORTag(tag, value)}), "cbor")


def test_invalid_utf8_in_a_text_value_is_rejected(pki: TestPKI) -> None:
    rejects(pki, pki.document(payload_overrides={"module_id": Raw(b"\x62\xc3\x28")}), "cbor")
    rejects(pki, pki.document(payload_overrides={"digest": Raw(b"\x66SHA38\xff")}), "cbor")


def test_invalid_utf8_in_a_payload_key_is_rejected(pki: TestPKI) -> None:
    rejects(pki, pki.document(payload_extra=[(Raw(b"\x61\xff"), 1)]), "cbor")


def test_invalid_utf8_in_a_chunked_text_is_rejected(pki: TestPKI) -> None:
    # Each chunk must be valid UTF-8 by itself (RFC 8949 3.2.3): a character split across chunks is not.
    split = Raw(b"\x7f" + b"\x61\xc3" + b"\x61\xa9" + b"\xff")
    rejects(pki, pki.document(payload_overrides={"module_id": split}), "cbor")


@pytest.mark.parametrize(
    "key", [pytest.param(1, id="int"), pytest.param(b"nonce", id="bytes"), pytest.param(None, id="null")]
)
def test_non_text_payload_keys_are_rejected(pki: TestPKI, key: object) -> None:
    rejects(pki, pki.document(payload_extra=[(key, b"x")]), "schema")


@pytest.mark.parametrize("value", [True, False], ids=["true", "false"])
def test_bool_is_not_a_timestamp(pki: TestPKI, value: bool) -> None:
    rejects(pki, pki.document(payload_overrides={"timestamp": value}), "schema")


def test_bool_is_not_a_pcr_index(pki: TestPKI) -> None:
    pcrs = {(True if index == 1 else index): value for index, value in DEFAULT_PCRS.items()}
    rejects(pki, pki.document(pcrs=pcrs), "schema")
    rejects(
        pki, pki.document(pcrs={(False if index == 0 else index): v for index, v in DEFAULT_PCRS.items()}), "schema"
    )


def test_bool_is_not_an_algorithm(pki: TestPKI) -> None:
    rejects(pki, pki.document(protected=cbor2.dumps({1: True})), "cose")
    rejects(pki, pki.document(protected=cbor2.dumps({True: -35})), "cose")


@pytest.mark.parametrize(
    "encoded",
    [
        pytest.param(b"\xf9\x3c\x00", id="half"),
        pytest.param(b"\xfa\x3f\x80\x00\x00", id="single"),
        pytest.param(cbor2.dumps(1767240000000.0), id="double-integral"),
        pytest.param(b"\xf9\x7e\x00", id="nan"),
    ],
)
def test_floats_are_rejected(pki: TestPKI, encoded: bytes) -> None:
    rejects(pki, pki.document(payload_overrides={"timestamp": Raw(encoded)}), "cbor")


def test_float_pcr_index_is_rejected(pki: TestPKI) -> None:
    pcrs = Raw(encode_map([(0.0, DEFAULT_PCRS[0]), *list(DEFAULT_PCRS.items())[1:]]))
    rejects(pki, pki.document(payload_overrides={"pcrs": pcrs}), "cbor")


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(cbor2.CBORTag(2, (1767240000000).to_bytes(6, "big")), id="tag-2-of-a-valid-time"),
        pytest.param(2**64, id="2**64"),
        pytest.param(-(2**64) - 1, id="tag-3"),
    ],
)
def test_bignums_are_rejected(pki: TestPKI, value: object) -> None:
    rejects(pki, pki.document(payload_overrides={"timestamp": value}), "cbor")


def test_simple_values_other_than_bool_and_null_are_rejected(pki: TestPKI) -> None:
    rejects(pki, pki.document(payload_overrides={"future": cbor2.undefined}), "cbor")
    rejects(pki, pki.document(payload_overrides={"future": Raw(b"\xf0")}), "cbor")


# The COSE_Sign1 envelope


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda parts: [], id="0-elements"),
        pytest.param(lambda parts: parts[:3], id="3-elements"),
        pytest.param(lambda parts: [*parts, b""], id="5-elements"),
        pytest.param(lambda parts: dict(enumerate(parts)), id="map"),
        pytest.param(lambda parts: parts[2], id="bare-payload"),
    ],
)
def test_envelope_must_be_an_array_of_4(pki: TestPKI, edit: Callable[[list[object]], object]) -> None:
    rejects(pki, pki.document(envelope=edit), "cose")


@pytest.mark.parametrize(
    "protected",
    [
        pytest.param(cbor2.dumps({1: "ES384"}), id="alg-text-ES384"),
        pytest.param(cbor2.dumps({1: -7}), id="alg-ES256"),
        pytest.param(cbor2.dumps({1: -36}), id="alg-ES512"),
        pytest.param(cbor2.dumps({1: -35, 4: b"kid"}), id="extra-kid"),
        pytest.param(cbor2.dumps({1: -35, 3: 0}), id="extra-content-type"),
        pytest.param(cbor2.dumps({1: -35, 2: [4]}), id="crit"),
        pytest.param(cbor2.dumps({1: -35, 2: 4}), id="crit-not-array"),
        pytest.param(cbor2.dumps({"1": -35}), id="text-label"),
        pytest.param(cbor2.dumps({}), id="empty-map"),
        pytest.param(b"", id="empty-bstr"),
        pytest.param(cbor2.dumps([1, -35]), id="array"),
        pytest.param(cbor2.dumps(-35), id="bare-alg"),
    ],
)
def test_protected_header_must_be_exactly_alg_es384(pki: TestPKI, protected: bytes) -> None:
    rejects(pki, pki.document(protected=protected), "cose")


def test_alg_only_in_the_unprotected_header_is_rejected(pki: TestPKI) -> None:
    rejects(pki, pki.document(protected=cbor2.dumps({}), envelope=set_part(1, {1: -35})), "cose")


def test_protected_header_must_be_a_byte_string(pki: TestPKI) -> None:
    rejects(pki, pki.document(envelope=set_part(0, {1: -35})), "cose")


@pytest.mark.parametrize(
    "unprotected",
    [
        pytest.param({4: b"kid"}, id="kid"),
        pytest.param({1: -35}, id="alg-repeated"),
        pytest.param(None, id="null"),
        pytest.param([], id="array"),
        pytest.param(b"", id="bstr"),
    ],
)
def test_unprotected_header_must_be_an_empty_map(pki: TestPKI, unprotected: object) -> None:
    rejects(pki, pki.document(envelope=set_part(1, unprotected)), "cose")


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(None, id="null-detached"),
        pytest.param("payload", id="text"),
        pytest.param(0, id="int"),
    ],
)
def test_payload_must_be_a_byte_string(pki: TestPKI, payload: object) -> None:
    rejects(pki, pki.document(envelope=set_part(2, payload)), "cose")


def test_payload_must_be_a_byte_string_not_the_map_itself(pki: TestPKI) -> None:
    rejects(pki, pki.document(envelope=lambda parts: [*parts[:2], cbor2.loads(parts[2]), parts[3]]), "cose")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda signature: signature[:95], id="95-bytes"),
        pytest.param(lambda signature: signature + b"\x00", id="97-bytes"),
        pytest.param(lambda signature: b"", id="empty"),
        pytest.param(lambda signature: signature[:48], id="r-only"),
        pytest.param(lambda signature: signature * 2, id="192-bytes"),
    ],
)
def test_signature_must_be_96_bytes(pki: TestPKI, edit: Callable[[bytes], bytes]) -> None:
    rejects(pki, pki.document(signature=edit), "cose")


def test_signature_must_be_a_byte_string(pki: TestPKI) -> None:
    rejects(pki, pki.document(envelope=lambda parts: [*parts[:3], parts[3].hex()]), "cose")  # type: ignore[attr-defined]


# Payload fields (DESIGN.md section 1's table, enforced by the schema)


@pytest.mark.parametrize("key", ["module_id", "digest", "timestamp", "pcrs", "certificate", "cabundle"])
def test_required_payload_field_missing_is_rejected(pki: TestPKI, key: str) -> None:
    rejects(pki, pki.document(payload_overrides={key: OMIT}), "schema")


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"module_id": ""}, id="module_id-empty"),
        pytest.param({"module_id": b"i-0"}, id="module_id-bytes"),
        pytest.param({"module_id": None}, id="module_id-null"),
        pytest.param({"digest": "SHA256"}, id="digest-SHA256"),
        pytest.param({"digest": "sha384"}, id="digest-lowercase"),
        pytest.param({"digest": b"SHA384"}, id="digest-bytes"),
        pytest.param({"timestamp": 0}, id="timestamp-0"),
        pytest.param({"timestamp": -1}, id="timestamp-negative"),
        pytest.param({"timestamp": "2026-01-01T04:00:00Z"}, id="timestamp-text"),
        pytest.param({"timestamp": 2**64 - 1}, id="timestamp-beyond-9999"),
        pytest.param({"pcrs": {}}, id="pcrs-empty"),
        pytest.param({"pcrs": dict.fromkeys(range(33), ZERO)}, id="pcrs-33-entries"),
        pytest.param({"pcrs": {**DEFAULT_PCRS, 32: ZERO}}, id="pcr-index-32"),
        pytest.param({"pcrs": {**DEFAULT_PCRS, -1: ZERO}}, id="pcr-index-negative"),
        pytest.param({"pcrs": {**DEFAULT_PCRS, "0": ZERO}}, id="pcr-index-text"),
        pytest.param({"pcrs": {**DEFAULT_PCRS, 0: bytes(32)}}, id="pcr-value-32-bytes"),
        pytest.param({"pcrs": {**DEFAULT_PCRS, 0: bytes(64)}}, id="pcr-value-64-bytes"),
        pytest.param({"pcrs": {**DEFAULT_PCRS, 0: DEFAULT_PCRS[0].hex()}}, id="pcr-value-hex-text"),
        pytest.param({"pcrs": list(DEFAULT_PCRS.values())}, id="pcrs-array"),
        pytest.param({"certificate": b""}, id="certificate-empty"),
        pytest.param({"certificate": bytes(1025)}, id="certificate-1025-bytes"),
        pytest.param({"certificate": "MIIC"}, id="certificate-text"),
        pytest.param({"cabundle": []}, id="cabundle-empty"),
        pytest.param({"cabundle": [b"x"] * 9}, id="cabundle-9-entries"),
        pytest.param({"cabundle": [bytes(1025)]}, id="cabundle-entry-1025-bytes"),
        pytest.param({"cabundle": [b""]}, id="cabundle-entry-empty"),
        pytest.param({"cabundle": ["MIIC"]}, id="cabundle-entry-text"),
        pytest.param({"cabundle": b"x"}, id="cabundle-bytes"),
        pytest.param({"user_data": bytes(1025)}, id="user_data-1025-bytes"),
        pytest.param({"nonce": bytes(1025)}, id="nonce-1025-bytes"),
        pytest.param({"public_key": bytes(1025)}, id="public_key-1025-bytes"),
        pytest.param({"nonce": "nonce"}, id="nonce-text"),
        pytest.param({"user_data": 1}, id="user_data-int"),
        pytest.param({"public_key": []}, id="public_key-array"),
    ],
)
def test_payload_field_out_of_range_or_ill_typed_is_rejected(pki: TestPKI, overrides: dict[str, object]) -> None:
    rejects(pki, pki.document(payload_overrides=overrides), "schema")


def test_payload_must_be_a_map(pki: TestPKI) -> None:
    rejects(pki, pki.document(payload_bytes=lambda _: cbor2.dumps([1, 2, 3])), "schema")
    rejects(pki, pki.document(payload_bytes=lambda _: cbor2.dumps(None)), "schema")


def test_real_certificates_over_1024_bytes_are_rejected(pki: TestPKI) -> None:
    big_leaf = pki.reissue("leaf", extensions=[unknown_extension(critical=False, size=500)])
    rejects(pki, big_leaf.document(), "schema")
    big_instance = pki.reissue("instance", extensions=[unknown_extension(critical=False, size=500)])
    rejects(pki, big_instance.document(), "schema")


def test_unparsable_certificates_are_certificate_errors(pki: TestPKI) -> None:
    rejects(pki, pki.document(payload_overrides={"certificate": b"not a certificate"}), "certificate")
    bundle = [pki.root.public_bytes(Encoding.DER), b"\x30\x03\x02\x01\x01"]
    rejects(pki, pki.document(payload_overrides={"cabundle": bundle}), "certificate")


# Accept decisions of section 2


def test_accept_indefinite_length_payload_map(pki: TestPKI) -> None:
    verify(pki, pki.document(indefinite=True))


def test_accept_indefinite_length_items_inside_the_payload(pki: TestPKI) -> None:
    chunked_text = Raw(b"\x7f" + cbor2.dumps("i-0123456789abcdef0") + cbor2.dumps("-enc0123456789abcdef0") + b"\xff")
    chunked_bytes = Raw(b"\x5f" + cbor2.dumps(b"hello ") + cbor2.dumps(b"enclave") + b"\xff")
    pcrs = Raw(encode_map(list(DEFAULT_PCRS.items()), indefinite=True))
    ders = [certificate.public_bytes(Encoding.DER) for certificate in pki.cabundle]
    cabundle = Raw(b"\x9f" + b"".join(cbor2.dumps(der) for der in ders) + b"\xff")
    document = verify(
        pki,
        pki.document(
            payload_overrides={
                "module_id": chunked_text,
                "user_data": chunked_bytes,
                "pcrs": pcrs,
                "cabundle": cabundle,
            }
        ),
    )
    assert document.module_id == "i-0123456789abcdef0-enc0123456789abcdef0"
    assert document.user_data == b"hello enclave"
    assert document.cabundle == pki.cabundle


def test_accept_indefinite_length_envelope(pki: TestPKI) -> None:
    def indefinite(parts: list[object]) -> object:
        return Raw(b"\x9f" + b"".join(cbor2.dumps(part) for part in parts) + b"\xff")

    verify(pki, pki.document(envelope=indefinite))


def test_accept_null_optional_fields(pki: TestPKI) -> None:
    document = verify(pki, pki.document())
    assert (document.public_key, document.user_data, document.nonce) == (None, None, None)


def test_accept_absent_optional_fields(pki: TestPKI) -> None:
    data = pki.document(payload_overrides={"public_key": OMIT, "user_data": OMIT, "nonce": OMIT})
    document = verify(pki, data)
    assert (document.public_key, document.user_data, document.nonce) == (None, None, None)


def test_accept_1024_byte_optional_fields(pki: TestPKI) -> None:
    fields = {"user_data": b"u" * 1024, "nonce": b"n" * 1024, "public_key": b"k" * 1024}
    document = verify(pki, pki.document(**fields), Policy({0: DEFAULT_PCRS[0]}, **fields))
    assert (document.user_data, document.nonce, document.public_key) == tuple(fields.values())


def test_accept_zero_byte_public_key(pki: TestPKI) -> None:
    assert verify(pki, pki.document(public_key=b""), Policy({0: DEFAULT_PCRS[0]}, public_key=b"")).public_key == b""


def test_accept_cose_tag_18(pki: TestPKI) -> None:
    assert verify(pki, pki.document(tag=18)).raw[0] == 0xD2


def test_accept_high_s_signature(pki: TestPKI) -> None:
    verify(pki, pki.document(high_s=True))
    verify(pki, pki.document(high_s=False))


def test_accept_unknown_payload_keys(pki: TestPKI) -> None:
    verify(pki, pki.document(payload_overrides={"future": {"version": 2}, "another": [b"x", 1, None, True]}))


def test_accept_non_shortest_integer_encodings(pki: TestPKI) -> None:
    pcrs = Raw(encode_map([(Raw(b"\x18" + bytes([index])), value) for index, value in DEFAULT_PCRS.items()]))
    data = pki.document(payload_overrides={"timestamp": uint64(milliseconds(pki.document_time)), "pcrs": pcrs})
    document = verify(pki, data)
    assert document.timestamp == pki.document_time
    assert sorted(document.pcrs) == list(range(16))


def test_accept_non_shortest_algorithm_in_protected_header(pki: TestPKI) -> None:
    verify(pki, pki.document(protected=bytes.fromhex("a101390022")))
    verify(pki, pki.document(protected=bytes.fromhex("a118013822")))  # the label 1 in 2 bytes


def test_accept_debug_mode_when_the_policy_allows_it(pki: TestPKI) -> None:
    document = verify(pki, pki.document(pcrs=DEBUG_PCRS), Policy({0: ZERO}, allow_debug=True))
    assert document.is_debug
    verify(pki, pki.document(pcrs=DEBUG_PCRS), Policy.any_enclave(allow_debug=True))


def test_accept_pcr16_and_32_pcrs(pki: TestPKI) -> None:
    pcr16 = bytes([0x16]) * 48
    document = verify(pki, pki.document(pcrs={**DEFAULT_PCRS, 16: pcr16}), Policy({16: pcr16}))
    assert document.pcrs[16] == pcr16
    verify(pki, pki.document(pcrs={index: DEFAULT_PCRS.get(index, ZERO) for index in range(32)}))


def test_accept_a_one_pcr_document(pki: TestPKI) -> None:
    verify(pki, pki.document(pcrs={0: DEFAULT_PCRS[0]}))


# ---------------------------------------------------------------------------
# Section 3: certificate chain
# ---------------------------------------------------------------------------


def test_root_must_be_pinned_not_merely_named_like_aws(pki: TestPKI) -> None:
    attacker = TestPKI.create(seed="attacker", root_name=nitro_attest.AWS_NITRO_ROOT_G1.subject)
    data = attacker.document()
    verify(attacker, data)  # the attacker's chain is otherwise flawless
    rejects(pki, data, "chain")
    with pytest.raises(CertificateInvalid) as raised:
        nitro_attest.verify(data, PIN_PCR0, at=pki.document_time)  # the shipped AWS root
    assert raised.value.code == "chain"


def test_test_pki_never_verifies_against_the_aws_root(pki: TestPKI) -> None:
    with pytest.raises(CertificateInvalid) as raised:
        nitro_attest.verify(pki.document(), PIN_PCR0, at=pki.document_time)
    assert raised.value.code == "chain"


def test_root_must_be_byte_identical_same_name_and_key_is_not_enough(pki: TestPKI) -> None:
    reissued = pki.reissue("root", not_after=pki.root.not_valid_after_utc - timedelta(days=1))
    assert reissued.root.public_key() == pki.root.public_key() and reissued.root.subject == pki.root.subject
    rejects(pki, reissued.document(), "chain")
    verify(reissued, reissued.document())


def test_a_root_elsewhere_in_the_bundle_is_not_an_anchor(pki: TestPKI) -> None:
    """Only cabundle[0] may be the root: one later in the list earns no trust."""
    stranger = TestPKI.create(seed="stranger")
    chain = [stranger.root, pki.root, pki.regional, pki.zonal, pki.instance]
    rejects(pki, pki.document(chain=chain), "chain", roots=pki.roots)


def test_cabundle_must_be_root_first(pki: TestPKI) -> None:
    rejects(pki, pki.document(chain=pki.cabundle[::-1]), "chain")


def test_a_missing_link_is_rejected(pki: TestPKI) -> None:
    rejects(pki, pki.document(chain=[pki.root, pki.regional, pki.instance]), "chain")
    rejects(pki, pki.document(chain=[pki.root, pki.regional, pki.zonal]), "chain")


def test_issuer_names_must_chain(pki: TestPKI) -> None:
    rejects(pki, pki.reissue("zonal", issuer_name=pki.root.subject).document(), "chain")


def test_every_link_must_be_signed_by_the_previous_key(pki: TestPKI) -> None:
    rejects(pki, pki.reissue("zonal", signing_key=pki.root_key).document(), "chain")
    rejects(pki, pki.reissue("leaf", signing_key=pki.zonal_key).document(), "chain")
    rejects(pki, pki.reissue("regional", signing_key=derive_key("stranger")).document(), "chain")


def test_ca_without_basic_constraints_is_rejected(pki: TestPKI) -> None:
    rejects(pki, pki.reissue("zonal", remove=[ExtensionOID.BASIC_CONSTRAINTS]).document(), "chain")


def test_ca_with_non_critical_basic_constraints_is_rejected(pki: TestPKI) -> None:
    rejects(pki, pki.reissue("zonal", extensions=[basic_constraints(True, 1, critical=False)]).document(), "chain")


def test_intermediate_with_ca_false_is_rejected(pki: TestPKI) -> None:
    rejects(pki, pki.reissue("instance", extensions=[basic_constraints(False, None)]).document(), "chain")


@pytest.mark.parametrize(("level", "path_length"), [("regional", 1), ("regional", 0), ("zonal", 0)])
def test_path_length_constraint_is_honoured(pki: TestPKI, level: Any, path_length: int) -> None:
    rejects(pki, pki.reissue(level, extensions=[basic_constraints(True, path_length)]).document(), "chain")


def test_path_length_constraint_counts_an_extra_intermediate(pki: TestPKI) -> None:
    # A fifth CA under the instance (pathLen 0): instance -> extra -> leaf.
    extra_key = derive_key("extra CA")
    extra = nitro_attest.testing.issue_certificate(
        x509.Name.from_rfc4514_string("CN=extra.aws.nitro-enclaves,O=nitro_attest test PKI"),
        extra_key.public_key(),
        issuer=pki.instance.subject,
        signing_key=pki.instance_key,
        serial=7,
        not_before=pki.instance.not_valid_before_utc,
        not_after=pki.instance.not_valid_after_utc,
        extensions=list(pki.instance.extensions),
    )
    leaf = pki.reissue("leaf", signing_key=extra_key, issuer_name=extra.subject)
    rejects(pki, leaf.document(chain=[*pki.cabundle, extra]), "chain")


def test_ca_with_an_empty_subject_is_rejected(pki: TestPKI) -> None:
    # The instance CA re-issued with no subject, and a leaf it signs naming that empty issuer: names chain,
    # signatures verify, only RFC 5280 4.1.2.6 (a CA's subject must not be empty) stops it.
    nameless = nitro_attest.testing.issue_certificate(
        x509.Name([]),
        pki.instance_key.public_key(),
        issuer=pki.instance.issuer,
        signing_key=pki.zonal_key,
        serial=pki.instance.serial_number,
        not_before=pki.instance.not_valid_before_utc,
        not_after=pki.instance.not_valid_after_utc,
        extensions=list(pki.instance.extensions),
    )
    leaf = pki.reissue("leaf", issuer_name=x509.Name([]))
    error = rejects(pki, leaf.document(chain=[pki.root, pki.regional, pki.zonal, nameless]), "chain")
    assert "empty subject" in str(error)


def test_a_self_issued_ca_counts_towards_path_length(pki: TestPKI) -> None:
    # Stricter than RFC 5280 6.1.4 (l), on purpose (docs/security.md, known tolerances): a self-issued CA
    # under the instance is one more CA below the regional's pathLen 2. AWS's chains have none.
    rekeyed = derive_key("self-issued instance")
    self_issued = nitro_attest.testing.issue_certificate(
        pki.instance.subject,
        rekeyed.public_key(),
        issuer=pki.instance.subject,
        signing_key=pki.instance_key,
        serial=8,
        not_before=pki.instance.not_valid_before_utc,
        not_after=pki.instance.not_valid_after_utc,
        extensions=list(pki.instance.extensions),
    )
    leaf = pki.reissue("leaf", signing_key=rekeyed)
    error = rejects(pki, leaf.document(chain=[*pki.cabundle, self_issued]), "chain")
    assert "pathLenConstraint 2 but 3 CA certificates follow" in str(error)


def test_ca_without_key_cert_sign_is_rejected(pki: TestPKI) -> None:
    rejects(
        pki,
        pki.reissue("instance", extensions=[key_usage(digital_signature=True, cert_sign=False)]).document(),
        "chain",
    )
    rejects(pki, pki.reissue("regional", remove=[ExtensionOID.KEY_USAGE]).document(), "chain")


def test_leaf_that_is_a_ca_is_rejected(pki: TestPKI) -> None:
    rejects(pki, pki.reissue("leaf", extensions=[basic_constraints(True, None)]).document(), "chain")


def test_leaf_without_digital_signature_is_rejected(pki: TestPKI) -> None:
    usage = key_usage(digital_signature=False, non_repudiation=True, cert_sign=False)
    rejects(pki, pki.reissue("leaf", extensions=[usage]).document(), "chain")
    rejects(pki, pki.reissue("leaf", remove=[ExtensionOID.KEY_USAGE]).document(), "chain")


def test_leaf_with_key_cert_sign_is_rejected(pki: TestPKI) -> None:
    rejects(
        pki, pki.reissue("leaf", extensions=[key_usage(digital_signature=True, cert_sign=True)]).document(), "chain"
    )


@pytest.mark.parametrize("level", ["regional", "zonal", "instance", "leaf"])
def test_unknown_critical_extension_is_rejected(pki: TestPKI, level: Any) -> None:
    rejects(pki, pki.reissue(level, extensions=[unknown_extension(critical=True)]).document(), "chain")


def test_unknown_critical_extension_on_the_root_is_rejected(pki: TestPKI) -> None:
    broken = pki.reissue("root", extensions=[unknown_extension(critical=True)])
    rejects(broken, broken.document(), "chain")


def test_unknown_non_critical_extension_is_accepted(pki: TestPKI) -> None:
    extended = pki.reissue("leaf", extensions=[unknown_extension(critical=False)])
    verify(extended, extended.document())


@pytest.mark.parametrize("digest", [hashes.SHA256(), hashes.SHA512()], ids=["sha256", "sha512"])
@pytest.mark.parametrize("level", ["regional", "instance", "leaf"])
def test_every_certificate_signature_must_be_ecdsa_with_sha384(pki: TestPKI, level: Any, digest: Any) -> None:
    rejects(pki, pki.reissue(level, hash_algorithm=digest).document(), "certificate")


def test_root_signed_with_sha256_is_rejected(pki: TestPKI) -> None:
    broken = pki.reissue("root", hash_algorithm=hashes.SHA256())
    rejects(broken, broken.document(), "certificate")


def test_p256_leaf_key_is_rejected(pki: TestPKI) -> None:
    broken = pki.reissue("leaf", key=derive_key("p256 leaf", curve="P-256"))
    rejects(pki, broken.document(), "certificate")


def test_p256_intermediate_key_is_rejected(pki: TestPKI) -> None:
    broken = pki.reissue("instance", key=derive_key("p256 instance", curve="P-256")).reissue("leaf")
    rejects(pki, broken.document(), "certificate")


def test_leaf_expired_at_verification_time_is_rejected(pki: TestPKI) -> None:
    rejects(pki, pki.document(), "expired", at=pki.leaf.not_valid_after_utc + timedelta(seconds=1))


def test_leaf_not_yet_valid_at_verification_time_is_rejected(pki: TestPKI) -> None:
    too_early = pki.leaf.not_valid_before_utc - nitro_attest.CLOCK_SKEW - timedelta(seconds=1)
    rejects(pki, pki.document(), "expired", at=too_early)


def test_leaf_not_yet_valid_within_the_clock_skew_is_accepted(pki: TestPKI) -> None:
    # Nitro signs ~3 s after its leaf's notBefore; a verifier 5 s behind must still accept.
    verify(pki, pki.document(), at=pki.leaf.not_valid_before_utc - timedelta(seconds=5))
    first = pki.document(timestamp=pki.leaf.not_valid_before_utc)
    verify(pki, first, at=pki.leaf.not_valid_before_utc - nitro_attest.CLOCK_SKEW)


@pytest.mark.parametrize("level", ["regional", "zonal", "instance"])
def test_intermediate_expired_is_rejected(pki: TestPKI, level: Any) -> None:
    rejects(pki, pki.reissue(level, not_after=pki.document_time - timedelta(minutes=1)).document(), "expired")


@pytest.mark.parametrize("level", ["regional", "zonal", "instance"])
def test_intermediate_not_yet_valid_is_rejected(pki: TestPKI, level: Any) -> None:
    rejects(pki, pki.reissue(level, not_before=pki.document_time + timedelta(minutes=2)).document(), "expired")


def test_root_is_checked_for_validity_too(pki: TestPKI) -> None:
    expired_root = pki.reissue("root", not_after=pki.document_time - timedelta(seconds=1))
    rejects(expired_root, expired_root.document(), "expired")
    rejects(pki, pki.document(), "expired", at=pki.root.not_valid_before_utc - timedelta(seconds=1))


def test_validity_bounds_are_inclusive(pki: TestPKI) -> None:
    verify(pki, pki.document(), at=pki.leaf.not_valid_after_utc)
    verify(pki, pki.document(timestamp=pki.leaf.not_valid_before_utc), at=pki.leaf.not_valid_before_utc)


# The COSE signature (section 1's ES384 over the Sig_structure)


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda s: s[:-1] + bytes([s[-1] ^ 1]), id="bit-flip-s"),
        pytest.param(lambda s: bytes([s[0] ^ 0x80]) + s[1:], id="bit-flip-r"),
        pytest.param(lambda s: bytes(48) + s[48:], id="r-zero"),
        pytest.param(lambda s: s[:48] + bytes(48), id="s-zero"),
        pytest.param(lambda s: P384_ORDER.to_bytes(48, "big") + s[48:], id="r-n"),
        pytest.param(lambda s: s[:48] + P384_ORDER.to_bytes(48, "big"), id="s-n"),
        pytest.param(lambda s: b"\xff" * 96, id="all-ff"),
        pytest.param(lambda s: s[48:] + s[:48], id="swapped"),
    ],
)
def test_bad_cose_signature_is_rejected(pki: TestPKI, edit: Callable[[bytes], bytes]) -> None:
    rejects(pki, pki.document(signature=edit), "signature")


def test_r_plus_n_is_not_r(pki: TestPKI) -> None:
    """r and s must be below n: an r that only matches modulo n is not the signature."""

    def shift(signature: bytes) -> bytes:
        r = int.from_bytes(signature[:48], "big")
        return (r + P384_ORDER).to_bytes(48, "big") + signature[48:] if r + P384_ORDER < 2**384 else b"\x00" * 96

    rejects(pki, pki.document(signature=shift), "signature")


def test_signature_by_another_key_is_rejected(pki: TestPKI) -> None:
    rejects(pki, pki.document(sign_with=derive_key("stranger")), "signature")
    rejects(pki, pki.document(sign_with=pki.instance_key), "signature")


def test_payload_swapped_after_signing_is_rejected(pki: TestPKI) -> None:
    other = cbor2.loads(pki.document(nonce=b"other"))[2]
    rejects(pki, pki.document(envelope=set_part(2, other)), "signature")


def test_protected_header_re_encoded_after_signing_is_rejected(pki: TestPKI) -> None:
    """The signature covers the protected bytes as received, not their meaning."""
    rejects(pki, pki.document(envelope=set_part(0, bytes.fromhex("a101390022"))), "signature")


def test_tag_18_is_not_covered_by_the_signature(pki: TestPKI) -> None:
    """COSE signs the Sig_structure, not the envelope: adding or removing tag 18 keeps it valid."""
    verify(pki, pki.document(tag=18))


# ---------------------------------------------------------------------------
# Section 4: time
# ---------------------------------------------------------------------------


def test_naive_verification_time_is_a_type_error(pki: TestPKI) -> None:
    with pytest.raises(TypeError):
        nitro_attest.verify(pki.document(), PIN_PCR0, at=pki.document_time.replace(tzinfo=None), roots=pki.roots)


def test_verification_time_in_another_zone_is_the_same_instant(pki: TestPKI) -> None:
    paris = timezone(timedelta(hours=1))
    verify(pki, pki.document(), at=pki.document_time.astimezone(paris))
    at = (pki.leaf.not_valid_after_utc + timedelta(seconds=1)).astimezone(paris)
    rejects(pki, pki.document(), "expired", at=at)


def test_timestamp_before_leaf_validity_is_rejected(pki: TestPKI) -> None:
    rejects(pki, pki.document(timestamp=pki.leaf.not_valid_before_utc - timedelta(milliseconds=1)), "time")


def test_timestamp_after_leaf_validity_is_rejected(pki: TestPKI) -> None:
    after = pki.leaf.not_valid_after_utc
    rejects(pki, pki.document(timestamp=after + timedelta(milliseconds=1)), "time", at=after)


def test_timestamp_in_the_future_beyond_skew_is_rejected(pki: TestPKI) -> None:
    rejects(pki, pki.document(timestamp=pki.document_time + timedelta(seconds=60, milliseconds=1)), "time")


def test_timestamp_in_the_future_within_skew_is_accepted(pki: TestPKI) -> None:
    verify(pki, pki.document(timestamp=pki.document_time + timedelta(seconds=60)))


def test_timestamp_in_seconds_instead_of_milliseconds_is_rejected(pki: TestPKI) -> None:
    seconds = int(pki.document_time.timestamp())
    rejects(pki, pki.document(payload_overrides={"timestamp": seconds}), "time")


def test_an_old_document_verifies_at_its_own_time_only(pki: TestPKI) -> None:
    data = pki.document()
    verify(pki, data, at=pki.document_time)
    rejects(pki, data, "expired", at=datetime.now(timezone.utc))


# ---------------------------------------------------------------------------
# Section 5: policy
# ---------------------------------------------------------------------------


def test_pcr_mismatch_is_rejected(pki: TestPKI) -> None:
    rejects(pki, pki.document(), "pcr", Policy({0: b"\x01" * 48}))
    rejects(pki, pki.document(), "pcr", Policy({0: DEFAULT_PCRS[0], 8: ZERO}))


def test_pcr_absent_from_the_document_is_rejected(pki: TestPKI) -> None:
    rejects(pki, pki.document(), "pcr", Policy({16: ZERO}))


def test_pcr_may_match_any_of_its_allowed_values(pki: TestPKI) -> None:
    verify(pki, pki.document(), Policy({0: [b"\x01" * 48, DEFAULT_PCRS[0]]}))
    rejects(pki, pki.document(), "pcr", Policy({0: [b"\x01" * 48, b"\x02" * 48]}))


@pytest.mark.parametrize(
    "pin",
    [
        pytest.param(DEFAULT_PCRS[0], id="bytes"),
        pytest.param(DEFAULT_PCRS[0].hex(), id="lower-hex"),
        pytest.param(DEFAULT_PCRS[0].hex().upper(), id="upper-hex"),
        pytest.param(PCRValue(0, DEFAULT_PCRS[0]), id="pcr-value"),
    ],
)
def test_pcr_pins_in_every_form(pki: TestPKI, pin: Any) -> None:
    verify(pki, pki.document(), Policy({0: pin}))


def test_kms_image_sha384_is_pcr0(pki: TestPKI) -> None:
    image = pki.document(pcrs={**DEFAULT_PCRS, 0: b"\x42" * 48})
    rejects(pki, image, "pcr", Policy({0: DEFAULT_PCRS[0]}))


def test_debug_mode_is_rejected_unless_allowed(pki: TestPKI) -> None:
    rejects(pki, pki.document(pcrs=DEBUG_PCRS), "debug", Policy({0: ZERO}))
    rejects(pki, pki.document(pcrs=DEBUG_PCRS), "debug", Policy({3: DEFAULT_PCRS[3]}))
    rejects(pki, pki.document(pcrs=DEBUG_PCRS), "debug", Policy.any_enclave())
    verify(pki, pki.document(pcrs=DEBUG_PCRS), Policy({0: ZERO}, allow_debug=True))


@pytest.mark.parametrize("field", ["nonce", "user_data", "public_key"])
def test_bound_field_mismatch_is_rejected(pki: TestPKI, field: str) -> None:
    data = pki.document(**{field: b"expected value"})
    verify(pki, data, Policy({0: DEFAULT_PCRS[0]}, **{field: b"expected value"}))
    rejects(pki, data, field, Policy({0: DEFAULT_PCRS[0]}, **{field: b"expected valuE"}))
    rejects(pki, data, field, Policy({0: DEFAULT_PCRS[0]}, **{field: b"expected value" + b"\x00"}))


@pytest.mark.parametrize("field", ["nonce", "user_data", "public_key"])
def test_bound_field_absent_from_the_document_is_rejected(pki: TestPKI, field: str) -> None:
    policy = Policy({0: DEFAULT_PCRS[0]}, **{field: b"expected"})
    rejects(pki, pki.document(), field, policy)
    rejects(pki, pki.document(payload_overrides={field: OMIT}), field, policy)


def test_stale_document_is_rejected(pki: TestPKI) -> None:
    policy = Policy({0: DEFAULT_PCRS[0]}, max_age=timedelta(seconds=60))
    verify(pki, pki.document(), policy, at=pki.document_time + timedelta(seconds=60))
    rejects(pki, pki.document(), "stale", policy, at=pki.document_time + timedelta(seconds=61))


def test_empty_policy_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="any_enclave"):
        Policy({})


def test_any_enclave_policy_accepts_any_measurement(pki: TestPKI) -> None:
    verify(pki, pki.document(pcrs={0: b"\x42" * 48}), Policy.any_enclave())


def test_empty_roots_is_a_value_error(pki: TestPKI) -> None:
    with pytest.raises(ValueError):
        nitro_attest.verify(pki.document(), PIN_PCR0, at=pki.document_time, roots=[])


def test_replay_key_is_the_payload_not_the_document(pki: TestPKI) -> None:
    """ECDSA twins (r, s) and (r, n - s) both verify: the raw bytes differ, the payload does not."""
    high, low = verify(pki, pki.document(high_s=True)), verify(pki, pki.document(high_s=False))
    assert high.raw != low.raw
    assert high.payload == low.payload


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(DEFAULT_PCRS[0], id="bytes"),
        pytest.param(DEFAULT_PCRS[0].hex(), id="lower-hex"),
        pytest.param(DEFAULT_PCRS[0].hex().upper(), id="upper-hex"),
        pytest.param(PCRValue(0, DEFAULT_PCRS[0]), id="pcr-value"),
    ],
)
def test_pcr_value_equality_with_bytes_and_hex(other: object) -> None:
    value = PCRValue(0, DEFAULT_PCRS[0])
    assert value == other
    assert other == value
    assert value != PCRValue(1, DEFAULT_PCRS[0])
    assert value != ZERO
    assert value != ZERO.hex()
    assert value != "not hex"
    assert value != 0


def test_attestation_document_is_immutable(pki: TestPKI) -> None:
    document = verify(pki, pki.document(nonce=b"n"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        document.nonce = b"m"  # type: ignore[misc]
    with pytest.raises(TypeError):
        document.pcrs[0] = PCRValue(0, ZERO)  # type: ignore[index]
    assert isinstance(document.cabundle, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        document.pcrs[0].value = ZERO  # type: ignore[misc]


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------


optional = st.one_of(st.none(), st.binary(max_size=1024))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    user_data=optional,
    nonce=optional,
    public_key=optional,
    pcrs=st.dictionaries(st.integers(0, 31), st.binary(min_size=48, max_size=48), min_size=1, max_size=32),
    offset_ms=st.integers(0, 3 * 3600 * 1000),
)
def test_any_well_formed_document_round_trips(
    pki: TestPKI,
    user_data: bytes | None,
    nonce: bytes | None,
    public_key: bytes | None,
    pcrs: dict[int, bytes],
    offset_ms: int,
) -> None:
    timestamp = pki.leaf.not_valid_before_utc + timedelta(milliseconds=offset_ms)
    data = pki.document(pcrs=pcrs, user_data=user_data, nonce=nonce, public_key=public_key, timestamp=timestamp)
    policy = Policy.any_enclave(allow_debug=True, nonce=nonce, user_data=user_data, public_key=public_key)
    document = verify(pki, data, policy, at=timestamp)
    assert (document.user_data, document.nonce, document.public_key) == (user_data, nonce, public_key)
    assert {index: value.value for index, value in document.pcrs.items()} == pcrs
    assert document.timestamp == timestamp


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(0, 10_000), bit=st.integers(0, 7))
def test_any_single_bit_flip_is_rejected_as_a_nitro_error(pki: TestPKI, position: int, bit: int) -> None:
    data = bytearray(pki.document(nonce=b"n"))
    data[position % len(data)] ^= 1 << bit
    with pytest.raises(NitroAttestError):
        verify(pki, bytes(data))
