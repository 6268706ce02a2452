"""Reading certificates and enclave public keys as people hand them over: PEM or DER.

One reading for the whole package, so that the CLI, :mod:`nitro_attest.measurements`
and the trust-root options cannot disagree about what a file holds:

- :func:`load_certificate`: exactly one certificate (a signing certificate
  measured into PCR8, a recipient's certificate);
- :func:`load_certificates`: one or more (trust roots: a PEM bundle, or the
  DER of one certificate, which is what a document's ``cabundle[0]`` holds);
- :func:`certificate_summary`: what people and JSON reports show of one;
- :func:`load_rsa_public_key`: an enclave's RSA SubjectPublicKeyInfo, what KMS
  and :func:`nitro_attest.recipient.seal` encrypt to.

Both raise :class:`ValueError` (never cryptography's ASN.1 messages) saying
which format was expected, and :class:`TypeError` for a value of another type.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, load_der_public_key, load_pem_public_key

__all__ = [
    "MAX_PUBLIC_KEY_SIZE",
    "CertificateInput",
    "certificate_summary",
    "load_certificate",
    "load_certificates",
    "load_rsa_public_key",
]

#: The largest public key read: a 4096-bit RSA key's SubjectPublicKeyInfo is 550 bytes of DER, ~800 of PEM.
MAX_PUBLIC_KEY_SIZE = 4 * 1024

#: What :func:`load_certificate` takes: PEM (``str`` or bytes), DER bytes, or a certificate object.
CertificateInput = bytes | bytearray | memoryview | str | x509.Certificate

_PEM_MARKER = b"-----BEGIN"
_PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"


def _data(value: bytes | bytearray | memoryview | str) -> bytes:
    if isinstance(value, str):
        if "-----BEGIN" not in value:
            raise ValueError(
                "a certificate given as str must be PEM text (-----BEGIN CERTIFICATE-----); pass DER as bytes"
            )
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"certificate must be PEM or DER bytes, PEM str or x509.Certificate, not {type(value).__name__}")


def load_certificates(value: bytes | bytearray | memoryview | str) -> tuple[x509.Certificate, ...]:
    """Every certificate of a PEM text (at least one), or the one certificate of a DER encoding."""
    data = _data(value)
    if not data.strip():
        raise ValueError("the certificate is empty")
    if _PEM_MARKER in data:
        try:
            return tuple(x509.load_pem_x509_certificates(data))
        except ValueError:
            if _PEM_CERTIFICATE in data:
                raise ValueError(
                    "the PEM CERTIFICATE block is damaged: it does not hold an X.509 certificate"
                ) from None
            raise ValueError("not a PEM X.509 certificate: no -----BEGIN CERTIFICATE----- block") from None
    try:
        return (x509.load_der_x509_certificate(data),)
    except ValueError:
        raise ValueError("not an X.509 certificate: neither PEM (-----BEGIN CERTIFICATE-----) nor DER") from None


def load_certificate(value: CertificateInput) -> x509.Certificate:
    """Exactly one certificate, PEM or DER (a certificate object is returned as is).

    A PEM with several certificates is refused rather than read for its first:
    a chain where one certificate is expected is more often the wrong file than
    intended, and a wrong certificate (a wrong PCR8) fails silently later.
    """
    if isinstance(value, x509.Certificate):
        return value
    certificates = load_certificates(value)
    if len(certificates) != 1:
        raise ValueError(
            f"the PEM holds {len(certificates)} certificates where one is expected "
            "(for PCR8: the enclave image's signing certificate alone, the first one nitro-cli reads)"
        )
    return certificates[0]


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _name(certificate: x509.Certificate, which: str) -> str:
    try:
        return (certificate.subject if which == "subject" else certificate.issuer).rfc4514_string()
    except ValueError:  # an undecodable name in an unverified certificate is shown, not fatal
        return f"(unreadable {which})"


def certificate_summary(certificate: x509.Certificate) -> dict[str, str]:
    """Subject and issuer (RFC 4514), serial number (hex), validity (ISO 8601 UTC) and SHA-256 fingerprint.

    Names are as the certificate has them: escape them before showing them to
    people when the certificate is not verified.
    """
    return {
        "subject": _name(certificate, "subject"),
        "issuer": _name(certificate, "issuer"),
        "serial_number": format(certificate.serial_number, "x"),
        "not_before": _iso(certificate.not_valid_before_utc),
        "not_after": _iso(certificate.not_valid_after_utc),
        "sha256": hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest(),
    }


def load_rsa_public_key(data: bytes, what: str = "the public key", *, pem: bool = False) -> rsa.RSAPublicKey:
    """The RSA key of a SubjectPublicKeyInfo: DER (as in an attestation document), or PEM too when ``pem``.

    ``what`` names the key in the :class:`ValueError` raised for anything else
    (too large, not a SubjectPublicKeyInfo, another kind of key). The key's
    size is not judged here: callers have their own rules.
    """
    if len(data) > MAX_PUBLIC_KEY_SIZE:
        raise ValueError(f"{what} is {len(data)} bytes, over the {MAX_PUBLIC_KEY_SIZE}-byte bound")
    is_pem = pem and data.lstrip().startswith(b"-----BEGIN")
    try:
        key = load_pem_public_key(data) if is_pem else load_der_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise ValueError(f"{what} is not a SubjectPublicKeyInfo ({'DER or PEM' if pem else 'DER'})") from None
    if not isinstance(key, rsa.RSAPublicKey):
        kind = f"an EC ({key.curve.name})" if isinstance(key, ec.EllipticCurvePublicKey) else type(key).__name__
        raise ValueError(f"{what} is {kind} key, not an RSA key")
    return key
