"""The attestation document as typed, immutable values, and its schema rules.

:func:`parse` turns bytes into an :class:`AttestationDocument` after the
strict decoding of ``nitro_attest._cbor`` and the payload schema of the
Nitro Enclaves attestation process (field types and sizes: see
``docs/concepts.md``). It verifies nothing: see :func:`nitro_attest.verify`.
:func:`document_bytes` turns the encodings documents travel in (hex, base64,
a file) into the raw CBOR that :func:`parse` and :func:`nitro_attest.verify` take.
"""

import base64
import binascii
import functools
import hmac
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any, ClassVar, Protocol, TypedDict

from cryptography import x509

from . import _cbor
from .errors import CertificateInvalid, MalformedDocument
from .keys import certificate_summary

__all__ = [
    "PCR_MEANINGS",
    "AttestationDocument",
    "PCRValue",
    "VerifiedDocument",
    "document_bytes",
    "parse",
    "require_verified",
]

PCR_SIZE = 48  # SHA-384, the only digest Nitro uses
MAX_PCR_INDEX = 31
MAX_PCRS = 32
MAX_BUNDLE = 8
MAX_CERTIFICATE_SIZE = 1024
MAX_FIELD_SIZE = 1024

#: What each well-known PCR measures (AWS Nitro Enclaves User Guide, "Where to get an enclave's measurements").
PCR_MEANINGS: Mapping[int, str] = MappingProxyType(
    {
        0: "enclave image file",
        1: "Linux kernel and bootstrap",
        2: "application",
        3: "IAM role of the parent instance",
        4: "instance ID of the parent instance",
        8: "enclave image signing certificate",
    }
)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# datetime cannot hold years past 9999; a larger timestamp is malformed, not a crash.
_MAX_TIMESTAMP_MS = int((datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc) - _EPOCH).total_seconds()) * 1000


class SignedDocument(Protocol):
    """What the chain, signature and time checks read: an enclave's document and a NitroTPM one alike."""

    @property
    def timestamp(self) -> datetime: ...
    @property
    def certificate(self) -> x509.Certificate: ...
    @property
    def cabundle(self) -> tuple[x509.Certificate, ...]: ...
    @property
    def chain_der(self) -> tuple[bytes, ...]: ...
    @property
    def payload(self) -> bytes: ...
    @property
    def protected_header(self) -> bytes: ...
    @property
    def signature(self) -> bytes: ...


@dataclass(frozen=True, eq=False)
class _Register:
    """A 48-byte SHA-384 register and its index: what an enclave's and a NitroTPM's PCRs share.

    Equal to a register of the same type, index and value, to ``bytes`` with
    the same value, and to a hex string of the value in either case, in
    constant time. Registers of the two types are never equal: they share
    numbers, not meanings.
    """

    #: The register's index, 0..31.
    index: int
    #: The register's 48 bytes.
    value: bytes

    #: How messages name this kind of register.
    _KIND: ClassVar[str] = "PCR"

    def __post_init__(self) -> None:
        if type(self.index) is not int or not 0 <= self.index <= MAX_PCR_INDEX:
            raise ValueError(f"{self._KIND} index must be an integer 0..{MAX_PCR_INDEX}, got {self.index!r}")
        if not isinstance(self.value, bytes) or len(self.value) != PCR_SIZE:
            raise ValueError(f"{self._KIND}{self.index} must be {PCR_SIZE} bytes (SHA-384)")

    @property
    def is_zero(self) -> bool:
        """True when every byte is zero: unused, or a debug-mode enclave's PCR 0-2."""
        return not any(self.value)

    def hex(self) -> str:
        """The value as 96 lower-case hex digits, as AWS tools (and KMS condition keys) write it."""
        return self.value.hex()

    def __bytes__(self) -> bytes:
        return self.value

    def __str__(self) -> str:
        return self.hex()

    def __repr__(self) -> str:
        # Hex, as every AWS tool prints PCRs: the bytes repr of a hash is unreadable.
        return f"{type(self).__name__}({self.index}, {self.hex()!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _Register):
            same = type(other) is type(self) and self.index == other.index
            return same and hmac.compare_digest(self.value, other.value)
        if isinstance(other, bytes):
            return hmac.compare_digest(self.value, other)
        if isinstance(other, str):
            try:
                return hmac.compare_digest(self.value, bytes.fromhex(other))
            except ValueError:
                return False
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.value)


