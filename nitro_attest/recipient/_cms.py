"""CMS EnvelopedData to plain values and back, through asn1crypto.

:func:`read` decodes a ContentInfo with asn1crypto and copies out, as plain
Python values, everything the rules of :mod:`nitro_attest.recipient` look at;
it judges nothing, and lets asn1crypto's ``ValueError``/``TypeError`` for
undecodable bytes propagate (the caller turns them into ``malformed``).
It raises ValueError itself for what asn1crypto reads without complaint but
is not of the schema: a SEQUENCE holding values past its last field
(asn1crypto keeps them as unnamed children) and an explicit tag holding more
than one value (asn1crypto reads the first and drops the rest), and, before
asn1crypto sees the bytes, a tag number over four octets (see :mod:`._ber`).
:func:`write` builds the KMS layout: asn1crypto encodes every definite part,
:mod:`._ber` adds the indefinite wrappers and the chunks.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from asn1crypto import algos, cms, core, parser  # type: ignore[import-untyped]

from . import _ber

__all__ = [
    "AES_128_CBC",
    "AES_192_CBC",
    "AES_256_CBC",
    "DATA",
    "ENVELOPED_DATA",
    "MGF1",
    "P_SPECIFIED",
    "RSAES_OAEP",
    "RSAES_PKCS1_V1_5",
    "SHA1",
    "SHA256",
    "Envelope",
    "Oaep",
    "Recipient",
    "read",
    "write",
]

ENVELOPED_DATA = "1.2.840.113549.1.7.3"
DATA = "1.2.840.113549.1.7.1"
RSAES_PKCS1_V1_5 = "1.2.840.113549.1.1.1"
RSAES_OAEP = "1.2.840.113549.1.1.7"
MGF1 = "1.2.840.113549.1.1.8"
P_SPECIFIED = "1.2.840.113549.1.1.9"
SHA1 = "1.3.14.3.2.26"
SHA256 = "2.16.840.1.101.3.4.2.1"
AES_128_CBC = "2.16.840.1.101.3.4.1.2"
AES_192_CBC = "2.16.840.1.101.3.4.1.22"
AES_256_CBC = "2.16.840.1.101.3.4.1.42"


@dataclass(frozen=True)
class Oaep:
    """RSAES-OAEP-params (RFC 8017 A.2.1), defaults filled in as asn1crypto reads them.

    asn1crypto refuses any parameters but NULL or none for the hashes it knows,
    so there are no hash parameters to look at.
    """

    hash: str
    mask_generation: str
    #: MGF1's hash, or None when the mask generation function is not MGF1.
    mask_hash: str | None
    p_source: str
    #: The OAEP label (pSpecified's value), or None when the source is not pSpecified.
    label: bytes | None


@dataclass(frozen=True)
class Recipient:
    """One RecipientInfo: its CHOICE name, and for a KeyTransRecipientInfo its fields."""

    #: ``ktri``, ``kari``, ``kekri``, ``pwri`` or ``ori`` (asn1crypto's names).
    kind: str
    version: int | None = None
    #: ``subject_key_identifier`` or ``issuer_and_serial_number``.
    rid_kind: str | None = None
    key_id: bytes | None = None
    algorithm: str | None = None
    #: The OAEP parameters when ``algorithm`` is RSAES-OAEP.
    oaep: Oaep | None = None
    encrypted_key: bytes | None = None


@dataclass(frozen=True)
class Envelope:
    """What :func:`read` found; ``trailing`` bytes followed the ContentInfo."""

    content_type: str
    trailing: int
    version: int | None = None
    has_originator_info: bool = False
    has_unprotected_attributes: bool = False
    recipients: tuple[Recipient, ...] = ()
    encrypted_content_type: str | None = None
    content_algorithm: str | None = None
    #: The IV, when the content algorithm is one of the AES-CBC ones.
    iv: bytes | None = None
    #: The encrypted content (its chunks joined), or None when absent (detached).
    content: bytes | None = None


@functools.lru_cache(maxsize=64)
def _key_encryption(der: bytes) -> tuple[str, Oaep | None]:
    """The OID of the key encryption AlgorithmIdentifier ``der``, and its OAEP parameters when it is RSAES-OAEP.

    Cached by its bytes: every envelope for one kind of recipient has the same
    ones, and asn1crypto takes longer to read them than the rest of the envelope.
    """
    algorithm = _exact(cms.KeyEncryptionAlgorithm.load(der, strict=True), "key encryption AlgorithmIdentifier")
    oid: str = algorithm["algorithm"].dotted
    return oid, _oaep(algorithm["parameters"]) if oid == RSAES_OAEP else None


def _exact(value: Any, name: str) -> Any:
    """``value``, a Sequence; ValueError when it holds values past its fields.

    ``len()`` counts the children asn1crypto read, iteration names the schema's fields.
    """
    extra = len(value) - len(list(value))
    if extra:
        raise ValueError(f"the {name} holds {extra} value{'s' if extra > 1 else ''} past its fields")
    return value


def _explicit_exact(value: Any, name: str) -> Any:
    """``value``, a Sequence with explicitly tagged fields; ValueError when one of its tags holds several values."""
    explicit = {tuple(value[field].explicit[-1]) for field in value if value[field].explicit}
    contents = value.contents
    while contents:
        class_, _, tag, _, inner, _ = parser.parse(contents)
        if (class_, tag) in explicit and parser.peek(inner) != len(inner):
            raise ValueError(f"the [{tag}] of the {name} holds more than one value")
        contents = contents[parser.peek(contents) :]
    return _exact(value, name)


def _hash(identifier: Any) -> str:
    _exact(identifier, "hash AlgorithmIdentifier")
    oid: str = identifier["algorithm"].dotted
    if oid == SHA256:
        # asn1crypto decodes a field when it is read: reading SHA-256's parameters (NULL or absent in its
        # schema) refuses anything else there, so nothing of an accepted envelope is left undecoded.
        identifier["parameters"].native  # noqa: B018
    return oid


def _oaep(parameters: Any) -> Oaep:
    _explicit_exact(parameters, "RSAES-OAEP-params")
    mask = _exact(parameters["mask_gen_algorithm"], "mask generation AlgorithmIdentifier")
    mask_generation = mask["algorithm"].dotted
    source = _exact(parameters["p_source_algorithm"], "pSource AlgorithmIdentifier")
    source_is_specified = source["algorithm"].dotted == P_SPECIFIED
    return Oaep(
        hash=_hash(parameters["hash_algorithm"]),
        mask_generation=mask_generation,
        mask_hash=_hash(mask["parameters"]) if mask_generation == MGF1 else None,
        p_source=source["algorithm"].dotted,
        label=source["parameters"].native if source_is_specified else None,
    )


def _recipient(info: Any) -> Recipient:
    if info.name != "ktri":
        return Recipient(info.name)
    ktri = _exact(info.chosen, "KeyTransRecipientInfo")
    rid = ktri["rid"]
    oid, oaep = _key_encryption(ktri["key_encryption_algorithm"].dump())
    return Recipient(
        "ktri",
        version=int(ktri["version"]),
        rid_kind=rid.name,
        key_id=rid.chosen.native if rid.name == "subject_key_identifier" else None,
        algorithm=oid,
        oaep=oaep,
        encrypted_key=ktri["encrypted_key"].native,
    )


def read(data: bytes) -> Envelope:
    """The fields of the ContentInfo ``data`` starts with; asn1crypto's ValueError/TypeError when undecodable."""
    _ber.check_identifiers(data)
    length = parser.peek(data)
    info = cms.ContentInfo.load(data[:length], strict=True)
    trailing = len(data) - length
    content_type = info["content_type"].dotted
    if content_type != ENVELOPED_DATA:
        return Envelope(content_type, trailing)
    enveloped = info["content"]
    if isinstance(enveloped, core.Void):
        raise ValueError("the ContentInfo has no content")
    _explicit_exact(info, "ContentInfo")
    _exact(enveloped, "EnvelopedData")
    content_info = _exact(enveloped["encrypted_content_info"], "EncryptedContentInfo")
    algorithm = _exact(content_info["content_encryption_algorithm"], "content encryption AlgorithmIdentifier")
    algorithm_oid = algorithm["algorithm"].dotted
    encrypted = content_info["encrypted_content"]
    return Envelope(
        content_type,
        trailing,
        version=int(enveloped["version"]),
        has_originator_info=not isinstance(enveloped["originator_info"], core.Void),
        has_unprotected_attributes=not isinstance(enveloped["unprotected_attrs"], core.Void),
        recipients=tuple(_recipient(recipient) for recipient in enveloped["recipient_infos"]),
        encrypted_content_type=content_info["content_type"].dotted,
        content_algorithm=algorithm_oid,
        iv=algorithm["parameters"].native if algorithm_oid in (AES_128_CBC, AES_192_CBC, AES_256_CBC) else None,
        content=None if isinstance(encrypted, core.Void) else encrypted.native,
    )


