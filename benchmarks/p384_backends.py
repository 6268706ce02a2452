"""ECDSA P-384/SHA-384 verify per second on one core, for every crypto library on this machine.

    python benchmarks/p384_backends.py [--rounds 5] [--seconds 0.25] [--inner 3]
                                       [--python OTHER_PYTHON ...] [--json FILE]

Before its speed is trusted, each library must agree with Project Wycheproof
(``../shared/wycheproof/ecdsa_secp384r1_sha384_p1363_test.json``: raw ``r || s``
signatures, strict verdicts, "acceptable" counted as invalid as in
``tests/test_wycheproof.py``) and refuse points that are not P-384 points:
off the curve, ``0x04 || 0...0`` (beside a signature forged for it, which a
library that treats it as the point at infinity, or computes with it as a
point of order 2, accepts), an all-ones ``x``, ``x = p``; and the hybrid
0x06/0x07 form of a real key, which is the same point (taking it is lenient,
not unsafe).

C libraries: ``benchmarks/p384_backends.c`` is compiled with ``cc -O2`` once
per library (GNU Nettle, OpenSSL's EVP and EC_KEY interfaces, libgcrypt,
wolfSSL, Botan 2) into a temporary directory; one whose headers or library is
missing is skipped with pkg-config's or the compiler's reason. Python libraries
(pyca/cryptography, the reference, as ``nitro_attest._backend`` calls it;
pycryptodome; fastecdsa) run this script as a worker with the same input, in
the first interpreter (this one, then each ``--python``) that imports them:
pip libraries that are not dependencies of the project go into a throwaway
venv, never ``.venv``.

The workload: 64 keys made by cryptography, 4 valid signatures each over
4,590-byte messages (a typical attestation document) and, separately, 1,500-byte
ones (a certificate's signed part). Each library reports verifications per
second with the key object made once per key ("cached"; documents repeat
keys) and made from the 97-byte point for every signature ("fresh"), SHA-384
of the message alone, and making the key object alone. A sample is whole
passes over the 256 signatures for at least ``--seconds``, counted per second
of the thread's CPU time (time spent descheduled on a shared machine does not
count) and of wall-clock; a library's number for one round is the median of
``--inner`` samples. Every library runs once per round, in an order rotated
each round, for ``--rounds`` rounds; the tables give medians over rounds and
the medians (and ranges) of the per-round ratios to nettle and to
pyca/cryptography. The machine is shared: read the ratios.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
_SOURCE = _HERE / "p384_backends.c"
_WYCHEPROOF = ("wycheproof", "ecdsa_secp384r1_sha384_p1363_test.json")

_FIELD = 48
_P = 2**384 - 2**128 - 2**96 + 2**32 - 1
_B = 0xB3312FA7E23EE7E4988E056BE3F82D19181D9C6EFE8141120314088F5013875AC656398D8A2ED19D2A85C8EDD3EC2AEF
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973

_KEYS = 64
_PER_KEY = 4
_DOCUMENT = 4590  # bytes: TestPKI.document(), a typical attestation document
_CERTIFICATE = 1500  # bytes: a certificate's signed part
_LABELS = (f"{_DOCUMENT}B", f"{_CERTIFICATE}B")
_WARM_UP = 16  # jobs run untimed before each timed mode (WARM_UP in the C file)


@dataclass(frozen=True)
class _C:
    """A library reached from C: its -D name, pkg-config modules, extra link flags, how it would be linked."""

    name: str
    define: str
    modules: tuple[str, ...]
    extra: tuple[str, ...]
    license: str


_C_BACKENDS = (
    _C("nettle", "BACKEND_NETTLE", ("hogweed", "nettle"), ("-lgmp",), "LGPL-3.0+ or GPL-2.0+ (and GMP, the same)"),
    _C("openssl-evp", "BACKEND_OPENSSL_EVP", ("libcrypto",), (), "Apache-2.0"),
    _C("openssl-eckey", "BACKEND_OPENSSL_ECKEY", ("libcrypto",), (), "Apache-2.0"),
    _C("openssl-eckey-precomp", "BACKEND_OPENSSL_PRECOMP", ("libcrypto",), (), "Apache-2.0"),
    _C("gcrypt", "BACKEND_GCRYPT", ("libgcrypt",), (), "LGPL-2.1+"),
    _C("wolfssl", "BACKEND_WOLFSSL", ("wolfssl",), (), "GPL-2.0+ (Debian's 5.5.4) or commercial"),
    _C("botan", "BACKEND_BOTAN", ("botan-2",), (), "BSD-2-Clause"),
)

# Python libraries: (name, module to import, licence).
_PY_BACKENDS = (
    ("pyca", "cryptography", "Apache-2.0 or BSD-3-Clause (bundled OpenSSL: Apache-2.0)"),
    ("pycryptodome", "Crypto", "BSD-2-Clause and public domain"),
    ("fastecdsa", "fastecdsa", "CC0-1.0"),
)


# ------------------------------------------------------------------ the Python worker
# Runs in whichever interpreter has the library: only the standard library at module level.


@dataclass(frozen=True)
class _Lib:
    library: str
    version: str
    key_make: Callable[[bytes], object | None]
    verify: Callable[[object, bytes, bytes], bool]
    sha384: Callable[[bytes], bytes]


def _pyca() -> _Lib:
    import cryptography  # noqa: PLC0415 (the worker imports only its own library)
    from cryptography.exceptions import InvalidSignature  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature  # noqa: PLC0415

    curve, algorithm = ec.SECP384R1(), ec.ECDSA(hashes.SHA384())

    def key_make(point: bytes) -> object | None:
        try:
            return ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
        except ValueError:
            return None

    # As nitro_attest._backend._verify_cryptography does it.
    def verify(key: object, message: bytes, signature: bytes) -> bool:
        assert isinstance(key, ec.EllipticCurvePublicKey)
        r, s = int.from_bytes(signature[:_FIELD], "big"), int.from_bytes(signature[_FIELD:], "big")
        if not (0 < r < _N and 0 < s < _N):
            return False
        try:
            key.verify(encode_dss_signature(r, s), message, algorithm)
        except InvalidSignature:
            return False
        return True

    def sha384(message: bytes) -> bytes:
        digest = hashes.Hash(hashes.SHA384())
        digest.update(message)
        return digest.finalize()

    from cryptography.hazmat.backends.openssl.backend import backend  # noqa: PLC0415 (private module)

    version = f"{cryptography.__version__} ({backend.openssl_version_text()})"
    return _Lib("pyca/cryptography", version, key_make, verify, sha384)


def _pycryptodome() -> _Lib:
    import Crypto  # noqa: PLC0415
    from Crypto.Hash import SHA384  # noqa: PLC0415
    from Crypto.PublicKey import ECC  # noqa: PLC0415
    from Crypto.Signature import DSS  # noqa: PLC0415

    def key_make(point: bytes) -> object | None:
        try:
            verifier: object = DSS.new(ECC.import_key(point, curve_name="P-384"), "fips-186-3")
        except ValueError:
            return None
        return verifier

    def verify(verifier: object, message: bytes, signature: bytes) -> bool:
        try:
            verifier.verify(SHA384.new(message), signature)  # type: ignore[attr-defined]
        except ValueError:
            return False
        return True

    return _Lib("pycryptodome", Crypto.__version__, key_make, verify, lambda message: SHA384.new(message).digest())


def _fastecdsa() -> _Lib:
    from importlib.metadata import version  # noqa: PLC0415

    from fastecdsa import curve, ecdsa  # noqa: PLC0415
    from fastecdsa.encoding.sec1 import InvalidSEC1PublicKey, SEC1Encoder  # noqa: PLC0415

    encoder = SEC1Encoder()

    def key_make(point: bytes) -> object | None:
        try:
            key: object = encoder.decode_public_key(point, curve.P384)
        except (InvalidSEC1PublicKey, ValueError):  # ValueError: "point is not on the curve"
            return None
        return key

    def verify(key: object, message: bytes, signature: bytes) -> bool:
        r, s = int.from_bytes(signature[:_FIELD], "big"), int.from_bytes(signature[_FIELD:], "big")
        try:
            return bool(ecdsa.verify((r, s), message, key, curve=curve.P384, hashfunc=hashlib.sha384))
        except ecdsa.EcdsaError:  # r or s outside 1..n-1
            return False

    return _Lib(
        "fastecdsa (hashlib SHA-384)", version("fastecdsa"), key_make, verify, lambda m: hashlib.sha384(m).digest()
    )


_LIBS: dict[str, Callable[[], _Lib]] = {"pyca": _pyca, "pycryptodome": _pycryptodome, "fastecdsa": _fastecdsa}


@dataclass
class _Input:
    wycheproof: list[tuple[str, bytes, bytes, bytes, int]] = field(default_factory=list)
    probes: list[tuple[str, bytes, bytes, bytes]] = field(default_factory=list)
    keys: list[bytes] = field(default_factory=list)
    jobs: dict[str, list[tuple[int, bytes, bytes]]] = field(default_factory=dict)


def _read_input(path: Path) -> _Input:
    def unhex(text: str) -> bytes:
        return b"" if text == "-" else bytes.fromhex(text)

    parsed = _Input()
    for line in path.read_text().splitlines():
        tag, *fields = line.split(" ")
        if tag == "W":
            tc_id, point, message, signature, expected = fields
            parsed.wycheproof.append((tc_id, unhex(point), unhex(message), unhex(signature), int(expected)))
        elif tag == "P":
            name, point, message, signature = fields
            parsed.probes.append((name, unhex(point), unhex(message), unhex(signature)))
        elif tag == "K":
            parsed.keys.append(unhex(fields[0]))
        elif tag == "T":
            parsed.jobs.setdefault(fields[0], []).append((int(fields[1]), unhex(fields[2]), unhex(fields[3])))
    return parsed


def _worker(name: str, path: Path, seconds: float, rounds: int) -> dict[str, Any]:
    """The C program's harness, in Python: the same checks, timings and JSON."""
    lib = _LIBS[name]()
    data = _read_input(path)

    def verify_with(key: object | None, message: bytes, signature: bytes) -> bool:
        return key is not None and len(signature) == 2 * _FIELD and lib.verify(key, message, signature)

    def verify_fresh(point: bytes, message: bytes, signature: bytes) -> bool:
        return verify_with(lib.key_make(point), message, signature)

    disagree = []
    for tc_id, point, message, signature, expected in data.wycheproof:
        got = int(verify_fresh(point, message, signature))
        if got != expected:
            disagree.append({"tcId": int(tc_id), "expected": expected, "got": got})
    cached_differs = []
    made: dict[bytes, object | None] = {}
    for tc_id, point, message, signature, _expected in data.wycheproof:
        key = made.setdefault(point, lib.key_make(point))
        if verify_with(key, message, signature) != verify_fresh(point, message, signature):
            cached_differs.append(int(tc_id))
    probes = {}
    for probe, point, message, signature in data.probes:
        key = lib.key_make(point)
        if key is None:
            probes[probe] = "refused"
        elif verify_with(key, message, signature):
            probes[probe] = "KEY MADE, SIGNATURE VERIFIED"
        else:
            probes[probe] = "key made, signature refused"

    keys = [lib.key_make(point) for point in data.keys]
    Jobs = list[tuple[int, bytes, bytes]]

    # Each: one pass over a workload's jobs, returning how many did not give the expected result.
    def cached(jobs: Jobs) -> int:
        return sum(not verify_with(keys[k], message, signature) for k, message, signature in jobs)

    def fresh(jobs: Jobs) -> int:
        return sum(not verify_fresh(data.keys[k], message, signature) for k, message, signature in jobs)

    def digest(jobs: Jobs) -> int:
        return sum(len(lib.sha384(message)) != 48 for _k, message, _s in jobs)

    def make(jobs: Jobs) -> int:
        return sum(lib.key_make(data.keys[k]) is None for k, _m, _s in jobs)

    timing: dict[str, Any] = {}
    for label, jobs in data.jobs.items():
        passes = {"verify_cached": cached, "verify_fresh": fresh, "sha384": digest}
        if not timing:
            passes["key_make"] = make
        for mode, one_pass in passes.items():
            key = f"{mode}:{'point' if mode == 'key_make' else label}"
            timing[key] = _time_mode(one_pass, jobs, seconds, rounds)
    return {
        "backend": name,
        "library": lib.library,
        "version": lib.version,
        "wycheproof_disagree": disagree,
        "wycheproof_total": len(data.wycheproof),
        "wycheproof_agree": len(data.wycheproof) - len(disagree),
        "cached_differs": cached_differs,
        "probes": probes,
        "timing": timing,
    }


