"""Trust roots and path validation: AWS Nitro root -> cabundle -> enclave leaf.

The rules are DESIGN.md section 3, in the profile AWS actually issues: a
fixed-order path, every certificate P-384 and ecdsa-with-SHA384, CA
constraints as RFC 5280 has them, and no trust in anything the document
carries except by byte-equality of ``cabundle[0]`` with a pinned root.
Certificate parsing is pyca/cryptography's; nothing here reads DER.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from importlib import resources
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtensionOID, SignatureAlgorithmOID

from .cose import is_p384_key, verify_p384_der
from .document import AttestationDocument
from .errors import CertificateInvalid

__all__ = ["AWS_NITRO_ROOT_G1", "AWS_NITRO_ROOT_G1_SHA256", "CLOCK_SKEW", "validate_chain"]

#: SHA-256 of the DER of "AWS Nitro Enclaves Root G1", as AWS publishes it.
AWS_NITRO_ROOT_G1_SHA256 = "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"


def _load_shipped_root() -> x509.Certificate:
    pem = resources.files("nitro_attest").joinpath("_data/aws_nitro_root_g1.pem").read_bytes()
    root = x509.load_pem_x509_certificate(pem)
    fingerprint = hashlib.sha256(root.public_bytes(Encoding.DER)).hexdigest()
    if fingerprint != AWS_NITRO_ROOT_G1_SHA256:
        # A package whose trust anchor was altered must not verify anything.
        raise RuntimeError(
            f"nitro_attest's shipped AWS root has SHA-256 {fingerprint}, not the published "
            f"{AWS_NITRO_ROOT_G1_SHA256}: the installation has been modified; reinstall it"
        )
    return root


#: How far the verifier's clock may lag the enclave host's: certificates not yet
#: valid by up to this much, and document timestamps up to this far ahead, pass.
CLOCK_SKEW = timedelta(seconds=60)

#: The AWS Nitro Enclaves Root G1, shipped in the package and checked at import.
AWS_NITRO_ROOT_G1 = _load_shipped_root()

_E = TypeVar("_E", bound=x509.ExtensionType)
# The only extensions whose meaning we enforce; any other marked critical rejects (RFC 5280 4.2).
_UNDERSTOOD_CRITICAL = frozenset({ExtensionOID.BASIC_CONSTRAINTS, ExtensionOID.KEY_USAGE})


def _describe(position: int, path_length: int, certificate: x509.Certificate) -> str:
    where = "certificate (the enclave's leaf)" if position == path_length - 1 else f"cabundle[{position}]"
    return f"{where} {certificate.subject.rfc4514_string()}"


def _public_key(certificate: x509.Certificate, where: str) -> ec.EllipticCurvePublicKey:
    try:
        key = certificate.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:  # malformed key, explicit curve parameters
        raise CertificateInvalid("certificate", f"{where}: unusable public key: {exc}") from None
    if not is_p384_key(key):
        raise CertificateInvalid("certificate", f"{where}: key is not EC P-384")
    return key


def _check_certificate(certificate: x509.Certificate, position: int, path_length: int) -> ec.EllipticCurvePublicKey:
    """The time-independent checks of one certificate, given its place in the path; returns its key."""
    where = _describe(position, path_length, certificate)
    if certificate.signature_algorithm_oid != SignatureAlgorithmOID.ECDSA_WITH_SHA384:
        raise CertificateInvalid("certificate", f"{where}: signature algorithm is not ecdsa-with-SHA384")
    key = _public_key(certificate, where)
    extensions = certificate.extensions  # parsed (and checked) by document.parse
    for extension in extensions:
        if extension.critical and extension.oid not in _UNDERSTOOD_CRITICAL:
            raise CertificateInvalid("chain", f"{where}: unknown critical extension {extension.oid.dotted_string}")
    basic = _extension_value(extensions, x509.BasicConstraints)
    usage = _extension_value(extensions, x509.KeyUsage)

    if position == path_length - 1:  # the leaf
        if basic is not None and basic.ca:
            raise CertificateInvalid("chain", f"{where}: the leaf is a CA certificate")
        if usage is None or not usage.digital_signature:
            raise CertificateInvalid("chain", f"{where}: the leaf's keyUsage lacks digitalSignature")
        if usage.key_cert_sign:
            raise CertificateInvalid("chain", f"{where}: the leaf's keyUsage allows keyCertSign")
        return key

    if basic is None or not basic.ca:
        raise CertificateInvalid("chain", f"{where}: not a CA certificate (basicConstraints CA=true missing)")
    if not extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).critical:
        raise CertificateInvalid("chain", f"{where}: basicConstraints is not critical")
    # CA certificates below this one, the leaf not counted (RFC 5280 4.2.1.9).
    below = path_length - 2 - position
    if basic.path_length is not None and below > basic.path_length:
        raise CertificateInvalid(
            "chain", f"{where}: pathLenConstraint {basic.path_length} but {below} CA certificates follow"
        )
    if usage is None or not usage.key_cert_sign:
        raise CertificateInvalid("chain", f"{where}: keyUsage lacks keyCertSign")
    return key


def _extension_value(extensions: x509.Extensions, kind: type[_E]) -> _E | None:
    try:
        return extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _check_link(
    issuer: x509.Certificate, issuer_key: ec.EllipticCurvePublicKey, subject: x509.Certificate, where: str
) -> None:
    """Names chain and the issuer's key signed the subject."""
    if subject.issuer != issuer.subject:
        raise CertificateInvalid("chain", f"{where}: issuer name does not match the certificate before it")
    if not verify_p384_der(issuer_key, subject.tbs_certificate_bytes, subject.signature):
        raise CertificateInvalid("chain", f"{where}: not signed by the certificate before it")


def validate_chain(
    document: AttestationDocument, at: datetime, roots: Sequence[x509.Certificate]
) -> ec.EllipticCurvePublicKey:
    """Validates ``cabundle[0] -> ... -> cabundle[-1] -> certificate`` at ``at``.

    Returns the leaf's P-384 public key. Raises :class:`CertificateInvalid`.
    """
    path = (*document.cabundle, document.certificate)
    anchor = document.cabundle[0].public_bytes(Encoding.DER)
    if not any(anchor == root.public_bytes(Encoding.DER) for root in roots):
        raise CertificateInvalid(
            "chain",
            f"{_describe(0, len(path), path[0])} is not a trusted root (it must be byte-identical to one)",
        )
    keys = [_check_certificate(certificate, position, len(path)) for position, certificate in enumerate(path)]
    for position in range(1, len(path)):
        where = _describe(position, len(path), path[position])
        _check_link(path[position - 1], keys[position - 1], path[position], where)
    for position, certificate in enumerate(path):
        not_before, not_after = certificate.not_valid_before_utc, certificate.not_valid_after_utc
        # Nitro signs the first document ~3 s after its leaf's notBefore: a
        # verifier whose clock is a few seconds behind the host's must not
        # reject it. The same skew bounds the document's timestamp (_verify.py).
        if not not_before - CLOCK_SKEW <= at <= not_after:
            raise CertificateInvalid(
                "expired",
                f"{_describe(position, len(path), certificate)} is valid from {not_before.isoformat()} "
                f"to {not_after.isoformat()}, not at {at.isoformat()}",
            )
    return keys[-1]
