"""The signature section: what nitro-cli writes there, read strictly, and the check of its signature.

nitro-cli (``EifSigner::generate_eif_signature``, src/utils/eif_signer.rs)
writes ``serde_cbor::to_vec(&vec![PcrSignature { signing_certificate, signature }])``:
an array of one map whose two keys are the field names, in declaration order,
and whose values are ``Vec<u8>``, which serde_cbor writes as arrays of
integers, not byte strings. ``signing_certificate`` is the PEM file given to
``--signing-certificate``, as read; ``signature`` an untagged COSE_Sign1
(aws-nitro-enclaves-cose, protected header ``{1: alg}`` with alg from the
key's curve, empty unprotected header) over
``serde_cbor::to_vec(&PcrInfo { register_index: 0, register_value: PCR0 })``.

The outer layer is read by its exact grammar (an array of 2,000 one-byte
integers is too many items for the document decoder's bound, and nothing but
this grammar is what nitro-cli writes); the COSE_Sign1 inside, a few hundred
bytes, goes through :mod:`nitro_attest._cbor`'s strict decoding and cbor2.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from .. import _cbor
from .._cose import sig_structure
from ..document import PCR_SIZE, PCRValue
from ..errors import MalformedDocument
from ..measurements import pcr8_for_certificate
from ._model import EifError, EifSignatureCheck, EifSignatureStatus

__all__ = ["ALGORITHMS", "Algorithm", "SignatureSection", "check_signature", "pcr_info", "read_signature_section"]


@dataclass(frozen=True)
class Algorithm:
    """A COSE ECDSA algorithm: its name, curve, hash and the size of r and s."""

    name: str
    curve: str  # cryptography's curve name
    hash: type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]
    coordinate_size: int


#: The algorithms aws-nitro-enclaves-cose signs with, by COSE identifier.
ALGORITHMS: Mapping[int, Algorithm] = MappingProxyType(
    {
        -7: Algorithm("ES256", "secp256r1", hashes.SHA256, 32),
        -35: Algorithm("ES384", "secp384r1", hashes.SHA384, 48),
        -36: Algorithm("ES512", "secp521r1", hashes.SHA512, 66),
    }
)

_CERTIFICATE_KEY = b"signing_certificate"
_SIGNATURE_KEY = b"signature"
_PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
# What cryptography raises for a certificate it cannot load (InvalidVersion: a version other than
# v1..v3) or whose names or dates it cannot parse (ValueError); tests/test_eif.py makes each happen.
_CERTIFICATE_ERRORS = (ValueError, x509.InvalidVersion)
_UINT8_ONE_BYTE_MAX = 0x17  # integers 0..23 are their own initial byte
_UINT8_FOLLOWS = 0x18  # then one byte: 24..255


@dataclass(frozen=True)
class SignatureSection:
    """The signature section, decoded: the certificate (and its PCR8) and the COSE_Sign1's parts."""

    certificate: x509.Certificate
    pcr8: PCRValue
    protected: bytes
    payload: bytes
    signature: bytes
    algorithm: Algorithm


