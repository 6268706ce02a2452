"""NitroTPM attestation documents as typed, immutable values (see :mod:`nitro_attest.nitrotpm`).

An EC2 instance's NitroTPM asks the Nitro hypervisor for a document of the
same envelope, PKI and fields as an enclave's, but whose measurements are the
instance's TPM PCRs (SHA-384 bank) under ``nitrotpm_pcrs``. This module holds
the types and the reading, below the KMS and policy code that act on them;
:mod:`nitro_attest.nitrotpm` verifies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from types import MappingProxyType
from typing import Any, ClassVar

from cryptography import x509

from .document import _NITROTPM_PCRS_KEY, _hex_or_none, _iso, _Register, _signed_fields
from .keys import certificate_summary

__all__ = [
    "NITROTPM_PCR_MEANINGS",
    "NitroTPMDocument",
    "TPMPCRValue",
    "VerifiedNitroTPMDocument",
    "parse_nitrotpm",
    "require_verified_nitrotpm",
]

#: What each TPM PCR measures on NitroTPM (Amazon EC2 User Guide, "NitroTPM Attestation Document contents";
#: the TCG PC Client assignments). PCR0 and PCR1 hold AWS's constant boot code; PCR4, PCR7 and PCR12
#: identify an Attestable AMI.
NITROTPM_PCR_MEANINGS: Mapping[int, str] = MappingProxyType(
    {
        0: "core system firmware executable code",
        1: "core system firmware data",
        2: "extended or pluggable executable code",
        3: "extended or pluggable firmware data",
        4: "boot manager code",
        5: "boot manager configuration and data, GPT partition table",
        6: "host platform manufacturer specifics",
        7: "Secure Boot policy",
        **{index: "static operating system" for index in range(8, 16)},
        16: "debug",
        23: "application support",
    }
)


@dataclass(frozen=True, eq=False, repr=False)
class TPMPCRValue(_Register):
    """One NitroTPM platform configuration register: its index and its 48-byte SHA-384 value.

    Not a :class:`~nitro_attest.PCRValue`: a TPM's PCR4 (boot manager code)
    and an enclave's PCR4 (parent instance ID) share a number, not a meaning,
    so the two types are never equal and neither is accepted where the other
    is pinned. Equal to another ``TPMPCRValue`` of the same index and value,
    to ``bytes`` of the same value, and to its hex in either case; comparisons
    run in constant time.
    """

    _KIND: ClassVar[str] = "TPM PCR"

    @property
    def meaning(self) -> str | None:
        """What this PCR measures on NitroTPM (:data:`NITROTPM_PCR_MEANINGS`), or None."""
        return NITROTPM_PCR_MEANINGS.get(self.index)


@dataclass(frozen=True)
class NitroTPMDocument:
    """A decoded NitroTPM attestation document, NOT necessarily verified.

    :func:`parse_nitrotpm` returns this class; only
    :func:`~nitro_attest.nitrotpm.verify_nitrotpm` returns the verified kind,
    :class:`VerifiedNitroTPMDocument`, which KMS evaluation requires. It is not
    an :class:`~nitro_attest.AttestationDocument`: nothing that judges enclaves
    (a :class:`~nitro_attest.Policy`, sealing a secret) accepts it.
    """

    #: The instance's TPM ID, ``<instance ID>-tpm<TPM ID>`` (e.g. ``i-030a1f233f8348690-tpm0000000000000000``).
    module_id: str
    #: The PCRs' hash function: always ``"SHA384"``.
    digest: str
    #: When the Nitro hypervisor made the document (timezone-aware UTC, millisecond precision).
    timestamp: datetime
    #: The TPM's PCRs by index, in ascending order (24 in real documents).
    pcrs: Mapping[int, TPMPCRValue]
    #: The leaf certificate, whose P-384 key signed the document.
    certificate: x509.Certificate
    #: The certificates from the root to the leaf's issuer, root first, as the document lists them.
    cabundle: tuple[x509.Certificate, ...]
    #: The public key the instance bound to the document (0..1024 bytes), or None.
    public_key: bytes | None
    #: The user data the instance bound to the document (0..1024 bytes), or None.
    user_data: bytes | None
    #: The nonce in the document (0..1024 bytes), or None: compare it with the one you issued.
    nonce: bytes | None
    #: The document's bytes, as received.
    raw: bytes = field(repr=False)
    #: The DER of cabundle[0], ..., cabundle[-1] and certificate, as received.
    chain_der: tuple[bytes, ...] = field(repr=False)
    #: The signed payload's bytes, as received: the key for replay caches.
    payload: bytes = field(repr=False)
    #: The COSE protected header's bytes, as received (``{1: -35}``, ES384).
    protected_header: bytes = field(repr=False)
    #: The ES384 signature, ``r || s`` (96 bytes).
    signature: bytes = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The document as JSON-ready values, as :meth:`nitro_attest.AttestationDocument.as_dict` writes them.

        ``kind`` is ``"nitrotpm"``; PCRs are keyed by their index as a string,
        each with its value and meaning.
        """
        return {
            "kind": "nitrotpm",
            "module_id": self.module_id,
            "digest": self.digest,
            "timestamp": _iso(self.timestamp),
            "pcrs": {str(index): {"value": pcr.hex(), "meaning": pcr.meaning} for index, pcr in self.pcrs.items()},
            "user_data": _hex_or_none(self.user_data),
            "nonce": _hex_or_none(self.nonce),
            "public_key": _hex_or_none(self.public_key),
            "certificate": certificate_summary(self.certificate),
            "cabundle": [certificate_summary(certificate) for certificate in self.cabundle],
        }


