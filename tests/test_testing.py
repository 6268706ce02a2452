"""nitro_attest.testing: a deterministic look-alike of AWS's PKI, and a factory breaking one thing at a time."""

from __future__ import annotations

import hashlib
import itertools
from datetime import datetime, timedelta, timezone

import cbor2
import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtensionOID, NameOID, SignatureAlgorithmOID

import nitro_attest
from nitro_attest import Policy
from nitro_attest.testing import (
    DEFAULT_MODULE_ID,
    DEFAULT_PCRS,
    DEFAULT_ROLE_ARN,
    DEFAULT_START,
    ES384_PROTECTED_HEADER,
    OMIT,
    Raw,
    TestPKI,
    derive_key,
    encode,
    encode_map,
)

P384_ORDER = nitro_attest._backend.P384_ORDER
BC, KU, SKI, AKI, CRL = (
    ExtensionOID.BASIC_CONSTRAINTS,
    ExtensionOID.KEY_USAGE,
    ExtensionOID.SUBJECT_KEY_IDENTIFIER,
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
    ExtensionOID.CRL_DISTRIBUTION_POINTS,
)
LEVELS = ("root", "regional", "zonal", "instance", "leaf")

# The shape of AWS's real chains (2023-2026 documents): extensions in order with
# their criticality, pathLen, lifetime, serial size in bytes (the leaf's is the
# enclave id followed by the Unix time), subject attribute order.
AWS_SHAPE = {
    "root": {
        "extensions": [(BC, True), (SKI, False), (KU, True)],
        "path_length": None,
        "lifetime": timedelta(days=10958, hours=1),
        "serial_bytes": 16,
        "subject": ["C", "O", "OU", "CN"],
    },
    "regional": {
        "extensions": [(BC, True), (AKI, False), (SKI, False), (KU, True), (CRL, False)],
        "path_length": 2,
        "lifetime": timedelta(days=20, hours=1),
        "serial_bytes": 16,
        "subject": ["C", "O", "OU", "CN"],
    },
    "zonal": {
        "extensions": [(BC, True), (AKI, False), (SKI, False), (KU, True), (CRL, False)],
        "path_length": 1,
        "lifetime": timedelta(days=5, hours=20),
        "serial_bytes": 16,
        "subject": ["CN", "OU", "O", "C", "ST", "L"],
    },
    "instance": {
        "extensions": [(BC, True), (KU, True), (SKI, False), (AKI, False)],
        "path_length": 0,
        "lifetime": timedelta(days=1),
        "serial_bytes": 20,
        "subject": ["C", "ST", "L", "O", "OU", "CN"],
    },
    "leaf": {
        "extensions": [(BC, True), (KU, False)],
        "path_length": None,
        "lifetime": timedelta(hours=3, seconds=3),
        "serial_bytes": 16,
        "subject": ["C", "ST", "L", "O", "OU", "CN"],
    },
}
SHORT_NAMES = {
    NameOID.COUNTRY_NAME: "C",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.COMMON_NAME: "CN",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.LOCALITY_NAME: "L",
}


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI.create()


def der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.DER)


def verify(pki: TestPKI, data: bytes, policy: Policy | None = None) -> nitro_attest.AttestationDocument:
    return nitro_attest.verify(data, policy or Policy({0: DEFAULT_PCRS[0]}), at=pki.document_time, roots=pki.roots)


def envelope_of(data: bytes) -> list[object]:
    decoded = cbor2.loads(data)
    return list(decoded.value if isinstance(decoded, cbor2.CBORTag) else decoded)


def payload_of(data: bytes) -> dict[object, object]:
    payload = envelope_of(data)[2]
    assert isinstance(payload, bytes)
    result = cbor2.loads(payload)
    assert isinstance(result, dict)
    return result


# Determinism


def test_two_pkis_are_identical() -> None:
    first, second = TestPKI.create(), TestPKI.create()
    for level in LEVELS:
        assert der(getattr(first, level)) == der(getattr(second, level))
        first_key, second_key = getattr(first, f"{level}_key"), getattr(second, f"{level}_key")
        assert first_key.private_numbers() == second_key.private_numbers()


