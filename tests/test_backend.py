"""nitro_attest._backend: every P-384 backend gives the same verdict for every job, in order.

The native (nettle) backend is compared with pyca/cryptography on valid
signatures and on every way a job can be wrong; its C entry point is also
fed malformed jobs directly (it must answer 0, never crash), checked for
memory growth, and for the one case where nettle's own ecdsa_verify is wrong
(u1*G == u2*Q, "point duplication"). Tests of the native backend skip, saying
why, when it is not built; with NITRO_ATTEST_REQUIRE_NATIVE=1 (CI) it must be.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from nitro_attest import _backend as backend
from nitro_attest._backend import P384Job, verify_p384_many

ROOT = Path(__file__).resolve().parents[1]
N = int("ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973", 16)
P = 2**384 - 2**128 - 2**96 + 2**32 - 1
B = int("b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef", 16)
CURVE = ec.SECP384R1()
NATIVE_MISSING = f"the nettle backend is not available: native extension {backend.NATIVE_IMPORT_ERROR}"
needs_native = pytest.mark.skipif("nettle" not in backend.available_backends(), reason=NATIVE_MISSING)
BACKENDS = [
    "cryptography",
    pytest.param("nettle", marks=needs_native),
]


def field(value: int) -> bytes:
    return value.to_bytes(48, "big")


def point_of(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def private_key(seed: int) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(1 + seed % (N - 1), CURVE)


def signed_job(seed: int, message: bytes) -> P384Job:
    key = private_key(seed)
    r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA384())))
    return P384Job(point_of(key.public_key()), message, field(r) + field(s))


def with_signature(job: P384Job, r: int, s: int) -> P384Job:
    return replace(job, signature=field(r) + field(s))


def flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 0x80 >> (bit % 8)
    return bytes(out)


def verdicts(jobs: list[P384Job], workers: int = 1) -> dict[str, list[bool]]:
    """Each available backend's verdicts."""
    return {name: verify_p384_many(jobs, workers=workers, backend=name) for name in backend.available_backends()}


def assert_all(jobs: list[P384Job], expected: list[bool], workers: int = 1) -> None:
    for name, got in verdicts(jobs, workers).items():
        wrong = [index for index, (a, b) in enumerate(zip(got, expected, strict=True)) if a is not b]
        assert wrong == [], f"{name}: wrong verdicts at {wrong[:10]}"
        assert all(isinstance(verdict, bool) for verdict in got)


@pytest.fixture(scope="module")
def job() -> P384Job:
    return signed_job(1, b"the message")


def test_backend_names() -> None:
    assert backend.BACKEND in backend.available_backends()
    assert "cryptography" in backend.available_backends()
    assert set(backend.available_backends()) <= {"nettle", "cryptography"}


def test_native_required_by_ci() -> None:
    """With NITRO_ATTEST_REQUIRE_NATIVE=1 (CI), the native backend must be built and be the default."""
    if os.environ.get("NITRO_ATTEST_REQUIRE_NATIVE", "") in ("", "0"):
        pytest.skip("NITRO_ATTEST_REQUIRE_NATIVE is not set")
    if os.environ.get("NITRO_ATTEST_NO_NATIVE", "") not in ("", "0"):
        pytest.skip("NITRO_ATTEST_NO_NATIVE is set")
    assert "nettle" in backend.available_backends(), NATIVE_MISSING
    assert backend.BACKEND == "nettle"


def test_valid_signatures_many_keys_and_lengths() -> None:
    messages = [b"", b"x", bytes(range(256)) * 4, os.urandom(65536)]
    jobs = [signed_job(seed, message) for seed in range(8) for message in messages]
    assert_all(jobs, [True] * len(jobs))


def test_high_s_is_valid(job: P384Job) -> None:
    r = int.from_bytes(job.signature[:48], "big")
    s = int.from_bytes(job.signature[48:], "big")
    assert_all([with_signature(job, r, N - s)], [True])


