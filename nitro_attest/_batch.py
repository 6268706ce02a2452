"""verify_batch(): many documents at once, with exactly verify()'s verdicts.

Decoding and every decision stay the Python code verify() runs; only the
P-384 arithmetic moves. The batch goes in steps of documents: it decodes a
step, collects the signature checks the step needs (each certificate link
once, however many documents share it, and none the link cache already
holds), and starts them on the fast backend's ``workers`` threads, which never
take the GIL; while they run, this thread decodes the next step, then makes
the previous step's decisions in verify()'s order with its verdicts at hand.
A path that passed once in the batch is not checked again (the verdict is a
function of its bytes, ``at`` and ``roots``, fixed for the batch).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Sequence
from datetime import datetime

from cryptography import x509

from ._backend import P384Job, PendingVerdicts, start_p384_many, verify_p384_many
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
# Steps whose signature checks may run at once, besides the one being judged.
_IN_FLIGHT = 1


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
        # A document that failed to decode is rejected before any signature matters: spend nothing on it.
        if isinstance(document, NitroAttestError):
            continue
        # Documents of one enclave share their path: examine each path once per batch.
        path_can_pass = examined.get(document.chain_der)
        if path_can_pass is None and not is_trusted_anchor(document, roots):
            examined[document.chain_der] = path_can_pass = False  # no trusted root: nothing to verify
        elif path_can_pass is None:
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


class _Step:
    """One chunk of documents, decoded, and the signature checks it added to the batch, under way."""

    __slots__ = ("documents", "keys", "verdicts")

    def __init__(
        self,
        documents: list[AttestationDocument | NitroAttestError],
        jobs: dict[LinkKey | bytes, P384Job],
        workers: int,
        pipelined: bool,
    ) -> None:
        self.documents = documents
        self.keys = list(jobs)
        job_list = list(jobs.values())
        if pipelined:
            self.verdicts: PendingVerdicts | list[bool] = start_p384_many(job_list, workers=workers)
        else:  # one core: everything on the calling thread, in order
            self.verdicts = verify_p384_many(job_list, workers=workers)

    def results(self) -> dict[LinkKey | bytes, bool]:
        verdicts = self.verdicts if isinstance(self.verdicts, list) else self.verdicts.result()
        return dict(zip(self.keys, verdicts, strict=True))


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
    threads = workers if workers is not None else (os.cpu_count() or 1)
    # With more than one core, each step's signature checks run on ``threads``
    # native threads (never needing the GIL) while this thread decodes the next
    # step and judges the previous one. With one, everything stays on the
    # calling thread: "workers" is how many cores the batch may use.
    pipelined = threads > 1 and len(data) > _CHUNK
    submitted: set[LinkKey | bytes] = set()
    examined: dict[PathKey, bool] = {}
    link_verdicts: dict[LinkKey, bool] = {}
    signature_verdicts: dict[bytes, bool] = {}
    passed_paths: set[PathKey] = set()
    results: list[VerifiedDocument | NitroAttestError] = []

    def judge(step: _Step) -> None:
        # Steps are judged in order, so every link a document needs is known by its own step's end.
        for key, verdict in step.results().items():
            if isinstance(key, tuple):
                link_verdicts[key] = verdict
            else:
                signature_verdicts[key] = verdict
        for document in step.documents:
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
                    passed_paths=passed_paths,
                )
            except NitroAttestError as error:
                results.append(error)
            else:
                results.append(verified)

    in_flight: deque[_Step] = deque()
    for start in range(0, len(data), _CHUNK):
        parsed = _parse_all(data[start : start + _CHUNK])
        in_flight.append(_Step(parsed, _signature_jobs(parsed, at, roots, submitted, examined), threads, pipelined))
        # Two steps under way: the older one's verdicts are (nearly) made by the time it is judged.
        if len(in_flight) > _IN_FLIGHT:
            judge(in_flight.popleft())
    while in_flight:
        judge(in_flight.popleft())
    return results
