"""Trust roots and path validation: AWS Nitro root -> cabundle -> enclave leaf.

The rules (docs/concepts.md, "The certificate chain") are those of the profile AWS actually issues: a
fixed-order path, every certificate P-384 and ecdsa-with-SHA384, CA
constraints as RFC 5280 has them, and no trust in anything the document
carries except by byte-equality of ``cabundle[0]`` with a pinned root.
Certificate parsing is pyca/cryptography's; nothing here reads DER.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from typing import Any, TypeAlias, TypeVar, cast

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtensionOID, SignatureAlgorithmOID

from ._backend import P384Job, verify_p384_many
from ._cose import is_p384_key, p384_point
from .document import SignedDocument
from .errors import CertificateInvalid

__all__ = [
    "AWS_NITRO_ROOT_G1",
    "AWS_NITRO_ROOT_G1_SHA256",
    "CLOCK_SKEW",
    "LINK_CACHE",
    "LinkCache",
    "LinkKey",
    "PathKey",
    "is_trusted_anchor",
    "link_job",
    "pending_links",
    "raw_signature",
    "validate_chain",
]

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


#: A certificate link, by exact bytes: (issuer DER, subject DER).
LinkKey: TypeAlias = "tuple[bytes, bytes]"


#: A whole certification path, by exact bytes: the DER of cabundle[0], ..., cabundle[-1], certificate.
PathKey: TypeAlias = "tuple[bytes, ...]"


class LinkCache:
    """The certificate links whose signature has verified: a bounded, thread-safe LRU set.

    Keyed on the exact DER of both certificates, so a look-alike certificate
    (same names, other key or bytes) is never served from it. Only
    :func:`validate_chain` adds to it, after the link's names chain and its
    signature verified; validity at the verification time is checked on
    every call regardless, so a cached link is never "valid forever".

    It also remembers whole paths whose every certificate and link passed
    those time-independent checks, so that a document from a known enclave
    costs one lookup rather than a check per certificate.
    """

    def __init__(self, maxsize: int = 4096) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self._links: OrderedDict[LinkKey, None] = OrderedDict()
        self._paths: OrderedDict[PathKey, None] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, key: object) -> bool:
        return self._hit(self._links, key)

    def __len__(self) -> int:
        return len(self._links)

    def add(self, key: LinkKey) -> None:
        self._put(self._links, key)

    def has_path(self, key: PathKey) -> bool:
        return self._hit(self._paths, key)

    def add_path(self, key: PathKey) -> None:
        self._put(self._paths, key)

    def clear(self) -> None:
        with self._lock:
            self._links.clear()
            self._paths.clear()

    def _hit(self, entries: OrderedDict[Any, None], key: object) -> bool:
        with self._lock:
            if key not in entries:
                return False
            entries.move_to_end(key)
            return True

    def _put(self, entries: OrderedDict[Any, None], key: object) -> None:
        with self._lock:
            entries[key] = None
            entries.move_to_end(key)
            while len(entries) > self.maxsize:
                entries.popitem(last=False)


#: The process-wide cache used by verify() and verify_batch(). Intermediates
#: repeat for days and an enclave's leaf for ~3 hours, so a warm cache leaves
#: one P-384 verification (the document's own signature) per document.
LINK_CACHE = LinkCache()


def _describe(position: int, path_length: int, certificate: x509.Certificate) -> str:
    where = "certificate (the enclave's leaf)" if position == path_length - 1 else f"cabundle[{position}]"
    return f"{where} {certificate.subject.rfc4514_string()}"


# DER of the trusted roots, by object identity: re-encoding a certificate costs
# ~9 us and hashing one ~4 us, while callers pass the same few roots every time.
# Each entry keeps its root alive, so an id is never reused while it is cached.
_ROOT_DER: dict[int, tuple[x509.Certificate, bytes]] = {}
_MAX_ROOTS_REMEMBERED = 64


def _root_der(root: x509.Certificate) -> bytes:
    entry = _ROOT_DER.get(id(root))
    if entry is None or entry[0] is not root:
        if len(_ROOT_DER) >= _MAX_ROOTS_REMEMBERED:
            _ROOT_DER.clear()
        entry = (root, root.public_bytes(Encoding.DER))
        _ROOT_DER[id(root)] = entry
    return entry[1]


def is_trusted_anchor(document: SignedDocument, roots: Sequence[x509.Certificate]) -> bool:
    """True when ``cabundle[0]`` is byte-identical to one of ``roots``."""
    anchor = document.chain_der[0]
    return any(anchor == _root_der(root) for root in roots)


def raw_signature(der_signature: bytes) -> bytes | None:
    """``r || s`` (2 x 48 bytes) of a DER ECDSA-Sig-Value; None unless it is strict DER of such values.

    DER has one encoding per value, so re-encoding must give the received
    bytes back; DER integers may be negative or long, and only 1..2^384-1
    fits a P-384 field (the backends check r, s < n).
    """
    try:
        r, s = decode_dss_signature(der_signature)
    except ValueError:
        return None
    if encode_dss_signature(r, s) != der_signature or not (0 < r < 1 << 384 and 0 < s < 1 << 384):
        return None
    return r.to_bytes(48, "big") + s.to_bytes(48, "big")


def link_job(issuer: x509.Certificate, subject: x509.Certificate) -> P384Job | None:
    """The P-384 check that ``issuer`` signed ``subject``; None when it cannot hold.

    None for an issuer key that is not P-384 or a signature that is not strict DER.
    """
    point = p384_point(issuer)
    signature = raw_signature(subject.signature)
    if point is None or signature is None:
        return None
    return P384Job(point, subject.tbs_certificate_bytes, signature)


@dataclass(frozen=True)
class _AlgorithmPin:
    """Which keys and signature algorithms a path may use, and how a link's signature is checked.

    Private. The Nitro pin is the only one the package uses: :func:`validate_chain`
    and :func:`pending_links`, the only functions that read or write
    :data:`LINK_CACHE`, take no pin and name :data:`_NITRO_PIN` themselves.
    """

    name: str
    #: Why ``certificate``'s signature algorithm or key is refused (code "certificate"), or None.
    key_problem: Callable[[x509.Certificate], str | None]
    #: Whether ``issuer``'s key verifies ``subject``'s signature (names already chain).
    signed: Callable[[x509.Certificate, x509.Certificate], bool]


def _nitro_key_problem(certificate: x509.Certificate) -> str | None:
    if certificate.signature_algorithm_oid != SignatureAlgorithmOID.ECDSA_WITH_SHA384:
        return "signature algorithm is not ecdsa-with-SHA384"
    try:
        key = certificate.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:  # malformed key, custom explicit curve parameters
        return f"unusable public key: {exc}"
    if not is_p384_key(key):
        return "key is not EC P-384"
    return None


def _nitro_signed(issuer: x509.Certificate, subject: x509.Certificate) -> bool:
    job = link_job(issuer, subject)
    return job is not None and verify_p384_many([job])[0]


#: The chain profile: every signature ecdsa-with-SHA384 by a P-384 key, checked by our backends.
_NITRO_PIN = _AlgorithmPin("nitro", _nitro_key_problem, _nitro_signed)


def _check_certificate(certificate: x509.Certificate, position: int, path_length: int, pin: _AlgorithmPin) -> None:
    """The time-independent checks of one certificate, given its place in the path."""

    def reject(code: str, problem: str) -> CertificateInvalid:
        # Describing a certificate formats its name: only worth it for a rejection.
        return CertificateInvalid(code, f"{_describe(position, path_length, certificate)}: {problem}")

    key_problem = pin.key_problem(certificate)
    if key_problem is not None:
        raise reject("certificate", key_problem)
    extensions = certificate.extensions  # parsed (and checked) by document.parse
    for extension in extensions:
        if extension.critical and extension.oid not in _UNDERSTOOD_CRITICAL:
            raise reject("chain", f"unknown critical extension {extension.oid.dotted_string}")
    basic = _extension_value(extensions, x509.BasicConstraints)
    usage = _extension_value(extensions, x509.KeyUsage)

    if position == path_length - 1:  # the leaf
        if basic is not None and basic.ca:
            raise reject("chain", "the leaf is a CA certificate")
        if usage is None or not usage.digital_signature:
            raise reject("chain", "the leaf's keyUsage lacks digitalSignature")
        if usage.key_cert_sign:
            raise reject("chain", "the leaf's keyUsage allows keyCertSign")
        return

    if basic is None or not basic.ca:
        raise reject("chain", "not a CA certificate (basicConstraints CA=true missing)")
    if not certificate.subject:
        # RFC 5280 4.1.2.6: a CA's subject names the issuer of what it signs; empty, it names nobody.
        raise reject("chain", "a CA certificate with an empty subject")
    if not extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).critical:
        raise reject("chain", "basicConstraints is not critical")
    # CA certificates below this one, the leaf not counted (RFC 5280 4.2.1.9).
    below = path_length - 2 - position
    if basic.path_length is not None and below > basic.path_length:
        raise reject("chain", f"pathLenConstraint {basic.path_length} but {below} CA certificates follow")
    if usage is None or not usage.key_cert_sign:
        raise reject("chain", "keyUsage lacks keyCertSign")


def _extension_value(extensions: x509.Extensions, kind: type[_E]) -> _E | None:
    try:
        return extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _check_names(issuer: x509.Certificate, subject: x509.Certificate, describe: Callable[[], str]) -> None:
    if subject.issuer != issuer.subject:
        raise CertificateInvalid("chain", f"{describe()}: issuer name does not match the certificate before it")


def _unsigned(describe: Callable[[], str]) -> CertificateInvalid:
    return CertificateInvalid("chain", f"{describe()}: not signed by the certificate before it")


def _check_link(
    issuer: x509.Certificate,
    subject: x509.Certificate,
    key: LinkKey,
    verdicts: Mapping[LinkKey, bool] | None,
    describe: Callable[[], str],
) -> None:
    """Names chain and ``issuer`` signed ``subject``: from the cache, the precomputed verdicts, or computed now.

    Nitro pin only: this reads and writes :data:`LINK_CACHE`, so it takes no pin.
    """
    if key in LINK_CACHE:  # only ever added after both checks below passed, for these exact bytes
        return
    _check_names(issuer, subject, describe)
    verdict = verdicts.get(key) if verdicts is not None else None
    if verdict is None:
        verdict = _NITRO_PIN.signed(issuer, subject)
    if not verdict:
        raise _unsigned(describe)
    LINK_CACHE.add(key)


def _valid_at(certificate: x509.Certificate, at: datetime) -> bool:
    # Nitro signs the first document ~3 s after its leaf's notBefore: a
    # verifier whose clock is a few seconds behind the host's must not reject
    # it. The same skew bounds the document's timestamp (_verify.py). Written
    # as a difference: notBefore - CLOCK_SKEW overflows for a notBefore in year 1.
    return certificate.not_valid_before_utc - at <= CLOCK_SKEW and at <= certificate.not_valid_after_utc


def _check_validity(path: Sequence[x509.Certificate], at: datetime) -> None:
    """Every certificate of ``path`` is valid at ``at`` (notBefore up to :data:`CLOCK_SKEW` late)."""
    for position, certificate in enumerate(path):
        if not _valid_at(certificate, at):
            not_before, not_after = certificate.not_valid_before_utc, certificate.not_valid_after_utc
            raise CertificateInvalid(
                "expired",
                f"{_describe(position, len(path), certificate)} is valid from {not_before.isoformat()} "
                f"to {not_after.isoformat()}, not at {at.isoformat()}",
            )


def _untrusted_root(path: Sequence[x509.Certificate]) -> CertificateInvalid:
    return CertificateInvalid(
        "chain",
        f"{_describe(0, len(path), path[0])} is not a trusted root (it must be byte-identical to one)",
    )


def pending_links(
    document: SignedDocument, at: datetime
) -> tuple[list[tuple[LinkKey, x509.Certificate, x509.Certificate]], bool]:
    """The link signatures :func:`validate_chain` would check for this document, and whether it could pass.

    For :func:`nitro_attest.verify_batch`, so that a batch does no signature
    work that verify() would not: nothing for a path that fails a check made
    without signatures, no link past the first whose names do not chain, and
    (second value False) not the document's own signature when the path
    cannot pass. The root pin is the caller's to check first.
    """
    whole = document.chain_der
    path = (*document.cabundle, document.certificate)
    valid_now = all(_valid_at(certificate, at) for certificate in path)
    if LINK_CACHE.has_path(whole):
        return [], valid_now
    try:
        for position, certificate in enumerate(path):
            _check_certificate(certificate, position, len(path), _NITRO_PIN)
    except CertificateInvalid:
        return [], False
    links: list[tuple[LinkKey, x509.Certificate, x509.Certificate]] = []
    for position in range(1, len(path)):
        issuer, subject = path[position - 1], path[position]
        key = (whole[position - 1], whole[position])
        if key in LINK_CACHE:
            continue
        if subject.issuer != issuer.subject:
            return links, False
        links.append((key, issuer, subject))
    return links, valid_now


def validate_chain(
    document: SignedDocument,
    at: datetime,
    roots: Sequence[x509.Certificate],
    *,
    verdicts: Mapping[LinkKey, bool] | None = None,
    passed: set[PathKey] | None = None,
) -> ec.EllipticCurvePublicKey:
    """Validates ``cabundle[0] -> ... -> cabundle[-1] -> certificate`` at ``at``.

    ``document`` must come from :func:`~nitro_attest.parse` (its ``chain_der``
    is then the exact bytes of its certificates, which the caches key on).
    Returns the leaf's P-384 public key. Raises :class:`CertificateInvalid`.
    ``verdicts`` are link signatures :func:`nitro_attest.verify_batch` has
    already checked (see :func:`link_job`); ``passed``, the paths that have
    passed this function at this same ``at`` and ``roots`` (it adds to them):
    the verdict is a function of those three, and the documents of one
    enclave share their path. The decisions are the same with or without either.
    """
    if passed is not None and document.chain_der in passed:
        return cast(ec.EllipticCurvePublicKey, document.certificate.public_key())
    path = (*document.cabundle, document.certificate)
    if not is_trusted_anchor(document, roots):
        raise _untrusted_root(path)
    whole = document.chain_der
    if not LINK_CACHE.has_path(whole):
        for position, certificate in enumerate(path):
            _check_certificate(certificate, position, len(path), _NITRO_PIN)
        for position in range(1, len(path)):
            subject = path[position]
            describe = functools.partial(_describe, position, len(path), subject)
            _check_link(path[position - 1], subject, (whole[position - 1], whole[position]), verdicts, describe)
        LINK_CACHE.add_path(whole)
    _check_validity(path, at)
    if passed is not None:
        passed.add(whole)
    # The path passed _check_certificate (now, or before for these exact bytes): a P-384 key.
    return cast(ec.EllipticCurvePublicKey, document.certificate.public_key())


# --- Test-only: the same rules over an explicit path, with no cache -------------------------
#
# tests/test_x509_limbo.py runs C2SP x509-limbo (mostly P-256) over the rules
# above: over a path it ordered itself and, besides the Nitro pin, with a pin
# of its own that accepts whatever algorithm cryptography can verify. Nothing in
# the package calls _validate_path, and no public function takes a pin, so no
# other pin can be reached from the public API. _validate_path never touches
# LINK_CACHE (validate_chain skips the per-certificate checks, the algorithm
# pin included, for a path found there): a test pin's run can neither add to
# the cache nor be served from it.


def _validate_path(
    path: Sequence[x509.Certificate], at: datetime, roots: Sequence[x509.Certificate], *, pin: _AlgorithmPin
) -> None:
    """TEST-ONLY: :func:`validate_chain`'s rules, in its order, over ``[root, intermediates..., leaf]``.

    No cache is read or written. ``path[0]`` must be byte-identical to one of
    ``roots``. Raises :class:`CertificateInvalid` as validate_chain would.
    """
    if len(path) < 2:
        raise ValueError("a path holds a root and a leaf at least")
    if path[0].public_bytes(Encoding.DER) not in {root.public_bytes(Encoding.DER) for root in roots}:
        raise _untrusted_root(path)
    for position, certificate in enumerate(path):
        _check_certificate(certificate, position, len(path), pin)
    for position in range(1, len(path)):
        issuer, subject = path[position - 1], path[position]
        describe = functools.partial(_describe, position, len(path), subject)
        _check_names(issuer, subject, describe)
        if not pin.signed(issuer, subject):
            raise _unsigned(describe)
    _check_validity(path, at)
