"""Attacks on attestation verification: one test per public class of bug.

Each test's docstring names the public bug or advisory class it mirrors and
asserts the exact error family and ``.code`` of DESIGN.md section 6. Every
verdict is reached by :func:`nitro_attest.verify` and by
:func:`nitro_attest.verify_batch` (each on a cold link cache) under each P-384
backend (the ``signature_backend`` fixture applies to the whole module), and
the verdicts must agree. test_rules.py breaks each rule alone; this file plays
the attacker, combining the factory's hooks with certificates built here when
the factory cannot express the attack (explicit curve parameters, hand-made
certificate signatures, a key solved for a chosen signature).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID, ObjectIdentifier

import nitro_attest
from nitro_attest import (
    AWS_NITRO_ROOT_G1,
    AttestationDocument,
    CertificateInvalid,
    DocumentTimeInvalid,
    MalformedDocument,
    NitroAttestError,
    Policy,
    PolicyViolation,
    SignatureInvalid,
)
from nitro_attest._chain import LINK_CACHE
from nitro_attest.testing import DEFAULT_PCRS, Level, Raw, TestPKI, derive_key, encode_map, issue_certificate

pytestmark = pytest.mark.usefixtures("signature_backend")

FAMILY: Mapping[str, type[NitroAttestError]] = {
    **dict.fromkeys(("size", "cbor", "cose", "schema"), MalformedDocument),
    "signature": SignatureInvalid,
    **dict.fromkeys(("certificate", "chain", "expired"), CertificateInvalid),
    "time": DocumentTimeInvalid,
    **dict.fromkeys(("pcr", "debug", "nonce", "user_data", "public_key", "stale"), PolicyViolation),
}
ACCEPT = None  # the expected "code" of a document that must verify
N = nitro_attest._backend.P384_ORDER
PKI = TestPKI.create()
AT = PKI.document_time
PIN_PCR0 = Policy({0: DEFAULT_PCRS[0]})
ZERO = bytes(48)
ES384_SHA = hashes.SHA384()


def der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.DER)


def _verdict(result: AttestationDocument | NitroAttestError) -> tuple[str, object]:
    if isinstance(result, NitroAttestError):
        return (type(result).__name__, result.code)
    return ("verified", result.payload)


def check(
    data: bytes,
    code: str | None,
    *,
    policy: Policy = PIN_PCR0,
    at: datetime | None = AT,
    roots: Sequence[x509.Certificate] | None = PKI.roots,
    reason: str = "",
) -> AttestationDocument | NitroAttestError:
    """Asserts verify() and verify_batch() both give ``code`` (ACCEPT: verified); returns verify()'s result.

    ``reason``, when given, must appear in the error's message: for attacks
    that several rules could stop, it names the rule that must.

    The link cache is cleared before each call so that both do every
    signature check themselves. Anything but a NitroAttestError propagates
    and fails the test: nothing else may escape for any input bytes.
    """
    LINK_CACHE.clear()
    result: AttestationDocument | NitroAttestError
    try:
        result = nitro_attest.verify(data, policy, at=at, roots=roots)
    except NitroAttestError as error:
        result = error
    LINK_CACHE.clear()
    [batched] = nitro_attest.verify_batch([data], policy, at=at, roots=roots, workers=2)
    assert _verdict(batched) == _verdict(result), "verify() and verify_batch() disagree"
    if code is ACCEPT:
        assert isinstance(result, AttestationDocument), f"rejected: {result}"
    else:
        assert isinstance(result, NitroAttestError), f"accepted, expected {code!r}"
        assert (type(result), result.code) == (FAMILY[code], code), str(result)
        assert reason in str(result)
    return result


def name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "nitro_attest attacker"),
        ]
    )


def basic_constraints(ca: bool, path_length: int | None = None, *, critical: bool = True) -> x509.Extension[Any]:
    return x509.Extension(ExtensionOID.BASIC_CONSTRAINTS, critical, x509.BasicConstraints(ca, path_length))


def key_usage(*, cert_sign: bool, digital_signature: bool = True) -> x509.Extension[Any]:
    value = x509.KeyUsage(digital_signature, False, False, False, False, cert_sign, False, False, False)
    return x509.Extension(ExtensionOID.KEY_USAGE, True, value)


def issue_under(
    pki: TestPKI, level: Level, label: str, extensions: Sequence[x509.Extension[Any]]
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A new certificate (and its key) issued by ``level``'s key, valid as long as ``level`` is."""
    parent, key = getattr(pki, level), derive_key(label)
    certificate = issue_certificate(
        name(label),
        key.public_key(),
        issuer=parent.subject,
        signing_key=getattr(pki, f"{level}_key"),
        serial=int.from_bytes(hashlib.sha256(label.encode()).digest()[:8], "big"),
        not_before=parent.not_valid_before_utc,
        not_after=parent.not_valid_after_utc,
        extensions=extensions,
    )
    return certificate, key


# ---------------------------------------------------------------------------
# Hand-made DER and P-384 arithmetic (for what cryptography will not build)
# ---------------------------------------------------------------------------

_P = 2**384 - 2**128 - 2**96 + 2**32 - 1  # the P-384 field prime (FIPS 186-4 D.1.2.4)
_B = int("b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef", 16)
_G = ec.derive_private_key(1, ec.SECP384R1()).public_key().public_numbers()
Point = tuple[int, int] | None  # affine coordinates; None is the point at infinity


def tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def der_integer(value: int) -> bytes:
    """A non-negative INTEGER, minimally encoded."""
    return tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def der_signature(r: int, s: int) -> bytes:
    """An ECDSA-Sig-Value in DER (no range check: that is what is under test)."""
    return tlv(0x30, der_integer(r) + der_integer(s))


def der_children(element: bytes) -> list[bytes]:
    """The complete TLVs inside a constructed DER element."""

    def header(position: int) -> tuple[int, int]:  # (content start, content length)
        first = element[position + 1]
        if first < 0x80:
            return position + 2, first
        count = first & 0x7F
        return position + 2 + count, int.from_bytes(element[position + 2 : position + 2 + count], "big")

    start, length = header(0)
    children, position = [], start
    while position < start + length:
        content, size = header(position)
        children.append(element[position : content + size])
        position = content + size
    return children


def rebuild_certificate(
    certificate: x509.Certificate,
    *,
    signing_key: ec.EllipticCurvePrivateKey | None = None,
    tbs_fields: Mapping[int, bytes] | None = None,
    signature: bytes | None = None,
) -> bytes:
    """``certificate``'s DER with fields of its tbsCertificate (by position) and/or its signature replaced.

    Re-signed by ``signing_key`` (ecdsa-with-SHA384) unless ``signature``
    (the DER of the signatureValue's content) is given.
    """
    tbs, algorithm, _ = der_children(der(certificate))
    if tbs_fields:
        fields = der_children(tbs)
        for position, value in tbs_fields.items():
            fields[position] = value
        tbs = tlv(0x30, b"".join(fields))
    if signature is None:
        assert signing_key is not None
        signature = signing_key.sign(tbs, ec.ECDSA(ES384_SHA))
    return tlv(0x30, tbs + algorithm + tlv(0x03, b"\x00" + signature))


