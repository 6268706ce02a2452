"""P-384 ECDSA/SHA-384 verification in bulk: the native (nettle) fast path or pyca/cryptography.

:func:`verify_p384_many` takes many independent jobs and returns one verdict
per job, in order. Two backends give the same verdicts:

- ``"nettle"``: the optional C extension :mod:`nitro_attest._native` (GNU
  Nettle/hogweed), one call for all jobs, spread over ``workers`` threads with
  the GIL released. Built at install time when ``nettle-dev`` is present;
  ``NITRO_ATTEST_NO_NATIVE`` set to anything but ``""`` or ``"0"`` keeps it from
  being loaded at all.
- ``"cryptography"``: pyca/cryptography, on a thread pool when ``workers > 1``
  (it releases the GIL while verifying).

:data:`BACKEND` is the default: ``"nettle"`` when the extension loaded,
else ``"cryptography"``. An extension that was never built is not an error and
is not warned about (the build step warns); one that is present but cannot be
loaded (e.g. libnettle removed since the build) is warned about once, at import.

Only the arithmetic is in C. Which bytes make a job is decided here and by the
callers: a job whose fields have the wrong type or length is False before any
backend sees it; the numeric checks (0 < r, s < n; coordinates < p; the point
on the curve) are made by each backend, and again explicitly in the C code.
"""

from __future__ import annotations

import importlib
import itertools
import os
import threading
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import ModuleType

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

__all__ = [
    "BACKEND",
    "NATIVE",
    "NATIVE_IMPORT_ERROR",
    "P384_ORDER",
    "P384Job",
    "PendingVerdicts",
    "available_backends",
    "start_p384_many",
    "verify_p384_many",
]

#: The order n of the P-384 group (SEC 2, section 2.5.1): r and s must lie in 1..n-1.
P384_ORDER = int("ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973", 16)
_FIELD_SIZE = 48
_POINT_SIZE = 1 + 2 * _FIELD_SIZE  # 0x04 || X || Y
_SIGNATURE_SIZE = 2 * _FIELD_SIZE  # r || s
_UNCOMPRESSED = 0x04
_ECDSA_SHA384 = ec.ECDSA(hashes.SHA384())
_CURVE = ec.SECP384R1()
_NATIVE_NAME = f"{__package__}._native"
# Below this many jobs per extra worker a thread pool costs more than it gains.
_MIN_JOBS_PER_WORKER = 2
# More threads than this never help (the C code clamps to the same number).
_MAX_WORKERS = 256


@dataclass(frozen=True)
class P384Job:
    """One ECDSA P-384/SHA-384 verification: does ``signature`` sign ``message`` under ``public_key``?"""

    public_key: bytes  # SEC1 uncompressed point 0x04 || X || Y (97 bytes)
    message: bytes  # the signed message; the backend computes its SHA-384
    signature: bytes  # raw r || s (2 x 48 bytes, big-endian)


def _disabled_by_environment() -> bool:
    return os.environ.get("NITRO_ATTEST_NO_NATIVE", "") not in ("", "0")


def _load_native() -> tuple[ModuleType | None, str | None]:
    """The extension module, or None and why not."""
    if _disabled_by_environment():
        return None, "disabled by NITRO_ATTEST_NO_NATIVE (not even loaded)"
    try:
        native = importlib.import_module(_NATIVE_NAME)  # optional: built only when nettle-dev is present
    except ImportError as exc:
        if isinstance(exc, ModuleNotFoundError) and exc.name == _NATIVE_NAME:
            return None, "not built (nettle-dev missing at install time?)"
        # Built, but it cannot be loaded: say so, this is not the quiet "not built" case.
        warnings.warn(
            f"nitro_attest: native backend present but not loadable ({exc}); falling back to cryptography",
            RuntimeWarning,
            stacklevel=2,
        )
        return None, f"not loadable: {exc}"
    return native, None


#: The extension module (None when it is not available), and why it is not (None when it is).
NATIVE: ModuleType | None
NATIVE_IMPORT_ERROR: str | None
NATIVE, NATIVE_IMPORT_ERROR = _load_native()