@pytest.mark.parametrize("part", ["public_key", "message", "signature"])
def test_every_bit_flip_is_invalid(job: P384Job, part: str) -> None:
    original: bytes = getattr(job, part)
    bits = range(len(original) * 8)
    jobs = [replace(job, **{part: flip(original, bit)}) for bit in bits]
    assert_all([job, *jobs], [True] + [False] * len(jobs), workers=2)


def test_r_and_s_out_of_range(job: P384Job) -> None:
    r = int.from_bytes(job.signature[:48], "big")
    s = int.from_bytes(job.signature[48:], "big")
    bad = [(0, s), (r, 0), (0, 0), (N, s), (r, N), (N + 1, s), (r, N + 1), (2**384 - 1, s), (r, 2**384 - 1)]
    # In range but wrong: these reach the arithmetic (and nettle's rejection path).
    wrong = [(1, s), (r, 1), (N - 1, s), (r, N - 1), (N - r, s)]
    jobs = [with_signature(job, *pair) for pair in bad + wrong]
    assert_all([job, *jobs], [True] + [False] * len(jobs))


def test_wrong_lengths_and_encodings(job: P384Job) -> None:
    key = private_key(1).public_key()
    compressed = key.public_bytes(Encoding.X962, PublicFormat.CompressedPoint)
    der = private_key(1).sign(job.message, ec.ECDSA(hashes.SHA384()))
    hybrid = bytes([0x06 | (job.public_key[-1] & 1)]) + job.public_key[1:]
    cases = [
        replace(job, public_key=job.public_key[:-1]),
        replace(job, public_key=job.public_key + b"\x00"),
        replace(job, public_key=job.public_key[1:]),  # X || Y without the 0x04
        replace(job, public_key=compressed),  # valid SEC1, but only uncompressed points are accepted
        replace(job, public_key=hybrid),
        replace(job, public_key=b"\x02" + job.public_key[1:]),
        replace(job, public_key=b""),
        replace(job, signature=job.signature[:-1]),
        replace(job, signature=job.signature + b"\x00"),
        replace(job, signature=b"\x00" + job.signature),
        replace(job, signature=der),
        replace(job, signature=b""),
    ]
    assert_all(cases, [False] * len(cases))


def test_wrong_types_are_invalid_not_errors(job: P384Job) -> None:
    cases = [
        replace(job, public_key=bytearray(job.public_key)),  # type: ignore[arg-type]
        replace(job, message=memoryview(job.message)),  # type: ignore[arg-type]
        replace(job, message=job.message.decode()),  # type: ignore[arg-type]
        replace(job, signature=None),  # type: ignore[arg-type]
        replace(job, public_key=int.from_bytes(job.public_key, "big")),  # type: ignore[arg-type]
    ]
    assert_all([*cases, job], [False] * len(cases) + [True])