# Positions in tbsCertificate: version, serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, ...
TBS_SIGNATURE_ALGORITHM, TBS_SPKI = 2, 6


def with_ec_point(point: bytes) -> bytes:
    """The leaf's SubjectPublicKeyInfo (id-ecPublicKey, named P-384) holding ``point`` instead of its own."""
    algorithm = der_children(der_children(der_children(der(PKI.leaf))[0])[TBS_SPKI])[0]
    return tlv(0x30, algorithm + tlv(0x03, b"\x00" + point))


def encoded_point(point: Point) -> bytes:
    assert point is not None
    return b"\x04" + point[0].to_bytes(48, "big") + point[1].to_bytes(48, "big")


def explicit_spki(public_key: bytes, generator: bytes) -> bytes:
    """An EC SubjectPublicKeyInfo with specifiedCurve parameters: P-384's, but with ``generator``."""
    prime_field = tlv(0x30, tlv(0x06, bytes.fromhex("2a8648ce3d0101")) + der_integer(_P))
    curve = tlv(0x30, tlv(0x04, (_P - 3).to_bytes(48, "big")) + tlv(0x04, _B.to_bytes(48, "big")))
    parameters = tlv(
        0x30, der_integer(1) + prime_field + curve + tlv(0x04, generator) + der_integer(N) + der_integer(1)
    )
    algorithm = tlv(0x30, tlv(0x06, bytes.fromhex("2a8648ce3d0201")) + parameters)  # id-ecPublicKey
    return tlv(0x30, algorithm + tlv(0x03, b"\x00" + public_key))


def point_of(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def _add(first: Point, second: Point) -> Point:
    if first is None or second is None:
        return first or second
    (x1, y1), (x2, y2) = first, second
    if x1 == x2 and (y1 + y2) % _P == 0:
        return None
    numerator, denominator = (3 * x1 * x1 - 3, 2 * y1) if first == second else (y2 - y1, x2 - x1)
    slope = numerator * pow(denominator, -1, _P) % _P
    x3 = (slope * slope - x1 - x2) % _P
    return x3, (slope * (x1 - x3) - y1) % _P


def _multiply(scalar: int, point: Point) -> Point:
    result: Point = None
    for bit in bin(scalar)[2:]:
        result = _add(result, result)
        if bit == "1":
            result = _add(result, point)
    return result


def key_for_signature(message: bytes, r: int, s: int) -> ec.EllipticCurvePublicKey:
    """A P-384 key under which (r, s) is a valid ECDSA/SHA-384 signature of ``message``.

    ``r`` must be the x-coordinate of a curve point. With R that point,
    Q = u2^-1 * (R - u1*G) makes u1*G + u2*Q = R, so verification succeeds;
    nobody knows Q's private key, and nobody needs to.
    """
    rhs = (r**3 - 3 * r + _B) % _P
    y = pow(rhs, (_P + 1) // 4, _P)
    assert y * y % _P == rhs, "r is not an x-coordinate on P-384"
    digest = int.from_bytes(hashlib.sha384(message).digest(), "big")
    w = pow(s, -1, N)
    u1, u2 = digest * w % N, r * w % N
    minus_u1_g = _multiply(N - u1, (_G.x, _G.y))
    q = _multiply(pow(u2, -1, N), _add((r, y), minus_u1_g))
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP384R1(), encoded_point(q))


# ---------------------------------------------------------------------------
# Trust anchors
# ---------------------------------------------------------------------------


def self_signed_leaf_document() -> bytes:
    """A document whose leaf signs itself and is its own one-certificate cabundle."""
    leaf = issue_certificate(
        PKI.leaf.subject,
        PKI.leaf_key.public_key(),
        issuer=PKI.leaf.subject,
        signing_key=PKI.leaf_key,
        serial=PKI.leaf.serial_number,
        not_before=PKI.leaf.not_valid_before_utc,
        not_after=PKI.leaf.not_valid_after_utc,
        extensions=list(PKI.leaf.extensions),
    )
    return PKI.document(chain=[leaf], payload_overrides={"certificate": der(leaf)})


ATTACKER = TestPKI.create(seed="attacker")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(self_signed_leaf_document(), id="self-signed-leaf"),
        pytest.param(ATTACKER.document(), id="attacker-cabundle"),
    ],
)
@pytest.mark.parametrize("roots", [None, PKI.roots], ids=["roots=None-means-aws", "roots=test-pki"])
def test_a_document_never_brings_its_own_trust_anchor(data: bytes, roots: Sequence[x509.Certificate] | None) -> None:
    """CVE-2018-0114 (node-jose trusting the key embedded in the token it verifies) and the JWS
    ``jwk``/``x5c`` header class: the document's own leaf or cabundle must never become a trust anchor.
    ``roots=None`` means the shipped AWS root, and ``roots=[]`` is a caller bug (ValueError), never
    "trust whatever the document carries".
    """
    check(data, "chain", roots=roots)
    empties: list[Sequence[x509.Certificate]] = [[], ()]
    for empty in empties:
        with pytest.raises(ValueError, match="roots is empty"):
            nitro_attest.verify(data, PIN_PCR0, at=AT, roots=empty)
        with pytest.raises(ValueError, match="roots is empty"):
            nitro_attest.verify_batch([data], PIN_PCR0, at=AT, roots=empty)


STRANGER = TestPKI.create(seed="stranger")


@pytest.mark.parametrize(
    "chain",
    [
        pytest.param(PKI.cabundle[::-1], id="reversed"),
        pytest.param(PKI.cabundle[1:], id="root-missing"),
        pytest.param((PKI.root, PKI.zonal, PKI.instance), id="regional-missing"),
        pytest.param((PKI.root, PKI.regional, PKI.instance), id="zonal-missing"),
        pytest.param(PKI.cabundle[:3], id="instance-missing"),
        pytest.param((PKI.root,), id="root-only"),
        pytest.param((PKI.root, PKI.zonal, PKI.regional, PKI.instance), id="two-swapped"),
        pytest.param((PKI.root, STRANGER.regional, PKI.regional, PKI.zonal, PKI.instance), id="stranger-after-root"),
        pytest.param((PKI.root, PKI.regional, PKI.zonal, STRANGER.zonal, PKI.instance), id="stranger-in-the-middle"),
        pytest.param((*PKI.cabundle, STRANGER.instance), id="stranger-last"),
        pytest.param((*PKI.cabundle, PKI.instance), id="instance-twice"),
        pytest.param((STRANGER.root, *PKI.cabundle), id="untrusted-root-first"),
    ],
)
def test_cabundle_must_be_the_exact_path_in_order(chain: Sequence[x509.Certificate]) -> None:
    """Path-building confusion (certificates reordered, dropped or smuggled into the bundle), the class of
    OpenSSL's "alternative chains" forgery CVE-2015-1793: the path is cabundle[0] -> ... -> leaf as sent.
    """
    check(PKI.document(chain=chain), "chain")