@dataclass(frozen=True, eq=False, repr=False)
class PCRValue(_Register):
    """One platform configuration register of an enclave: its index and its 48-byte SHA-384 value.

    Equal to another ``PCRValue`` with the same index and value, to ``bytes``
    with the same value, and to a hex string of the value in either case.
    Comparisons run in constant time. The hash is that of the value's bytes,
    so hex strings (equal but hashed differently) should not be mixed with
    ``PCRValue`` as keys of one dict or set.
    """

    @property
    def meaning(self) -> str | None:
        """What this PCR measures, for PCR 0, 1, 2, 3, 4 and 8; None for the others."""
        return PCR_MEANINGS.get(self.index)


@dataclass(frozen=True)
class AttestationDocument:
    """A decoded Nitro Enclaves attestation document, NOT necessarily verified.

    :func:`parse` returns this class: anyone could have made it. The verified
    kind is the subclass :class:`VerifiedDocument`, which only
    :func:`nitro_attest.verify` and :func:`nitro_attest.verify_batch` return,
    and which the functions that act on trust (sealing a secret, KMS key-policy
    evaluation, policy checks) require. ``raw`` is the document as received; ``payload`` the
    signed payload bytes, the right key for replay caches (ECDSA signatures
    are malleable, so ``raw`` is not unique per payload).
    """

    #: The enclave's ID, ``<instance ID>-enc<enclave ID>`` (e.g. ``i-0123456789abcdef0-enc0123456789abcdef0``).
    module_id: str
    #: The PCRs' hash function: always ``"SHA384"``.
    digest: str
    #: When the Nitro hypervisor made the document (timezone-aware UTC, millisecond precision).
    timestamp: datetime
    #: The measurements by PCR index, in ascending order (16 or more in real documents).
    pcrs: Mapping[int, PCRValue]
    #: The enclave's leaf certificate, whose P-384 key signed the document.
    certificate: x509.Certificate
    #: The certificates from the root to the leaf's issuer, root first, as the document lists them.
    cabundle: tuple[x509.Certificate, ...]
    #: The public key the enclave chose to bind to the document (0..1024 bytes), or None.
    public_key: bytes | None
    #: The user data the enclave chose to bind to the document (0..1024 bytes), or None.
    user_data: bytes | None
    #: The nonce the enclave put in the document (0..1024 bytes), or None: compare it with the one you issued.
    nonce: bytes | None
    #: The document's bytes, as received.
    raw: bytes = field(repr=False)
    #: The DER of cabundle[0], ..., cabundle[-1] and certificate, as received: the path's exact bytes.
    chain_der: tuple[bytes, ...] = field(repr=False)
    #: The signed payload's bytes, as received: the key for replay caches (unlike ``raw``, unique per payload).
    payload: bytes = field(repr=False)
    #: The COSE protected header's bytes, as received (``{1: -35}``, ES384).
    protected_header: bytes = field(repr=False)
    #: The ES384 signature, ``r || s`` (96 bytes).
    signature: bytes = field(repr=False)

    @property
    def is_debug(self) -> bool:
        """True for a debug-mode enclave: PCR0 is all zeros, so the image is not measured."""
        pcr0 = self.pcrs.get(0)
        return pcr0 is not None and pcr0.is_zero

    def as_dict(self) -> dict[str, Any]:
        """The document as JSON-ready values: bytes as lower-case hex, times ISO 8601 UTC (``Z``).

        PCRs are keyed by their index as a string, each with its value, meaning
        and whether it is all zero; certificates by subject, issuer, serial
        number, validity and SHA-256 fingerprint. Field text is as the document
        has it: escape it before showing it to people (it is not verified).
        """
        return {
            "module_id": self.module_id,
            "digest": self.digest,
            "timestamp": _iso(self.timestamp),
            "debug": self.is_debug,
            "pcrs": {
                str(index): {"value": pcr.hex(), "meaning": pcr.meaning, "all_zero": pcr.is_zero}
                for index, pcr in self.pcrs.items()
            },
            "user_data": _hex_or_none(self.user_data),
            "nonce": _hex_or_none(self.nonce),
            "public_key": _hex_or_none(self.public_key),
            "certificate": certificate_summary(self.certificate),
            "cabundle": [certificate_summary(certificate) for certificate in self.cabundle],
        }