def small_x_point() -> tuple[int, int]:
    """A point of P-384 with a small X (so X + p still fits 48 bytes)."""
    for x in range(1, 1000):
        rhs = (x**3 - 3 * x + B) % P
        y = pow(rhs, (P + 1) // 4, P)  # p = 3 (mod 4)
        if y * y % P == rhs:
            return x, y
    raise AssertionError("no small X found")


def test_points_off_the_curve_or_out_of_range(job: P384Job) -> None:
    x = int.from_bytes(job.public_key[1:49], "big")
    y = int.from_bytes(job.public_key[49:], "big")
    sx, sy = small_x_point()
    ec.EllipticCurvePublicKey.from_encoded_point(CURVE, b"\x04" + field(sx) + field(sy))  # it is on the curve
    points = [
        b"\x04" + field(x) + field((y + 1) % P),  # off the curve
        b"\x04" + field(x) + field(P - y + 1),
        b"\x04" + field(0) + field(0),  # "(0, 0)", how some encode the point at infinity
        b"\x00" * 97,  # the SEC1 point at infinity is 0x00 alone; padded it is nothing at all
        b"\x00",
        b"\x04" + field(P) + field(y),  # X = p
        b"\x04" + field(x) + field(P),  # Y = p
        b"\x04" + field(sx + P) + field(sy),  # X + p: the same point mod p, but not canonical
        b"\x04" + field(sx) + field(sy + P) if sy + P < 2**384 else b"\x04" + field(sx) + field(2**384 - 1),
        b"\x04" + field(sx) + field(P - sy),  # on the curve (the negation) but not the signer's key
        b"\x04" + field(2**384 - 1) + field(2**384 - 1),
    ]
    cases = [replace(job, public_key=point) for point in points]
    assert_all(cases, [False] * len(cases))


def duplication_job(seed: int, *, negate: bool = False) -> P384Job:
    """A signature where u1*G == u2*Q (or -u2*Q with ``negate``): the key is built from the signature.

    With d = e/r: u2*Q = (r/s)*d*G = (e/s)*G = u1*G, so R = u1*G + u2*Q = 2*u1*G, and
    s = 2e/k makes R = k*G: a valid signature, which nettle's ecdsa_verify
    rejects. With d = -e/r the sum is the point at infinity: never valid.
    """
    rng = random.Random(seed)
    message = f"duplication {seed}".encode()
    e = int.from_bytes(hashlib.sha384(message).digest(), "big") % N
    while True:
        k = rng.randrange(1, N)
        x_r = ec.derive_private_key(k, CURVE).public_key().public_numbers().x
        r = x_r % N
        d = (-1 if negate else 1) * e * pow(r, -1, N) % N
        s = 2 * e * pow(k, -1, N) % N
        if r and s and d:
            break
    key = ec.derive_private_key(d, CURVE).public_key()
    return P384Job(point_of(key), message, field(r) + field(s))


def test_point_duplication_is_valid_on_every_backend() -> None:
    """nettle 3.8's ecdsa_verify says False here; the native backend must still say True."""
    jobs = [duplication_job(seed) for seed in range(6)]
    high_s = [
        with_signature(job, int.from_bytes(job.signature[:48], "big"), N - int.from_bytes(job.signature[48:], "big"))
        for job in jobs
    ]
    tampered = [replace(job, message=job.message + b"!") for job in jobs]
    infinity = [duplication_job(seed, negate=True) for seed in range(3)]
    assert_all(
        [*jobs, *high_s, *tampered, *infinity],
        [True] * (2 * len(jobs)) + [False] * (len(tampered) + len(infinity)),
    )


@pytest.mark.parametrize("name", BACKENDS)
def test_empty(name: str) -> None:
    assert verify_p384_many([], backend=name) == []
    assert verify_p384_many((), workers=4, backend=name) == []


@pytest.fixture(scope="module")
def mixed_jobs() -> tuple[list[P384Job], list[bool]]:
    """1000 jobs, valid and not in an irregular pattern."""
    valid = [signed_job(seed, f"message {seed}".encode()) for seed in range(25)]
    rng = random.Random(4)
    jobs, expected = [], []
    for index in range(1000):
        job = valid[index % len(valid)]
        if rng.random() < 0.4:
            job = replace(job, message=job.message + b"?") if index % 2 else replace(job, signature=job.signature[::-1])
            expected.append(False)
        else:
            expected.append(True)
        jobs.append(job)
    return jobs, expected


@pytest.mark.parametrize("name", BACKENDS)
def test_thousand_jobs_on_two_workers(name: str, mixed_jobs: tuple[list[P384Job], list[bool]]) -> None:
    jobs, expected = mixed_jobs
    assert verify_p384_many(jobs, workers=2, backend=name) == expected


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("workers", [1, 3, 7, 64, 1000, 10**12])
def test_order_kept_for_any_worker_count(name: str, workers: int, mixed_jobs: tuple[list[P384Job], list[bool]]) -> None:
    jobs, expected = mixed_jobs
    assert verify_p384_many(jobs[:97], workers=workers, backend=name) == expected[:97]


@pytest.mark.parametrize("name", BACKENDS)
def test_concurrent_callers(name: str, mixed_jobs: tuple[list[P384Job], list[bool]]) -> None:
    """Several Python threads calling at once (the native code runs without the GIL)."""
    jobs, expected = mixed_jobs
    slices = [(start, start + 60) for start in range(0, 240, 60)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda bounds: verify_p384_many(jobs[slice(*bounds)], workers=2, backend=name), slices))
    assert results == [expected[slice(*bounds)] for bounds in slices]