def _time_mode(
    one_pass: Callable[[list[tuple[int, bytes, bytes]]], int],
    jobs: list[tuple[int, bytes, bytes]],
    seconds: float,
    rounds: int,
) -> dict[str, Any]:
    failures, count = one_pass(jobs[:_WARM_UP]), len(jobs)  # untimed first, as the C harness does
    wall, cpu = [], []
    for _ in range(rounds):
        operations = 0
        wall0, cpu0 = time.perf_counter(), time.thread_time()
        while True:
            failures += one_pass(jobs)
            operations += count
            wall1 = time.perf_counter()
            if wall1 - wall0 >= seconds:
                break
        cpu1 = time.thread_time()
        wall.append(operations / (wall1 - wall0))
        cpu.append(operations / (cpu1 - cpu0))
    return {"wall": wall, "cpu": cpu, "failures": failures}


# ------------------------------------------------------------------ the driver


def _hex(data: bytes) -> str:
    return data.hex() if data else "-"


def _point(x: int, y: int, prefix: int = 4) -> bytes:
    return bytes([prefix]) + x.to_bytes(_FIELD, "big") + y.to_bytes(_FIELD, "big")


def _forged(message: bytes) -> bytes:
    """r || s that verifies ``message`` under any "key" Q for which u2 * Q vanishes.

    That is the point at infinity, and (0, 0), of order 2 on the curve of b = 0
    that a library doing curve arithmetic on an unchecked point computes on,
    whenever u2 = r / s is even. With R = u1 * G = (e / s) * G, r = R.x mod n:
    anyone can make it, no private key involved.
    """
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415 (the driver only)

    e = int.from_bytes(hashlib.sha384(message).digest(), "big")
    for s in range(1, 1000):
        u1 = e * pow(s, -1, _N) % _N
        r = ec.derive_private_key(u1, ec.SECP384R1()).public_key().public_numbers().x % _N
        if r * pow(s, -1, _N) % _N % 2 == 0:
            return r.to_bytes(_FIELD, "big") + s.to_bytes(_FIELD, "big")
    raise AssertionError("no even u2 in 1000 tries")  # each try is a coin toss


