"""Runs the atheris harnesses for a bounded time: ``python fuzz/run.py {parse,verify,native,all} --seconds 60``.

For each harness: writes its seeds (this repository's vectors, documents made
by the test PKI, ../shared's documents when present) into a working directory
outside the repository, runs the harness under libFuzzer with that corpus,
prints libFuzzer's final statistics and a one-line summary, and exits non-zero
when any harness found something (a crash, an oracle failure, a timeout, an
out-of-memory) or could not run. The native harness is skipped, not failed,
when the native backend is not built.

The working directory defaults to a fresh temporary one, deleted afterwards;
``--workdir DIR`` keeps the corpus (``DIR/<harness>/corpus``) and any
artifacts (``DIR/<harness>/artifacts``) for the next run. It is never inside
the repository: seeds derived from ../shared must not land there.

Extra libFuzzer flags go after ``--``: ``python fuzz/run.py verify --seconds 600 -- -jobs=2``.

``--replay DIR ...`` runs no fuzzer: it passes every file of the directories
through the harness's ``test_one_input`` in this process (no atheris needed),
for instance under coverage.py to measure a campaign's corpus:
``python -m coverage run --source=nitro_attest fuzz/run.py verify --replay CORPUS``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

_FUZZ_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(_FUZZ_DIR))  # the harnesses import their shared module by its bare name

import _fuzz_common  # noqa: E402
import fuzz_boot_secrets  # noqa: E402
import fuzz_eif  # noqa: E402
import fuzz_native  # noqa: E402
import fuzz_parse  # noqa: E402
import fuzz_recipient  # noqa: E402
import fuzz_verify  # noqa: E402


@dataclass(frozen=True)
class _Harness:
    name: str
    path: Path
    seeds: Callable[[], list[tuple[str, bytes]]]
    max_len: int
    skip: Callable[[], str | None]


def _never() -> None:
    return None


def _native_skip() -> str | None:
    return None if fuzz_native.native_available() else fuzz_native.NATIVE_MISSING


# max_len: past the 32 KiB document bound for the document harnesses, so the size checks are fuzzed too.
HARNESSES = {
    "parse": _Harness(
        "parse", _FUZZ_DIR / "fuzz_parse.py", lambda: fuzz_parse.own_seeds() + fuzz_parse.shared_seeds(), 40000, _never
    ),
    "verify": _Harness(
        "verify",
        _FUZZ_DIR / "fuzz_verify.py",
        lambda: fuzz_verify.own_seeds() + fuzz_verify.shared_seeds(),
        40000,
        _never,
    ),
    "native": _Harness("native", _FUZZ_DIR / "fuzz_native.py", fuzz_native.own_seeds, 4096, _native_skip),
    "recipient": _Harness(
        "recipient",
        _FUZZ_DIR / "fuzz_recipient.py",
        lambda: fuzz_recipient.own_seeds() + fuzz_recipient.shared_seeds(),
        80000,
        _never,
    ),
    "eif": _Harness("eif", _FUZZ_DIR / "fuzz_eif.py", fuzz_eif.own_seeds, 4096, _never),
    "boot_secrets": _Harness(
        "boot_secrets",
        _FUZZ_DIR / "fuzz_boot_secrets.py",
        lambda: fuzz_boot_secrets.own_seeds() + fuzz_boot_secrets.shared_seeds(),
        65536,
        _never,
    ),
}

_DONE = re.compile(r"^#(\d+)\s+DONE\s+cov: (\d+) ft: (\d+) corp: (\d+)/(\S+)")
_STATUS = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/(\S+)")
_STAT = re.compile(r"^stat::(\w+):\s+(\d+)")


@dataclass
class _Result:
    harness: str
    status: str  # "ok", "FINDING", "SKIPPED", "ERROR"
    seconds: float
    returncode: int | None = None
    stats: dict[str, str] | None = None
    artifacts: tuple[str, ...] = ()
    seeds: int = 0

    def line(self) -> str:
        stats = self.stats or {}
        figures = " ".join(f"{key}={stats[key]}" for key in ("execs", "exec_s", "cov", "ft", "corpus") if key in stats)
        found = f" artifacts={','.join(self.artifacts)}" if self.artifacts else ""
        return f"fuzz {self.harness}: {self.status} in {self.seconds:.0f}s (seeds={self.seeds}) {figures}{found}"


def _write_seeds(directory: Path, seeds: Sequence[tuple[str, bytes]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for index, (name, data) in enumerate(seeds):
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
        (directory / f"{index:04d}-{safe}").write_bytes(data)


def _parse_output(lines: Sequence[str]) -> dict[str, str]:
    stats: dict[str, str] = {}
    for line in lines:
        match = _DONE.match(line) or _STATUS.match(line)
        if match:
            stats.update(zip(("execs", "cov", "ft", "corpus", "corpus_bytes"), match.groups(), strict=True))
        stat = _STAT.match(line)
        if stat:
            key = {"number_of_executed_units": "execs", "average_exec_per_sec": "exec_s"}.get(stat[1], stat[1])
            stats[key] = stat[2]
    return stats


def _run_one(harness: _Harness, workdir: Path, args: argparse.Namespace, extra: Sequence[str]) -> _Result:
    started = time.monotonic()
    reason = harness.skip()
    if reason is not None:
        print(f"fuzz {harness.name}: SKIPPED: {reason}", flush=True)
        return _Result(harness.name, "SKIPPED", 0.0)
    base = workdir / harness.name
    corpus, seeds, artifacts = base / "corpus", base / "seeds", base / "artifacts"
    shutil.rmtree(seeds, ignore_errors=True)
    seed_list = harness.seeds()
    _write_seeds(seeds, seed_list)
    corpus.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    before = set(os.listdir(artifacts))
    command = [
        sys.executable,
        str(harness.path),
        str(corpus),
        str(seeds),
        f"-max_total_time={args.seconds}",
        f"-max_len={harness.max_len}",
        f"-timeout={args.timeout}",
        f"-artifact_prefix={artifacts}{os.sep}",
        "-print_final_stats=1",
    ]
    if args.runs is not None:
        command.append(f"-runs={args.runs}")
    command += extra
    print(f"fuzz {harness.name}: {' '.join(command)}", flush=True)
    lines: list[str] = []
    with subprocess.Popen(  # noqa: S603  (our own interpreter and harness paths)
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if args.verbose or not _STATUS.match(line):
                print(line, end="", flush=True)
    new = tuple(sorted(set(os.listdir(artifacts)) - before))
    returncode = process.returncode
    status = "ok" if returncode == 0 and not new else ("FINDING" if new or returncode != 0 else "ERROR")
    result = _Result(harness.name, status, time.monotonic() - started, returncode, _parse_output(lines), new)
    result.seeds = len(seed_list)
    return result


def _replay(harness: _Harness, directories: Sequence[Path]) -> int:
    """Every file of ``directories`` through the harness in this process; the first finding propagates."""
    module = {
        "parse": fuzz_parse,
        "verify": fuzz_verify,
        "native": fuzz_native,
        "recipient": fuzz_recipient,
        "eif": fuzz_eif,
        "boot_secrets": fuzz_boot_secrets,
    }[harness.name]
    reason = harness.skip()
    if reason is not None:
        print(f"replay {harness.name}: SKIPPED: {reason}")
        return 0
    files = sorted(path for directory in directories for path in directory.iterdir() if path.is_file())
    started = time.monotonic()
    for path in files:
        done = False
        try:
            module.test_one_input(path.read_bytes())
            done = True
        finally:
            if not done:
                print(f"replay {harness.name}: FINDING on {path}", file=sys.stderr, flush=True)
    print(f"replay {harness.name}: {len(files)} inputs in {time.monotonic() - started:.1f}s, no finding")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in arguments:
        split = arguments.index("--")
        arguments, extra = arguments[:split], arguments[split + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("harness", choices=[*HARNESSES, "all"])
    parser.add_argument("--seconds", type=int, default=60, help="libFuzzer -max_total_time per harness (default 60)")
    parser.add_argument("--runs", type=int, default=None, help="libFuzzer -runs: stop after this many inputs")
    parser.add_argument("--timeout", type=int, default=30, help="seconds one input may take (libFuzzer -timeout)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep corpus and artifacts here (default: temp)")
    parser.add_argument("--verbose", action="store_true", help="also print libFuzzer's periodic status lines")
    parser.add_argument(
        "--replay", type=Path, nargs="+", metavar="DIR", help="run no fuzzer: replay these corpus directories"
    )
    args = parser.parse_args(arguments)
    if args.replay:
        names = list(HARNESSES) if args.harness == "all" else [args.harness]
        return max(_replay(HARNESSES[name], args.replay) for name in names)

    names = list(HARNESSES) if args.harness == "all" else [args.harness]
    temporary = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="nitro_attest-fuzz-")) if temporary else args.workdir.resolve()
    if _fuzz_common.REPO_ROOT in (workdir, *workdir.parents):
        parser.error(f"--workdir {workdir} is inside the repository: seeds from ../shared must never land there")
    results = [_run_one(HARNESSES[name], workdir, args, extra) for name in names]
    passed = all(result.status in ("ok", "SKIPPED") for result in results)
    if temporary and passed:
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    for result in results:
        print(result.line())
        for artifact in result.artifacts:
            path = workdir / result.harness / "artifacts" / artifact
            print(f"  reproduce: {sys.executable} {HARNESSES[result.harness].path} {path}")
    if not passed:
        print(f"kept {workdir} (corpus and artifacts)")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
