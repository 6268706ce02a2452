"""verify_batch(): many documents at once, with exactly verify()'s verdicts.

Decoding and every decision stay the Python code verify() runs; only the
P-384 arithmetic moves. The batch first decodes every document, collects the
signature checks they will need (each certificate link once, however many
documents share it, and none the link cache already holds), runs them all on
the fast backend across ``workers`` threads, and then makes each document's
decisions in verify()'s order with those verdicts at hand.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from datetime import datetime
from typing import TypeAlias

from cryptography import x509

from ._backend import P384Job, verify_p384_many
from ._chain import LinkKey, PathKey, is_trusted_anchor, link_job, pending_links
from ._cose import document_job
from ._verify import check_arguments, check_verified_document
from .document import AttestationDocument, VerifiedDocument, parse
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
    examined: dict[PathKey, bool],
) -> dict[LinkKey | bytes, P384Job]:
    """The signature checks verify() would make for these documents that no earlier step submitted."""
    jobs: dict[LinkKey | bytes, P384Job] = {}
    for document in documents:
        # A document that failed to decode, or that no trusted root anchors,
        # is rejected before any signature matters: spend nothing on it.
        if isinstance(document, NitroAttestError) or not is_trusted_anchor(document, roots):
            continue
        # Documents of one enclave share their path: examine each path once per batch.
        path_can_pass = examined.get(document.chain_der)
        if path_can_pass is None:
            links, path_can_pass = pending_links(document, at)
            examined[document.chain_der] = path_can_pass
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


_Verdicts: TypeAlias = "dict[LinkKey | bytes, bool]"


def _verify_jobs(jobs: dict[LinkKey | bytes, P384Job], *, workers: int | None) -> _Verdicts:
    return dict(zip(jobs, verify_p384_many(list(jobs.values()), workers=workers), strict=True))


def _step_runner(
    pool: ThreadPoolExecutor | None, workers: int | None
) -> Callable[[dict[LinkKey | bytes, P384Job]], Future[_Verdicts]]:
    """Runs a step's jobs on ``pool``'s thread, or at once on the calling thread when there is no pool."""

    def run(jobs: dict[LinkKey | bytes, P384Job]) -> Future[_Verdicts]:
        if pool is not None:
            return pool.submit(_verify_jobs, jobs, workers=workers)
        future: Future[_Verdicts] = Future()
        future.set_result(_verify_jobs(jobs, workers=workers))
        return future

    return run


def verify_batch(
    documents: Iterable[bytes],
    policy: Policy,
    *,
    at: datetime | None = None,
    roots: Sequence[x509.Certificate] | None = None,
    workers: int | None = None,
) -> list[VerifiedDocument | NitroAttestError]:
    """Verifies many documents; one result per document, in order.

    Each result is what :func:`nitro_attest.verify` would return for that
    document (a :class:`~nitro_attest.VerifiedDocument`) or raise (the
    :class:`NitroAttestError`, same class and ``code``). A bad document never
    makes the call raise; bad *arguments* do (``TypeError``/``ValueError``),
    as with verify(). ``workers`` is how many cores it may use (default: all):
    with more than one, the signature checks run on that many threads while
    the calling thread decodes the next documents; with one, everything runs
    on the calling thread.
    """
    at, roots = check_arguments(policy, at, roots)
    if workers is not None and (type(workers) is not int or workers < 1):
        raise ValueError(f"workers must be a positive integer or None, got {workers!r}")
    data = list(documents)
    chunks = [data[start : start + _CHUNK] for start in range(0, len(data), _CHUNK)]
    submitted: set[LinkKey | bytes] = set()
    examined: dict[PathKey, bool] = {}
    steps: list[tuple[list[AttestationDocument | NitroAttestError], Future[_Verdicts]]] = []
    threads = workers if workers is not None else (os.cpu_count() or 1)
    with ExitStack() as stack:
        # With more than one core, one thread hands each step's jobs to the
        # backend, whose own threads do the arithmetic without the GIL, while
        # this thread decodes the next step. With one, everything stays on the
        # calling thread: "workers" is how many cores the batch may use.
        pipelined = threads > 1 and len(chunks) > 1
        pool = stack.enter_context(ThreadPoolExecutor(1, "nitro-attest-batch")) if pipelined else None
        run_step = _step_runner(pool, workers)
        for chunk in chunks:
            parsed = _parse_all(chunk)
            steps.append((parsed, run_step(_signature_jobs(parsed, at, roots, submitted, examined))))

        link_verdicts: dict[LinkKey, bool] = {}
        signature_verdicts: dict[bytes, bool] = {}
        results: list[VerifiedDocument | NitroAttestError] = []
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
                    verified = check_verified_document(
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
                    results.append(verified)
    return results