def test_documents_are_identical() -> None:
    first, second = TestPKI.create(), TestPKI.create()
    assert first.document() == second.document()
    assert first.document(nonce=b"n", user_data=b"u", tag=18) == second.document(nonce=b"n", user_data=b"u", tag=18)


def test_seed_start_and_region_change_the_pki() -> None:
    default = TestPKI.create()
    other = TestPKI.create(seed="another PKI")
    assert der(other.root) != der(default.root)
    assert other.root_key.private_numbers() != default.root_key.private_numbers()
    later = TestPKI.create(start=DEFAULT_START + timedelta(days=400))
    assert later.document_time == default.document_time + timedelta(days=400)
    assert later.leaf.not_valid_before_utc == default.leaf.not_valid_before_utc + timedelta(days=400)
    frankfurt = TestPKI.create(region="eu-central-1")
    assert "eu-central-1" in frankfurt.leaf.subject.rfc4514_string()
    assert "eu-central-1" in frankfurt.regional.subject.rfc4514_string()


def test_naive_start_is_refused() -> None:
    with pytest.raises(TypeError):
        TestPKI.create(start=datetime(2026, 1, 1))


def test_derive_key_is_deterministic_per_label_and_curve() -> None:
    assert derive_key("a").private_numbers() == derive_key("a").private_numbers()
    assert derive_key("a").private_numbers() != derive_key("b").private_numbers()
    assert isinstance(derive_key("a").curve, ec.SECP384R1)
    assert isinstance(derive_key("a", curve="P-256").curve, ec.SECP256R1)


def test_pytest_does_not_collect_the_pki() -> None:
    assert TestPKI.__test__ is False


# AWS's shape


@pytest.mark.parametrize("level", LEVELS)
def test_certificates_have_aws_shape(pki: TestPKI, level: str) -> None:
    certificate: x509.Certificate = getattr(pki, level)
    shape = AWS_SHAPE[level]
    assert [(extension.oid, extension.critical) for extension in certificate.extensions] == shape["extensions"]
    basic = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert basic.ca is (level != "leaf")
    assert basic.path_length == shape["path_length"]
    assert certificate.not_valid_after_utc - certificate.not_valid_before_utc == shape["lifetime"]
    assert (certificate.serial_number.bit_length() + 7) // 8 <= shape["serial_bytes"]
    assert certificate.serial_number.bit_length() > 8 * (shape["serial_bytes"] - 2)
    assert [SHORT_NAMES[attribute.oid] for attribute in certificate.subject] == shape["subject"]
    assert certificate.version is x509.Version.v3
    assert certificate.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA384
    assert isinstance(certificate.public_key(), ec.EllipticCurvePublicKey)
    assert isinstance(certificate.public_key().curve, ec.SECP384R1)  # type: ignore[union-attr]
    assert len(der(certificate)) <= 1024
    assert certificate.not_valid_before_utc <= pki.document_time <= certificate.not_valid_after_utc


def test_key_usages_are_aws(pki: TestPKI) -> None:
    def usage(certificate: x509.Certificate) -> set[str]:
        value = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        names = ("digital_signature", "content_commitment", "key_cert_sign", "crl_sign", "key_encipherment")
        return {name for name in names if getattr(value, name)}

    for ca in (pki.root, pki.regional, pki.zonal):
        assert usage(ca) == {"digital_signature", "key_cert_sign", "crl_sign"}
    assert usage(pki.instance) == {"key_cert_sign"}
    assert usage(pki.leaf) == {"digital_signature", "content_commitment"}