def aws_look_alike_root(attacker: TestPKI) -> x509.Certificate:
    """AWS's root re-issued with the attacker's key: same names, serial, validity and extensions (SKI included)."""
    return issue_certificate(
        AWS_NITRO_ROOT_G1.subject,
        attacker.root_key.public_key(),
        issuer=AWS_NITRO_ROOT_G1.issuer,
        signing_key=attacker.root_key,
        serial=AWS_NITRO_ROOT_G1.serial_number,
        not_before=AWS_NITRO_ROOT_G1.not_valid_before_utc,
        not_after=AWS_NITRO_ROOT_G1.not_valid_after_utc,
        extensions=list(AWS_NITRO_ROOT_G1.extensions),
    )


def look_alike_aws_pki(*, copy_key_identifier: bool) -> TestPKI:
    attacker = TestPKI.create(seed="aws look-alike", root_name=AWS_NITRO_ROOT_G1.subject)
    if not copy_key_identifier:
        return attacker
    aws_ski = AWS_NITRO_ROOT_G1.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    authority = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(aws_ski)
    regional = attacker.reissue("regional", extensions=[x509.Extension(authority.oid, False, authority)])
    return dataclasses.replace(regional, root=aws_look_alike_root(attacker))


def curveball_root_document() -> bytes:
    """cabundle[0]: AWS's root with its own public point declared as the generator (private key 1)."""
    aws_point = point_of(AWS_NITRO_ROOT_G1.public_key())  # type: ignore[arg-type]
    forged = rebuild_certificate(
        AWS_NITRO_ROOT_G1, tbs_fields={TBS_SPKI: explicit_spki(aws_point, aws_point)}, signature=bytes(2)
    )
    return PKI.document(payload_overrides={"cabundle": [forged, *map(der, PKI.cabundle[1:])]})


@pytest.mark.parametrize("copy_key_identifier", [False, True], ids=["aws-names", "aws-names-serial-and-ski"])
def test_a_root_named_like_aws_is_not_the_aws_root(copy_key_identifier: bool) -> None:
    """An attacker root carrying AWS's exact subject/issuer (and then also its serial, validity, extensions
    and SubjectKeyIdentifier, with the regional's AuthorityKeyIdentifier pointing at it), signed by the
    attacker's own key. Anchors looked up by name or key identifier instead of pinned by bytes are the
    class CVE-2020-0601 'CurveBall' belongs to. The attacker's chain is otherwise flawless.
    """
    attacker = look_alike_aws_pki(copy_key_identifier=copy_key_identifier)
    assert attacker.root.subject == AWS_NITRO_ROOT_G1.subject and attacker.root.issuer == AWS_NITRO_ROOT_G1.issuer
    data = attacker.document()
    check(data, ACCEPT, roots=attacker.roots)  # the forgery is well made: only the pin stops it
    check(data, "chain", roots=None)
    check(data, "chain", roots=(AWS_NITRO_ROOT_G1, PKI.root))


def test_curveball_root_with_a_chosen_generator_is_not_the_aws_root() -> None:
    """CVE-2020-0601 'CurveBall': a root with the trusted root's public point but explicit curve parameters
    whose generator is that point, so its private key is 1. Pinned by bytes, it is simply not the root.
    """
    check(curveball_root_document(), "chain", roots=None)
    check(curveball_root_document(), "chain", roots=(AWS_NITRO_ROOT_G1, PKI.root))


# ---------------------------------------------------------------------------
# The COSE envelope and its signature
# ---------------------------------------------------------------------------


def set_unprotected(value: object) -> Callable[[list[object]], object]:
    def edit(parts: list[object]) -> object:
        return [parts[0], value, *parts[2:]]

    return edit


@pytest.mark.parametrize(
    "hooks",
    [
        pytest.param({"protected": cbor2.dumps({1: -7})}, id="ES256"),
        pytest.param({"protected": cbor2.dumps({1: -36})}, id="ES512"),
        pytest.param({"protected": cbor2.dumps({1: -38})}, id="PS384"),
        pytest.param({"protected": cbor2.dumps({1: -8})}, id="EdDSA"),
        pytest.param({"protected": cbor2.dumps({1: 6})}, id="HMAC-384/384"),
        pytest.param({"protected": cbor2.dumps({1: 0})}, id="alg-0-reserved"),
        pytest.param({"protected": cbor2.dumps({1: None})}, id="alg-null-none"),
        pytest.param({"protected": cbor2.dumps({1: "none"})}, id="alg-text-none"),
        pytest.param({"protected": cbor2.dumps({1: "ES384"})}, id="alg-text-ES384"),
        pytest.param({"protected": cbor2.dumps({1: b"\x38\x22"})}, id="alg-bstr"),
        pytest.param({"protected": cbor2.dumps({}), "envelope": set_unprotected({1: -35})}, id="alg-only-unprotected"),
        pytest.param({"envelope": set_unprotected({1: -7})}, id="second-alg-unprotected"),
        pytest.param({"protected": cbor2.dumps({1: -35, 2: [1]})}, id="crit-alg"),
        pytest.param({"protected": cbor2.dumps({1: -35, 2: [99], 99: 1})}, id="crit-unknown-param"),
        pytest.param({"protected": cbor2.dumps({1: -35, 4: b"aws"})}, id="extra-kid"),
        pytest.param({"protected": cbor2.dumps({1: -35, 33: [b"x5chain"]})}, id="extra-x5chain"),
        pytest.param({"protected": cbor2.dumps({1: -35, "alg": "none"})}, id="extra-text-label"),
    ],
)
def test_algorithm_confusion_is_rejected(hooks: dict[str, Any]) -> None:
    """JWT algorithm confusion: CVE-2015-9235 (jsonwebtoken verifying HS256 with an RSA public key as the
    secret) and the "alg: none" disclosures of 2015. The factory signs after changing the header, so the
    signature is valid for what is sent: only the header rule (exactly {1: -35}, nothing unprotected)
    stands between the attacker and an algorithm of their choosing.
    """
    check(PKI.document(**hooks), "cose")


