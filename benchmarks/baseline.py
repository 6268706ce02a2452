"""The verifier a user writes by hand with cbor2 + cryptography: the benchmark's baseline.

Correct for well-formed documents, but naive: it decodes everything, loads
every certificate, and verifies every link of the chain (4 certificate
signatures) and the COSE_Sign1 signature (1) on every document: 5 P-384
verifications, nothing cached. It does not apply nitro_attest's strict
profile (CBOR strictness, schema bounds, CA constraints, policy), so it
does less work per document than ``nitro_attest.verify`` apart from the
signatures; the comparison favours it.

:func:`verify_pycose` is the same with the COSE signature checked by pycose
(the COSE library a Python user would reach for) instead of by hand.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding

__all__ = ["BaselineError", "root_set", "verify_baseline", "verify_pycose"]

_ECDSA_SHA384 = ec.ECDSA(hashes.SHA384())


class BaselineError(Exception):
    """The baseline rejected the document."""


def root_set(roots: Iterable[x509.Certificate]) -> frozenset[bytes]:
    """The DER of each trusted root: ``cabundle[0]`` must equal one byte for byte."""
    return frozenset(root.public_bytes(Encoding.DER) for root in roots)


def _decode(data: bytes) -> tuple[bytes, bytes, bytes, dict[str, Any]]:
    outer = cbor2.loads(data)
    if isinstance(outer, cbor2.CBORTag):  # the optional COSE_Sign1 tag 18
        outer = outer.value
    protected, _unprotected, payload, signature = outer
    if protected != b"\xa1\x01\x38\x22":  # {1: -35}: ES384
        raise BaselineError("not ES384")
    return protected, payload, signature, cbor2.loads(payload)


def _verify_chain(document: dict[str, Any], roots: frozenset[bytes], at: datetime | None) -> x509.Certificate:
    """Root pinned by bytes, then each certificate signed by the one before it; returns the leaf."""
    bundle: list[bytes] = document["cabundle"]
    if bundle[0] not in roots:
        raise BaselineError("cabundle[0] is not a trusted root")
    path = [x509.load_der_x509_certificate(der) for der in (*bundle, document["certificate"])]
    for issuer, subject in itertools.pairwise(path):
        if subject.issuer != issuer.subject:
            raise BaselineError("names do not chain")
        issuer_key = issuer.public_key()
        if not isinstance(issuer_key, ec.EllipticCurvePublicKey):
            raise BaselineError("not an EC key")
        issuer_key.verify(subject.signature, subject.tbs_certificate_bytes, _ECDSA_SHA384)  # raises InvalidSignature
    if at is not None:
        for certificate in path:
            if not certificate.not_valid_before_utc <= at <= certificate.not_valid_after_utc:
                raise BaselineError("certificate not valid at the verification time")
    return path[-1]


def verify_baseline(data: bytes, roots: frozenset[bytes], at: datetime | None = None) -> dict[str, Any]:
    """Decode, pin the root, verify 4 links and the COSE signature; returns the payload map.

    Raises :class:`BaselineError` or ``cryptography.exceptions.InvalidSignature``.
    """
    protected, payload, signature, document = _decode(data)
    leaf = _verify_chain(document, roots, at)
    leaf_key = leaf.public_key()
    if not isinstance(leaf_key, ec.EllipticCurvePublicKey) or len(signature) != 96:
        raise BaselineError("bad leaf key or signature size")
    message = cbor2.dumps(["Signature1", protected, b"", payload])
    der = encode_dss_signature(int.from_bytes(signature[:48], "big"), int.from_bytes(signature[48:], "big"))
    leaf_key.verify(der, message, _ECDSA_SHA384)
    return document


def verify_pycose(data: bytes, roots: frozenset[bytes], at: datetime | None = None) -> dict[str, Any]:
    """As :func:`verify_baseline`, but the COSE_Sign1 is decoded and verified by pycose 1.x.

    Nitro documents are untagged COSE_Sign1, which ``CoseMessage.decode``
    refuses ("Message was not tagged"): the untagged array goes through
    ``Sign1Message.from_cose_obj`` instead. pycose verifies ES384 with the
    pure-Python ``ecdsa`` package.
    """
    # An optional peer, imported only when measured.
    from pycose.keys.curves import P384  # noqa: PLC0415
    from pycose.keys.ec2 import EC2Key  # noqa: PLC0415
    from pycose.messages.sign1message import Sign1Message  # noqa: PLC0415

    outer = cbor2.loads(data)
    if isinstance(outer, cbor2.CBORTag):
        outer = outer.value
    message = Sign1Message.from_cose_obj(list(outer), True)
    document: dict[str, Any] = cbor2.loads(message.payload or b"")
    leaf_key = _verify_chain(document, roots, at).public_key()
    if not isinstance(leaf_key, ec.EllipticCurvePublicKey):
        raise BaselineError("not an EC key")
    numbers = leaf_key.public_numbers()
    message.key = EC2Key(crv=P384, x=numbers.x.to_bytes(48, "big"), y=numbers.y.to_bytes(48, "big"))
    if not message.verify_signature():
        raise BaselineError("COSE signature does not verify (pycose)")
    return document