def test_chain_links_names_keys_and_identifiers(pki: TestPKI) -> None:
    chain = [pki.root, pki.regional, pki.zonal, pki.instance, pki.leaf]
    assert pki.root.issuer == pki.root.subject
    for issuer, subject in itertools.pairwise(chain):
        assert subject.issuer == issuer.subject
        subject.verify_directly_issued_by(issuer)
    for issuer, subject in itertools.pairwise(chain[:-1]):
        authority = subject.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        assert (
            authority.key_identifier
            == issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        )


def test_root_is_obviously_a_test_root(pki: TestPKI) -> None:
    common_name = pki.root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert common_name == "aws.nitro-enclaves.TEST-ONLY"
    for level in LEVELS:
        organization = getattr(pki, level).subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
        assert organization == "nitro_attest test PKI"
    assert pki.root.subject != nitro_attest.AWS_NITRO_ROOT_G1.subject
    assert pki.roots == (pki.root,)
    assert pki.cabundle == (pki.root, pki.regional, pki.zonal, pki.instance)


def test_leaf_serial_is_enclave_id_and_time(pki: TestPKI) -> None:
    enclave = int(DEFAULT_MODULE_ID.partition("-enc")[2], 16)
    assert pki.leaf.serial_number == enclave << 64 | int(pki.document_time.timestamp())


def test_document_payload_has_aws_shape(pki: TestPKI) -> None:
    data = pki.document()
    parts = envelope_of(data)
    assert data[0] == 0x84  # untagged, like every real document
    assert parts[0] == ES384_PROTECTED_HEADER == cbor2.dumps({1: -35})
    assert parts[1] == {}
    assert isinstance(parts[3], bytes) and len(parts[3]) == 96
    payload = payload_of(data)
    assert list(payload) == [
        "module_id", "digest", "timestamp", "pcrs", "certificate", "cabundle", "public_key", "user_data", "nonce"
    ]  # fmt: skip
    assert payload["module_id"] == DEFAULT_MODULE_ID
    assert payload["digest"] == "SHA384"
    assert payload["timestamp"] == int(pki.document_time.timestamp() * 1000)
    assert payload["pcrs"] == dict(DEFAULT_PCRS)
    assert payload["certificate"] == der(pki.leaf)
    assert payload["cabundle"] == [der(certificate) for certificate in pki.cabundle]
    assert payload["public_key"] is payload["user_data"] is payload["nonce"] is None


def test_default_pcrs_look_like_a_production_enclave() -> None:
    assert sorted(DEFAULT_PCRS) == list(range(16))
    assert all(len(value) == 48 for value in DEFAULT_PCRS.values())
    nonzero = {index for index, value in DEFAULT_PCRS.items() if any(value)}
    assert nonzero == {0, 1, 2, 3, 4, 8}
    assert DEFAULT_PCRS[3] == hashlib.sha384(bytes(48) + DEFAULT_ROLE_ARN.encode()).digest()
    assert DEFAULT_PCRS[4] == hashlib.sha384(bytes(48) + DEFAULT_MODULE_ID.partition("-enc")[0].encode()).digest()
    assert len({DEFAULT_PCRS[0], DEFAULT_PCRS[1], DEFAULT_PCRS[2], DEFAULT_PCRS[8]}) == 4


def test_default_document_verifies_with_the_test_root_only(pki: TestPKI) -> None:
    document = verify(pki, pki.document(nonce=b"n", user_data=b"u", public_key=b"k"))
    assert (document.nonce, document.user_data, document.public_key) == (b"n", b"u", b"k")
    assert document.timestamp == pki.document_time
    assert document.certificate == pki.leaf
    with pytest.raises(nitro_attest.CertificateInvalid) as raised:
        nitro_attest.verify(pki.document(), Policy({0: DEFAULT_PCRS[0]}), at=pki.document_time)
    assert raised.value.code == "chain"


# The breakage hooks do what they say, and nothing else


def test_omit_removes_and_overrides_replace(pki: TestPKI) -> None:
    payload = payload_of(pki.document(payload_overrides={"nonce": OMIT, "digest": "X", "extra": 1}))
    assert "nonce" not in payload
    assert payload["digest"] == "X"
    assert list(payload)[-1] == "extra"