#: The backend :func:`verify_p384_many` uses by default: ``"nettle"`` or ``"cryptography"``.
BACKEND: str = "nettle" if NATIVE is not None else "cryptography"


def available_backends() -> tuple[str, ...]:
    """The backends this process can use: ``"cryptography"`` always, ``"nettle"`` when the extension is loaded."""
    return ("nettle", "cryptography") if NATIVE is not None else ("cryptography",)


def _well_formed(job: P384Job) -> bool:
    """Types and lengths only; every numeric check belongs to the backend."""
    key, message, signature = job.public_key, job.message, job.signature
    return (
        isinstance(key, bytes)
        and isinstance(message, bytes)
        and isinstance(signature, bytes)
        and len(key) == _POINT_SIZE
        and key[0] == _UNCOMPRESSED
        and len(signature) == _SIGNATURE_SIZE
    )


def _verify_cryptography(job: P384Job) -> bool:
    """One well-formed job through pyca/cryptography."""
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, job.public_key)
    except ValueError:  # not on the curve, coordinate >= p, ...
        return False
    r = int.from_bytes(job.signature[:_FIELD_SIZE], "big")
    s = int.from_bytes(job.signature[_FIELD_SIZE:], "big")
    if not (0 < r < P384_ORDER and 0 < s < P384_ORDER):
        return False
    try:
        key.verify(encode_dss_signature(r, s), job.message, _ECDSA_SHA384)
    except InvalidSignature:
        return False
    return True


def _verify_chunk(jobs: Sequence[P384Job]) -> list[bool]:
    return [_verify_cryptography(job) for job in jobs]