def _with_s(signature: bytes, s: int) -> bytes:
    return signature[:48] + s.to_bytes(48, "big")


def _with_r(signature: bytes, r: int) -> bytes:
    return r.to_bytes(48, "big") + signature[48:]


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda sig: bytes(96), id="r=s=0-psychic"),
        pytest.param(lambda sig: _with_r(sig, 0), id="r=0"),
        pytest.param(lambda sig: _with_s(sig, 0), id="s=0"),
        pytest.param(lambda sig: _with_r(sig, N), id="r=n"),
        pytest.param(lambda sig: _with_s(sig, N), id="s=n"),
        pytest.param(lambda sig: _with_r(sig, N + 1), id="r=n+1"),
        pytest.param(lambda sig: _with_s(sig, N + 1), id="s=n+1"),
        pytest.param(lambda sig: _with_r(_with_s(sig, N), N), id="r=s=n"),
        pytest.param(lambda sig: _with_r(sig, 2**384 - 1), id="r=2^384-1"),
        pytest.param(lambda sig: _with_s(sig, 2**384 - 1), id="s=2^384-1"),
        pytest.param(lambda sig: _with_r(sig, N - 1), id="r=n-1"),
        pytest.param(lambda sig: _with_s(sig, N - 1), id="s=n-1"),
        pytest.param(lambda sig: _with_r(_with_s(sig, 1), 1), id="r=s=1"),
        pytest.param(lambda sig: b"\xff" * 96, id="all-ff"),
        pytest.param(lambda sig: sig[:48] * 2, id="s=r"),
    ],
)
def test_out_of_range_signature_scalars_are_rejected(edit: Callable[[bytes], bytes]) -> None:
    """CVE-2022-21449 'psychic signatures' (Java accepting r = s = 0) and the missing range checks on r and
    s behind it: r and s must lie in 1..n-1 on both backends, whatever they are congruent to.
    """
    check(PKI.document(signature=edit), "signature")


def _der_of_raw(signature: bytes) -> bytes:
    return der_signature(int.from_bytes(signature[:48], "big"), int.from_bytes(signature[48:], "big"))


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda sig: b"", id="0-bytes"),
        pytest.param(lambda sig: sig[:1], id="1-byte"),
        pytest.param(lambda sig: sig[:48], id="48-bytes-r-only"),
        pytest.param(lambda sig: sig[:95], id="95-bytes"),
        pytest.param(lambda sig: sig + b"\x00", id="97-bytes"),
        pytest.param(lambda sig: b"\x00" + sig, id="97-bytes-leading-zero"),
        pytest.param(lambda sig: sig + sig, id="192-bytes"),
        pytest.param(lambda sig: bytes(32) + sig, id="128-bytes-p521-sized"),
        pytest.param(_der_of_raw, id="der-encoded"),
    ],
)
def test_wrong_length_signatures_are_rejected(edit: Callable[[bytes], bytes]) -> None:
    """Signature-encoding confusion (raw r || s versus DER, truncation, padding), the encoding classes of
    Project Wycheproof's ECDSA vectors: ES384 is exactly 96 bytes, and anything else is not a COSE_Sign1
    of Nitro's shape.
    """
    check(PKI.document(signature=edit), "cose")


def sign_es256_with(key: ec.EllipticCurvePrivateKey) -> Callable[[list[object]], object]:
    """An envelope hook replacing the signature by ``key``'s ECDSA/SHA-256 one, padded to 2 x 48 bytes."""

    def edit(parts: list[object]) -> object:
        protected, _, payload, _ = parts
        message = cbor2.dumps(["Signature1", protected, b"", payload])
        r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
        return [*parts[:3], r.to_bytes(48, "big") + s.to_bytes(48, "big")]

    return edit


P256 = derive_key("p256 leaf", curve="P-256")


@pytest.mark.parametrize(
    ("forged", "hooks"),
    [
        pytest.param(PKI.reissue("leaf", key=P256), {"sign_with": P256}, id="p256-sha384"),
        pytest.param(PKI.reissue("leaf", key=P256), {"envelope": sign_es256_with(P256)}, id="p256-sha256"),
        pytest.param(
            PKI.reissue("instance", key=derive_key("p256 instance", curve="P-256")).reissue("leaf"),
            {},
            id="p256-instance",
        ),
    ],
)
def test_a_p256_key_behind_an_es384_header_is_rejected(forged: TestPKI, hooks: dict[str, Any]) -> None:
    """Key/algorithm binding: a curve chosen by the certificate rather than fixed by the algorithm, the
    key-confusion sibling of CVE-2015-9235. Every document and certificate is validly signed by the
    P-256 key above it (with SHA-384, or SHA-256 as ES256 would); ES384 means P-384, so the key itself
    is the error.
    """
    check(forged.document(**hooks), "certificate")


def test_full_es256_downgrade_is_rejected() -> None:
    """The complete CVE-2015-9235-style downgrade: ES256 header, P-256 leaf, P-256/SHA-256 signature."""
    forged = PKI.reissue("leaf", key=P256)
    check(forged.document(protected=cbor2.dumps({1: -7}), envelope=sign_es256_with(P256)), "cose")


def test_an_ed25519_leaf_key_is_rejected() -> None:
    """The same binding for a key of another algorithm entirely (EdDSA, the JOSE 'OKP' confusions)."""
    key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    leaf = issue_certificate(
        PKI.leaf.subject,
        key.public_key(),  # type: ignore[arg-type]
        issuer=PKI.leaf.issuer,
        signing_key=PKI.instance_key,
        serial=PKI.leaf.serial_number,
        not_before=PKI.leaf.not_valid_before_utc,
        not_after=PKI.leaf.not_valid_after_utc,
        extensions=list(PKI.leaf.extensions),
    )
    check(PKI.document(payload_overrides={"certificate": der(leaf)}), "certificate")


# ---------------------------------------------------------------------------
# Certificates: CA constraints, critical extensions, curve parameters, signatures
# ---------------------------------------------------------------------------


_LEVELS: tuple[Level, ...] = ("root", "regional", "zonal", "instance", "leaf")


def without_path_lengths(*levels: Level) -> TestPKI:
    """PKI with ``levels`` re-issued without a pathLenConstraint: another rule must then stop the attack."""
    pki = PKI
    for level in levels:
        pki = pki.reissue(level, extensions=[basic_constraints(True)])
    return pki