def test_default_backend_is_used(job: P384Job, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in backend.available_backends():
        monkeypatch.setattr(backend, "BACKEND", name)
        assert verify_p384_many([job, replace(job, message=b"")]) == [True, False]


def test_bad_arguments(job: P384Job) -> None:
    with pytest.raises(ValueError, match="unknown"):
        verify_p384_many([job], backend="openssl")
    for workers in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="workers"):
            verify_p384_many([job], workers=workers)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        verify_p384_many([(job.public_key, job.message, job.signature)])  # type: ignore[list-item]


def test_nettle_unavailable_is_an_error(job: P384Job, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend, "NATIVE", None)
    with pytest.raises(ValueError, match="not available"):
        verify_p384_many([job], backend="nettle")
    assert verify_p384_many([job], backend="cryptography") == [True]


def backend_in_subprocess(env_update: dict[str, str | None]) -> str:
    env = dict(os.environ)
    for name, value in env_update.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    code = "import nitro_attest, nitro_attest._backend as b; assert nitro_attest.BACKEND == b.BACKEND; print(b.BACKEND)"
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_backend_honours_no_native_environment() -> None:
    built = any(path.suffix in (".so", ".pyd") for path in (ROOT / "nitro_attest").glob("_native.*"))
    default = "nettle" if built or "nettle" in backend.available_backends() else "cryptography"
    assert backend_in_subprocess({"NITRO_ATTEST_NO_NATIVE": None}) == default
    assert backend_in_subprocess({"NITRO_ATTEST_NO_NATIVE": "0"}) == default
    assert backend_in_subprocess({"NITRO_ATTEST_NO_NATIVE": ""}) == default
    assert backend_in_subprocess({"NITRO_ATTEST_NO_NATIVE": "1"}) == "cryptography"
    assert backend_in_subprocess({"NITRO_ATTEST_NO_NATIVE": "yes"}) == "cryptography"


# --- the C entry point itself -------------------------------------------------------------------


@pytest.fixture(scope="module")
def native() -> ModuleType:
    if "nettle" not in backend.available_backends():
        pytest.skip(NATIVE_MISSING)
    assert backend.NATIVE is not None
    return backend.NATIVE


def test_native_answers_zero_for_malformed_jobs(native: ModuleType, job: P384Job) -> None:
    good = (job.public_key, job.message, job.signature)
    x_is_p = b"\x04" + field(P) + job.public_key[49:]
    r = job.signature[:48]
    malformed: list[object] = [
        None,
        42,
        b"bytes",
        [*good],  # a list, not a tuple
        good[:2],
        (*good, b""),
        (bytearray(good[0]), good[1], good[2]),
        (good[0], bytearray(good[1]), good[2]),
        (good[0], good[1], memoryview(good[2])),
        (good[0], "text", good[2]),
        (good[0][:-1], good[1], good[2]),
        (good[0], good[1], good[2][:-1]),
        (b"\x02" + good[0][1:], good[1], good[2]),
        (x_is_p, good[1], good[2]),
        (good[0], good[1], field(0) + good[2][48:]),
        (good[0], good[1], field(N) + good[2][48:]),
        (good[0], good[1], r + field(0)),
        (good[0], good[1], r + field(N)),
        (good[0], good[1], r + field(2**384 - 1)),
    ]
    result = native.verify_p384_many([good, *malformed, good], 3)
    assert result == b"\x01" + b"\x00" * len(malformed) + b"\x01"
    # Any sequence of jobs; any worker count (clamped).
    assert native.verify_p384_many((good,), -5) == b"\x01"
    assert native.verify_p384_many([good] * 3, 10**6) == b"\x01" * 3
    assert native.verify_p384_many([], 2) == b""
    with pytest.raises(TypeError):
        native.verify_p384_many(None, 1)
    with pytest.raises(TypeError):
        native.verify_p384_many([good])


def rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc/self/statm (Linux)")
def test_native_memory_does_not_grow(native: ModuleType) -> None:
    """Every path of the C code (valid, rejected, duplication case, malformed) run repeatedly: RSS stays flat."""
    big = os.urandom(64 * 1024)
    valid = signed_job(3, big)
    jobs = [
        valid,
        replace(valid, message=big[:-1]),
        with_signature(valid, 1, 1),
        with_signature(valid, 0, 1),
        replace(valid, public_key=b"\x04" + field(1) + field(1)),
        duplication_job(1),
        duplication_job(2, negate=True),
    ]
    raw = [(job.public_key, job.message, job.signature) for job in jobs] * 8 + [None, (b"", b"", b"")]
    expected = native.verify_p384_many(raw, 2)

    def rounds(count: int) -> Iterator[bytes]:
        for _ in range(count):
            yield native.verify_p384_many(raw, 2)

    for result in rounds(5):  # warm up the allocators
        assert result == expected
    before = rss_bytes()
    for result in rounds(40):  # 2,320 jobs, 2,240 copies of 64 KiB messages
        assert result == expected
    grown = rss_bytes() - before
    assert grown < 1024 * 1024, f"RSS grew by {grown} bytes over 40 rounds"


# --- start_p384_many: the same verdicts, made while the caller goes on -------------------------------------


def _mixed_jobs() -> list[P384Job]:
    good = [signed_job(seed, f"message {seed}".encode()) for seed in range(12)]
    bad = [
        replace(good[0], message=b"another message"),
        with_signature(good[1], 0, 1),
        replace(good[2], public_key=good[2].public_key[:-1]),
        replace(good[3], signature=flip(good[3].signature, 5)),
    ]
    return [*good[:6], *bad, *good[6:]]


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("workers", [1, 2, 5])
def test_started_verdicts_are_verify_p384_manys(name: str, workers: int) -> None:
    jobs = _mixed_jobs()
    expected = verify_p384_many(jobs, workers=workers, backend=name)
    assert expected.count(False) == 4
    assert backend.start_p384_many(jobs, workers=workers, backend=name).result() == expected


@pytest.mark.parametrize("name", BACKENDS)
def test_started_with_nothing_to_verify(name: str) -> None:
    assert backend.start_p384_many([], backend=name).result() == []
    malformed = [P384Job(b"\x04", b"", b"")]
    assert backend.start_p384_many(malformed, backend=name).result() == [False]


@pytest.mark.parametrize("name", BACKENDS)
def test_many_started_calls_at_once_keep_their_own_verdicts(name: str) -> None:
    jobs = _mixed_jobs()
    expected = verify_p384_many(jobs, backend=name)
    pending = [backend.start_p384_many(jobs[shift:] + jobs[:shift], workers=2, backend=name) for shift in range(8)]
    for shift, started in enumerate(pending):
        assert started.result() == expected[shift:] + expected[:shift]


def test_start_checks_its_arguments_as_verify_p384_many_does(job: P384Job) -> None:
    with pytest.raises(ValueError, match="unknown P-384 backend"):
        backend.start_p384_many([job], backend="openssl")
    with pytest.raises(ValueError, match="workers"):
        backend.start_p384_many([job], workers=0)
    with pytest.raises(TypeError, match="P384Job"):
        backend.start_p384_many([(job.public_key, job.message, job.signature)])  # type: ignore[list-item]


def test_a_native_pending_call_is_finished_once(native: ModuleType, job: P384Job) -> None:
    pending = native.start_p384_many([(job.public_key, job.message, job.signature)], 2)
    assert native.finish_p384_many(pending) == b"\x01"
    with pytest.raises(ValueError, match="already finished"):
        native.finish_p384_many(pending)
    with pytest.raises(ValueError):  # not a pending call (PyCapsule_GetPointer refuses it)
        native.finish_p384_many(b"not a pending call")


def test_a_native_pending_call_dropped_unfinished_stops_its_threads(native: ModuleType, job: P384Job) -> None:
    many = [(job.public_key, job.message, job.signature)] * 2000
    for _ in range(5):
        native.start_p384_many(many, 4)  # dropped at once: its threads stop after their current job
    pending = native.start_p384_many(many[:8], 2)
    assert native.finish_p384_many(pending) == b"\x01" * 8
