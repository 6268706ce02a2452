"""What the costliest documents cost: the worst accepted inputs and the worst rejected ones, against a typical one.

    python benchmarks/worst_case.py [--rounds 5] [--quick] [--json FILE]

(``benchmarks/run.py`` runs it too, after its own tables.)

Every input is made with ``nitro_attest.testing`` (the look-alike AWS PKI):

- accepted: the **largest** document the limits allow (8 bundle certificates
  and a leaf of 1024 bytes each, 32 PCRs, 1024-byte nonce/user_data/
  public_key, the payload at 16 KiB), and the **densest** (a typical chain,
  with as many empty maps in an unknown field as the decoder's item cap
  allows: the cheapest items to encode and the dearest to check);
- rejected: maps of keys that all hash alike (**colliding keys**: two-integer
  arrays, which cbor2 would make tuples, chosen so that CPython's tuple hash
  gives one value; a dict of them is quadratic to build, so such keys are
  refused before cbor2 sees them), 32 KiB of random bytes, of empty maps, of
  nesting; a length header claiming 2^63 bytes; 100 MB of bytes and of
  bytearray; the longest bundle whose last link is bad; the largest document
  with a bad signature, or under a policy it fails.

Each is verified **cold** (every cache of the package cleared before each
call) and **warm** (after one untimed call of the same input), side by side
with the typical document (``TestPKI.document()``: 4 bundle certificates, 16
PCRs) in the same round, several rounds in a rotated order; ratios are
medians of the per-round ratios. The P-384 verifications each input costs
are counted in a separate untimed call (the nettle backend's rejections are
asked of OpenSSL again, so a bad signature counts twice there).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import hashlib
import itertools
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cbor2
from _common import (  # first: puts this checkout's nitro_attest on the path
    cache_clearers,
    clear_all,
    machine,
    machine_line,
)
from cryptography import x509

import nitro_attest
from nitro_attest import _backend as backend
from nitro_attest._cbor import MAX_ITEMS
from nitro_attest.testing import DEFAULT_PCRS, Raw, TestPKI, derive_key, long_chain, padded_to

DOCUMENT_CAP = 32 * 1024
PAYLOAD_CAP = 16 * 1024
CERTIFICATE_CAP = 1024
BUNDLE_CAP = 8
HUGE = 100 * 1024 * 1024
# CPython's tuple hash (Objects/tupleobject.c, an xxHash-like mix of the items' hashes), for colliding keys.
_MASK = (1 << 64) - 1
_XXPRIME_1, _XXPRIME_2, _XXPRIME_5 = 11400714785074694791, 14029467366897019727, 2870177450012600261
_LENGTH_SALT = 3527539


# --------------------------------------------------------------------------- inputs


def _empty_maps(count: int) -> Raw:
    """An indefinite array of ``count`` empty maps: one byte each, the dearest bytes to check."""
    return Raw(b"\x9f" + b"\xa0" * count + b"\xff")


def _rotate_left(value: int, bits: int) -> int:
    return ((value << bits) | (value >> (64 - bits))) & _MASK


def _int_with_hash(lane: int) -> int | None:
    """An integer whose hash() is ``lane`` (as an unsigned 64-bit word), when one exists."""
    modulus = sys.hash_info.modulus  # hash(n) is n mod 2**61 - 1, with the sign of n
    if lane < modulus:
        return lane
    negative = lane - (1 << 64)
    if -modulus < negative < -1:  # hash(-1) is -2: -1 is reserved for errors
        return negative
    return None


def colliding_pairs(count: int) -> list[tuple[int, int]]:
    """``count`` distinct pairs (a, b) whose tuples all have one hash, so a dict of them probes in a line.

    A 2-tuple's hash is ``rot31(rot31(P5 + h(a)*P2)*P1 + h(b)*P2)*P1 + (2 ^ P5 ^ 3527539)``
    (mod 2**64): every step can be undone, so for each small ``a`` the ``h(b)``
    that reaches a chosen final hash is solved for; about a quarter of them are
    the hash of some integer. cbor2 decodes a CBOR array map key as a tuple.
    """
    target = 0x6E6974726F5F6174  # any value will do
    before_length = (target - (2 ^ (_XXPRIME_5 ^ _LENGTH_SALT))) & _MASK
    unmixed = _rotate_left(before_length * pow(_XXPRIME_1, -1, 1 << 64) & _MASK, 64 - 31)
    pairs: list[tuple[int, int]] = []
    for first in itertools.count():
        after_first = _rotate_left((_XXPRIME_5 + (hash(first) & _MASK) * _XXPRIME_2) & _MASK, 31) * _XXPRIME_1 & _MASK
        second = _int_with_hash((unmixed - after_first) * pow(_XXPRIME_2, -1, 1 << 64) & _MASK)
        if second is not None:
            pairs.append((first, second))
            if len(pairs) == count:
                return pairs
    raise AssertionError("unreachable")


def colliding_map(budget: int) -> tuple[bytes, bool]:
    """The largest CBOR map of colliding pair keys (value 0) within ``budget`` bytes; whether they collide here."""
    entries: list[bytes] = []
    used = 3  # the map's head: 0xb9 and a 2-byte count
    for pair in colliding_pairs(budget // 12 + 1):
        entry = cbor2.dumps(list(pair)) + b"\x00"
        if used + len(entry) > budget:
            break
        entries.append(entry)
        used += len(entry)
    keys = [tuple(cbor2.loads(entry[:-1])) for entry in entries]
    collide = len({hash(key) for key in keys}) == 1
    return b"\xb9" + len(entries).to_bytes(2, "big") + b"".join(entries), collide


def _payload(data: bytes) -> bytes:
    payload: bytes = cbor2.loads(data)[2]
    return payload


def _fill_payload(pki: TestPKI, **kwargs: Any) -> bytes:
    """``pki.document(...)`` with an unknown ``padding`` byte string bringing the payload to exactly 16 KiB.

    One item: a document can no longer be padded with thousands of items (the
    decoder's cap, nitro_attest._cbor.MAX_ITEMS), so past the 16 KiB payload
    no valid document reaches the 32 KiB document cap.
    """
    size = 0
    for _ in range(4):  # the string's head grows with its length
        data = pki.document(payload_overrides={"padding": bytes(size)}, **kwargs)
        missing = PAYLOAD_CAP - len(_payload(data))
        if missing == 0:
            return data
        size += missing
    raise RuntimeError("cannot fill the payload to exactly 16 KiB")


def _densest(pki: TestPKI) -> bytes:
    """The typical document with as many empty maps in an unknown field as the item cap allows."""
    for count in range(MAX_ITEMS, 0, -1):
        data = pki.document(payload_overrides={"padding": _empty_maps(count)})
        try:
            nitro_attest.parse(data)
        except nitro_attest.MalformedDocument:
            continue
        return data
    raise RuntimeError("no count of empty maps parses")


def _flip_signature(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 1])


@dataclass
class Case:
    name: str
    data: bytes | bytearray
    policy: nitro_attest.Policy
    roots: tuple[x509.Certificate, ...]
    at: datetime
    expect: str  # "accepted" or the error's code
    repeat: int = 1  # calls per cold timing
    repeat_warm: int = 1  # calls per warm timing
    cold: list[float] = field(default_factory=list)  # seconds per call, one per round
    warm: list[float] = field(default_factory=list)
    typical_cold: list[float] = field(default_factory=list)  # the typical document's, timed beside this case
    typical_warm: list[float] = field(default_factory=list)
    verifications: tuple[int | None, int | None] = (None, None)

    @property
    def accepted(self) -> bool:
        return self.expect == "accepted"

    def call(self) -> str:
        try:
            nitro_attest.verify(self.data, self.policy, at=self.at, roots=self.roots)  # type: ignore[arg-type]
        except nitro_attest.NitroAttestError as error:
            return error.code
        return "accepted"


def make_cases() -> list[Case]:
    pki = TestPKI.create()
    at, roots = pki.document_time, pki.roots
    pin = nitro_attest.Policy({0: DEFAULT_PCRS[0]})
    cases = [
        Case("typical: TestPKI.document() (4 bundle certificates, 16 PCRs)", pki.document(), pin, roots, at, "accepted")
    ]

    chain = long_chain(pki, BUNDLE_CAP, size=CERTIFICATE_CAP)
    fields: dict[str, Any] = {"nonce": b"n" * 1024, "user_data": b"u" * 1024, "public_key": b"k" * 1024}
    pcrs = {index: bytes([index + 1]) * 48 for index in range(32)}

    largest = _fill_payload(chain.pki, chain=chain.bundle, pcrs=pcrs, **fields)
    assert len(_payload(largest)) == PAYLOAD_CAP
    largest_policy = nitro_attest.Policy({31: pcrs[31]}, **fields)
    long_roots = chain.pki.roots
    cases.append(
        Case(
            f"largest: 8+1 certificates of 1024 B, 32 PCRs, 3 fields of 1024 B, payload 16 KiB "
            f"(document {len(largest)} B)",
            largest,
            largest_policy,
            long_roots,
            at,
            "accepted",
        )
    )
    densest = _densest(pki)
    cases.append(
        Case(
            f"densest: typical chain, the payload's {MAX_ITEMS}-item budget filled with empty maps",
            densest,
            pin,
            roots,
            at,
            "accepted",
        )
    )
    room = PAYLOAD_CAP - len(_payload(pki.document())) - 16
    in_payload, collide = colliding_map(room)
    here = "" if collide else " (they do not collide on this Python)"
    colliding = pki.document(payload_overrides={"collide": Raw(in_payload)})

    garbage = b"\x84" + hashlib.shake_256(b"worst case garbage").digest(DOCUMENT_CAP - 1)
    maps = b"\x9f" + b"\xa0" * (DOCUMENT_CAP - 2) + b"\xff"
    # [protected, {}, h'', signature (filler to 32 KiB), the map]: five elements, so refused once decoded.
    colliding_keys, _ = colliding_map(DOCUMENT_CAP - 16)
    head = b"\x85\x44\xa1\x01\x38\x22\xa0\x40"
    filler = DOCUMENT_CAP - len(head) - 3 - len(colliding_keys)
    collide_envelope = head + b"\x59" + filler.to_bytes(2, "big") + bytes(filler) + colliding_keys
    assert len(collide_envelope) == DOCUMENT_CAP
    attacker = derive_key("worst_case/attacker")
    # The padding extension is replaced in place: the leaf stays 1024 bytes, signed by the wrong key.
    bad_leaf = padded_to(
        CERTIFICATE_CAP, lambda extra: chain.pki.reissue("leaf", signing_key=attacker, extensions=extra).leaf
    )
    bad_last_link = dataclasses.replace(chain.pki, leaf=bad_leaf)
    rejected = [
        ("32 KiB of random bytes", garbage, "cbor"),
        ("32 KiB of empty maps (past the item cap)", maps, "cbor"),
        (
            f"32 KiB envelope with a map of {colliding_keys[1] << 8 | colliding_keys[2]} equal-hash pair keys{here} "
            "(refused at the first key)",
            collide_envelope,
            "cbor",
        ),
        (
            f"typical document whose payload has a map of {in_payload[1] << 8 | in_payload[2]} equal-hash pair "
            "keys (refused at the first key)",
            colliding,
            "cbor",
        ),
        ("32 KiB of nested indefinite arrays", b"\x9f" * DOCUMENT_CAP, "cbor"),
        ("a byte string header claiming 2^63 bytes", b"\x84\x5b" + (1 << 63).to_bytes(8, "big") + bytes(64), "cbor"),
        ("100 MB bytes", b"\x84" + bytes(HUGE - 1), "size"),
    ]
    for name, data, code in rejected:
        cases.append(Case(name, data, pin, roots, at, code))
    cases.append(Case("100 MB bytearray", bytearray(HUGE), pin, roots, at, "size"))
    cases.append(
        Case(
            "longest bundle (8 x 1024 B) whose last link is bad",
            bad_last_link.document(chain=chain.bundle),
            pin,
            long_roots,
            at,
            "chain",
        )
    )
    cases.append(
        Case("largest, bad document signature", _flip_signature(largest), largest_policy, long_roots, at, "signature")
    )
    cases.append(
        Case(
            "largest, policy failure (PCR31 differs)",
            largest,
            nitro_attest.Policy({31: bytes(48)}),
            long_roots,
            at,
            "pcr",
        )
    )
    cases.append(Case("densest, bad document signature", _flip_signature(densest), pin, roots, at, "signature"))
    return cases


# --------------------------------------------------------------------------- measuring


def count_verifications(call: Callable[[], object]) -> int | None:
    """How many P-384 verifications ``call`` makes, by either backend (None if the internals moved)."""
    many_native = getattr(backend, "_many_native", None)
    one = getattr(backend, "_verify_cryptography", None)
    if many_native is None or one is None:
        return None
    count = 0

    def counted_native(native: Any, jobs: list[Any], workers: int) -> list[bool]:
        nonlocal count
        count += len(jobs)
        return many_native(native, jobs, workers)  # type: ignore[no-any-return]

    def counted_one(job: Any) -> bool:
        nonlocal count
        count += 1
        return one(job)  # type: ignore[no-any-return]

    backend._many_native = counted_native
    backend._verify_cryptography = counted_one
    try:
        call()
    finally:
        backend._many_native = many_native
        backend._verify_cryptography = one
    return count


def _clearers() -> list[tuple[str, Any]]:
    """The package's caches (see _common.cache_clearers), found with two documents the process has not seen."""
    probe = TestPKI.create(seed="worst_case probe")
    documents = [probe.document(nonce=b"1"), probe.document(nonce=b"2")]
    return cache_clearers(
        lambda: [
            nitro_attest.verify(data, nitro_attest.Policy.any_enclave(), at=probe.document_time, roots=probe.roots)
            for data in documents
        ]
    )


def prepare(cases: Sequence[Case], clearers: list[tuple[str, Any]], target: float) -> None:
    """Checks every verdict (untimed), counts verifications, and sizes each timing to about ``target`` seconds."""
    for case in cases:
        clear_all(clearers)
        began = time.perf_counter()
        outcome = case.call()
        once = time.perf_counter() - began
        if outcome != case.expect:
            raise RuntimeError(f"{case.name}: expected {case.expect}, got {outcome} (the input is broken)")
        clear_all(clearers)
        cold = count_verifications(case.call)
        warm = count_verifications(case.call)
        case.verifications = (cold, warm)
        began = time.perf_counter()
        case.call()
        again = time.perf_counter() - began
        case.repeat = max(1, min(500, round(target / max(once, 1e-6))))
        case.repeat_warm = max(1, min(500, round(target / max(again, 1e-6))))


def _timing(case: Case, clearers: list[tuple[str, Any]], *, cold: bool) -> float:
    """Seconds per call of ``case``: every cache cleared before each call, or after one untimed call."""
    if not cold:
        case.call()  # warms the caches for this input
    repeat = case.repeat if cold else case.repeat_warm
    gc.collect()
    began = time.perf_counter()
    for _ in range(repeat):
        if cold:
            clear_all(clearers)
        case.call()
    return (time.perf_counter() - began) / repeat


def measure(
    cases: Sequence[Case], clearers: list[tuple[str, Any]], rounds: int, progress: Callable[[str], None]
) -> None:
    """Every case once per round (order rotated each round), the typical document timed just before and after it.

    A case's ratio in a round is to the mean of those two typical timings: on
    a shared machine the load drifts, and neighbours in time see the same load.
    """
    typical, others = cases[0], cases[1:]
    for round_index in range(rounds):
        shift = round_index % len(others)
        for case in [*others[shift:], *others[:shift]]:
            before = (_timing(typical, clearers, cold=True), _timing(typical, clearers, cold=False))
            case.cold.append(_timing(case, clearers, cold=True))
            case.warm.append(_timing(case, clearers, cold=False))
            after = (_timing(typical, clearers, cold=True), _timing(typical, clearers, cold=False))
            case.typical_cold.append((before[0] + after[0]) / 2)
            case.typical_warm.append((before[1] + after[1]) / 2)
            typical.cold += [before[0], after[0]]
            typical.warm += [before[1], after[1]]
        progress(f"worst case: round {round_index + 1}/{rounds} done")
    typical.typical_cold, typical.typical_warm = typical.cold, typical.warm


def _ratio(case: Case, mode: str, reference_mode: str) -> tuple[float, float, float]:
    """Median, lowest and highest per-round ratio of ``case``'s ``mode`` timing to the typical one beside it."""
    mine, typical = getattr(case, mode), getattr(case, f"typical_{reference_mode}")
    ratios = [a / b for a, b in zip(mine, typical, strict=True)]
    return statistics.median(ratios), min(ratios), max(ratios)


def _verifications(case: Case) -> str:
    cold, warm = case.verifications
    return "?" if cold is None or warm is None else f"{cold} / {warm}"


def report(cases: Sequence[Case]) -> list[str]:
    typical = cases[0]
    lines = [
        "| input | verdict | P-384 verifications cold / warm | cold | warm | cold / typical cold | warm / typical warm "
        "| warm / typical cold |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for case in cases:
        cold, low, high = _ratio(case, "cold", "cold")
        warm, warm_low, warm_high = _ratio(case, "warm", "warm")
        across = _ratio(case, "warm", "cold")[0]
        lines.append(
            f"| {case.name} | {case.expect} | {_verifications(case)} | {statistics.median(case.cold) * 1e6:,.0f} us "
            f"| {statistics.median(case.warm) * 1e6:,.0f} us | {cold:.2f}x ({low:.2f}-{high:.2f}) "
            f"| {warm:.2f}x ({warm_low:.2f}-{warm_high:.2f}) | {across:.2f}x |"
        )
    accepted = [case for case in cases[1:] if case.accepted]
    rejected = [case for case in cases if not case.accepted]
    worst_cold = max(accepted, key=lambda case: _ratio(case, "cold", "cold")[0])
    worst_warm = max(accepted, key=lambda case: _ratio(case, "warm", "warm")[0])
    dearest = max(rejected, key=lambda case: _ratio(case, "cold", "cold")[0])
    dearest_warm = max(rejected, key=lambda case: _ratio(case, "warm", "warm")[0])
    counted = [case.verifications[0] for case in cases if case.verifications[0] is not None]

    def ms(samples: list[float]) -> str:
        return f"{statistics.median(samples) * 1e3:.2f} ms"

    def times(case: Case, mode: str, reference_mode: str) -> str:
        return f"{_ratio(case, mode, reference_mode)[0]:.1f}x"

    lines += [
        "",
        f"- worst accepted, cold: {worst_cold.name}: {times(worst_cold, 'cold', 'cold')} a typical document cold "
        f"({ms(worst_cold.cold)} vs {ms(typical.cold)})",
        f"- worst accepted, warm: {worst_warm.name}: {times(worst_warm, 'warm', 'warm')} a typical document warm "
        f"({ms(worst_warm.warm)} vs {ms(typical.warm)})",
        f"- dearest rejection, cold: {dearest.name}: {times(dearest, 'cold', 'cold')} a typical document cold, "
        f"{times(dearest, 'cold', 'warm')} one warm ({ms(dearest.cold)})",
        f"- dearest rejection, warm: {dearest_warm.name}: {times(dearest_warm, 'warm', 'warm')} a typical document "
        f"warm ({ms(dearest_warm.warm)})",
        f"- most P-384 verifications by one input: {max(counted) if counted else '?'} "
        f"(typical: {_verifications(typical)}, cold / warm)",
    ]
    return lines


def run(rounds: int, *, quick: bool, progress: Callable[[str], None]) -> tuple[list[str], dict[str, Any]]:
    """Builds, checks and measures every case; the report's lines and a JSON-able record."""
    progress("worst case: building the inputs (padded certificates, 32 KiB documents) ...")
    cases = make_cases()
    clearers = _clearers()
    prepare(cases, clearers, target=0.01 if quick else 0.03)
    measure(cases, clearers, rounds, progress)
    record = {
        "backend": backend.BACKEND,
        "cases": [
            {
                "name": case.name,
                "verdict": case.expect,
                "size": len(case.data),
                "verifications_cold_warm": case.verifications,
                "cold_seconds": case.cold,
                "warm_seconds": case.warm,
            }
            for case in cases
        ],
    }
    return report(cases), record


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 5; 2 with --quick)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 rounds, shorter timings")
    parser.add_argument("--json", type=Path, help="also write every sample to this file")
    args = parser.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 5)
    facts = machine()
    began = datetime.now(timezone.utc)
    print(f"# nitro_attest worst cases, {began:%Y-%m-%d %H:%M} UTC")
    print(f"{machine_line(facts)}; P-384 backend {backend.BACKEND}")
    print(f"rounds: {rounds}, rotated order; ratios are medians of per-round ratios (range in brackets)\n")
    lines, record = run(rounds, quick=args.quick, progress=_say)
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps({"started": began.isoformat(), "machine": facts, **record}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
