"""One command: nitro_attest against a hand-written baseline and its peers, side by side in one run.

    python benchmarks/run.py [--n 2000 --enclaves 20 --instances 5] [--quick] [--profile] [--json FILE]

Two workloads:

- the **stream**: N documents from E enclaves on I instances under one
  look-alike AWS PKI (``benchmarks/stream.py``, made with
  ``nitro_attest.testing``), all verified at one time;
- the **real documents**: the 64 real AWS documents of ``../shared/vectors/aws``
  (skipped, with the reason, when absent), each at its own timestamp. They
  share few certificates, so caching helps them much less.

Every measurement of a workload runs once per round, in a rotated order, for
several rounds; each is reported as its median throughput and as the median
of its per-round ratios to its reference (the hand-written baseline for whole
documents, pyca/cryptography's own ``verify`` for raw P-384), with the range
of those ratios. Ratios are what to read: the machine is shared and noisy.

Then the worst cases (``benchmarks/worst_case.py``): the costliest accepted
and rejected inputs the limits allow, cold and warm, against a typical
document in the same rounds (``--no-worst-case`` skips them).

Peers: evervault-attestation-bindings under libfaketime on the real documents
whose ``user_data`` Evervault's binding check can accept (in a subprocess,
against the baseline and nitro_attest in that same subprocess), and a
pycose-based check on both workloads. A peer that cannot run is skipped with
the reason.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import inspect
import io
import itertools
import json
import math
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_der_public_key

sys.path.insert(0, str(Path(__file__).resolve().parent))

import p384_backends
from _common import (  # first: puts this checkout's nitro_attest on the path
    BENCHMARKS,
    DEFAULT_VECTORS,
    RealDocument,
    cache_clearers,
    clear_all,
    leaf_valid_for,
    load_real_documents,
    machine,
    machine_line,
)
from baseline import root_set, verify_baseline, verify_pycose
from stream import Stream, make_stream
from worst_case import run as run_worst_case

import nitro_attest

try:  # the P-384 backends, once the library has them
    from nitro_attest import _backend as backend_module
except ImportError:
    backend_module = None  # type: ignore[assignment]

# Targets of issues 4 and 16 (ratios, measured side by side in one run).
TARGET_BATCH = 13.0  # verify_batch (2 workers) / baseline, default stream (issue 16; issue 4's was 10)
TARGET_LIMIT = 0.85  # verify_batch (2 workers) / (2 x the fastest backend's one-core verify/s), default stream
TARGET_WARM = 4.0  # warm verify() / baseline, default stream
TARGET_NATIVE = 1.25  # native raw P-384 / cryptography's verify
TARGET_WORKERS = 1.7  # verify_batch 2 workers / 1 worker


@dataclass
class Row:
    """One measured thing. ``run`` does the timed work and returns how many items it processed."""

    workload: str
    name: str
    unit: str  # "docs/s" or "verifs/s"
    run: Callable[[], int] | None
    prepare: Callable[[], None] | None = None  # untimed, before each timing
    rate: Callable[[], float] | None = None  # instead of run: a measurement that times itself (a C program)
    reference: str | None = None  # name of the row it is a ratio to (same workload); None: it is a reference
    skip: str | None = None
    samples: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios) if self.ratios else float("nan")


# --------------------------------------------------------------------------- P-384 jobs


@dataclass(frozen=True)
class RawJob:
    key: Any  # cryptography EllipticCurvePublicKey
    point: bytes  # uncompressed SEC1
    message: bytes
    der_signature: bytes
    raw_signature: bytes  # r || s


def _raw_jobs(datas: Sequence[bytes], *, links: bool) -> list[RawJob]:
    """The document signatures of ``datas`` (and with ``links`` every certificate link), as P-384 jobs."""
    jobs = []
    for data in datas:
        outer = cbor2.loads(data)
        outer = outer.value if isinstance(outer, cbor2.CBORTag) else outer
        protected, _, payload, signature = outer
        document = cbor2.loads(payload)
        path = [x509.load_der_x509_certificate(der) for der in (*document["cabundle"], document["certificate"])]
        pairs = list(itertools.pairwise(path)) if links else []
        for issuer, subject in pairs:
            r, s = decode_dss_signature(subject.signature)
            key = issuer.public_key()
            jobs.append(
                RawJob(
                    key,
                    key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint),
                    subject.tbs_certificate_bytes,
                    subject.signature,
                    r.to_bytes(48, "big") + s.to_bytes(48, "big"),
                )
            )
        key = path[-1].public_key()
        r, s = int.from_bytes(signature[:48], "big"), int.from_bytes(signature[48:], "big")
        jobs.append(
            RawJob(
                key,
                key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint),
                cbor2.dumps(["Signature1", protected, b"", payload]),
                encode_dss_signature(r, s),
                bytes(signature),
            )
        )
    return jobs


_RAW_REFERENCE = "P-384 raw: cryptography key.verify (loaded keys)"


def _raw_rows(workload: str, jobs: list[RawJob]) -> list[Row]:
    ecdsa = ec.ECDSA(hashes.SHA384())
    reference = _RAW_REFERENCE

    def direct() -> int:
        for job in jobs:
            job.key.verify(job.der_signature, job.message, ecdsa)
        return len(jobs)

    rows = [Row(workload, reference, "verifs/s", direct)]
    try:
        direct()
    except InvalidSignature:
        rows[0].skip = "a job did not verify (bug in the benchmark)"
    if backend_module is None:
        rows.append(Row(workload, "P-384 raw: nitro_attest._backend", "verifs/s", None, skip="not available yet"))
        return rows
    job_type = backend_module.P384Job
    backend_jobs = [job_type(job.point, job.message, job.raw_signature) for job in jobs]
    for backend in backend_module.available_backends():
        for workers in (1, 2):

            def many(backend: str = backend, workers: int = workers) -> int:
                verdicts = backend_module.verify_p384_many(backend_jobs, workers=workers, backend=backend)
                return len(verdicts)

            row = Row(
                workload,
                f"P-384 raw: verify_p384_many backend={backend} workers={workers}",
                "verifs/s",
                many,
                reference=reference,
            )
            if not all(backend_module.verify_p384_many(backend_jobs[:50], workers=workers, backend=backend)):
                row.skip = "wrong verdicts (a valid signature rejected)"
            rows.append(row)
    missing = {"nettle"} - set(backend_module.available_backends())
    for name in sorted(missing):
        reason = getattr(backend_module, "NATIVE_IMPORT_ERROR", None) or "not available"
        rows.append(Row(workload, f"P-384 raw: verify_p384_many backend={name}", "verifs/s", None, skip=reason))
    return rows


# --------------------------------------------------------------------------- document rows


def _document_rows(
    workload: str,
    items: list[tuple[bytes, datetime]],
    policy: Any,
    roots: Sequence[Any] | None,
    *,
    pycose_limit: int,
    pycose_skip: str | None,
    batch_per_document: bool,
) -> list[Row]:
    """Baseline, pycose, verify() cold and warm, verify_batch() 1 and 2 workers, over ``items`` (data, at)."""
    root_bytes = root_set(roots if roots is not None else [nitro_attest.AWS_NITRO_ROOT_G1])
    clearers = cache_clearers()
    reference = "hand-written baseline (cbor2 + cryptography, 5 verifications)"

    def baseline() -> int:
        for data, at in items:
            verify_baseline(data, root_bytes, at)
        return len(items)

    pycose_items = items[:pycose_limit]

    def pycose() -> int:
        for data, at in pycose_items:
            verify_pycose(data, root_bytes, at)
        return len(pycose_items)

    def cold() -> int:
        for data, at in items:
            clear_all(clearers)
            nitro_attest.verify(data, policy, at=at, roots=roots)
        return len(items)

    def warm_up() -> None:
        for data, at in items:
            nitro_attest.verify(data, policy, at=at, roots=roots)

    def warm() -> int:
        for data, at in items:
            nitro_attest.verify(data, policy, at=at, roots=roots)
        return len(items)

    pycose_name = "peer: pycose 1.1 COSE_Sign1 + cryptography chain"
    if len(pycose_items) < len(items):
        pycose_name += f" (first {len(pycose_items)} docs)"
    rows = [
        Row(workload, reference, "docs/s", baseline),
        Row(workload, pycose_name, "docs/s", pycose, reference=reference, skip=pycose_skip),
        Row(workload, "verify() cold (every cache cleared before each doc)", "docs/s", cold, reference=reference),
        Row(workload, "verify() warm (after one pass)", "docs/s", warm, prepare=warm_up, reference=reference),
    ]
    batch = getattr(nitro_attest, "verify_batch", None)
    if batch is None:
        rows.append(Row(workload, "verify_batch()", "docs/s", None, skip="not available yet"))
        return rows
    has_workers = "workers" in inspect.signature(batch).parameters
    for workers in (1, 2) if has_workers else (None,):
        kwargs = {"workers": workers} if workers is not None else {}
        if batch_per_document:
            # One call per document: each real document verifies only at its own time.

            def run_each(kwargs: dict[str, Any] = kwargs) -> int:
                for data, at in items:
                    clear_all(clearers)
                    batch([data], policy, at=at, roots=roots, **kwargs)
                return len(items)

            run: Callable[[], int] = run_each

            label = f"verify_batch(workers={workers}), one call per doc (own `at`), caches cleared before each"
        else:
            at = items[0][1]

            def run_all(kwargs: dict[str, Any] = kwargs, at: datetime = at) -> int:
                return len(batch([data for data, _ in items], policy, at=at, roots=roots, **kwargs))

            run = run_all

            label = f"verify_batch(workers={workers}), whole stream in one call, link cache cleared first"
        rows.append(Row(workload, label, "docs/s", run, prepare=lambda: clear_all(clearers), reference=reference))
    return rows


def _check_rows(rows: list[Row], items: list[tuple[bytes, datetime]], policy: Any, roots: Any) -> None:
    """Everything measured must accept every document: checked once, untimed."""
    for data, at in items:
        nitro_attest.verify(data, policy, at=at, roots=roots)  # raises if the workload is broken
    batch = getattr(nitro_attest, "verify_batch", None)
    if batch is not None and len({at for _, at in items}) == 1:
        results = batch([data for data, _ in items], policy, at=items[0][1], roots=roots)
        bad = [result for result in results if isinstance(result, Exception)]
        if bad:
            for row in rows:
                if row.name.startswith("verify_batch"):
                    row.skip = f"verify_batch rejected {len(bad)} valid documents: {bad[0]!r}"
    root_bytes = root_set(roots if roots is not None else [nitro_attest.AWS_NITRO_ROOT_G1])
    for row in rows:
        check = verify_pycose if row.name.startswith("peer: pycose") else verify_baseline
        if row.skip is None and row.run is not None and row.name.startswith(("peer: pycose", "hand-written")):
            try:
                for data, at in items[:50]:
                    check(data, root_bytes, at)
            except Exception as exc:  # noqa: BLE001  (a peer that cannot verify is reported, not fatal)
                row.skip = f"cannot verify these documents: {type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------- measuring


def measure(rows: list[Row], rounds: int, progress: Callable[[str], None]) -> None:
    """Each runnable row once per round, in a rotated order; per-round ratios to the row's reference."""
    runnable = [row for row in rows if row.skip is None and (row.run is not None or row.rate is not None)]
    by_name = {(row.workload, row.name): row for row in runnable}
    for round_index in range(rounds):
        shift = round_index % len(runnable)
        for row in runnable[shift:] + runnable[:shift]:
            if row.rate is not None:
                row.samples.append(row.rate())
                continue
            if row.prepare is not None:
                row.prepare()
            gc.collect()
            began = time.perf_counter()
            count = row.run()  # type: ignore[misc]
            row.samples.append(count / (time.perf_counter() - began))
        progress(f"round {round_index + 1}/{rounds} done")
    for row in runnable:
        reference = by_name.get((row.workload, row.reference)) if row.reference else row
        if reference is not None and reference.samples:
            row.ratios = [a / b for a, b in zip(row.samples, reference.samples, strict=True)]


