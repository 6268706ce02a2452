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
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime

from cryptography import x509

from ._verify import check_arguments, check_verified_document
from .backend import P384Job, verify_p384_many
from .chain import LinkKey, is_trusted_anchor, link_job, pending_links
from .cose import document_job
from .document import AttestationDocument, parse
from .errors import NitroAttestError
from .policy import Policy

__all__ = ["verify_batch"]


# Documents decoded per step of the pipeline: big enough that a step's
# signature work amortizes one hand-over to the verifying thread, small
# enough that decoding the next step overlaps it from the start.
_CHUNK = 128


def _signature_jobs(
    documents: Sequence[AttestationDocument | NitroAttestError],
    at: datetime,
    roots: Sequence[x509.Certificate],
    submitted: set[LinkKey | bytes],
) -> dict[LinkKey | bytes, P384Job]:
    """The signature checks verify() would make for these documents that no earlier step submitted."""
    jobs: dict[LinkKey | bytes, P384Job] = {}
    for document in documents:
        # A document that failed to decode, or that no trusted root anchors,
        # is rejected before any signature matters: spend nothing on it.
        if isinstance(document, NitroAttestError) or not is_trusted_anchor(document, roots):
            continue
        links, path_can_pass = pending_links(document, at)
        for key, issuer, subject in links:
            if key not in submitted:
                submitted.add(key)
                job = link_job(issuer, subject)
                if job is not None:
                    jobs[key] = job
        if path_can_pass and document.raw not in submitted:
            submitted.add(document.raw)
            job = document_job(document)
            if job is not None:
                jobs[document.raw] = job
    return jobs


def _parse_all(chunk: Sequence[bytes]) -> list[AttestationDocument | NitroAttestError]:
    parsed: list[AttestationDocument | NitroAttestError] = []
    for data in chunk:
        try:
            parsed.append(parse(data))
        except NitroAttestError as error:
            parsed.append(error)
    return parsed


def _verify_jobs(jobs: dict[LinkKey | bytes, P384Job], workers: int | None) -> dict[LinkKey | bytes, bool]:
    return dict(zip(jobs, verify_p384_many(list(jobs.values()), workers=workers), strict=True))


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
    one per CPU); decoding the next documents overlaps them.
    """
    at, roots = check_arguments(policy, at, roots)
    if workers is not None and (type(workers) is not int or workers < 1):
        raise ValueError(f"workers must be a positive integer or None, got {workers!r}")
    data = list(documents)
    chunks = [data[start : start + _CHUNK] for start in range(0, len(data), _CHUNK)]
    submitted: set[LinkKey | bytes] = set()
    steps: list[tuple[list[AttestationDocument | NitroAttestError], Future[dict[LinkKey | bytes, bool]]]] = []
    # One thread hands each step's jobs to the backend, whose own threads do
    # the arithmetic without the GIL, while this thread decodes the next step.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="nitro-attest-batch") as verifier:
        for chunk in chunks:
            parsed = _parse_all(chunk)
            steps.append(
                (parsed, verifier.submit(_verify_jobs, _signature_jobs(parsed, at, roots, submitted), workers))
            )

        link_verdicts: dict[LinkKey, bool] = {}
        signature_verdicts: dict[bytes, bool] = {}
        results: list[AttestationDocument | NitroAttestError] = []
        for parsed, step in steps:
            # Steps finish in order, so every link a document needs is known by its own step's end.
            for key, verdict in step.result().items():
                if isinstance(key, tuple):
                    link_verdicts[key] = verdict
                else:
                    signature_verdicts[key] = verdict
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