def leaf_issues_a_certificate(leaf_is_ca: bool) -> bytes:
    """The enclave's leaf appended to the cabundle, signing a certificate of the attacker's choice.

    Without pathLen above it, only the leaf's own CA=false stops it; made a CA,
    only the instance's pathLen 0 does.
    """
    if leaf_is_ca:
        pki = without_path_lengths("regional", "zonal")
        pki = pki.reissue("leaf", extensions=[basic_constraints(True), key_usage(cert_sign=True)])
    else:
        pki = without_path_lengths("regional", "zonal", "instance")
    forged, key = issue_under(pki, "leaf", "issued by the leaf", [basic_constraints(False), key_usage(cert_sign=False)])
    return pki.document(chain=[*pki.cabundle, pki.leaf], payload_overrides={"certificate": der(forged)}, sign_with=key)


def extra_ca_under(level: Level) -> bytes:
    """A well-formed fifth CA (no pathLen of its own) inserted right below ``level``.

    The CAs above ``level`` lose their pathLen, so that ``level``'s own is the one tested.
    """
    position = _LEVELS.index(level) + 1
    pki = without_path_lengths(*_LEVELS[1 : position - 1])
    extra, key = issue_under(
        pki, level, f"extra CA under {level}", [basic_constraints(True), key_usage(cert_sign=True)]
    )
    pki = pki.reissue(_LEVELS[position], signing_key=key, issuer_name=extra.subject)
    chain = list(pki.cabundle)
    chain.insert(position, extra)
    return pki.document(chain=chain)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        pytest.param(lambda: leaf_issues_a_certificate(False), "not a CA certificate", id="leaf-signs-a-leaf"),
        pytest.param(lambda: leaf_issues_a_certificate(True), "pathLenConstraint 0 but 1", id="ca-leaf-signs-a-leaf"),
        pytest.param(
            lambda: PKI.reissue("leaf", extensions=[basic_constraints(True)]).document(),
            "the leaf is a CA",
            id="leaf-is-a-ca",
        ),
        pytest.param(lambda: extra_ca_under("regional"), "pathLenConstraint 2 but 3", id="regional-pathlen-2"),
        pytest.param(lambda: extra_ca_under("zonal"), "pathLenConstraint 1 but 2", id="zonal-pathlen-1"),
        pytest.param(lambda: extra_ca_under("instance"), "pathLenConstraint 0 but 1", id="instance-pathlen-0"),
        pytest.param(
            lambda: PKI.reissue("instance", remove=[ExtensionOID.BASIC_CONSTRAINTS]).document(),
            "not a CA certificate",
            id="intermediate-without-basic-constraints",
        ),
        pytest.param(
            lambda: PKI.reissue("zonal", extensions=[basic_constraints(True, 1, critical=False)]).document(),
            "basicConstraints is not critical",
            id="basic-constraints-not-critical",
        ),
        pytest.param(
            lambda: PKI.reissue("zonal", extensions=[key_usage(cert_sign=False)]).document(),
            "lacks keyCertSign",
            id="intermediate-without-key-cert-sign",
        ),
        pytest.param(
            lambda: PKI.reissue("instance", remove=[ExtensionOID.KEY_USAGE]).document(),
            "lacks keyCertSign",
            id="intermediate-without-key-usage",
        ),
    ],
)
def test_only_cas_may_issue_within_their_path_length(make: Callable[[], bytes], reason: str) -> None:
    """basicConstraints not checked: CVE-2002-0862 (Microsoft CryptoAPI, Moxie Marlinspike's 2002 finding:
    any leaf could sign certificates), CVE-2011-0228 (the same in iOS); the CA check lost in OpenSSL by
    CVE-2015-1793 and CVE-2021-3450. A leaf never issues; a CA needs critical basicConstraints CA=true,
    keyCertSign, and room in every pathLenConstraint above it. Each case is built so that exactly the
    rule named by ``reason`` stops it.
    """
    check(make(), "chain", reason=reason)


def test_an_extra_ca_directly_under_the_root_is_within_every_path_length() -> None:
    """The counterpart of the pathLen cases: the root has none and the others count only CAs below them."""
    check(extra_ca_under("root"), ACCEPT)


_CRITICAL_EXTENSIONS: dict[str, x509.ExtensionType] = {
    "private-oid": x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00"),
    "name-constraints": x509.NameConstraints([x509.DNSName("attacker.invalid")], None),
    "policy-constraints": x509.PolicyConstraints(0, None),
    "certificate-policies": x509.CertificatePolicies([x509.PolicyInformation(ObjectIdentifier("2.5.29.32.0"), None)]),
    "extended-key-usage": x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
    "inhibit-any-policy": x509.InhibitAnyPolicy(0),
}


@pytest.mark.parametrize("extension", list(_CRITICAL_EXTENSIONS.values()), ids=list(_CRITICAL_EXTENSIONS))
@pytest.mark.parametrize("level", ["leaf", "instance"])
def test_unknown_critical_extensions_are_rejected(level: Level, extension: x509.ExtensionType) -> None:
    """RFC 5280 4.2: a verifier that does not process a critical extension must reject the certificate.
    The public class is constraints silently dropped (name constraints and policy constraints ignored by
    verifiers that "support" them); here only basicConstraints and keyUsage are processed, so even
    extensions RFC 5280 defines must reject when critical.
    """
    forged = PKI.reissue(level, extensions=[x509.Extension(extension.oid, True, extension)])
    check(forged.document(), "chain")


def explicit_curve_document(level: Level, *, generator: bytes | None = None) -> bytes:
    """``level``'s certificate with its own P-384 point in an explicit-parameters SPKI, re-signed by its issuer."""
    # Explicit parameters add ~320 bytes: without its key identifiers the instance stays within 1024.
    slim = PKI.reissue(level, remove=[ExtensionOID.SUBJECT_KEY_IDENTIFIER, ExtensionOID.AUTHORITY_KEY_IDENTIFIER])
    certificate: x509.Certificate = getattr(slim, level)
    issuer_key = getattr(PKI, f"{_LEVELS[_LEVELS.index(level) - 1]}_key")
    point = point_of(certificate.public_key())  # type: ignore[arg-type]
    spki = explicit_spki(point, generator or encoded_point((_G.x, _G.y)))
    rebuilt = rebuild_certificate(certificate, signing_key=issuer_key, tbs_fields={TBS_SPKI: spki})
    if level == "leaf":
        return PKI.document(payload_overrides={"certificate": rebuilt})
    bundle = [der(PKI.root), der(PKI.regional), der(PKI.zonal), der(PKI.instance)]
    bundle[_LEVELS.index(level)] = rebuilt
    return PKI.document(payload_overrides={"cabundle": bundle})


@pytest.mark.parametrize(
    ("level", "generator"),
    [
        pytest.param("leaf", point_of(PKI.leaf_key.public_key()), id="leaf-curveball-generator"),
        pytest.param("leaf", point_of(derive_key("two").public_key()), id="leaf-other-generator"),
    ],
)
def test_explicit_curve_parameters_are_rejected(level: Level, generator: bytes) -> None:
    """CVE-2020-0601 'CurveBall': explicit parameters with a chosen generator let a forger claim a trusted
    key; any parameters other than P-384's describe another curve and are refused. (Parameters identical
    to P-384 describe P-384 itself: see test_other_encodings_of_the_same_p384_key_are_tolerated.)
    """
    check(explicit_curve_document(level, generator=generator), "certificate")