@dataclass(frozen=True)
class VerifiedNitroTPMDocument(NitroTPMDocument):
    """A NitroTPM document that passed every check of :func:`~nitro_attest.nitrotpm.verify_nitrotpm`.

    The NitroTPM counterpart of :class:`~nitro_attest.VerifiedDocument` (and
    not one: code that trusts enclaves does not trust this), made only once
    the chain, the signature, the document's time and the policy have passed.
    """

    #: The verification time the document was verified at (timezone-aware UTC).
    verified_at: datetime

    def as_dict(self) -> dict[str, Any]:
        """:meth:`NitroTPMDocument.as_dict` and ``verified_at``."""
        return {**super().as_dict(), "verified_at": _iso(self.verified_at)}

    @classmethod
    def _of(cls, document: NitroTPMDocument, verified_at: datetime) -> VerifiedNitroTPMDocument:
        # Called by verify_nitrotpm() after its last check, never before.
        return cls(
            **{member.name: getattr(document, member.name) for member in fields(document)}, verified_at=verified_at
        )


def parse_nitrotpm(data: bytes) -> NitroTPMDocument:
    """Decodes and schema-checks a NitroTPM attestation document. NOTHING IS VERIFIED.

    The same strict decoding and schema as :func:`nitro_attest.parse`, with
    ``nitrotpm_pcrs`` (1..32 SHA-384 PCRs) where an enclave's document has
    ``pcrs``; an enclave's document is refused by name. Use
    :func:`~nitro_attest.nitrotpm.verify_nitrotpm` to trust one.

    Raises :class:`~nitro_attest.MalformedDocument` (``size``, ``cbor``,
    ``cose``, ``schema``) or :class:`~nitro_attest.CertificateInvalid`
    (``certificate``) for an unparsable certificate.
    """
    signed, pcrs = _signed_fields(data, _NITROTPM_PCRS_KEY)
    values = MappingProxyType({index: TPMPCRValue(index, value) for index, value in pcrs.items()})
    return NitroTPMDocument(pcrs=values, **signed)


def require_verified_nitrotpm(document: object, what: str, *, allow_unverified: bool = False) -> NitroTPMDocument:
    """``document`` as a NitroTPMDocument, refusing a merely parsed one unless ``allow_unverified``.

    The NitroTPM counterpart of :func:`nitro_attest.document.require_verified`.
    """
    if isinstance(document, VerifiedNitroTPMDocument) or (allow_unverified and isinstance(document, NitroTPMDocument)):
        return document
    if isinstance(document, NitroTPMDocument):
        raise TypeError(
            f"{what} must be a VerifiedNitroTPMDocument (from nitro_attest.verify_nitrotpm), not a parsed "
            "NitroTPMDocument: parse_nitrotpm() verifies nothing; pass allow_unverified=True only to inspect "
            "a document you do not trust"
        )
    raise TypeError(
        f"{what} must be a VerifiedNitroTPMDocument (from nitro_attest.verify_nitrotpm), not {type(document).__name__}"
    )