def _many_cryptography(jobs: list[P384Job], workers: int) -> list[bool]:
    workers = min(workers, len(jobs) // _MIN_JOBS_PER_WORKER, _MAX_WORKERS)
    if workers <= 1:
        return _verify_chunk(jobs)
    # One contiguous chunk per worker (not one future per job); results come back in order.
    bounds = [len(jobs) * index // workers for index in range(workers + 1)]
    chunks = [jobs[start:end] for start, end in itertools.pairwise(bounds)]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nitro-attest-p384") as pool:
        return [verdict for chunk in pool.map(_verify_chunk, chunks) for verdict in chunk]


def _native_verdicts(verdicts: object, jobs: list[P384Job]) -> list[bool]:
    # The C code returns one byte per job: 1 valid, 0 not (anything else would be a defect: not valid).
    if not isinstance(verdicts, bytes) or len(verdicts) != len(jobs):
        raise RuntimeError("nitro_attest._native returned a malformed result")
    # nettle 3.8 rejects one kind of valid signature (u1*G == u2*Q; Wycheproof's
    # "point duplication during verification"). A rejection is rare and never
    # the fast path, so OpenSSL is asked again rather than patching curve
    # arithmetic in C: a nettle "valid" stands, a "not valid" needs both to agree.
    return [verdict == 1 or _verify_cryptography(job) for verdict, job in zip(verdicts, jobs, strict=True)]


def _native_jobs(jobs: list[P384Job]) -> list[tuple[bytes, bytes, bytes]]:
    return [(job.public_key, job.message, job.signature) for job in jobs]


def _many_native(native: ModuleType, jobs: list[P384Job], workers: int) -> list[bool]:
    verdicts = native.verify_p384_many(_native_jobs(jobs), min(workers, len(jobs), _MAX_WORKERS))
    return _native_verdicts(verdicts, jobs)


# os.cpu_count() costs ~7 us, a tenth of a warm verify()'s Python work; it does not change.
_CPUS = os.cpu_count() or 1


def _checked(
    jobs: Sequence[P384Job], workers: int | None, backend: str | None
) -> tuple[str, int, list[P384Job], list[int]]:
    """The backend's name, the worker count, the jobs as a list, and the indices of the well-formed ones."""
    chosen = BACKEND if backend is None else backend
    if chosen == "nettle":
        if NATIVE is None:
            raise ValueError(f"the nettle backend is not available: native extension {NATIVE_IMPORT_ERROR}")
    elif chosen != "cryptography":
        raise ValueError(f"unknown P-384 backend {chosen!r}: expected one of {('nettle', 'cryptography')}")
    if workers is None:
        workers = _CPUS
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, not {workers!r}")
    jobs = list(jobs)
    for job in jobs:
        if not isinstance(job, P384Job):
            raise TypeError(f"expected P384Job items, not {type(job).__name__}")
    return chosen, workers, jobs, [index for index, job in enumerate(jobs) if _well_formed(job)]


def _spread(count: int, todo: list[int], results: list[bool]) -> list[bool]:
    verdicts = [False] * count
    for index, verdict in zip(todo, results, strict=True):
        verdicts[index] = verdict
    return verdicts


def verify_p384_many(jobs: Sequence[P384Job], *, workers: int | None = None, backend: str | None = None) -> list[bool]:
    """One verdict per job, in order: True exactly when the job's signature is valid.

    Never raises for a job's contents: a malformed or off-curve point, a field of
    the wrong type or length, r or s outside 1..n-1 all give False.
    ``workers``: threads to use (default ``os.cpu_count()``). ``backend``:
    ``"nettle"`` or ``"cryptography"`` (default :data:`BACKEND`); ValueError
    for an unknown name or for ``"nettle"`` when it is not available.
    """
    chosen, workers, jobs, todo = _checked(jobs, workers, backend)
    if not todo:
        return [False] * len(jobs)
    selected = [jobs[index] for index in todo]
    if chosen == "nettle":
        assert NATIVE is not None
        return _spread(len(jobs), todo, _many_native(NATIVE, selected, workers))
    return _spread(len(jobs), todo, _many_cryptography(selected, workers))


class PendingVerdicts:
    """The verdicts of :func:`start_p384_many`'s jobs, being made on other threads.

    :meth:`result` waits for them (once). Dropped unfinished, the native
    backend's threads stop and free what they hold; the cryptography backend's
    thread finishes its jobs and exits.
    """

    __slots__ = ("_count", "_finish", "_todo")

    def __init__(self, count: int, todo: list[int], finish: Callable[[], list[bool]]) -> None:
        self._count, self._todo, self._finish = count, todo, finish

    def result(self) -> list[bool]:
        """What :func:`verify_p384_many` would have returned for the same jobs."""
        return _spread(self._count, self._todo, self._finish())


def _started_cryptography(jobs: list[P384Job], workers: int) -> Callable[[], list[bool]]:
    # pyca/cryptography releases the GIL while it verifies: a thread of its own overlaps the caller's Python.
    done: list[list[bool]] = []
    thread = threading.Thread(target=lambda: done.append(_many_cryptography(jobs, workers)), name="nitro-attest-p384")
    thread.start()

    def finish() -> list[bool]:
        thread.join()
        if not done:
            raise RuntimeError("the cryptography verification thread ended without verdicts")
        return done[0]

    return finish


def _started_native(native: ModuleType, jobs: list[P384Job], workers: int) -> Callable[[], list[bool]]:
    pending = native.start_p384_many(_native_jobs(jobs), min(workers, len(jobs), _MAX_WORKERS))
    return lambda: _native_verdicts(native.finish_p384_many(pending), jobs)


def start_p384_many(
    jobs: Sequence[P384Job], *, workers: int | None = None, backend: str | None = None
) -> PendingVerdicts:
    """:func:`verify_p384_many`, started: returns at once, while ``workers`` threads make the verdicts.

    For :func:`nitro_attest.verify_batch`, which decodes the next documents
    meanwhile. The same arguments, errors and verdicts as :func:`verify_p384_many`.
    """
    chosen, workers, jobs, todo = _checked(jobs, workers, backend)
    selected = [jobs[index] for index in todo]
    if not selected:
        return PendingVerdicts(len(jobs), todo, list)
    if chosen == "nettle":
        assert NATIVE is not None
        return PendingVerdicts(len(jobs), todo, _started_native(NATIVE, selected, workers))
    return PendingVerdicts(len(jobs), todo, _started_cryptography(selected, workers))