class _Grammar:
    """Reads the exact CBOR items of nitro-cli's signature section, naming file offsets in errors."""

    def __init__(self, data: bytes, offset: int) -> None:
        self.data = data
        self.position = 0
        self.offset = offset

    def fail(self, expected: str) -> EifError:
        return EifError("signature", f"at offset {self.offset + self.position}: expected {expected}")

    def head(self, major: int, expected: str) -> int:
        """The argument of a definite-length item of type ``major``."""
        data, position = self.data, self.position
        if position >= len(data) or data[position] >> 5 != major:
            raise self.fail(expected)
        info = data[position] & 0x1F
        if info < 24:
            self.position += 1
            return info
        if info > 27:  # indefinite lengths and reserved values: serde_cbor writes neither
            raise self.fail(expected + " of definite length")
        size = 1 << (info - 24)
        if position + 1 + size > len(data):
            raise self.fail(f"{size} more bytes of the length of {expected}")
        self.position += 1 + size
        return int.from_bytes(data[position + 1 : position + 1 + size], "big")

    def key(self, name: bytes) -> None:
        what = f'the text key "{name.decode()}"'
        if self.head(3, what) != len(name) or self.data[self.position : self.position + len(name)] != name:
            self.position = max(self.position - 1, 0)
            raise self.fail(what)
        self.position += len(name)

    def byte_array(self, what: str) -> bytes:
        """A ``Vec<u8>`` as serde_cbor writes it: an array of integers 0..255."""
        count = self.head(4, f"{what}, an array of integers 0..255")
        data = self.data
        if count > len(data) - self.position:  # each element takes at least one byte
            raise self.fail(f"{count} array elements for {what}, but only {len(data) - self.position} bytes remain")
        values = bytearray(count)
        position = self.position
        for index in range(count):
            if position >= len(data):
                self.position = position
                raise self.fail(f"element {index} of {what}")
            initial = data[position]
            if initial <= _UINT8_ONE_BYTE_MAX:
                values[index] = initial
                position += 1
            elif initial == _UINT8_FOLLOWS and position + 1 < len(data):
                values[index] = data[position + 1]
                position += 2
            else:
                self.position = position
                raise self.fail(f"element {index} of {what} to be an integer 0..255")
        self.position = position
        return bytes(values)


def read_signature_section(data: bytes, offset: int) -> SignatureSection:
    """Decodes the signature section whose content starts at file offset ``offset``; raises :class:`EifError`."""
    grammar = _Grammar(data, offset)
    if grammar.head(4, "an array of one PcrSignature") != 1:
        grammar.position = 0
        raise grammar.fail("an array of exactly one PcrSignature (nitro-cli signs PCR0 only)")
    if grammar.head(5, "a PcrSignature map") != 2:
        grammar.position -= 1
        raise grammar.fail("a PcrSignature map of 2 entries (signing_certificate, signature)")
    grammar.key(_CERTIFICATE_KEY)
    pem = grammar.byte_array("signing_certificate")
    cose_at = grammar.position
    grammar.key(_SIGNATURE_KEY)
    cose = grammar.byte_array("signature")
    if grammar.position != len(data):
        raise grammar.fail(f"the end of the section ({len(data) - grammar.position} bytes follow the PcrSignature)")
    certificate, pcr8 = _certificate(pem, offset)
    protected, payload, signature, algorithm = _cose(cose, offset + cose_at)
    return SignatureSection(certificate, pcr8, protected, payload, signature, algorithm)


def _certificate(pem: bytes, offset: int) -> tuple[x509.Certificate, PCRValue]:
    where = f"at offset {offset}: signing_certificate"
    if _PEM_CERTIFICATE not in pem:
        raise EifError(
            "signature", f"{where}: expected a PEM certificate (-----BEGIN CERTIFICATE-----), as nitro-cli stores it"
        )
    try:
        certificates = x509.load_pem_x509_certificates(pem)
        if len(certificates) != 1:
            raise EifError("signature", f"{where}: expected one certificate, found {len(certificates)}")
        certificate = certificates[0]
        # cryptography parses these lazily: parse them now, so that a damaged certificate is refused
        # here, as one, and not when a caller first prints its issuer or dates.
        certificate.subject  # noqa: B018
        certificate.issuer  # noqa: B018
        certificate.not_valid_before_utc  # noqa: B018
        certificate.not_valid_after_utc  # noqa: B018
    except _CERTIFICATE_ERRORS as exc:
        raise EifError("signature", f"{where}: expected a PEM X.509 certificate: {exc}") from None
    return certificate, pcr8_for_certificate(certificate)


def _decode(data: bytes, max_depth: int, what: str) -> object:
    try:
        return _cbor.decode_item(data, max_depth=max_depth, what=what)
    except MalformedDocument as exc:
        raise EifError("signature", exc.message) from None