def test_payload_extra_keeps_duplicates_and_order(pki: TestPKI) -> None:
    data = pki.document(payload_extra=[("nonce", b"a"), (1, b"b")])
    payload = envelope_of(data)[2]
    assert isinstance(payload, bytes)
    assert payload[0] == 0xA0 + 11
    assert payload.endswith(cbor2.dumps("nonce") + cbor2.dumps(b"a") + cbor2.dumps(1) + cbor2.dumps(b"b"))


def test_encode_writes_raw_verbatim_anywhere() -> None:
    assert encode(Raw(b"\xff\x00")) == b"\xff\x00"
    assert encode([Raw(b"\x18\x00"), {"k": Raw(b"\x1b" + bytes(8))}]) == b"\x82\x18\x00\xa1\x61k\x1b" + bytes(8)
    assert encode(cbor2.CBORTag(18, [Raw(b"\xf6")])) == b"\xd2\x81\xf6"
    assert encode({"a": [1, b"x", None, True]}) == cbor2.dumps({"a": [1, b"x", None, True]})
    assert encode(list(range(30))) == cbor2.dumps(list(range(30)))


def test_encode_map_duplicates_and_indefinite() -> None:
    assert encode_map([(1, 2), (1, 3)]) == b"\xa2\x01\x02\x01\x03"
    assert encode_map([(1, 2)], indefinite=True) == b"\xbf\x01\x02\xff"
    assert cbor2.loads(encode_map([("a", 1), ("b", 2)], indefinite=True)) == {"a": 1, "b": 2}


def test_indefinite_payload_is_the_same_map(pki: TestPKI) -> None:
    data = pki.document(indefinite=True)
    payload = envelope_of(data)[2]
    assert isinstance(payload, bytes)
    assert payload[0] == 0xBF and payload[-1] == 0xFF
    assert payload_of(data) == payload_of(pki.document())
    verify(pki, data)


@pytest.mark.parametrize("high_s", [True, False])
def test_high_s_forces_the_half(pki: TestPKI, high_s: bool) -> None:
    signature = envelope_of(pki.document(high_s=high_s))[3]
    assert isinstance(signature, bytes)
    s = int.from_bytes(signature[48:], "big")
    assert (s > P384_ORDER // 2) is high_s
    verify(pki, pki.document(high_s=high_s))


def test_high_s_twins_share_r_and_payload(pki: TestPKI) -> None:
    high, low = pki.document(high_s=True), pki.document(high_s=False)
    assert high != low
    assert envelope_of(high)[2] == envelope_of(low)[2]
    high_signature, low_signature = envelope_of(high)[3], envelope_of(low)[3]
    assert isinstance(high_signature, bytes) and isinstance(low_signature, bytes)
    assert high_signature[:48] == low_signature[:48]
    assert int.from_bytes(high_signature[48:], "big") + int.from_bytes(low_signature[48:], "big") == P384_ORDER


def test_tag_wraps_the_envelope(pki: TestPKI) -> None:
    assert pki.document(tag=18)[0] == 0xD2
    assert pki.document(tag=True) == pki.document(tag=18)
    assert pki.document(tag=False) == pki.document()
    assert pki.document(tag=98)[:2] == b"\xd8\x62"
    assert pki.document(tag=18)[1:] == pki.document()


def test_trailing_and_envelope_hooks(pki: TestPKI) -> None:
    assert pki.document(trailing=b"xyz") == pki.document() + b"xyz"
    assert envelope_of(pki.document(envelope=lambda parts: parts[:3])) == envelope_of(pki.document())[:3]


def test_protected_and_payload_bytes_are_signed(pki: TestPKI) -> None:
    """Header and payload edits happen before signing: the signature stays valid for the edited bytes."""
    leaf_key = pki.leaf.public_key()
    assert isinstance(leaf_key, ec.EllipticCurvePublicKey)
    for data in (
        pki.document(protected=cbor2.dumps({1: -35, 4: b"kid"})),
        pki.document(payload_bytes=lambda payload: payload + b"\x00"),
    ):
        protected, _, payload, signature = envelope_of(data)
        assert isinstance(protected, bytes) and isinstance(payload, bytes) and isinstance(signature, bytes)
        point = leaf_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        job = nitro_attest._backend.P384Job(point, cbor2.dumps(["Signature1", protected, b"", payload]), signature)
        assert nitro_attest._backend.verify_p384_many([job]) == [True]


def test_signature_hook_edits_after_signing(pki: TestPKI) -> None:
    original = envelope_of(pki.document())[3]
    edited = envelope_of(pki.document(signature=lambda signature: signature[::-1]))[3]
    assert isinstance(original, bytes)
    assert edited == original[::-1]


def test_sign_with_a_p256_key_keeps_96_bytes(pki: TestPKI) -> None:
    key = derive_key("p256 signer", curve="P-256")
    protected, _, payload, signature = envelope_of(pki.document(sign_with=key))
    assert isinstance(protected, bytes) and isinstance(payload, bytes) and isinstance(signature, bytes)
    assert len(signature) == 96
    r, s = int.from_bytes(signature[:48], "big"), int.from_bytes(signature[48:], "big")
    message = cbor2.dumps(["Signature1", protected, b"", payload])
    key.public_key().verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA384()))