def leaf_with_tbs_field(position: int, value: bytes) -> bytes:
    """A document whose leaf has one tbsCertificate field replaced, properly re-signed by the instance."""
    leaf = rebuild_certificate(PKI.leaf, signing_key=PKI.instance_key, tbs_fields={position: value})
    return PKI.document(payload_overrides={"certificate": leaf})


_LEAF_POINT = point_of(PKI.leaf_key.public_key())
_ECDSA_WITH_SHA256 = tlv(0x30, tlv(0x06, bytes.fromhex("2a8648ce3d040302")))


@pytest.mark.parametrize(
    ("position", "value"),
    [
        pytest.param(TBS_SPKI, with_ec_point(b"\x04" + bytes(96)), id="point-off-the-curve"),
        pytest.param(TBS_SPKI, with_ec_point(b"\x00"), id="point-at-infinity"),
        pytest.param(TBS_SPKI, with_ec_point(_LEAF_POINT[:49]), id="point-truncated"),
    ],
)
def test_invalid_leaf_points_are_rejected(position: int, value: bytes) -> None:
    """The invalid-curve class (e.g. CVE-2015-7940, Bouncy Castle): a point off the curve, at infinity
    or truncated is no P-384 key. Each leaf is validly signed by the instance, so only the check of the
    key itself can stop it.
    """
    check(leaf_with_tbs_field(position, value), "certificate")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(lambda: explicit_curve_document("leaf"), id="leaf-explicit-p384-parameters"),
        pytest.param(lambda: explicit_curve_document("instance"), id="instance-explicit-p384-parameters"),
        pytest.param(
            lambda: leaf_with_tbs_field(TBS_SPKI, with_ec_point(bytes([6 | _LEAF_POINT[-1] & 1]) + _LEAF_POINT[1:])),
            id="leaf-hybrid-point",
        ),
        pytest.param(
            lambda: leaf_with_tbs_field(TBS_SIGNATURE_ALGORITHM, _ECDSA_WITH_SHA256),
            id="leaf-inner-ecdsa-sha256-outer-sha384",
        ),
    ],
)
def test_other_encodings_of_the_same_p384_key_are_tolerated(data: Callable[[], bytes]) -> None:
    """A known tolerance, on purpose (docs/security.md, "Known tolerances").

    RFC 5480 wants named curves and no hybrid points, and RFC 5280 wants the
    algorithm inside tbsCertificate equal to the outer one (CVE-2014-8275:
    OpenSSL's missing check gave one certificate many fingerprints). Here the
    explicit parameters are exactly P-384's and the hybrid point is the same
    point, so cryptography reads the very same key; the signature is checked
    as ecdsa-with-SHA384, as the outer field says, under the issuer's key.
    Only the holder of a CA key can mint these, so they gain nobody a trust
    they did not have, and the caches key on exact DER, so a re-encoded
    certificate is never mistaken for another. Refusing them would need DER
    parsing of our own, which the house rules forbid.
    """
    verified = check(data(), ACCEPT)
    assert isinstance(verified, AttestationDocument)
    # The key the signature was checked with is the leaf's own, whatever its encoding.
    assert point_of(verified.certificate.public_key()) == _LEAF_POINT  # type: ignore[arg-type]


def leaf_with_signature(signature: bytes) -> bytes:
    return PKI.document(payload_overrides={"certificate": rebuild_certificate(PKI.leaf, signature=signature)})


def _leaf_rs() -> tuple[int, int]:
    return decode_dss_signature(PKI.leaf.signature)


def _ber_long_length(r: int, s: int) -> bytes:
    body = der_integer(r) + der_integer(s)
    return b"\x30\x81" + bytes([len(body)]) + body  # long-form length where the short form fits


def _ber_padded_r(r: int, s: int) -> bytes:
    padded = b"\x00\x00" + r.to_bytes(48, "big")
    return tlv(0x30, tlv(0x02, padded) + der_integer(s))  # a non-minimal INTEGER


@pytest.mark.parametrize(
    ("signature", "code"),
    [
        pytest.param(lambda r, s: der_signature(r, N - s), ACCEPT, id="der-r-n-minus-s-valid"),
        pytest.param(lambda r, s: der_signature(0, 0), "chain", id="r=s=0-psychic"),
        pytest.param(lambda r, s: der_signature(r, 0), "chain", id="s=0"),
        pytest.param(lambda r, s: der_signature(r, s + N), "chain", id="s+n"),
        pytest.param(lambda r, s: der_signature(r, s) + b"\x00", "chain", id="trailing-byte"),
        pytest.param(_ber_long_length, "chain", id="ber-long-form-length"),
        pytest.param(_ber_padded_r, "chain", id="ber-non-minimal-integer"),
        pytest.param(lambda r, s: r.to_bytes(48, "big") + s.to_bytes(48, "big"), "chain", id="raw-not-der"),
    ],
)
def test_certificate_signature_encodings(signature: Callable[[int, int], bytes], code: str | None) -> None:
    """CVE-2014-8275 (OpenSSL accepting non-DER signature encodings, which changed certificate fingerprints)
    and CVE-2022-21449 on the certificate path: only a strict-DER ECDSA-Sig-Value with r, s in 1..n-1
    counts. (r, n - s) is a genuinely valid signature, so that twin is accepted.
    """
    check(leaf_with_signature(signature(*_leaf_rs())), code)