def _cose(cose: bytes, offset: int) -> tuple[bytes, bytes, bytes, Algorithm]:
    where = f"at offset {offset}: signature"
    # Depth 2: the array, then the (empty) unprotected header map in it.
    envelope = _decode(cose, 2, f"{where}: COSE_Sign1")
    if not isinstance(envelope, list) or len(envelope) != 4:
        raise EifError("signature", f"{where}: expected an untagged COSE_Sign1 array of 4 elements")
    protected, unprotected, payload, signature = envelope
    if not (isinstance(protected, bytes) and isinstance(payload, bytes) and isinstance(signature, bytes)):
        raise EifError("signature", f"{where}: expected byte strings for the protected header, payload and signature")
    if not isinstance(unprotected, dict):
        raise EifError("signature", f"{where}: expected a map for the unprotected header")
    # nitro-cli writes an empty one, and RFC 9052 section 3 forbids a label in both headers: anything here
    # would be unauthenticated parameters a verifier might read.
    if unprotected:
        raise EifError(
            "signature",
            f"{where}: expected an empty unprotected header (nitro-cli's), found {len(unprotected)} label(s)",
        )
    header = _decode(protected, 1, f"{where}: protected header")
    # type(): CBOR true would pass for the integer 1 in an isinstance check.
    if not isinstance(header, dict) or [type(key) for key in header] != [int] or 1 not in header:
        raise EifError("signature", f"{where}: expected the protected header {{1: alg}}, got {header!r}")
    identifier = header[1]
    if type(identifier) is not int or identifier not in ALGORITHMS:
        raise EifError("signature", f"{where}: algorithm {identifier!r} is not ES256 (-7), ES384 (-35) or ES512 (-36)")
    return protected, payload, signature, ALGORITHMS[identifier]


def pcr_info(pcr0: bytes) -> bytes:
    """``serde_cbor::to_vec(&PcrInfo { register_index: 0, register_value: pcr0 })``: what nitro-cli signs."""
    return cbor2.dumps({"register_index": 0, "register_value": list(pcr0)})


def _signed_pcr0(payload: bytes) -> PCRValue | None:
    try:
        info = _cbor.decode_item(payload, max_depth=2, what="payload")
    except MalformedDocument:
        return None
    if not isinstance(info, dict) or set(info) != {"register_index", "register_value"}:
        return None
    index, value = info["register_index"], info["register_value"]
    if type(index) is not int or index != 0 or not isinstance(value, list) or len(value) != PCR_SIZE:
        return None
    if not all(type(item) is int and 0 <= item <= 255 for item in value):
        return None
    return PCRValue(0, bytes(value))


def _verifies(section: SignatureSection) -> str | None:
    """None when the COSE signature verifies with the certificate's key; else why not."""
    algorithm = section.algorithm
    try:
        key = section.certificate.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        return f"the signing certificate's key cannot be loaded: {exc}"
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != algorithm.curve:
        kind = key.curve.name if isinstance(key, ec.EllipticCurvePublicKey) else type(key).__name__
        return f"{algorithm.name} needs a {algorithm.curve} key; the signing certificate's key is {kind}"
    size = algorithm.coordinate_size
    if len(section.signature) != 2 * size:
        return f"an {algorithm.name} signature is {2 * size} bytes (r || s), not {len(section.signature)}"
    r = int.from_bytes(section.signature[:size], "big")
    s = int.from_bytes(section.signature[size:], "big")
    try:
        key.verify(
            encode_dss_signature(r, s),
            sig_structure(section.protected, section.payload),
            ec.ECDSA(algorithm.hash()),
        )
    except InvalidSignature:
        return f"the {algorithm.name} signature does not verify with the signing certificate's key"
    return None


def check_signature(section: SignatureSection, pcr0: PCRValue) -> EifSignatureCheck:
    """The verdict on ``section``'s signature for an image whose PCR0 is ``pcr0``."""
    signed = _signed_pcr0(section.payload)
    name = section.algorithm.name
    failure = _verifies(section)
    if failure is not None:
        return EifSignatureCheck(EifSignatureStatus.BAD_SIGNATURE, name, signed, failure)
    if section.payload != pcr_info(pcr0.value):
        named = f"PCR0 {signed.hex()}" if signed is not None else "no PcrInfo for PCR0"
        return EifSignatureCheck(
            EifSignatureStatus.PCR0_MISMATCH,
            name,
            signed,
            f"the signature is genuine but signs {named}; this image's PCR0 is {pcr0.hex()}",
        )
    return EifSignatureCheck(EifSignatureStatus.VALID, name, signed, f"{name} signature over this image's PCR0")
