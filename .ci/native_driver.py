"""Drives every path of nitro_attest._native once or more, for .ci/valgrind (memcheck) and .ci/sanitize (ASan).

    python .ci/native_driver.py NATIVE_SO WYCHEPROOF_P1363_JSON

The extension file is loaded by itself, not through the nitro_attest package:
the package imports pyca/cryptography, whose pyo3 and cffi modules keep
allocations for the life of the process by design, which memcheck would report
as leaks that are not ours. Nothing here needs them: the valid signatures are
Project Wycheproof's.

Covered: module init and constants; valid, invalid and every malformed kind of
job (each rejection branch of copy_job and verify_job), empty and large
messages; worker counts from negative to past MAX_WORKERS (1 thread, several
pthreads, clamping); concurrent callers from Python threads (GIL released);
every error return (argument parsing, not a sequence, a sequence whose length or
items raise part-way, an allocation too large to make: MemoryError). The CBOR
scan (check_cbor): every failure it reports, well-formed inputs of each kind, and
its argument errors. The pending calls (start_p384_many/finish_p384_many):
finished, finished twice, dropped unfinished, and their errors. Each result
is checked, so a path that silently stopped running would fail here.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import sys
import threading
from pathlib import Path
from types import ModuleType

P = 2**384 - 2**128 - 2**96 + 2**32 - 1
N = int("ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973", 16)

Job = tuple[bytes, bytes, bytes]


def field(value: int) -> bytes:
    return value.to_bytes(48, "big")


def load(path: Path) -> ModuleType:
    loader = importlib.machinery.ExtensionFileLoader("nitro_attest._native", str(path))
    spec = importlib.util.spec_from_file_location("nitro_attest._native", path, loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def wycheproof(path: Path) -> tuple[list[Job], list[bool], list[bool]]:
    """Jobs, whether each is valid, and whether it is a point-duplication case (nettle 3.8 rejects those)."""
    jobs: list[Job] = []
    valid: list[bool] = []
    duplication: list[bool] = []
    for group in json.loads(path.read_text(encoding="utf-8"))["testGroups"]:
        point = bytes.fromhex(group["publicKey"]["uncompressed"])
        for test in group["tests"]:
            jobs.append((point, bytes.fromhex(test["msg"]), bytes.fromhex(test["sig"])))
            valid.append(test["result"] == "valid")
            duplication.append("PointDuplication" in test["flags"])
    return jobs, valid, duplication


def check_wycheproof(native: ModuleType, jobs: list[Job], valid: list[bool], duplication: list[bool]) -> Job:
    verdicts = native.verify_p384_many(jobs, 2)
    assert verdicts == native.verify_p384_many(jobs, 1), "verdicts depend on the worker count"
    assert len(verdicts) == len(jobs) and set(verdicts) <= {0, 1}
    for index, verdict in enumerate(verdicts):
        assert not (verdict and not valid[index]), f"vector {index}: an invalid signature was accepted"
        assert verdict or not valid[index] or duplication[index], f"vector {index}: a valid signature was rejected"
    assert sum(verdicts) >= sum(valid) - sum(duplication) > 0
    assert any(not message for _, message, _ in jobs), "no empty message among the vectors"
    print(f"wycheproof: {len(jobs)} vectors, {sum(verdicts)} valid")
    return next(job for job, verdict in zip(jobs, verdicts, strict=True) if verdict)


def check_malformed(native: ModuleType, good: Job) -> None:
    point, message, signature = good
    r = signature[:48]
    malformed: list[object] = [
        None,
        42,
        b"bytes",
        list(good),  # a list, not a tuple
        good[:2],
        (*good, b""),
        (bytearray(point), message, signature),
        (point, bytearray(message), signature),
        (point, message, memoryview(signature)),
        (point, "text", signature),
        (point[:-1], message, signature),
        (point + b"\0", message, signature),
        (point, message, signature[:-1]),
        (b"\x02" + point[1:], message, signature),
        (b"\x04" + field(P) + point[49:], message, signature),  # x = p
        (point[:49] + field(P), message, signature),  # y = p
        (b"\x04" + field(1) + field(1), message, signature),  # not on the curve
        (point, message, field(0) + signature[48:]),
        (point, message, field(N) + signature[48:]),
        (point, message, r + field(0)),
        (point, message, r + field(N)),
        (point, message, r + field(2**384 - 1)),
        (point, message + b"x", signature),  # well formed, wrong message
        (point, bytes(64 * 1024), signature),  # a large copy, hashed
        (point, b"", signature),  # the 1-byte allocation for an empty message
    ]
    result = native.verify_p384_many([good, *malformed, good], 3)
    assert result == b"\x01" + b"\x00" * len(malformed) + b"\x01", result
    assert native.verify_p384_many("text", 2) == b"\x00" * 4  # any sequence: a str's items are not jobs
    assert native.verify_p384_many(b"ab", 2) == b"\x00" * 2
    print(f"malformed: {len(malformed)} kinds")


def check_workers(native: ModuleType, jobs: list[Job]) -> None:
    expected = native.verify_p384_many(jobs, 1)
    for workers in (-(2**31), -5, 0, 2, 3, 7, native.MAX_WORKERS, native.MAX_WORKERS + 1, 10**6, 2**31 - 1):
        assert native.verify_p384_many(jobs, workers) == expected, workers
    many = jobs * (native.MAX_WORKERS // len(jobs) + 2)  # more jobs than MAX_WORKERS: every thread starts
    assert native.verify_p384_many(many, native.MAX_WORKERS) == expected * (len(many) // len(jobs))
    assert native.verify_p384_many([], 4) == b""
    assert native.verify_p384_many((), 1) == b""
    assert native.verify_p384_many(tuple(jobs), 2) == expected
    print("workers: clamped and consistent")


def check_concurrent_callers(native: ModuleType, jobs: list[Job]) -> None:
    expected = native.verify_p384_many(jobs, 1)
    failures: list[str] = []

    def call() -> None:
        for _ in range(2):
            result = native.verify_p384_many(jobs, 2)
            if result != expected:
                failures.append(repr(result))

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    print("concurrent callers: 4 threads x 2 calls, consistent")


class Raises:
    """A sequence whose length or items fail: the C code must free what it copied and propagate the error."""

    def __init__(self, jobs: list[Job], length: int | None = None, fail_at: int | None = None) -> None:
        self.jobs, self.length, self.fail_at = jobs, length, fail_at

    def __len__(self) -> int:
        if self.length is None:
            raise LookupError("no length")
        return self.length

    def __getitem__(self, index: int) -> Job:
        if index == self.fail_at:
            raise LookupError(f"item {index}")
        return self.jobs[index]


def expect(error: type[BaseException], function: object, *args: object) -> None:
    try:
        function(*args)  # type: ignore[operator]
    except error:
        return
    raise AssertionError(f"{error.__name__} not raised for {args!r:.80}")


def check_errors(native: ModuleType, jobs: list[Job]) -> None:
    verify = native.verify_p384_many
    expect(TypeError, verify)
    expect(TypeError, verify, jobs)
    expect(TypeError, verify, jobs, 1, 2)
    expect(TypeError, verify, jobs, "2")
    expect(TypeError, verify, jobs, 2.0)
    expect(OverflowError, verify, jobs, 2**40)
    expect(TypeError, verify, None, 1)
    expect(TypeError, verify, 42, 1)
    expect(TypeError, verify, {0: jobs[0]}, 1)
    expect(TypeError, verify, iter(jobs), 1)  # an iterator is not a sequence
    expect(LookupError, verify, Raises(jobs), 1)  # __len__ raises
    expect(LookupError, verify, Raises(jobs, len(jobs), fail_at=3), 2)  # after 3 jobs were copied
    expect(IndexError, verify, Raises(jobs, len(jobs) + 5), 2)  # a length that lies
    expect(MemoryError, verify, Raises(jobs, 2**60), 1)  # calloc of 2**60 jobs fails (size overflows)
    assert verify(Raises(jobs, len(jobs)), 2) == verify(jobs, 2)  # the same class, well behaved
    print("errors: every error return taken")


# One input per failure of check_cbor (tests/test_cbor_scan.py holds the Python scan to the same answers).
CBOR_CASES: tuple[tuple[bytes, int, int, tuple[str, int] | None], ...] = (
    (b"", 4, 1024, ("1 bytes declared but only 0 remain", 0)),
    (b"\x1b\x00", 4, 1024, ("8 bytes declared but only 1 remain", 1)),
    (b"\x1c", 4, 1024, ("reserved additional information 28", 0)),
    (b"\x1f", 4, 1024, ("indefinite-length integer", 0)),
    (b"\x5b" + b"\xff" * 8, 4, 1024, (f"{2**64 - 1} bytes declared but only 0 remain", 9)),
    (b"\x5f", 4, 1024, ("indefinite-length item not terminated", 1)),
    (b"\x5f\x60\xff", 4, 1024, ("indefinite-length string chunk of the wrong type", 1)),
    (b"\x5f\x42\x00", 4, 1024, ("2 bytes declared but only 1 remain", 2)),
    (b"\x5f\x41\x00\x40\xff", 4, 1024, None),
    (b"\x9f\x00\xff", 4, 1024, None),
    (b"\x81\x81\x00", 1, 1024, ("nesting deeper than 1", 1)),
    (b"\xbb" + b"\xff" * 8, 4, 1024, (f"map of {2**64 - 1} entries exceeds the input", 0)),
    (b"\xa1\x80\x00", 4, 1024, ("map key that is an array", 1)),
    (b"\xbf\xa0\x00\xff", 4, 1024, ("map key that is an map", 1)),
    (b"\xbf\x01\x02\xff", 4, 1024, None),
    (b"\xc1\x00", 4, 1024, ("CBOR tag 1 is not allowed here", 0)),
    (b"\xdf", 4, 1024, ("CBOR tag None is not allowed here", 0)),
    (b"\x83\xf4\xf5\xf6", 4, 1024, None),
    (b"\xf9\x00\x00", 4, 1024, ("floating-point value", 0)),
    (b"\xff", 4, 1024, ("unexpected 'break'", 0)),
    (b"\xf8\x20", 4, 1024, ("simple value 32 (only false, true and null are allowed)", 0)),
    (b"\x00\x00", 4, 1024, ("1 trailing bytes", 1)),
    (b"\x83\x00\x00\x00", 4, 3, ("more than 3 data items", 0)),
    (b"\x9f\x00\x00\xff", 4, 2, ("more than 2 data items", 2)),
    (b"\x81" * 30_000 + b"\x00", 4, 1024, ("nesting deeper than 4", 4)),
)


def check_pending(native: ModuleType, jobs: list[Job]) -> None:
    expected = native.verify_p384_many(jobs, 1)
    for workers in (-1, 1, 3, native.MAX_WORKERS + 5):
        assert native.finish_p384_many(native.start_p384_many(jobs, workers)) == expected, workers
    pending = native.start_p384_many(jobs, 2)
    assert native.finish_p384_many(pending) == expected
    expect(ValueError, native.finish_p384_many, pending)  # only once
    expect(ValueError, native.finish_p384_many, b"not a pending call")
    expect(TypeError, native.finish_p384_many)
    expect(TypeError, native.start_p384_many, jobs)
    expect(TypeError, native.start_p384_many, 42, 1)
    expect(LookupError, native.start_p384_many, Raises(jobs, len(jobs), fail_at=3), 2)
    expect(MemoryError, native.start_p384_many, Raises(jobs, 2**60), 1)
    assert native.finish_p384_many(native.start_p384_many([], 4)) == b""
    for _ in range(3):  # dropped unfinished: the destructor stops and joins the threads, and frees the jobs
        native.start_p384_many(jobs * 20, 4)
    held = [native.start_p384_many(jobs, 2) for _ in range(4)]
    assert [native.finish_p384_many(one) for one in reversed(held)] == [expected] * 4
    print("pending calls: started, finished, dropped, every error return taken")


def check_cbor_scan(native: ModuleType) -> None:
    scan = native.check_cbor
    for data, max_depth, max_items, expected in CBOR_CASES:
        assert scan(data, 0, max_depth, max_items) == expected, (data[:16], expected)
    assert scan(b"\xd2\x80", 1, 4, 1024) is None
    for arguments in ((b"\x00", -1, 4, 1024), (b"\x00", 2, 4, 1024), (b"\x00", 0, -1, 1024), (b"\x00", 0, 4, 0)):
        expect(ValueError, scan, *arguments)
    expect(TypeError, scan, "text", 0, 4, 1024)
    expect(TypeError, scan, b"\x00", 0, 4)
    print("cbor scan: every failure reported, every error return taken")


def main() -> None:
    native = load(Path(sys.argv[1]))
    assert isinstance(native.NETTLE_VERSION, str) and native.MAX_WORKERS == 256
    print(f"loaded {native.__file__} (nettle {native.NETTLE_VERSION})")
    jobs, valid, duplication = wycheproof(Path(sys.argv[2]))
    good = check_wycheproof(native, jobs, valid, duplication)
    check_malformed(native, good)
    sample = jobs[:40]
    check_workers(native, sample)
    check_concurrent_callers(native, sample)
    check_errors(native, sample)
    check_pending(native, sample)
    check_cbor_scan(native)
    print("native driver: every path ran, every result as expected")


if __name__ == "__main__":
    main()
