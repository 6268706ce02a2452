"""verify_batch(): many documents at once, with exactly verify()'s verdicts.

Decoding and every decision stay the Python code verify() runs; only the
P-384 arithmetic moves. The batch first decodes every document, collects the
signature checks they will need (each certificate link once, however many
documents share it, and none the link cache already holds), runs them all on
the fast backend across ``workers`` threads, and then makes each document's
decisions in verify()'s order with those verdicts at hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from cryptography import x509

from ._verify import check_arguments, check_verified_document
from .backend import P384Job, verify_p384_many
from .chain import LINK_CACHE, LinkKey, is_trusted_anchor, link_job, path_key
from .cose import document_job
from .document import AttestationDocument, parse
from .errors import NitroAttestError
from .policy import Policy

__all__ = ["verify_batch"]


def _signature_jobs(
    documents: Sequence[AttestationDocument | NitroAttestError], roots: Sequence[x509.Certificate]
) -> tuple[dict[LinkKey, P384Job], dict[bytes, P384Job]]:
    """The link and document-signature checks the batch needs, each once."""
    links: dict[LinkKey, P384Job] = {}
    signatures: dict[bytes, P384Job] = {}
    for document in documents:
        # A document that failed to decode, or that no trusted root anchors,
        # is rejected before any signature matters: spend nothing on it.
        if isinstance(document, NitroAttestError) or not is_trusted_anchor(document, roots):
            continue
        whole = path_key(document)
        if not LINK_CACHE.has_path(whole):
            path = (*document.cabundle, document.certificate)
            for position in range(1, len(path)):
                key = (whole[position - 1], whole[position])
                if key in links or key in LINK_CACHE:
                    continue
                job = link_job(path[position - 1], path[position])
                if job is not None:
                    links[key] = job
        if document.raw not in signatures:
            job = document_job(document)
            if job is not None:
                signatures[document.raw] = job
    return links, signatures


def verify_batch(
    documents: Iterable[bytes],
    policy: Policy,
    *,
    at: datetime | None = None,
    roots: Sequence[x509.Certificate] | None = None,
    workers: int | None = None,
) -> list[AttestationDocument | NitroAttestError]:
    """Verifies many documents; one result per document, in order.

    Each result is what :func:`nitro_attest.verify` would return for that
    document (the verified :class:`AttestationDocument`) or raise (the
    :class:`NitroAttestError`, same class and ``code``). A bad document never
    makes the call raise; bad *arguments* do (``TypeError``/``ValueError``),
    as with verify(). ``workers`` threads run the signature checks (default:
    one per CPU).
    """
    at, roots = check_arguments(policy, at, roots)
    if workers is not None and (type(workers) is not int or workers < 1):
        raise ValueError(f"workers must be a positive integer or None, got {workers!r}")
    parsed: list[AttestationDocument | NitroAttestError] = []
    for data in documents:
        try:
            parsed.append(parse(data))
        except NitroAttestError as error:
            parsed.append(error)

    links, signatures = _signature_jobs(parsed, roots)
    link_keys, signature_keys = list(links), list(signatures)
    verdicts = verify_p384_many([*links.values(), *signatures.values()], workers=workers)
    link_verdicts = dict(zip(link_keys, verdicts[: len(link_keys)], strict=True))
    signature_verdicts = dict(zip(signature_keys, verdicts[len(link_keys) :], strict=True))

    results: list[AttestationDocument | NitroAttestError] = []
    for document in parsed:
        if isinstance(document, NitroAttestError):
            results.append(document)
            continue
        try:
            check_verified_document(
                document,
                policy,
                at,
                roots,
                link_verdicts=link_verdicts,
                signature_verdict=signature_verdicts.get(document.raw),
            )
        except NitroAttestError as error:
            results.append(error)
        else:
            results.append(document)
    return results