@dataclass(frozen=True)
class VerifiedDocument(AttestationDocument):
    """An attestation document that passed every check of :func:`nitro_attest.verify`.

    Made only once the chain, the signature, the document's time and the
    policy have all been checked, so holding one means "verified at
    ``verified_at`` against the roots and policy given then". It is an
    :class:`AttestationDocument` with every field of one, so code that reads
    documents accepts it unchanged; code that acts on trust asks for this type
    and refuses a merely parsed document with a ``TypeError``.
    """

    #: The verification time the document was verified at (timezone-aware UTC).
    verified_at: datetime

    def as_dict(self) -> dict[str, Any]:
        """:meth:`AttestationDocument.as_dict` and ``verified_at``."""
        return {**super().as_dict(), "verified_at": _iso(self.verified_at)}

    @classmethod
    def _of(cls, document: AttestationDocument, verified_at: datetime) -> "VerifiedDocument":
        # Called by verify() and verify_batch() after their last check, never before. The fields are copied
        # as they are (already checked by parse()): going through __init__ cost 13 us a document on the
        # batch path, this 2 us.
        verified = object.__new__(cls)
        verified.__dict__.update(vars(document))
        object.__setattr__(verified, "verified_at", verified_at)
        return verified


def require_verified(document: object, what: str, *, allow_unverified: bool = False) -> AttestationDocument:
    """``document`` as an AttestationDocument, refusing a merely parsed one unless ``allow_unverified``.

    ``what`` names the argument in the TypeError (``"kms.evaluate's document"``).
    """
    if isinstance(document, VerifiedDocument) or (allow_unverified and isinstance(document, AttestationDocument)):
        return document
    if isinstance(document, AttestationDocument):
        raise TypeError(
            f"{what} must be a VerifiedDocument (from nitro_attest.verify), not a parsed AttestationDocument: "
            "parse() verifies nothing; pass allow_unverified=True only to inspect a document you do not trust"
        )
    raise TypeError(f"{what} must be a VerifiedDocument (from nitro_attest.verify), not {type(document).__name__}")


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _hex_or_none(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def _schema_error(message: str) -> MalformedDocument:
    return MalformedDocument("schema", message)


def _require_bytes(payload: Mapping[str, Any], key: str, *, low: int, high: int) -> bytes:
    value = payload[key]
    if not isinstance(value, bytes):
        raise _schema_error(f"{key} must be a byte string, got {type(value).__name__}")
    if not low <= len(value) <= high:
        raise _schema_error(f"{key} is {len(value)} bytes; it must be {low}..{high}")
    return value


def _optional_bytes(payload: Mapping[str, Any], key: str) -> bytes | None:
    # Real documents send absent optional fields as CBOR null more often than not.
    if payload.get(key) is None:
        return None
    return _require_bytes(payload, key, low=0, high=MAX_FIELD_SIZE)


# What cryptography raises for a certificate it cannot parse. Only the load and
# the three lazy parses below run inside the try, so these cannot hide a bug of
# ours; tests/test_certificate_parsing.py makes each of them happen. (TypeError:
# a name attribute encoded as a BIT STRING under another OID. Warning: what
# cryptography only warns about, a 3-letter country or a zero serial, is an
# exception when the application runs with warnings as errors; the filters are
# the caller's and global, so they are not changed here.)
_CERTIFICATE_PARSE_ERRORS = (
    ValueError,
    TypeError,
    Warning,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
)


@functools.lru_cache(maxsize=1024)
def _parse_certificate(der: bytes) -> x509.Certificate | str:
    """The certificate, or why it is unusable. Cached: the same bundle arrives with every document."""
    try:
        certificate = x509.load_der_x509_certificate(der)
        # cryptography parses names and extensions lazily; parse them now so a
        # malformed certificate is rejected here, as one, not midway through the chain.
        certificate.subject  # noqa: B018
        certificate.issuer  # noqa: B018
        certificate.extensions  # noqa: B018
        serial = certificate.serial_number
        # Dates cryptography can read but datetime cannot hold (years 0 and 10000+) raise here, not mid-chain.
        certificate.not_valid_before_utc  # noqa: B018
        certificate.not_valid_after_utc  # noqa: B018
    except _CERTIFICATE_PARSE_ERRORS as exc:
        return f"is not a usable X.509 certificate: {exc}"
    # RFC 5280 4.1.2.2; cryptography only warns today and will refuse such certificates later,
    # so refuse them now and give the same verdict under every version.
    if serial <= 0:
        return "has a serial number that is not positive"
    return certificate


def _load_certificate(der: bytes, where: str) -> x509.Certificate:
    parsed = _parse_certificate(der)
    if isinstance(parsed, str):
        raise CertificateInvalid("certificate", f"{where} {parsed}")
    return parsed


def _timestamp(payload: Mapping[str, Any]) -> datetime:
    value = payload["timestamp"]
    if type(value) is not int:  # bool is an int in Python; CBOR true is not a timestamp
        raise _schema_error(f"timestamp must be an unsigned integer, got {type(value).__name__}")
    if not 0 < value <= _MAX_TIMESTAMP_MS:
        raise _schema_error(f"timestamp {value} is not a time in milliseconds since 1970")
    return _EPOCH + timedelta(milliseconds=value)


class _PCRs(Mapping[int, PCRValue]):
    """The document's PCRs, read-only, by index in ascending order.

    Values are made on access: a document carries 16 or more PCRs and a
    policy looks at a few, so building them all would be most of parse().
    """

    __slots__ = ("_values",)

    def __init__(self, values: dict[int, bytes]) -> None:
        self._values = values

    def __getitem__(self, index: int) -> PCRValue:
        if type(index) is not int:  # True would find PCR1 (True == 1) and then fail as an index
            raise KeyError(index)
        # Made without __post_init__: _pcr_values checked every index and value, and the checks were a third
        # of a policy's PCR lookups on the verify_batch path.
        register = object.__new__(PCRValue)
        register.__dict__.update(index=index, value=self._values[index])
        return register

    def __iter__(self) -> Iterator[int]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"{{{', '.join(f'{index}: {value.hex()}' for index, value in self._values.items())}}}"


def _pcr_values(payload: Mapping[str, Any], key: str) -> dict[int, bytes]:
    """The PCR map under ``key`` (``pcrs``, or ``nitrotpm_pcrs`` for NitroTPM), checked, by ascending index."""
    value = payload[key]
    if not isinstance(value, dict):
        raise _schema_error(f"{key} must be a map, got {type(value).__name__}")
    if not 1 <= len(value) <= MAX_PCRS:
        raise _schema_error(f"{key} has {len(value)} entries; it must have 1..{MAX_PCRS}")
    digests = value.values()
    # Every entry at once, at C speed: what nearly every document is. Otherwise the loop finds and names
    # the first bad entry (it alone decides: this test only skips it when it could not fail).
    if (
        set(map(type, value)) == {int}
        and min(value) >= 0
        and max(value) <= MAX_PCR_INDEX
        and set(map(type, digests)) == {bytes}
        and set(map(len, digests)) == {PCR_SIZE}
    ):
        return dict(sorted(value.items()))
    for index, digest in value.items():
        if type(index) is not int or not 0 <= index <= MAX_PCR_INDEX:
            raise _schema_error(f"{key} key {index!r} is not an index 0..{MAX_PCR_INDEX}")
        if not isinstance(digest, bytes) or len(digest) != PCR_SIZE:
            raise _schema_error(f"{key}: PCR{index} must be a {PCR_SIZE}-byte string (SHA-384)")
    return dict(sorted(value.items()))


def _cabundle(payload: Mapping[str, Any]) -> tuple[x509.Certificate, ...]:
    value = payload["cabundle"]
    if not isinstance(value, list):
        raise _schema_error(f"cabundle must be an array, got {type(value).__name__}")
    if not 1 <= len(value) <= MAX_BUNDLE:
        raise _schema_error(f"cabundle has {len(value)} certificates; it must have 1..{MAX_BUNDLE}")
    certificates = []
    for position, der in enumerate(value):
        if not isinstance(der, bytes) or not 1 <= len(der) <= MAX_CERTIFICATE_SIZE:
            raise _schema_error(f"cabundle[{position}] must be a byte string of 1..{MAX_CERTIFICATE_SIZE} bytes")
        certificates.append(_load_certificate(der, f"cabundle[{position}]"))
    return tuple(certificates)


#: The payload key of each kind of document's PCRs. AWS signs both kinds with the same PKI and
#: envelope; which map a payload carries is all that tells an enclave's document from a NitroTPM one.
_ENCLAVE_PCRS_KEY = "pcrs"
_NITROTPM_PCRS_KEY = "nitrotpm_pcrs"
_OTHER_KIND = {
    _ENCLAVE_PCRS_KEY: (
        _NITROTPM_PCRS_KEY,
        "a NitroTPM document (nitrotpm_pcrs), not an enclave's: use nitro_attest.verify_nitrotpm",
    ),
    _NITROTPM_PCRS_KEY: (
        _ENCLAVE_PCRS_KEY,
        "a Nitro Enclaves attestation document (pcrs), not a NitroTPM document: use nitro_attest.verify",
    ),
}


class _SignedFields(TypedDict):
    """The fields both kinds of document share, as ``_signed_fields`` checked them."""

    module_id: str
    digest: str
    timestamp: datetime
    certificate: x509.Certificate
    cabundle: tuple[x509.Certificate, ...]
    public_key: bytes | None
    user_data: bytes | None
    nonce: bytes | None
    raw: bytes
    chain_der: tuple[bytes, ...]
    payload: bytes
    protected_header: bytes
    signature: bytes


def _signed_fields(data: object, pcrs_key: str) -> tuple[_SignedFields, dict[int, bytes]]:
    """Decodes and schema-checks a document of the kind whose PCRs are under ``pcrs_key``; verifies nothing.

    The one reading of documents: :func:`parse` (``pcrs``) and
    :func:`nitro_attest.nitrotpm.parse_nitrotpm` (``nitrotpm_pcrs``) differ
    only in the PCR map they require, and each refuses the other's kind by name.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, not {type(data).__name__}")
    if type(data) is not bytes:  # a buffer, or a bytes subclass with methods of its own: copied, once measured
        size = memoryview(data).nbytes
        if size > _cbor.MAX_DOCUMENT_SIZE:  # before the copy: a 100 MB buffer is refused without copying it
            raise _cbor.size_error(size)
        data = bytes(data)
    envelope = _cbor.decode_envelope(data)
    payload = _cbor.decode_item(envelope.payload, max_depth=_cbor.MAX_PAYLOAD_DEPTH, what="payload")
    if not isinstance(payload, dict):
        raise _schema_error(f"payload must be a map, got {type(payload).__name__}")
    for key in payload:
        if not isinstance(key, str):
            raise _schema_error(f"payload key {key!r} is not a text string")
    other_key, other_kind = _OTHER_KIND[pcrs_key]
    if other_key in payload:
        if pcrs_key in payload:
            raise _schema_error(
                f"payload has both {_ENCLAVE_PCRS_KEY} and {_NITROTPM_PCRS_KEY}: neither an enclave's document "
                "nor a NitroTPM document"
            )
        raise _schema_error(other_kind)
    missing = [
        key for key in ("module_id", "digest", "timestamp", pcrs_key, "certificate", "cabundle") if key not in payload
    ]
    if missing:
        raise _schema_error(f"payload lacks {', '.join(missing)}")

    module_id = payload["module_id"]
    if not isinstance(module_id, str) or not module_id:
        raise _schema_error("module_id must be a non-empty text string")
    if payload["digest"] != "SHA384":
        raise _schema_error(f"digest must be 'SHA384', got {payload['digest']!r}")
    timestamp = _timestamp(payload)
    pcrs = _pcr_values(payload, pcrs_key)
    certificate_der = _require_bytes(payload, "certificate", low=1, high=MAX_CERTIFICATE_SIZE)
    cabundle = _cabundle(payload)
    signed = _SignedFields(
        module_id=module_id,
        digest="SHA384",
        timestamp=timestamp,
        certificate=_load_certificate(certificate_der, "certificate"),
        cabundle=cabundle,
        public_key=_optional_bytes(payload, "public_key"),
        user_data=_optional_bytes(payload, "user_data"),
        nonce=_optional_bytes(payload, "nonce"),
        raw=data,
        chain_der=(*payload["cabundle"], certificate_der),
        payload=envelope.payload,
        protected_header=envelope.protected,
        signature=envelope.signature,
    )
    return signed, pcrs


def parse(data: bytes) -> AttestationDocument:
    """Decodes and schema-checks an attestation document. NOTHING IS VERIFIED.

    The result may have been made by anyone: its signature, certificates,
    time and measurements are unchecked, so never act on it. Use it to
    inspect a document; use :func:`nitro_attest.verify` to trust one.

    Raises :class:`~nitro_attest.MalformedDocument` (codes ``size``, ``cbor``,
    ``cose``, ``schema``; ``schema`` too for a NitroTPM document, which
    :func:`nitro_attest.nitrotpm.parse_nitrotpm` reads) or, for an unparsable
    certificate, :class:`~nitro_attest.CertificateInvalid` (``certificate``).
    """
    fields, pcrs = _signed_fields(data, _ENCLAVE_PCRS_KEY)
    # Every field set at once, without the frozen dataclass's __init__ (one object.__setattr__ a field,
    # a tenth of parse()): _signed_fields has checked them all.
    document = object.__new__(AttestationDocument)
    document.__dict__.update(fields, pcrs=_PCRs(pcrs))
    return document


# A COSE_Sign1 is a 4-element array (0x84), tagged 18 (0xd2) by some producers.
_COSE_STARTS = (0x84, 0xD2)
_HEX_TEXT = re.compile(r"[0-9a-fA-F]*")
_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")
# Room for base64 (4/3) or hex (2x) of the largest document, with whitespace.
MAX_ENCODED_SIZE = 4 * _cbor.MAX_DOCUMENT_SIZE


def _looks_like_cose(data: bytes) -> bool:
    return bool(data) and data[0] in _COSE_STARTS


def document_bytes(value: bytes | bytearray | memoryview | str | os.PathLike[str]) -> bytes:
    """The raw CBOR of a document given raw, as hex, as base64, or as a file holding any of those.

    Enclaves and services pass documents around in several encodings; this
    is the one reading of all of them: raw CBOR as is; otherwise hex (an
    optional ``0x``), then base64 (standard or URL-safe, padded or not),
    whitespace ignored. A decoding counts only when it yields something that
    starts like a COSE_Sign1, so text that happens to be valid base64 is
    reported as "not a document" rather than reaching the parser as noise. A
    :class:`os.PathLike` is read (at most :data:`MAX_ENCODED_SIZE` bytes);
    a ``str`` is always the document's text, never a file name.

    Nothing is verified or even parsed: pass the result to
    :func:`nitro_attest.verify`. Raises :class:`~nitro_attest.MalformedDocument`
    (``size`` when empty or too large, ``cbor`` when no encoding yields a
    document), :class:`OSError` when the file cannot be read, and
    :class:`TypeError` for another type.
    """
    if isinstance(value, os.PathLike):
        with open(value, "rb") as stream:
            data = stream.read(MAX_ENCODED_SIZE + 1)
        if len(data) > MAX_ENCODED_SIZE:
            raise MalformedDocument("size", f"{os.fspath(value)} is larger than {MAX_ENCODED_SIZE} bytes")
    elif isinstance(value, str):
        data = value.encode("utf-8", "replace")
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = value if type(value) is bytes else bytes(memoryview(value)[: MAX_ENCODED_SIZE + 1])
    else:
        raise TypeError(f"a document must be bytes, str or a path, not {type(value).__name__}")
    if _looks_like_cose(data):
        return data  # raw CBOR: parse() and verify() judge its size like any other document's
    if len(data) > MAX_ENCODED_SIZE:
        raise MalformedDocument(
            "size", f"the input is larger than {MAX_ENCODED_SIZE} bytes: not an attestation document"
        )
    if not data.strip():
        raise MalformedDocument("size", "the input is empty")
    try:
        compact = "".join(data.decode("ascii").split())
    except UnicodeDecodeError:
        compact = ""
    hex_text = compact[2:] if compact[:2].lower() == "0x" else compact
    if hex_text and len(hex_text) % 2 == 0 and _HEX_TEXT.fullmatch(hex_text):
        decoded = bytes.fromhex(hex_text)
        if _looks_like_cose(decoded):
            return decoded
    if compact and _BASE64_TEXT.fullmatch(compact):
        standard = compact.rstrip("=").replace("-", "+").replace("_", "/")
        try:
            decoded = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
        except binascii.Error:
            decoded = b""
        if _looks_like_cose(decoded):
            return decoded
    raise MalformedDocument(
        "cbor",
        "not an attestation document: not raw CBOR (a COSE_Sign1 starts with byte 0x84 or 0xd2; "
        f"this starts with 0x{data[0]:02x}), nor hex or base64 of one",
    )