def _solved_link() -> tuple[list[bytes], int, int]:
    """An instance key solved so that a small (r, s) signs the leaf: r + n and s + n fit in 48 bytes.

    Returns the cabundle (DER, the solved instance last) and r, s.
    """
    r = next(x for x in range(2, 1000) if pow((x**3 - 3 * x + _B) % _P, (_P - 1) // 2, _P) == 1)
    s = 2**150 + 12345
    assert r + N < 2**384 and s + N < 2**384
    instance = issue_certificate(
        PKI.instance.subject,
        key_for_signature(PKI.leaf.tbs_certificate_bytes, r, s),
        issuer=PKI.instance.issuer,
        signing_key=PKI.zonal_key,
        serial=PKI.instance.serial_number,
        not_before=PKI.instance.not_valid_before_utc,
        not_after=PKI.instance.not_valid_after_utc,
        extensions=list(PKI.instance.extensions),
    )
    return [der(PKI.root), der(PKI.regional), der(PKI.zonal), der(instance)], r, s


SOLVED_BUNDLE, SMALL_R, SMALL_S = _solved_link()


@pytest.mark.parametrize(
    ("r", "s", "code"),
    [
        pytest.param(SMALL_R, SMALL_S, ACCEPT, id="r-s-valid"),
        pytest.param(SMALL_R + N, SMALL_S, "chain", id="r+n"),
        pytest.param(SMALL_R, SMALL_S + N, "chain", id="s+n"),
        pytest.param(SMALL_R + N, SMALL_S + N, "chain", id="r+n-s+n"),
        pytest.param(SMALL_R, N - SMALL_S, ACCEPT, id="r-n-minus-s-valid"),
    ],
)
def test_scalars_congruent_to_a_valid_signature_are_not_it(r: int, s: int, code: str | None) -> None:
    """The arithmetic side of CVE-2022-21449 (and Wycheproof's "r + n" vectors): a verifier that reduces
    r or s modulo n accepts r + n when r is valid. A real signature's r + n never fits 48 bytes, so the
    instance key is solved for a small (r, s) over the leaf; both backends must see r + n and refuse it.
    """
    leaf = rebuild_certificate(PKI.leaf, signature=der_signature(r, s))
    check(PKI.document(payload_overrides={"cabundle": SOLVED_BUNDLE, "certificate": leaf}), code)


# ---------------------------------------------------------------------------
# CBOR: duplicate keys, trailing bytes, lengths that lie
# ---------------------------------------------------------------------------

OTHER_PCRS = {**DEFAULT_PCRS, 0: b"\x42" * 48}


@pytest.mark.parametrize(
    "hooks",
    [
        pytest.param({"pcrs": OTHER_PCRS, "payload_extra": [("pcrs", dict(DEFAULT_PCRS))]}, id="pcrs-twice"),
        pytest.param({"payload_extra": [("module_id", "i-attacker-enc0")]}, id="module_id-twice"),
        pytest.param({"payload_extra": [("certificate", der(STRANGER.leaf))]}, id="certificate-twice"),
        pytest.param({"payload_extra": [("cabundle", list(map(der, STRANGER.cabundle)))]}, id="cabundle-twice"),
        pytest.param({"payload_extra": [("timestamp", 1)]}, id="timestamp-twice"),
        pytest.param({"nonce": b"a", "payload_extra": [(Raw(b"\x7f\x62no\x63nce\xff"), b"b")]}, id="chunked-key-twice"),
        pytest.param(
            {"payload_overrides": {"pcrs": Raw(encode_map([*DEFAULT_PCRS.items(), (True, b"\x42" * 48)]))}},
            id="pcr-1-and-true",
        ),
        pytest.param(
            {"payload_overrides": {"pcrs": Raw(encode_map([*DEFAULT_PCRS.items(), (Raw(b"\x18\x00"), ZERO)]))}},
            id="pcr-0-non-shortest-twice",
        ),
        pytest.param({"protected": encode_map([(1, -7), (1, -35)])}, id="protected-ES256-then-ES384"),
        pytest.param({"protected": encode_map([(1, -35), (1, -7)])}, id="protected-ES384-then-ES256"),
        pytest.param({"protected": encode_map([(1, -35), (Raw(b"\x18\x01"), -35)])}, id="protected-alg-twice"),
    ],
)
def test_duplicate_map_keys_are_rejected(hooks: dict[str, Any]) -> None:
    """Parser differentials on duplicate keys: CVE-2017-12635 (CouchDB: two JSON parsers, one first-wins, one
    last-wins, made a user an admin). Keys equal after decoding count as duplicates: a chunked text key,
    a non-shortest integer, and CBOR true against the integer 1 (equal in Python).
    """
    check(PKI.document(**hooks), "cbor")


@pytest.mark.parametrize(
    ("hooks", "code"),
    [
        pytest.param({"trailing": b"\x00"}, "cbor", id="after-envelope-byte"),
        pytest.param({"trailing": PKI.document(nonce=b"smuggled")}, "cbor", id="after-envelope-document"),
        pytest.param({"tag": 18, "trailing": b"\xa0"}, "cbor", id="after-tagged-envelope"),
        pytest.param({"payload_bytes": lambda payload: payload + cbor2.dumps({"pcrs": {}})}, "cbor", id="in-payload"),
        pytest.param({"protected": bytes.fromhex("a1013822") + b"\xa0"}, "cbor", id="in-protected-header"),
        pytest.param({"payload_overrides": {"certificate": der(PKI.leaf) + b"\x00"}}, "certificate", id="in-leaf-der"),
        pytest.param(
            {"payload_overrides": {"cabundle": [der(PKI.root) + b"\x00", *map(der, PKI.cabundle[1:])]}},
            "certificate",
            id="in-root-der",
        ),
    ],
)
def test_trailing_bytes_are_rejected(hooks: dict[str, Any], code: str) -> None:
    """Smuggling after the end of an item (a parser that stops at the first complete value while another
    reads on). Every item must span its bytes exactly, the certificates' DER included: the caches key on
    those bytes, so one certificate must have one encoding.
    """
    check(PKI.document(**hooks), code)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\x9b" + (2**64 - 1).to_bytes(8, "big"), id="envelope-array-of-2^64"),
        pytest.param(b"\x84\x5b" + (2**63).to_bytes(8, "big"), id="protected-bstr-of-2^63"),
        pytest.param(PKI.document(payload_overrides={"future": Raw(b"\x9a\xff\xff\xff\xff")}), id="array-of-2^32"),
        pytest.param(
            PKI.document(payload_overrides={"future": Raw(b"\xbb" + bytes([0x10]) + bytes(7))}), id="map-2^60"
        ),
        pytest.param(PKI.document(payload_overrides={"module_id": Raw(b"\x7a\xff\xff\xff\xff")}), id="text-of-4-gib"),
    ],
)
def test_lengths_that_lie_are_rejected_without_allocating(data: bytes) -> None:
    """Decoder allocation bombs (a length field trusted before the bytes behind it are counted), a class
    found again and again in ASN.1, CBOR and protobuf parsers: a declared size the input cannot hold is
    malformed, never a MemoryError.
    """
    check(data, "cbor")