def test_chain_hook_sets_the_cabundle(pki: TestPKI) -> None:
    payload = payload_of(pki.document(chain=[pki.root, pki.instance]))
    assert payload["cabundle"] == [der(pki.root), der(pki.instance)]


def test_reissue_changes_one_certificate_only(pki: TestPKI) -> None:
    broken = pki.reissue("zonal", extensions=[x509.Extension(BC, False, x509.BasicConstraints(True, 1))])
    assert [extension.oid for extension in broken.zonal.extensions] == [e.oid for e in pki.zonal.extensions]
    assert broken.zonal.extensions.get_extension_for_oid(BC).critical is False
    assert broken.zonal.serial_number == pki.zonal.serial_number
    assert broken.zonal.subject == pki.zonal.subject and broken.zonal.issuer == pki.zonal.issuer
    assert broken.zonal.not_valid_before_utc == pki.zonal.not_valid_before_utc
    broken.zonal.verify_directly_issued_by(pki.regional)
    pki.instance.verify_directly_issued_by(broken.zonal)
    for level in ("root", "regional", "instance", "leaf"):
        assert der(getattr(broken, level)) == der(getattr(pki, level))
    unchanged = pki.reissue("zonal")
    assert der(unchanged.zonal) == der(pki.zonal)


def test_reissue_remove_key_signer_name_validity_and_hash(pki: TestPKI) -> None:
    assert BC not in [e.oid for e in pki.reissue("leaf", remove=[BC]).leaf.extensions]
    p256 = derive_key("leaf", curve="P-256")
    assert pki.reissue("leaf", key=p256).leaf_key is p256
    with pytest.raises(InvalidSignature):
        pki.reissue("zonal", signing_key=pki.root_key).zonal.verify_directly_issued_by(pki.regional)
    assert pki.reissue("zonal", issuer_name=pki.root.subject).zonal.issuer == pki.root.subject
    later = pki.document_time + timedelta(hours=1)
    assert pki.reissue("instance", not_after=later).instance.not_valid_after_utc == later
    sha256 = pki.reissue("instance", hash_algorithm=hashes.SHA256()).instance
    assert sha256.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA256
    root = pki.reissue("root", not_after=later + timedelta(days=1)).root
    root.verify_directly_issued_by(root)
    assert root.public_key() == pki.root.public_key()


def test_document_time_is_start_plus_four_hours() -> None:
    pki = TestPKI.create(start=datetime(2030, 6, 1, tzinfo=timezone.utc))
    assert pki.document_time == datetime(2030, 6, 1, 4, tzinfo=timezone.utc)
    verify(pki, pki.document())
