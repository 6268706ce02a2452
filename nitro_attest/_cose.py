"""COSE_Sign1 signature input and ES384 (ECDSA P-384, SHA-384) verification.

The arithmetic is the backend's (:mod:`nitro_attest._backend`); this module
only decides what is signed (the Sig_structure of RFC 9052 section 4.4, over
the protected header and payload bytes exactly as received) and which keys
count.
"""

from __future__ import annotations

from typing import TypeGuard

import cbor2
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ._backend import P384Job, verify_p384_many
from .document import SignedDocument
from .errors import SignatureInvalid

__all__ = [
    "document_job",
    "is_p384_key",
    "p384_point",
    "sig_structure",
    "verify_document_signature",
]


def is_p384_key(key: object) -> TypeGuard[ec.EllipticCurvePublicKey]:
    """True for an EC public key on P-384 (secp384r1), the only curve Nitro uses."""
    return isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP384R1)


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    """The bytes a COSE_Sign1 signature covers: ["Signature1", protected, h'', payload]."""
    return cbor2.dumps(["Signature1", protected, b"", payload])


def p384_point(certificate: x509.Certificate) -> bytes | None:
    """The certificate's key as an uncompressed SEC1 point, or None when it is not a usable P-384 key."""
    try:
        key = certificate.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return None
    if not is_p384_key(key):
        return None
    return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


# The leaf's point by the leaf's DER (bytes cache their hash; certificates hash
# their DER anew each time): the same leaf signs documents for ~3 hours.
_LEAF_POINTS: dict[bytes, bytes | None] = {}
_MAX_LEAF_POINTS = 1024
_UNKNOWN = b"unknown"  # a sentinel no SEC1 point equals (those are 97 bytes)


def _leaf_point(document: SignedDocument) -> bytes | None:
    leaf_der = document.chain_der[-1]
    # One read and one write, never a read after the write: another thread may clear the dict between them.
    point = _LEAF_POINTS.get(leaf_der, _UNKNOWN)
    if point is _UNKNOWN:
        if len(_LEAF_POINTS) >= _MAX_LEAF_POINTS:
            _LEAF_POINTS.clear()
        point = _LEAF_POINTS[leaf_der] = p384_point(document.certificate)
    return point


def document_job(document: SignedDocument) -> P384Job | None:
    """The P-384 check of the document's ES384 signature; None when the leaf key is not P-384."""
    point = _leaf_point(document)
    if point is None:
        return None
    return P384Job(point, sig_structure(document.protected_header, document.payload), document.signature)


def verify_document_signature(document: SignedDocument, *, verdict: bool | None = None) -> None:
    """Checks the document's ES384 signature with its leaf's key (validate_chain checked it is P-384).

    ``verdict`` is the result :func:`nitro_attest.verify_batch` already
    computed for :func:`document_job`; without it, it is computed now.
    Raises :class:`SignatureInvalid` when it does not verify.
    """
    if verdict is None:
        job = document_job(document)
        verdict = job is not None and verify_p384_many([job])[0]
    if not verdict:
        raise SignatureInvalid("signature", "COSE ES384 signature does not verify with the leaf certificate's key")
