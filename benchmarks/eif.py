"""describe() throughput against one hashlib.sha384 pass over the same file.

    python benchmarks/eif.py [--size-mib 256] [--rounds 5] [--json FILE]

One synthetic image (``nitro_attest.eif._build.build_eif``, the builder the
lead re-exports as ``nitro_attest.testing.build_eif``): a small kernel and
bootstrap ramdisk, and an application ramdisk of ``--size-mib`` MiB of random
bytes, written to a temporary file. Each round times, in a rotated order,
``describe(path)`` and the reference: the same file read in the same chunks
into one ``hashlib.sha384``. The file is read once untimed first, so both read
from the page cache. describe() must hash every byte twice (PCR0, and PCR1 or
PCR2) and checksum it (CRC32): it keeps up with one SHA-384 pass only by
hashing in two threads. The ratio is the median of the per-round ratios;
the goal is at least 0.9.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, machine_line  # first: puts this checkout's nitro_attest on the path

from nitro_attest.eif import CHUNK_SIZE, describe
from nitro_attest.eif._build import build_eif

_GOAL = 0.9


def _sha384_pass(path: Path) -> None:
    digest = hashlib.sha384()
    buffer = memoryview(bytearray(CHUNK_SIZE))
    with path.open("rb", buffering=0) as file:
        while count := file.readinto(buffer):
            digest.update(buffer[:count])
    digest.digest()


def _timed(function: Callable[[], object]) -> float:
    gc.collect()
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mib", type=int, default=256, help="the application ramdisk's size (default 256)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None, help="write every sample here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nitro_attest-eif-bench-") as directory:
        path = Path(directory) / "bench.eif"
        build_eif(path, ramdisks=[os.urandom(1 << 20), os.urandom(args.size_mib << 20)])
        size = path.stat().st_size
        _sha384_pass(path)  # into the page cache
        rows: dict[str, Callable[[], object]] = {
            "hashlib.sha384, one pass (reference)": lambda: _sha384_pass(path),
            "describe()": lambda: describe(path),
        }
        names = list(rows)
        samples: dict[str, list[float]] = {name: [] for name in names}
        for round_index in range(args.rounds):
            order = names[round_index % len(names) :] + names[: round_index % len(names)]
            for name in order:
                samples[name].append(_timed(rows[name]))
    reference, measured = samples[names[0]], samples[names[1]]
    ratios = [ref / took for ref, took in zip(reference, measured, strict=True)]
    print(machine_line(machine()))
    print(f"load average: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    print(f"file: {size / 1e6:.1f} MB, {args.rounds} rounds, chunks of {CHUNK_SIZE >> 20} MiB")
    print(f"{'row':<40} {'median MB/s':>12} {'ratio (median)':>15} {'range':>12}")
    for name in names:
        rate = size / statistics.median(samples[name]) / 1e6
        ratio = "1.00" if name == names[0] else f"{statistics.median(ratios):.2f}x"
        spread = "" if name == names[0] else f"{min(ratios):.2f}-{max(ratios):.2f}"
        print(f"{name:<40} {rate:>12,.0f} {ratio:>15} {spread:>12}")
    met = statistics.median(ratios) >= _GOAL
    print(f"goal describe() >= {_GOAL}x one SHA-384 pass: {'met' if met else 'NOT met'}")
    if args.json is not None:
        args.json.write_text(json.dumps({"size": size, "samples": samples, "ratios": ratios}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
