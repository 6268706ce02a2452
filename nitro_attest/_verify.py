"""verify(): bytes in, a VerifiedDocument or one NitroAttestError out.

The steps follow the data: decode and schema-check, validate the certificate
path from a pinned root, check the COSE signature with the leaf's key, check
the document's own time, then apply the caller's policy.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone

from cryptography import x509

from ._chain import AWS_NITRO_ROOT_G1, CLOCK_SKEW, LinkKey, PathKey, validate_chain
from ._cose import verify_document_signature
from .document import AttestationDocument, SignedDocument, VerifiedDocument, parse
from .errors import DocumentTimeInvalid
from .policy import Policy

__all__ = ["CLOCK_SKEW", "verify"]


def verification_time(at: datetime | None) -> datetime:
    """``at`` as aware UTC, or now; naive datetimes are a caller bug (TypeError)."""
    if at is None:
        return datetime.now(timezone.utc)
    if not isinstance(at, datetime):
        raise TypeError(f"at must be a datetime, not {type(at).__name__}")
    if at.tzinfo is None or at.utcoffset() is None:
        raise TypeError(
            "at must be timezone-aware (a naive datetime's zone is a guess); use datetime.now(timezone.utc)"
        )
    try:
        return at.astimezone(timezone.utc)
    except OverflowError:  # e.g. 9999-12-31 23:30 at UTC-2 is in year 10000 in UTC
        raise ValueError(f"at {at.isoformat()} is not representable in UTC") from None


def trusted_roots(roots: Sequence[x509.Certificate] | None) -> Sequence[x509.Certificate]:
    """The caller's roots, or the shipped AWS root."""
    if roots is None:
        return (AWS_NITRO_ROOT_G1,)
    roots = tuple(roots)
    if not roots:
        raise ValueError("roots is empty: no document could ever verify; pass None for the AWS root")
    for root in roots:
        if not isinstance(root, x509.Certificate):
            raise TypeError(f"roots must hold cryptography x509.Certificate objects, not {type(root).__name__}")
    return roots


def check_document_time(document: SignedDocument, at: datetime) -> None:
    """The timestamp lies within the leaf's validity and not after ``at`` (plus skew)."""
    leaf = document.certificate
    if not leaf.not_valid_before_utc <= document.timestamp <= leaf.not_valid_after_utc:
        raise DocumentTimeInvalid(
            "time",
            f"timestamp {document.timestamp.isoformat()} lies outside the leaf certificate's validity "
            f"({leaf.not_valid_before_utc.isoformat()} to {leaf.not_valid_after_utc.isoformat()})",
        )
    # A difference, not at + CLOCK_SKEW: that sum overflows for an ``at`` in the last minute of year 9999.
    if document.timestamp - at > CLOCK_SKEW:
        raise DocumentTimeInvalid(
            "time",
            f"timestamp {document.timestamp.isoformat()} is after the verification time {at.isoformat()} "
            f"(allowed skew {CLOCK_SKEW.total_seconds():.0f} s)",
        )


def check_signed_document(
    document: SignedDocument,
    at: datetime,
    roots: Sequence[x509.Certificate],
    *,
    link_verdicts: Mapping[LinkKey, bool] | None = None,
    signature_verdict: bool | None = None,
    passed_paths: set[PathKey] | None = None,
) -> None:
    """The checks every kind of document passes, in this order: the chain, the signature, the time.

    Shared by :func:`verify` and :func:`~nitro_attest.nitrotpm.verify_nitrotpm`, so that
    both kinds of document meet the same code, not two copies of it. The keyword
    arguments are verify_batch()'s (see :func:`~nitro_attest._chain.validate_chain`).
    """
    validate_chain(document, at, roots, verdicts=link_verdicts, passed=passed_paths)
    verify_document_signature(document, verdict=signature_verdict)
    check_document_time(document, at)


def check_verified_document(
    document: AttestationDocument,
    policy: Policy,
    at: datetime,
    roots: Sequence[x509.Certificate],
    *,
    link_verdicts: Mapping[LinkKey, bool] | None = None,
    signature_verdict: bool | None = None,
    passed_paths: set[PathKey] | None = None,
) -> VerifiedDocument:
    """Every check after decoding, in verify()'s order; verify_batch() passes the signatures it precomputed
    and the paths that passed earlier in the batch.

    Returns the document as a VerifiedDocument: the only place one is made.
    """
    check_signed_document(
        document,
        at,
        roots,
        link_verdicts=link_verdicts,
        signature_verdict=signature_verdict,
        passed_paths=passed_paths,
    )
    # Unverified by type until this function returns, but every other check has passed by now.
    policy.check(document, at, allow_unverified=True)
    return VerifiedDocument._of(document, at)


def check_arguments(
    policy: Policy, at: datetime | None, roots: Sequence[x509.Certificate] | None
) -> tuple[datetime, Sequence[x509.Certificate]]:
    """The caller's arguments, checked (TypeError/ValueError: bugs in the caller, not in the document)."""
    if not isinstance(policy, Policy):
        raise TypeError(f"policy must be a nitro_attest.Policy, not {type(policy).__name__}")
    return verification_time(at), trusted_roots(roots)


def verify(
    data: bytes,
    policy: Policy,
    *,
    at: datetime | None = None,
    roots: Sequence[x509.Certificate] | None = None,
) -> VerifiedDocument:
    """Verifies an attestation document and applies ``policy``; returns it as a :class:`VerifiedDocument`.

    ``at`` is the verification time (timezone-aware; default now): pass the
    document's own time only to re-check an archived document. ``roots``
    defaults to the AWS Nitro Enclaves Root G1 shipped with this package.

    Raises a :class:`~nitro_attest.NitroAttestError` subclass for every
    rejection, ``TypeError``/``ValueError`` for bad arguments (not bad bytes).
    """
    at, roots = check_arguments(policy, at, roots)
    return check_verified_document(parse(data), policy, at, roots)