def _null_parameters_digest(oid: str) -> Any:
    return algos.DigestAlgorithm({"algorithm": oid, "parameters": core.Null()})


def _oaep_identifier() -> bytes:
    oaep = algos.RSAESOAEPParams(
        {
            "hash_algorithm": _null_parameters_digest(SHA256),
            "mask_gen_algorithm": algos.MaskGenAlgorithm(
                {"algorithm": MGF1, "parameters": _null_parameters_digest(SHA256)}
            ),
        }
    )
    der: bytes = cms.KeyEncryptionAlgorithm({"algorithm": RSAES_OAEP, "parameters": oaep}).dump()
    return der


# Encoded once: asn1crypto takes milliseconds to encode a structure this nested, and it never changes.
# A value loaded from DER is dumped as it was read.
_OAEP_IDENTIFIER = _oaep_identifier()
_CONSTANTS = (core.ObjectIdentifier(ENVELOPED_DATA).dump(), core.Integer(2).dump(), core.ObjectIdentifier(DATA).dump())


def write(key_id: bytes, encrypted_key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    """The KMS layout of an EnvelopedData for one RSAES-OAEP-SHA-256 recipient and AES-256-CBC content."""
    enveloped_data_oid, version, data_oid = _CONSTANTS
    recipients = cms.RecipientInfos(
        [
            cms.RecipientInfo(
                name="ktri",
                value=cms.KeyTransRecipientInfo(
                    {
                        "version": "v2",
                        "rid": cms.RecipientIdentifier(name="subject_key_identifier", value=key_id),
                        "key_encryption_algorithm": cms.KeyEncryptionAlgorithm.load(_OAEP_IDENTIFIER),
                        "encrypted_key": encrypted_key,
                    }
                ),
            )
        ]
    )
    content_algorithm = cms.EncryptionAlgorithm({"algorithm": AES_256_CBC, "parameters": iv})
    encrypted_content_info = _ber.indefinite(
        _ber.SEQUENCE,
        data_oid,
        content_algorithm.dump(),
        _ber.indefinite(_ber.CONTEXT_0, _ber.chunked_octets(ciphertext)),
    )
    enveloped_data = _ber.indefinite(_ber.SEQUENCE, version, recipients.dump(), encrypted_content_info)
    return _ber.indefinite(_ber.SEQUENCE, enveloped_data_oid, _ber.indefinite(_ber.CONTEXT_0, enveloped_data))