def _probes(x: int, y: int, genuine: bytes, message: bytes) -> list[tuple[str, bytes, bytes]]:
    """(name, 97 bytes, signature): points no verifier may take as a P-384 key, beside a signature.

    (x, y) is a real public key and ``genuine`` its signature of ``message``;
    the point (0, 0) gets a forged one instead.
    """
    probes = [
        ("off_curve", _point(x, (y + 1) % _P), genuine),
        ("zeros", _point(0, 0), _forged(message)),
        ("x_all_ff", _point(2**384 - 1, y), genuine),
        # The real key in SEC1's hybrid form: the same point, but not how nitro_attest's keys are written.
        ("hybrid_06_07", _point(x, y, 6 | (y & 1)), genuine),
    ]
    root = pow(_B, (_P + 1) // 4, _P)  # p = 3 mod 4
    if root * root % _P == _B:
        # (0, sqrt(b)) is on the curve; x written as p is its non-canonical twin.
        probes.append(("x_equals_p", _point(_P, root), genuine))
    return probes


def _write_input(path: Path, wycheproof: Path) -> tuple[dict[int, dict[str, Any]], list[str]]:
    """The input file; Wycheproof's cases by tcId (comment, flags, result) and the probe names."""
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415 (the driver only)
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature  # noqa: PLC0415
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat  # noqa: PLC0415

    lines, cases = [], {}
    for group in json.loads(wycheproof.read_text(encoding="utf-8"))["testGroups"]:
        point = bytes.fromhex(group["publicKey"]["uncompressed"])
        for test in group["tests"]:
            expected = 1 if test["result"] == "valid" else 0  # "acceptable" is rejected, as in tests/
            lines.append(
                f"W {test['tcId']} {point.hex()} {_hex(bytes.fromhex(test['msg']))} "
                f"{_hex(bytes.fromhex(test['sig']))} {expected}"
            )
            cases[test["tcId"]] = {"comment": test["comment"], "flags": test["flags"], "result": test["result"]}
    private = [ec.generate_private_key(ec.SECP384R1()) for _ in range(_KEYS)]
    algorithm = ec.ECDSA(hashes.SHA384())
    numbers = private[0].public_key().public_numbers()
    message = b"nitro_attest invalid-point probe"
    r, s = decode_dss_signature(private[0].sign(message, algorithm))
    probes = _probes(numbers.x, numbers.y, r.to_bytes(_FIELD, "big") + s.to_bytes(_FIELD, "big"), message)
    lines += [f"P {name} {point.hex()} {message.hex()} {signature.hex()}" for name, point, signature in probes]
    lines += [
        f"K {key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint).hex()}" for key in private
    ]
    for label, size in zip(_LABELS, (_DOCUMENT, _CERTIFICATE), strict=True):
        # Keys interleaved, as a stream of documents from many enclaves is.
        for index in range(_KEYS * _PER_KEY):
            message = os.urandom(size)
            r, s = decode_dss_signature(private[index % _KEYS].sign(message, algorithm))
            signature = r.to_bytes(_FIELD, "big") + s.to_bytes(_FIELD, "big")
            lines.append(f"T {label} {index % _KEYS} {message.hex()} {signature.hex()}")
    path.write_text("\n".join(lines) + "\n")
    return cases, [name for name, _point, _signature in probes]


def _compile(backend: _C, directory: Path) -> tuple[list[str] | None, str]:
    """The command that runs the built program, or None and why it cannot be built; and the build command."""
    if shutil.which("cc") is None:
        return None, "no cc on PATH"
    flags = subprocess.run(  # noqa: S603
        ["pkg-config", "--cflags", "--libs", *backend.modules],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    if flags.returncode != 0:
        return None, f"pkg-config {' '.join(backend.modules)}: {' '.join(flags.stderr.split())}"
    binary = directory / backend.name
    command = [
        "cc",
        "-O2",
        f"-D{backend.define}",
        "-o",
        str(binary),
        str(_SOURCE),
        *shlex.split(flags.stdout),
        *backend.extra,
    ]
    built = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if built.returncode != 0:
        return None, "cc failed: " + " | ".join(built.stderr.strip().splitlines()[:3])
    return [str(binary)], " ".join(["cc", "-O2", f"-D{backend.define}", _SOURCE.name, *command[6:]])


def _python_for(module: str, pythons: list[str]) -> str | None:
    for python in pythons:
        found = subprocess.run([python, "-c", f"import {module}"], capture_output=True, check=False)  # noqa: S603
        if found.returncode == 0:
            return python
    return None


def _run(command: list[str], input_path: Path, seconds: float, inner: int) -> dict[str, Any] | str:
    done = subprocess.run(  # noqa: S603
        [*command, str(input_path), str(seconds), str(inner)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return f"exit {done.returncode}: {done.stderr.strip()[-300:]}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _ratio_text(values: list[float]) -> str:
    if not values:
        return "-"
    median = statistics.median(values)
    return f"{median:.2f}x ({min(values):.2f}-{max(values):.2f})"


_SAME_POINT = "hybrid_06_07"  # the real key written another way: taking it is lenient, not unsafe


def _trust(result: dict[str, Any], cases: dict[int, dict[str, Any]]) -> str:
    """Whether a library's numbers can be read: not when it accepts what it must not, or is inconsistent."""
    problems = []
    accepted_invalid = [d["tcId"] for d in result["wycheproof_disagree"] if d["got"] == 1]
    if accepted_invalid:
        problems.append(f"accepts invalid {', '.join(map(str, accepted_invalid))}")
    forged = [
        name for name, verdict in result["probes"].items() if verdict.startswith("KEY MADE") and name != _SAME_POINT
    ]
    if forged:
        problems.append(f"verifies a forged signature under {', '.join(forged)}")
    if result["cached_differs"]:
        problems.append(f"cached and fresh keys differ on {', '.join(map(str, result['cached_differs']))}")
    failures = sum(sample["failures"] for sample in result["timing"].values())
    if failures:
        problems.append(f"{failures} valid timing signatures rejected")
    if problems:
        return "NO: " + "; ".join(problems)
    notes = []
    rejected_valid = [d["tcId"] for d in result["wycheproof_disagree"] if d["got"] == 0]
    if rejected_valid:
        flags = sorted({flag for tc in rejected_valid for flag in cases.get(tc, {}).get("flags", [])})
        notes.append(f"rejects valid {', '.join(map(str, rejected_valid))} ({', '.join(flags)})")
    taken = [name for name, verdict in result["probes"].items() if verdict != "refused"]
    if taken:
        notes.append(f"makes a key of {', '.join(taken)}")
    return "yes" + (f"; {'; '.join(notes)}" if notes else "")


def _table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _rate(run: dict[str, Any], key: str, clock: str) -> float:
    """One round's rate: the median of its samples, per second of wall-clock or of the thread's CPU time."""
    return float(statistics.median(run["timing"][key][clock]))


def _report(
    results: dict[str, list[dict[str, Any]]],
    cases: dict[int, dict[str, Any]],
    probe_names: list[str],
    licences: dict[str, str],
) -> tuple[str, dict[str, Any]]:
    names = list(results)
    doc, cert = _LABELS
    cached_doc, fresh_doc, cached_cert = f"verify_cached:{doc}", f"verify_fresh:{doc}", f"verify_cached:{cert}"

    def per_round(name: str, key: str, clock: str = "cpu") -> list[float]:
        return [_rate(run, key, clock) for run in results[name]]

    def median(name: str, key: str, clock: str = "cpu") -> float:
        return statistics.median(per_round(name, key, clock))

    def ratios(name: str, reference: str, key: str, clock: str = "cpu") -> list[float]:
        if reference not in results:
            return []
        pairs = zip(per_round(name, key, clock), per_round(reference, key, clock), strict=True)
        return [mine / theirs for mine, theirs in pairs]

    first = {name: runs[0] for name, runs in results.items()}
    trust = {name: _trust(first[name], cases) for name in names}
    correctness = []
    for name in names:
        result = first[name]
        stable = all(run["wycheproof_disagree"] == result["wycheproof_disagree"] for run in results[name])
        disagree = ", ".join(
            f"{d['tcId']} (want {d['expected']}, got {d['got']}; {cases.get(d['tcId'], {}).get('comment', '?')})"
            for d in result["wycheproof_disagree"]
        )
        refused = sum(verdict == "refused" for verdict in result["probes"].values())
        taken = "".join(f"; {p}: {verdict}" for p, verdict in result["probes"].items() if verdict != "refused")
        correctness.append(
            [
                name,
                f"{result['library']} {result['version']}",
                f"{result['wycheproof_agree']}/{result['wycheproof_total']}" + ("" if stable else " (VARIES)"),
                disagree or "none",
                f"{refused}/{len(probe_names)}{taken}",
                trust[name],
            ]
        )
    order = sorted(names, key=lambda name: -median(name, cached_doc))
    speed = [
        [
            name,
            f"{median(name, cached_doc):,.0f}",
            f"{median(name, cached_doc, 'wall'):,.0f}",
            _ratio_text(ratios(name, "nettle", cached_doc)),
            _ratio_text(ratios(name, "nettle", cached_doc, "wall")),
            _ratio_text(ratios(name, "pyca", cached_doc)),
            f"{median(name, fresh_doc):,.0f}",
            _ratio_text(ratios(name, "nettle", fresh_doc)),
            f"{median(name, cached_cert):,.0f}",
            _ratio_text(ratios(name, "nettle", cached_cert)),
        ]
        for name in order
    ]
    costs = []
    for name in order:
        verify, digest, make = (1e6 / median(name, key) for key in (cached_doc, f"sha384:{doc}", "key_make:point"))
        fresh = 1e6 / median(name, fresh_doc)
        costs.append(
            [
                name,
                f"{verify:,.1f}",
                f"{digest:,.1f} ({digest / verify:.1%})",
                f"{verify - digest:,.1f}",
                f"{make:,.1f} ({make / fresh:.1%} of fresh)",
            ]
        )
    trusted = [name for name in order if trust[name].startswith("yes")]
    lines = [
        "Correctness (Wycheproof p1363, strict: 'acceptable' counted invalid; probes: points that key "
        "creation must refuse, each with a signature that verifies if a forged one can)",
        _table(
            ["backend", "library", "Wycheproof agree", "disagreements (tcId)", "probes refused", "trusted"],
            correctness,
        ),
        f"Speed, one thread, {_KEYS} keys x {_PER_KEY} signatures: verify/s per second of the thread's CPU time "
        "(cpu; wall-clock beside it), median over rounds; ratios are medians (ranges) of per-round ratios. "
        "cached = key object made once per key; fresh = made from the 97-byte point for each signature",
        _table(
            [
                "backend",
                f"cached {doc} cpu",
                "wall",
                "x nettle cpu",
                "x nettle wall",
                "x pyca cpu",
                f"fresh {doc}",
                "x nettle",
                f"cached {cert}",
                "x nettle",
            ],
            speed,
        ),
        "What is not the arithmetic (us per operation, CPU time, from the medians): SHA-384 of the message "
        "alone, the rest of a cached verify, making the key object from the point alone",
        _table(
            ["backend", f"verify cached {doc}", f"SHA-384 {doc} (share)", "verify minus SHA-384", "key object"],
            costs,
        ),
    ]
    if len(trusted) >= 2:
        best, second = trusted[0], trusted[1]
        lines.append(
            f"fastest trusted: {best}; per round (cpu) x {second}: "
            + ", ".join(f"{value:.2f}" for value in ratios(best, second, cached_doc))
            + (
                f"; x pyca: {', '.join(f'{value:.2f}' for value in ratios(best, 'pyca', cached_doc))}"
                if "pyca" in results and "pyca" not in (best, second)
                else ""
            )
            + (
                f"; x nettle: {', '.join(f'{value:.2f}' for value in ratios(best, 'nettle', cached_doc))}"
                if "nettle" in results and "nettle" not in (best, second)
                else ""
            )
        )
    lines.append("licences: " + "; ".join(f"{name}: {licences[name]}" for name in order))
    summary = {
        "order_by_cached_cpu_rate": order,
        "trusted": trust,
        "ratios_to_nettle_cpu": {name: ratios(name, "nettle", cached_doc) for name in names},
        "ratios_to_nettle_wall": {name: ratios(name, "nettle", cached_doc, "wall") for name in names},
        "ratios_to_pyca_cpu": {name: ratios(name, "pyca", cached_doc) for name in names},
    }
    return "\n\n".join(lines), summary


def _backends(directory: Path, pythons: list[str]) -> tuple[dict[str, list[str]], dict[str, str], dict[str, str]]:
    """Each library that can run here: its command, its licence, and how it was built (or which interpreter)."""
    commands: dict[str, list[str]] = {}
    licences: dict[str, str] = {}
    built: dict[str, str] = {}
    for backend in _C_BACKENDS:
        command, how = _compile(backend, directory)
        if command is None:
            print(f"skipped {backend.name}: {how}")
            continue
        commands[backend.name], licences[backend.name], built[backend.name] = command, backend.license, how
    for name, module, licence in _PY_BACKENDS:
        python = _python_for(module, pythons)
        if python is None:
            print(
                f"skipped {name}: no interpreter of {pythons} imports {module} (pip install it into a throwaway "
                f"venv, pass --python VENV/bin/python)"
            )
            continue
        commands[name] = [python, str(Path(__file__).resolve()), "--worker", name]
        licences[name], built[name] = licence, python
    for name, how in built.items():
        print(f"  {name}: {how}")
    return commands, licences, built


def _measure(
    commands: dict[str, list[str]], input_path: Path, rounds: int, seconds: float, inner: int
) -> dict[str, list[dict[str, Any]]]:
    """Every library once per round, in an order rotated each round; one that fails is dropped, saying why."""
    names = list(commands)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for round_index in range(rounds):
        order = names[round_index % len(names) :] + names[: round_index % len(names)]
        print(f"round {round_index + 1}/{rounds}: {' '.join(order)}", file=sys.stderr)
        for name in order:
            if name not in results:
                continue
            outcome = _run(commands[name], input_path, seconds, inner)
            if isinstance(outcome, str):
                print(f"dropped {name}: {outcome}")
                del results[name]
                continue
            results[name].append(outcome)
    return results


@dataclass(frozen=True)
class Prepared:
    """Every library that runs here, built, with its input file: for benchmarks/run.py's side-by-side rows."""

    input_path: Path
    commands: dict[str, list[str]]
    cases: dict[int, dict[str, Any]]


def prepare(directory: Path, wycheproof: Path, pythons: list[str]) -> Prepared:
    """Writes the input file and builds each C library's program in ``directory`` (skips say why)."""
    input_path = directory / "input.txt"
    cases, _ = _write_input(input_path, wycheproof)
    commands, _, _ = _backends(directory, pythons)
    return Prepared(input_path, commands, cases)


def one_core_sample(prepared: Prepared, name: str, seconds: float) -> tuple[float, str, str]:
    """One run of library ``name``: its verify/s on one thread (wall clock, key made once, a 4.5 KB message),
    its name and version, and whether its verdicts can be trusted (``"yes..."``, or ``"NO: ..."``, or the failure).
    """
    outcome = _run(prepared.commands[name], prepared.input_path, seconds, 1)
    if isinstance(outcome, str):
        return math.nan, name, f"NO: {outcome}"
    rate = _rate(outcome, f"verify_cached:{_LABELS[0]}", "wall")
    return rate, f"{outcome['library']} {outcome['version']}", _trust(outcome, prepared.cases)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.25, help="least length of one sample (default 0.25)")
    parser.add_argument("--inner", type=int, default=3, help="samples per library per round (default 3)")
    parser.add_argument(
        "--python", action="append", default=[], help="another interpreter to look in for pip libraries"
    )
    parser.add_argument("--wycheproof", type=Path, default=None, help="the p1363 vector file (default ../shared/...)")
    parser.add_argument("--json", type=Path, default=None, help="write every sample here")
    parser.add_argument("--worker", nargs=4, metavar=("NAME", "INPUT", "SECONDS", "ROUNDS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        name, path, seconds, rounds = args.worker
        print(json.dumps(_worker(name, Path(path), float(seconds), int(rounds))))
        return 0

    sys.path.insert(0, str(_HERE))
    from _common import REPO, machine, machine_line  # noqa: PLC0415 (the workers must not import nitro_attest)

    wycheproof = args.wycheproof or REPO.parent.joinpath("shared", *_WYCHEPROOF)
    if not wycheproof.is_file():
        print(f"skipped: Wycheproof vectors absent ({wycheproof}: ../shared is not shipped with the project)")
        return 0
    print(machine_line(machine()))
    print(f"load average at start: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="nitro_attest-p384-") as temporary:
        directory = Path(temporary)
        input_path = directory / "input.txt"
        cases, probe_names = _write_input(input_path, wycheproof)
        commands, licences, built = _backends(directory, [sys.executable, *args.python])
        results = _measure(commands, input_path, args.rounds, args.seconds, args.inner)
    print(f"load average at end: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    print(f"{args.rounds} rounds, {args.inner} samples of >= {args.seconds} s per library per round\n")
    text, summary = _report(results, cases, probe_names, licences)
    print(text)
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "machine": machine(),
                    "built": built,
                    "licences": licences,
                    "results": results,
                    "summary": summary,
                    "wycheproof_cases": {str(k): v for k, v in cases.items()},
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
