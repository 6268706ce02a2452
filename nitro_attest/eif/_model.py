"""What an enclave image file is made of, as typed values, and the error it is refused with.

The layout is that of github.com/aws/aws-nitro-enclaves-image-format
(``src/defs/mod.rs``): a 548-byte big-endian header, then sections, each a
12-byte section header (type, flags, size) and its bytes.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509

from ..document import PCRValue
from ..errors import NitroAttestError

__all__ = [
    "HEADER_SIZE",
    "MAX_CMDLINE_SIZE",
    "MAX_METADATA_DEPTH",
    "MAX_METADATA_SIZE",
    "MAX_SECTIONS",
    "MAX_SIGNATURE_SIZE",
    "SECTION_HEADER_SIZE",
    "EifArchitecture",
    "EifDescription",
    "EifError",
    "EifMetadata",
    "EifSection",
    "EifSectionType",
    "EifSignatureCheck",
    "EifSignatureStatus",
]

#: The header: magic, version, flags, default memory and CPUs, reserved, the
#: section count, 32 offsets, 32 sizes, unused, CRC32 (``EifHeader::size()``).
HEADER_SIZE = 548
#: A section header: type (u16), flags (u16), size (u64).
SECTION_HEADER_SIZE = 12
#: Sections an image may have (``MAX_NUM_SECTIONS``: the header's offset table has 32 slots).
MAX_SECTIONS = 32
#: The kernel command line is read whole; Linux takes at most a few KiB.
MAX_CMDLINE_SIZE = 64 * 1024
#: The metadata JSON is read whole; nitro-cli's own custom metadata is capped at 4 KiB.
MAX_METADATA_SIZE = 1024 * 1024
#: How deep DockerInfo and CustomMetadata may nest (objects and arrays); nitro-cli's nest a few levels.
MAX_METADATA_DEPTH = 32
#: The signature section is read whole: one PEM certificate and a COSE_Sign1, each
#: byte written as a CBOR integer (so up to twice its size), a few KiB in practice.
MAX_SIGNATURE_SIZE = 64 * 1024

#: Header flag bit 0: set for aarch64 images, clear for x86_64 (``EIF_HDR_ARCH_ARM64``).
ARCH_ARM64_FLAG = 0x1
#: The last version of the format (V4 added the metadata section).
CURRENT_VERSION = 4


class EifError(NitroAttestError, ValueError):
    """The bytes are not an enclave image file this library can measure.

    ``truncated``: the file ends inside the header, a section header or a
    section; ``magic``: not an EIF (no ``.eif`` magic); ``header``: a header
    field is refused (with ``strict=True``: version, flags, an offset table
    that disagrees with the sections); ``section``: an unknown section type,
    too many sections, a duplicate signature or metadata section (with
    ``strict=True`` also a duplicate kernel or command line, a missing kernel,
    command line or ramdisk, non-zero section flags); ``size``: a section
    larger than what is left of the file or than its kind's limit;
    ``crc``: the CRC32 differs from the header's (with ``strict=True`` only);
    ``signature``: the signature section is not what nitro-cli writes;
    ``metadata``: the metadata section is not nitro-cli's JSON.

    The message names the byte offset and what was expected there.
    """

    codes = frozenset({"truncated", "magic", "header", "section", "size", "crc", "signature", "metadata"})


class EifSectionType(enum.Enum):
    """The kind of a section (``EifSectionType`` in ``src/defs/mod.rs``; 0 is invalid)."""

    KERNEL = 1
    CMDLINE = 2
    RAMDISK = 3
    SIGNATURE = 4
    METADATA = 5


class EifArchitecture(enum.Enum):
    """The CPU architecture an image boots on (bit 0 of the header's flags)."""

    X86_64 = "x86_64"
    AARCH64 = "aarch64"


class EifSignatureStatus(enum.Enum):
    """The verdict on an image's signature."""

    #: The COSE_Sign1 verifies with the certificate's key and signs this image's PCR0.
    VALID = "valid"
    #: The signature does not verify with the certificate's key (or that key cannot make it).
    BAD_SIGNATURE = "bad-signature"
    #: The signature verifies, but what it signs is not ``PcrInfo{0, this image's PCR0}``.
    PCR0_MISMATCH = "pcr0-mismatch"


@dataclass(frozen=True)
class EifSection:
    """One section, where it is in the file and how large."""

    #: Its position among the sections, in file order (0 is the first after the header).
    index: int
    type: EifSectionType
    #: Where its 12-byte section header starts (what the header's offset table holds).
    offset: int
    #: The size of its content, after the section header.
    size: int
    #: The section header's flags (0 in every image nitro-cli writes).
    flags: int

    @property
    def data_offset(self) -> int:
        """Where its content starts."""
        return self.offset + SECTION_HEADER_SIZE


@dataclass(frozen=True)
class EifMetadata:
    """The metadata section (``EifIdentityInfo``): what nitro-cli recorded about the build.

    None of it is measured: it changes the file and its CRC, never a PCR.
    ``docker_info`` and ``custom_metadata`` are JSON values, read-only
    (objects as mappings, arrays as tuples).
    """

    image_name: str
    image_version: str
    #: ``BuildMetadata``: BuildTime, BuildTool, BuildToolVersion, OperatingSystem, KernelVersion.
    build_info: Mapping[str, str]
    docker_info: Any
    custom_metadata: Any


@dataclass(frozen=True)
class EifSignatureCheck:
    """The check of a signed image's signature: a COSE_Sign1 over ``PcrInfo{register_index: 0, register_value}``."""

    status: EifSignatureStatus
    #: The COSE algorithm of the protected header: ``"ES256"``, ``"ES384"`` or ``"ES512"``.
    algorithm: str
    #: The PCR0 the signed payload names, when it is a ``PcrInfo`` for register 0; else None.
    signed_pcr0: PCRValue | None
    #: Why, in words.
    message: str

    @property
    def valid(self) -> bool:
        """True only for :attr:`EifSignatureStatus.VALID`."""
        return self.status is EifSignatureStatus.VALID


@dataclass(frozen=True)
class EifDescription:
    """An enclave image file, measured: what ``nitro-cli describe-eif`` reports, typed.

    ``pcrs`` holds PCR0, PCR1 and PCR2, and PCR8 for a signed image: the values
    an enclave booted from this file reports in its attestation documents
    (outside debug mode).
    """

    version: int
    architecture: EifArchitecture
    #: The header's flags (bit 0: aarch64).
    flags: int
    #: Memory (bytes) and vCPUs the image asks for by default.
    default_memory: int
    default_cpus: int
    #: Every section, in file order.
    sections: tuple[EifSection, ...]
    pcrs: Mapping[int, PCRValue]
    #: The CRC32 the header holds, and the one computed over the header (without it) and every section.
    crc: int
    computed_crc: int
    #: The kernel command line (the first command line section).
    cmdline: bytes
    metadata: EifMetadata | None
    #: The certificate of the signature section, None for an unsigned image.
    signing_certificate: x509.Certificate | None
    signature: EifSignatureCheck | None
    #: The bytes read: the header and every section.
    size: int
    #: True when the header's section count, offsets and sizes agree with the sections as read (``strict=True``
    #: refuses an image where they do not; without it the sections are read one after another and the table
    #: is only compared).
    table_matches: bool

    @property
    def is_signed(self) -> bool:
        """True when the image has a signature section (whether or not it verifies)."""
        return self.signature is not None

    @property
    def crc_valid(self) -> bool:
        """True when the header's CRC32 matches the file's bytes (nitro-cli's CheckCRC)."""
        return self.crc == self.computed_crc

    def measurements(self) -> dict[str, str]:
        """The ``Measurements`` of ``nitro-cli build-enclave``: HashAlgorithm and PCRn as lower-case hex."""
        values = {"HashAlgorithm": "Sha384 { ... }"}
        values.update({f"PCR{index}": value.hex() for index, value in sorted(self.pcrs.items())})
        return values

    def describe_eif_json(self) -> dict[str, Any]:
        """This description in the keys and value formats of ``nitro-cli describe-eif``'s JSON.

        EifVersion, Measurements, IsSigned, SigningCertificate (signed images),
        CheckCRC, SignatureCheck (signed images), ImageName, ImageVersion and
        Metadata (images with a metadata section; custom metadata merged in, as
        nitro-cli flattens it).
        """
        output: dict[str, Any] = {"EifVersion": self.version, "Measurements": self.measurements()}
        output["IsSigned"] = self.is_signed
        if self.signing_certificate is not None:
            output["SigningCertificate"] = _certificate_info(self.signing_certificate)
        output["CheckCRC"] = self.crc_valid
        if self.signature is not None:
            output["SignatureCheck"] = self.signature.valid
        if self.metadata is not None:
            output["ImageName"] = self.metadata.image_name
            output["ImageVersion"] = self.metadata.image_version
            output["Metadata"] = _metadata_json(self.metadata)
        return output


def thaw(value: Any) -> Any:
    """A read-only JSON value (mappings, tuples) as plain dicts and lists, for json.dumps."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [thaw(item) for item in value]
    return value


def _metadata_json(metadata: EifMetadata) -> dict[str, Any]:
    output: dict[str, Any] = dict(metadata.build_info)
    output["DockerInfo"] = thaw(metadata.docker_info)
    custom = thaw(metadata.custom_metadata)
    # nitro-cli flattens an object into Metadata and leaves null out; anything else it cannot flatten.
    if isinstance(custom, dict):
        output.update(custom)
    elif custom is not None:
        output["CustomMetadata"] = custom
    return output


def _openssl_time(moment: datetime) -> str:
    # The layout of OpenSSL's ASN1_TIME_print, which nitro-cli prints: "Jan  1 00:00:00 2026 GMT".
    return f"{moment:%b} {moment.day:2d} {moment:%H:%M:%S} {moment.year} GMT"


def _certificate_info(certificate: x509.Certificate) -> dict[str, Any]:
    """nitro-cli's ``SigningCertificate``: issuer attributes, signature algorithm, validity, signature."""
    issuer = {attribute.oid._name: str(attribute.value) for attribute in certificate.issuer}
    return {
        "IssuerName": dict(sorted(issuer.items())),
        "Algorithm": certificate.signature_algorithm_oid._name,
        "NotBefore": _openssl_time(certificate.not_valid_before_utc),
        "NotAfter": _openssl_time(certificate.not_valid_after_utc),
        "Signature": certificate.signature.hex(":").upper(),
    }