# ---------------------------------------------------------------------------
# Time, debug mode, policy
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hooks", "at", "code"),
    [
        pytest.param({}, AT + timedelta(minutes=5, milliseconds=1), "stale", id="older-than-max-age"),
        pytest.param({"timestamp": AT + timedelta(seconds=61)}, AT, "time", id="future-beyond-skew"),
        pytest.param({"timestamp": PKI.leaf.not_valid_after_utc}, AT, "time", id="future-end-of-leaf"),
        pytest.param({"payload_overrides": {"timestamp": int(AT.timestamp())}}, AT, "time", id="seconds-not-ms"),
        pytest.param(
            {"payload_overrides": {"timestamp": int(AT.timestamp()) * 10**6}}, AT, "schema", id="microseconds"
        ),
        pytest.param({}, None, "expired", id="recorded-document-replayed-now"),
    ],
)
def test_document_time_attacks(hooks: dict[str, Any], at: datetime | None, code: str) -> None:
    """Replay and clock confusion: a captured document replayed after max_age (or verified "now" long after
    it was recorded), a timestamp dated ahead to outlive freshness checks, and unit confusion: a
    timestamp in seconds lands in January 1970 and must fail the leaf-validity rule (``time``) rather
    than merely look old; one in microseconds lands past the year 9999, not a time at all (``schema``).
    """
    policy = Policy({0: DEFAULT_PCRS[0]}, max_age=timedelta(minutes=5))
    check(PKI.document(**hooks), code, policy=policy, at=at)


DEBUG_PCRS = {**DEFAULT_PCRS, 0: ZERO, 1: ZERO, 2: ZERO}


@pytest.mark.parametrize(
    ("pcrs", "policy", "code"),
    [
        pytest.param(DEBUG_PCRS, Policy({3: DEFAULT_PCRS[3]}), "debug", id="pins-pcr3-only"),
        pytest.param(DEBUG_PCRS, Policy({0: ZERO, 1: ZERO, 2: ZERO}), "debug", id="pins-the-zeros"),
        pytest.param(DEBUG_PCRS, Policy.any_enclave(), "debug", id="any-enclave"),
        pytest.param({**DEFAULT_PCRS, 0: ZERO}, Policy({8: DEFAULT_PCRS[8]}), "debug", id="pcr0-alone-zero"),
        pytest.param(DEBUG_PCRS, Policy({0: ZERO}, allow_debug=True), ACCEPT, id="explicitly-allowed"),
    ],
)
def test_debug_mode_enclaves_need_an_explicit_opt_in(pcrs: dict[int, bytes], policy: Policy, code: str | None) -> None:
    """Debug-mode enclaves (AWS Nitro Enclaves User Guide: attestation documents of enclaves run with
    --debug-mode carry all-zero PCR0-2) are genuinely AWS-signed while their memory is readable by the
    parent: the general class of accepting a debug or test build as production. A zero PCR pin is not
    an opt-in; only allow_debug=True is.
    """
    check(PKI.document(pcrs=pcrs), code, policy=policy)


def malleate_s(signature: bytes) -> bytes:
    """(r, n - s): valid ECDSA for the same message and key, other bytes."""
    return _with_s(signature, N - int.from_bytes(signature[48:], "big"))


def chunked(value: bytes) -> bytes:
    """A byte string as an indefinite-length string of two chunks: other bytes, same value."""
    return b"\x5f" + cbor2.dumps(value[:5]) + cbor2.dumps(value[5:]) + b"\xff"


def reencoded_envelope(parts: list[object]) -> object:
    protected, _, payload, signature = parts
    assert isinstance(protected, bytes) and isinstance(payload, bytes) and isinstance(signature, bytes)
    return Raw(b"\x98\x04" + chunked(protected) + b"\xbf\xff" + chunked(payload) + b"\x58\x60" + signature)


def test_malleated_documents_verify_so_replay_caches_key_on_the_payload() -> None:
    """ECDSA malleability, as in Bitcoin transaction malleability (2014, BIP 62/66): (r, n - s) of a valid
    signature IS a valid ECDSA signature, and COSE signs the Sig_structure, not the envelope's bytes
    (tag 18, indefinite or non-shortest lengths). Anyone holding one document can mint others with
    different bytes that all verify; what they share is the payload, hence the nonce.
    """
    original = PKI.document(nonce=b"session nonce")
    variants = [
        original,
        PKI.document(nonce=b"session nonce", signature=malleate_s),
        PKI.document(nonce=b"session nonce", tag=18),
        PKI.document(nonce=b"session nonce", envelope=reencoded_envelope),
        PKI.document(nonce=b"session nonce", signature=malleate_s, tag=18, envelope=reencoded_envelope),
    ]
    assert len(set(variants)) == len(variants)
    policy = Policy({0: DEFAULT_PCRS[0]}, nonce=b"session nonce")
    for data in variants:
        check(data, ACCEPT, policy=policy)
    documents = [nitro_attest.parse(data) for data in variants]
    assert len({document.raw for document in documents}) == len(variants)  # a cache on the bytes misses
    assert {document.payload for document in documents} == {documents[0].payload}  # a cache on the payload hits
    assert {document.nonce for document in documents} == {b"session nonce"}
    LINK_CACHE.clear()
    batch = nitro_attest.verify_batch(variants, policy, at=AT, roots=PKI.roots, workers=2)
    assert [_verdict(result) for result in batch] == [("verified", documents[0].payload)] * len(variants)


# ---------------------------------------------------------------------------
# An extra class: bool, text and bytes standing in for the integers and strings of the schema
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hooks", "code"),
    [
        pytest.param({"protected": cbor2.dumps({True: -35})}, "cose", id="alg-label-true"),
        pytest.param({"protected": b"\xa1\x01\xf5"}, "cose", id="alg-true"),
        pytest.param({"payload_overrides": {"timestamp": True}}, "schema", id="timestamp-true"),
        pytest.param({"pcrs": {True: DEFAULT_PCRS[1], 0: DEFAULT_PCRS[0]}}, "schema", id="pcr-index-true"),
        pytest.param({"payload_overrides": {"digest": b"SHA384"}}, "schema", id="digest-bytes"),
        pytest.param({"payload_overrides": {"module_id": Raw(b"\x62\xc0\xaf")}}, "cbor", id="module_id-overlong-utf8"),
        pytest.param({"payload_overrides": {"cabundle": [True, *map(der, PKI.cabundle)]}}, "schema", id="bundle-bool"),
        pytest.param({"payload_overrides": {"nonce": True}}, "schema", id="nonce-true"),
        pytest.param({"pcrs": {**DEFAULT_PCRS, 2**64: ZERO}}, "cbor", id="pcr-index-bignum"),
        pytest.param({"pcrs": {**DEFAULT_PCRS, cbor2.CBORTag(2, b"\x00"): ZERO}}, "cbor", id="pcr-0-as-bignum-twice"),
    ],
)
def test_type_confusion_is_rejected(hooks: dict[str, Any], code: str) -> None:
    """Type confusion between CBOR major types that Python blurs (True == 1, bytes vs text) and overlong
    UTF-8 (the encoding class of CVE-2000-0884, IIS directory traversal): each value must have its exact
    CBOR type, checked with type() and never with == or isinstance(int).
    """
    check(PKI.document(**hooks), code)