def run_evervault(
    documents: list[RealDocument], vectors: Path, *, rounds: int, iterations: int, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Evervault on each eligible real document, in a faketime subprocess each; (results, skip reason)."""
    try:
        import evervault_attestation_bindings  # type: ignore[import-untyped]  # noqa: F401, PLC0415 (optional peer)
    except ImportError as exc:
        return [], f"evervault-attestation-bindings not installed ({exc}); pip install -r benchmarks/requirements.txt"
    faketime = shutil.which("faketime")
    if faketime is None:
        return [], "libfaketime not installed (apt-get install faketime): the bindings only check at the current time"
    eligible = []
    for document in documents:
        if document.user_data is None or leaf_valid_for(document) < timedelta(minutes=10):
            continue
        try:
            load_der_public_key(document.user_data)
        except ValueError:
            continue
        eligible.append(document)
    if not eligible:
        return [], "no real document has a user_data that is a SubjectPublicKeyInfo (Evervault's binding)"
    results = []
    for document in eligible[:limit]:
        # One second after the document was made; the faked clock then runs at real speed.
        fake = (document.at + timedelta(seconds=1)).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        command = [
            faketime,
            fake,
            sys.executable,
            str(BENCHMARKS / "evervault_peer.py"),
            str(vectors / f"{document.name}.cbor"),
            "--rounds",
            str(rounds),
            "--iterations",
            str(iterations),
        ]
        env = dict(os.environ, TZ="UTC", FAKETIME_DONT_FAKE_MONOTONIC="1")
        # Fixed argv (faketime, this Python, our script, a vector file): no shell, nothing from outside.
        completed = subprocess.run(  # noqa: S603
            command, capture_output=True, text=True, env=env, check=False, timeout=600
        )
        try:
            result = json.loads(completed.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            result = {"skip": f"subprocess failed ({completed.returncode}): {completed.stderr.strip()[-300:]}"}
        result.setdefault("document", document.name)
        results.append(result)
    measured = [result for result in results if "skip" not in result]
    if not measured:
        return results, "; ".join(f"{result['document']}: {result['skip']}" for result in results)
    return results, None


# --------------------------------------------------------------------------- profiles


def profile(label: str, function: Callable[[], Any], top: int = 18) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    function()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    lines += ["", "own time by where it is spent:", *_by_module(stats)]
    # Keep the summary line and the table; trim the absolute paths for readability.
    text = "\n".join(
        line.replace(str(Path(sys.prefix)), "<venv>").replace(str(BENCHMARKS.parent) + "/", "") for line in lines
    )
    return f"--- profile: {label} (cProfile, sorted by own time)\n{text}\n"


def _by_module(stats: pstats.Stats) -> list[str]:
    """Own (not cumulative) time grouped by module: what share the P-384 arithmetic has, and the rest."""
    groups: dict[str, float] = {}
    for (filename, _line, function), entry in stats.stats.items():  # type: ignore[attr-defined]
        own = entry[2]
        if "verify_p384_many" in function and filename == "~":
            group = "native P-384 (nettle, C)"
        elif "nitro_attest" in filename:
            group = "nitro_attest/" + Path(filename).name
        elif "cryptography" in filename or "x509" in function or "cryptography" in function:
            group = "pyca/cryptography (Python side and C calls)"
        elif filename == "~" and "cbor2" in function:
            group = "cbor2 (C)"
        elif filename == "~" and "cpu_count" in function:
            group = "os.cpu_count()"
        elif filename == "~":
            group = "Python built-ins (isinstance, len, sorted, ...)"
        else:
            group = "other Python"
        groups[group] = groups.get(group, 0.0) + own
    total = sum(groups.values()) or 1.0
    ranked = sorted(groups.items(), key=lambda item: -item[1])
    return [f"  {seconds / total:6.1%}  {seconds:7.3f} s  {group}" for group, seconds in ranked[:12]]


# --------------------------------------------------------------------------- report


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def table(rows: list[Row]) -> str:
    lines = [
        "| workload | measurement | median throughput | ratio to reference (median) | ratio range |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        if row.skip is not None or (row.run is None and row.rate is None):
            lines.append(f"| {row.workload} | {row.name} | skipped: {row.skip} | | |")
            continue
        if row.reference is None:
            ratio, spread = "1.00 (reference)", ""
        else:
            ratio = f"{row.ratio:.2f}x"
            spread = f"{min(row.ratios):.2f}-{max(row.ratios):.2f}"
        lines.append(f"| {row.workload} | {row.name} | {_fmt(row.median)} {row.unit} | {ratio} | {spread} |")
    return "\n".join(lines)


def _find(rows: list[Row], workload: str, prefix: str) -> Row | None:
    for row in rows:
        if row.workload == workload and row.name.startswith(prefix) and row.samples:
            return row
    return None


def targets(rows: list[Row], stream_label: str, default_stream: bool) -> tuple[list[str], bool]:
    """The issue's targets, met or missed (by how much); whether any was missed."""
    out: list[str] = []
    missed = False

    def judge(label: str, value: float | None, goal: float, how: str) -> None:
        nonlocal missed
        if value is None or math.isnan(value):
            out.append(f"- {label}: not measurable ({how})")
            return
        ok = value >= goal
        missed |= not ok
        verdict = "MET" if ok else f"MISSED by {goal - value:.2f} ({value / goal:.0%} of the target)"
        out.append(f"- {label}: {value:.2f}x (target >= {goal}x): {verdict}")

    batch2 = _find(rows, stream_label, "verify_batch(workers=2)")
    batch1 = _find(rows, stream_label, "verify_batch(workers=1)")
    warm = _find(rows, stream_label, "verify() warm")
    judge(
        "verify_batch(workers=2) / baseline",
        batch2.ratio if batch2 else None,
        TARGET_BATCH,
        "verify_batch not available",
    )
    limit, fastest = _limit_ratio(rows, stream_label, batch2)
    judge(
        f"verify_batch(workers=2) / (2 x the fastest backend's one-core verify/s{fastest})",
        limit,
        TARGET_LIMIT,
        "no backend measured by benchmarks/p384_backends.c (../shared's Wycheproof vectors absent?)",
    )
    judge("warm verify() / baseline", warm.ratio if warm else None, TARGET_WARM, "verify() not measured")
    native = _find(rows, stream_label, "P-384 raw: verify_p384_many backend=nettle workers=1")
    judge(
        "native (nettle) raw P-384 / cryptography's key.verify, 1 thread",
        native.ratio if native else None,
        TARGET_NATIVE,
        "native backend not available",
    )
    crypto_backend = _find(rows, stream_label, "P-384 raw: verify_p384_many backend=cryptography workers=1")
    if native and crypto_backend:
        ratios = [a / b for a, b in zip(native.samples, crypto_backend.samples, strict=True)]
        out.append(f"  (native / backend=cryptography through the same API: {statistics.median(ratios):.2f}x)")
    if batch1 and batch2:
        scaling = statistics.median([a / b for a, b in zip(batch2.samples, batch1.samples, strict=True)])
        judge("verify_batch 2 workers / 1 worker", scaling, TARGET_WORKERS, "")
    else:
        judge("verify_batch 2 workers / 1 worker", None, TARGET_WORKERS, "verify_batch with workers not available")
    if not default_stream:
        out.append("  (not the default stream: N=2000, E=20, I=5; the targets are defined on it)")
    return out, missed


_ONE_CORE = "P-384 raw one core: "


def _limit_ratio(rows: list[Row], stream_label: str, batch2: Row | None) -> tuple[float | None, str]:
    """Per round, verify_batch(workers=2)'s docs/s over twice the fastest trusted library's; the median, and which."""
    libraries = [row for row in rows if row.workload == stream_label and row.name.startswith(_ONE_CORE) and row.samples]
    if batch2 is None or not libraries:
        return None, ""
    per_round = [
        batch / (2 * max(library.samples[index] for library in libraries)) for index, batch in enumerate(batch2.samples)
    ]
    fastest = max(libraries, key=lambda library: library.median).name.removeprefix(_ONE_CORE)
    return statistics.median(per_round), f", fastest here: {fastest}"


def _library_rows(workload: str, directory: Path) -> list[Row]:
    """Each crypto library's one-core P-384 verify/s (benchmarks/p384_backends.c, Wycheproof-checked first)."""
    wycheproof = DEFAULT_VECTORS.parent.parent / "wycheproof" / "ecdsa_secp384r1_sha384_p1363_test.json"
    if not wycheproof.is_file():
        return [Row(workload, f"{_ONE_CORE}every library", "verifs/s", None, skip=f"{wycheproof} absent")]
    prepared = p384_backends.prepare(directory, wycheproof, [sys.executable])
    rows = []
    for name in prepared.commands:
        _, label, trusted = p384_backends.one_core_sample(prepared, name, 0.05)

        def rate(name: str = name) -> float:
            return p384_backends.one_core_sample(prepared, name, _LIBRARY_SECONDS)[0]

        row = Row(workload, f"{_ONE_CORE}{name} ({label})", "verifs/s", None, rate=rate, reference=_RAW_REFERENCE)
        if not trusted.startswith("yes"):
            row.skip = f"verdicts not trusted: {trusted}"
        rows.append(row)
    return rows


# Each library's timed part per round: long enough to settle, short beside a round of the stream.
_LIBRARY_SECONDS = 0.3


def analysis(rows: list[Row], stream_label: str, verifications_per_document: float) -> list[str]:
    """Where verify_batch's time goes, from this run's timings (no profiler): the P-384 part and the rest.

    One worker: time per document = P-384 time (verifications / raw rate of the
    backend on one thread) + everything else (decoding, checks, policy: Python,
    one thread). Only the P-384 part runs on several threads, so with w workers
    the best case is rest + P-384 / w (Amdahl), and even a free P-384 leaves rest.
    """
    baseline = _find(rows, stream_label, "hand-written baseline")
    batch1 = _find(rows, stream_label, "verify_batch(workers=1)")
    default = backend_module.BACKEND if backend_module is not None else None
    raw1 = _find(rows, stream_label, f"P-384 raw: verify_p384_many backend={default} workers=1")
    raw2 = _find(rows, stream_label, f"P-384 raw: verify_p384_many backend={default} workers=2")
    if not (baseline and batch1 and raw1):
        return []
    # Per round (the rows of a round ran minutes apart at most, under the same load), then medians.
    per_round = [
        (1 / batch, verifications_per_document / raw, 1 / base)
        for batch, raw, base in zip(batch1.samples, raw1.samples, baseline.samples, strict=True)
    ]
    per_document = statistics.median(total for total, _, _ in per_round)
    p384 = statistics.median(arithmetic for _, arithmetic, _ in per_round)
    rest = statistics.median(max(total - arithmetic, 0.0) for total, arithmetic, _ in per_round)
    best_two = statistics.median(
        total / (max(total - arithmetic, 0.0) + arithmetic / 2) for total, arithmetic, _ in per_round
    )
    # With the arithmetic free, only the rest is left: docs/s = 1 / rest (meaningless when rest is noise).
    free_text = f"{(1 / rest) / baseline.median:.1f}x" if rest > 0.05 * per_document else "n/a (rest within noise)"
    budget = 1 / (TARGET_BATCH * baseline.median) - p384 / 2
    out = [
        f"- verify_batch(workers=1): {per_document * 1e6:,.0f} us/doc = P-384 {p384 * 1e6:,.0f} us "
        f"({verifications_per_document:.3f} verifications, backend={default} at {raw1.median:,.0f}/s) "
        f"+ the rest {rest * 1e6:,.0f} us (decoding, chain and policy checks: Python, one thread)",
        f"- best case with 2 workers (only P-384 is spread): {best_two:.2f}x one worker "
        f"(target {TARGET_WORKERS}x); with free P-384: {free_text} "
        f"the baseline (target {TARGET_BATCH}x)",
        f"- {TARGET_BATCH:g}x the baseline is {1e6 / (TARGET_BATCH * baseline.median):,.0f} us/doc: "
        f"with P-384 on 2 threads ({p384 / 2 * 1e6:,.0f} us/doc) the rest must fit in {budget * 1e6:,.0f} us",
    ]
    if raw2:
        scaling = statistics.median([a / b for a, b in zip(raw2.samples, raw1.samples, strict=True)])
        out.append(
            f"- raw P-384 alone, backend={default}, 2 threads / 1 thread: {scaling:.2f}x in this run "
            "(how much of the second core the machine actually gave)"
        )
    return out


def peers_summary(rows: list[Row], evervault: list[dict[str, Any]], evervault_skip: str | None) -> list[str]:
    out = []
    for row in rows:
        if row.name.startswith("peer: pycose") and row.samples:
            for prefix in ("verify() cold", "verify() warm", "verify_batch(workers=2)"):
                mine = _find(rows, row.workload, prefix)
                if mine:
                    ratio = statistics.median([a / b for a, b in zip(mine.samples, row.samples, strict=True)])
                    out.append(f"- {row.workload}: {mine.name} / pycose: {ratio:.2f}x")
    if evervault_skip:
        out.append(f"- evervault-attestation-bindings: skipped: {evervault_skip}")
    measured = [result for result in evervault if "skip" not in result]
    if measured:

        def pooled(key: str) -> list[float]:
            return [value for result in measured for value in result["ratios"][key]]

        names = ", ".join(result["document"] for result in measured)
        out.append(
            f"- evervault-attestation-bindings 0.5 under libfaketime, on {len(measured)} real document(s) ({names}), "
            f"median {statistics.median([v for r in measured for v in r['samples']['evervault']]):,.0f} docs/s:"
        )
        out.append(f"  - evervault / hand-written baseline: {statistics.median(pooled('evervault/baseline')):.2f}x")
        out.append(f"  - verify() cold / evervault: {statistics.median(pooled('verify_cold/evervault')):.2f}x")
        out.append(
            f"  - verify() warm / evervault: {statistics.median(pooled('verify_warm/evervault')):.2f}x "
            "(the same document again: only its own signature is left to check)"
        )
        for result in evervault:
            if "skip" in result:
                out.append(f"  - {result['document']}: skipped: {result['skip']}")
    return out


# --------------------------------------------------------------------------- main


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _header(rounds: int) -> datetime:
    facts = machine()
    began = datetime.now(timezone.utc)
    print(f"# nitro_attest benchmark, {began:%Y-%m-%d %H:%M} UTC")
    print(machine_line(facts))
    print(f"nitro_attest: {Path(nitro_attest.__file__).parent}; load average at start: {_loadavg()}")
    if backend_module is not None:
        backends = ", ".join(backend_module.available_backends())
        print(f"P-384 backends: {backends}; default BACKEND={backend_module.BACKEND}")
    else:
        print("P-384 backends: nitro_attest._backend not available yet")
    print(f"caches cleared for 'cold': {', '.join(name for name, _ in _find_caches()) or 'none found'}")
    print(f"rounds: {rounds} per workload, rotated order; ratios are medians of per-round ratios\n")
    return began


def _find_caches() -> list[tuple[str, Any]]:
    """The package's caches, found once: what grows while two fresh documents verify (see cache_clearers)."""
    probe = make_stream(2, 2, 1)
    return cache_clearers(
        lambda: [nitro_attest.verify(data, probe.policy, at=probe.at, roots=probe.roots) for data in probe.documents]
    )


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def _pycose_skip() -> str | None:
    try:
        import pycose  # noqa: F401, PLC0415 (an optional peer: is it installed?)
    except ImportError as exc:
        return f"pycose not installed ({exc}); pip install -r benchmarks/requirements.txt"
    return None


def _stream_workload(stream: Stream, label: str, rounds: int, libraries: Path) -> list[Row]:
    items = [(data, stream.at) for data in stream.documents]
    rows = _raw_rows(label, _raw_jobs(stream.documents, links=False))
    rows += _library_rows(label, libraries)
    rows += _document_rows(
        label,
        items,
        stream.policy,
        stream.roots,
        pycose_limit=max(20, len(items) // 5),
        pycose_skip=_pycose_skip(),
        batch_per_document=False,
    )
    _check_rows(rows, items, stream.policy, stream.roots)
    _say("measuring the stream ...")
    measure(rows, rounds, _say)
    return rows


def _real_workload(vectors: Path, rounds: int, *, quick: bool) -> tuple[list[Row], list[dict[str, Any]], str | None]:
    if not vectors.is_dir():
        reason = f"reference documents absent ({vectors}: ../shared is not shipped with the project)"
        return [Row("real AWS documents", "everything", "docs/s", None, skip=reason)], [], reason
    documents = load_real_documents(vectors)
    label = f"{len(documents)} real AWS documents"
    # A few passes over the documents per timing, so that each timing lasts long enough to mean something.
    passes = 1 if quick else 3
    items = [(document.data, document.at) for document in documents] * passes
    policy = nitro_attest.Policy.any_enclave(allow_debug=True)
    rows = _raw_rows(label, _raw_jobs([document.data for document in documents], links=True) * passes)
    rows += _document_rows(
        label,
        items,
        policy,
        None,
        pycose_limit=len(items),
        pycose_skip=_pycose_skip(),
        batch_per_document=True,
    )
    _check_rows(rows, items, policy, None)
    _say("measuring the real documents ...")
    measure(rows, rounds, _say)
    _say("evervault peer (faketime subprocesses) ...")
    evervault, evervault_skip = run_evervault(
        documents, vectors, rounds=rounds, iterations=20 if quick else 40, limit=1 if quick else 99
    )
    return rows, evervault, evervault_skip


def _stages(stream: Stream, rounds: int = 5) -> list[str]:
    """Warm verify() cut into its stages, each timed alone over the stream, no profiler.

    The stages and warm verify() itself run interleaved, in a rotated order,
    for ``rounds`` rounds; each is reported as its median. Uses the library's
    internal stage functions; when they change, says so instead.
    """
    try:
        from nitro_attest import _chain as chain  # noqa: PLC0415 (internal, may change)
        from nitro_attest import _cose as cose  # noqa: PLC0415
        from nitro_attest import _verify  # noqa: PLC0415

        documents = [nitro_attest.parse(data) for data in stream.documents]

        def parse_all() -> None:
            for data in stream.documents:
                nitro_attest.parse(data)

        def chain_all() -> None:
            for document in documents:
                chain.validate_chain(document, stream.at, stream.roots)

        def signature_all() -> None:
            for document in documents:
                cose.verify_document_signature(document)

        def time_and_policy_all() -> None:
            for document in documents:
                _verify.check_document_time(document, stream.at)
                stream.policy.check(document, stream.at)

        def verify_all() -> None:
            for data in stream.documents:
                nitro_attest.verify(data, stream.policy, at=stream.at, roots=stream.roots)

        stages: dict[str, Callable[[], None]] = {
            "parse(): strict CBOR, schema, certificates (cached)": parse_all,
            "chain: checks + link-cache lookups (warm)": chain_all,
            "COSE signature (1 P-384 verification)": signature_all,
            "document time + policy": time_and_policy_all,
            "warm verify() itself": verify_all,
        }
        verify_all()  # warm
        times: dict[str, list[float]] = {label: [] for label in stages}
        labels = list(stages)
        for round_index in range(rounds):
            shift = round_index % len(labels)
            for label in labels[shift:] + labels[:shift]:
                gc.collect()
                began = time.perf_counter()
                stages[label]()
                times[label].append((time.perf_counter() - began) / len(documents))
        medians = {label: statistics.median(values) for label, values in times.items()}
        out = [f"  {medians[label] * 1e6:7.0f} us/doc  {label}" for label in labels[:-1]]
        total = sum(medians[label] for label in labels[:-1])
        out.append(f"  {total * 1e6:7.0f} us/doc  sum of the stages")
        out.append(f"  {medians[labels[-1]] * 1e6:7.0f} us/doc  {labels[-1]}")
        return out
    except Exception as exc:  # noqa: BLE001  (internal API: report, do not fail the run)
        return [f"  stage breakdown unavailable: {type(exc).__name__}: {exc}"]


def _profiles(stream: Stream) -> None:
    print("\nWarm verify() by stage (each stage timed alone over the stream, interleaved, medians; no profiler):")
    print("\n".join(_stages(stream)))
    print("\nProfiles (stream; where the time goes):")
    items = list(stream.documents)

    def warm_pass() -> None:
        for data in items:
            nitro_attest.verify(data, stream.policy, at=stream.at, roots=stream.roots)

    warm_pass()  # the one pass that warms the caches
    print(profile("verify() warm, one pass over the stream", warm_pass))
    batch = getattr(nitro_attest, "verify_batch", None)
    if batch is not None:
        clear_all(cache_clearers())

        def batch_pass() -> None:
            batch(items, stream.policy, at=stream.at, roots=stream.roots, workers=1)

        print(profile("verify_batch(workers=1), whole stream, link cache cleared first", batch_pass))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2000, help="documents in the stream (default 2000)")
    parser.add_argument("--enclaves", type=int, default=20, help="enclaves in the stream (default 20)")
    parser.add_argument("--instances", type=int, default=5, help="instances in the stream (default 5)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: N=200, 2 rounds, one evervault document")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per workload (default 5; 2 with --quick)")
    parser.add_argument("--vectors", type=Path, default=DEFAULT_VECTORS, help="directory of real documents")
    parser.add_argument("--profile", action="store_true", help="print profiles even when every target is met")
    parser.add_argument("--json", type=Path, help="also write every sample to this file")
    parser.add_argument("--no-worst-case", action="store_true", help="skip the worst-case inputs (worst_case.py)")
    args = parser.parse_args(argv)
    if args.quick and args.n == 2000:
        args.n = 200
    rounds = args.rounds or (2 if args.quick else 5)
    began = _header(rounds)

    _say(f"making the stream: N={args.n}, E={args.enclaves}, I={args.instances} ...")
    made = time.perf_counter()
    stream = make_stream(args.n, args.enclaves, args.instances)
    _say(f"  made in {time.perf_counter() - made:.1f} s")
    stream_label = f"stream N={args.n} E={args.enclaves} I={args.instances}"
    with tempfile.TemporaryDirectory(prefix="nitro_attest-bench-") as libraries:
        rows = _stream_workload(stream, stream_label, rounds, Path(libraries))
    real_rows, evervault, evervault_skip = _real_workload(args.vectors, rounds, quick=args.quick)
    rows += real_rows

    print(table(rows))
    print("\nTargets (default stream, side by side in this run):")
    target_lines, missed = targets(rows, stream_label, (args.n, args.enclaves, args.instances) == (2000, 20, 5))
    print("\n".join(target_lines))
    links = 2 + args.instances + args.enclaves  # root->regional, regional->zonal, zonal->instance, instance->leaf
    why = analysis(rows, stream_label, 1 + links / args.n)
    if why:
        print("\nWhere verify_batch's time goes (per-round estimates, medians; no profiler):")
        print("\n".join(why))
        target_lines += why
    print("\nPeers:")
    print("\n".join(peers_summary(rows, evervault, evervault_skip)) or "- none measured")
    worst_case: dict[str, Any] | None = None
    if not args.no_worst_case:
        print("\nWorst cases (benchmarks/worst_case.py: each input cold and warm, beside a typical document):")
        worst_lines, worst_case = run_worst_case(rounds, quick=args.quick, progress=_say)
        print("\n".join(worst_lines))
    if missed or args.profile:
        _profiles(stream)
    print(f"elapsed: {(datetime.now(timezone.utc) - began).total_seconds():.0f} s; load average at end: {_loadavg()}")
    if args.json:
        _write_json(
            args.json,
            began=began,
            rounds=rounds,
            rows=rows,
            evervault=evervault,
            evervault_skip=evervault_skip,
            target_lines=target_lines,
            worst_case=worst_case,
        )
    return 0


def _write_json(
    path: Path,
    *,
    began: datetime,
    rounds: int,
    rows: list[Row],
    evervault: list[dict[str, Any]],
    evervault_skip: str | None,
    target_lines: list[str],
    worst_case: dict[str, Any] | None,
) -> None:
    record = {
        "started": began.isoformat(),
        "machine": machine(),
        "rounds": rounds,
        "rows": [
            {
                "workload": row.workload,
                "name": row.name,
                "unit": row.unit,
                "reference": row.reference,
                "skip": row.skip,
                "samples": row.samples,
                "ratios": row.ratios,
            }
            for row in rows
        ],
        "evervault": evervault,
        "evervault_skip": evervault_skip,
        "targets": target_lines,
        "worst_case": worst_case,
    }
    path.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    sys.exit(main())
