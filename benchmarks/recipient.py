"""What sealing and opening a secret cost, side by side with the one RSA operation that opening needs.

    python benchmarks/recipient.py [--rounds 5] [--quick] [--json FILE]

For a 32-byte secret (a data key, as KMS ``GenerateDataKey`` releases it) and
a 4 KiB one (KMS ``Decrypt``'s largest plaintext), with a 2048-bit enclave key:

- ``seal()`` to the key's SubjectPublicKeyInfo DER (loading the key, one
  RSA-OAEP encryption, AES-256-CBC, the BER writer);
- ``EnclaveKey.open()`` (asn1crypto decoding, the rules, one RSA-OAEP
  decryption, AES-256-CBC, the padding);
- the reference: pyca/cryptography's RSA-OAEP-SHA-256 decrypt of the same
  encrypted key with the same loaded key, alone.

Each row runs once per round for a fixed time, in an order rotated each
round; a row's rate is the median over rounds, its ratio the median of its
per-round ratios to the raw decrypt measured in the same round (the machine
is shared: read the ratios). The goal: open within 1.2x of the raw decrypt.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, machine_line  # first: puts this checkout's nitro_attest on the path
from asn1crypto import cms  # type: ignore[import-untyped]
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP

from nitro_attest.recipient import EnclaveKey, seal

_OAEP = OAEP(mgf=MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
SIZES = {"32 B": 32, "4 KiB": 4096}
GOAL = 1.2


def _rate(call: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``call``, run for about ``seconds``."""
    gc.collect()
    count, started = 0, time.perf_counter()
    deadline = started + seconds
    while True:
        for _ in range(10):
            call()
        count += 10
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - started)


def rows(key: EnclaveKey) -> dict[str, Callable[[], object]]:
    made: dict[str, Callable[[], object]] = {}
    for label, size in SIZES.items():
        secret = bytes(size)
        envelope = seal(secret, key.public_key_der)
        assert key.open(envelope) == secret
        encrypted_key = cms.ContentInfo.load(envelope)["content"]["recipient_infos"][0].chosen["encrypted_key"].native
        made[f"raw RSA-OAEP decrypt ({label})"] = functools.partial(key.private_key.decrypt, encrypted_key, _OAEP)
        made[f"open {label}"] = functools.partial(key.open, envelope)
        made[f"seal {label}"] = functools.partial(seal, secret, key.public_key_der)
    return made


def measure(rounds: int, seconds: float) -> dict[str, list[float]]:
    key = EnclaveKey.generate()
    table = rows(key)
    names = list(table)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(_rate(table[name], seconds))
    return samples


def report(samples: dict[str, list[float]]) -> tuple[list[str], dict[str, float]]:
    lines = [
        "| row | median ops/s | time per op | ratio of time to the raw decrypt (median) | range |",
        "|---|---|---|---|---|",
    ]
    ratios: dict[str, float] = {}
    for label in SIZES:
        raw = samples[f"raw RSA-OAEP decrypt ({label})"]
        for name in (f"raw RSA-OAEP decrypt ({label})", f"open {label}", f"seal {label}"):
            rate = statistics.median(samples[name])
            per_round = [reference / mine for reference, mine in zip(raw, samples[name], strict=True)]
            ratio = statistics.median(per_round)
            ratios[name] = ratio
            spread = "" if name.startswith("raw") else f"{min(per_round):.2f}-{max(per_round):.2f}"
            shown = "1.00 (reference)" if name.startswith("raw") else f"{ratio:.2f}x"
            lines.append(f"| {name} | {rate:,.0f} | {1e6 / rate:,.0f} us | {shown} | {spread} |")
    for label in SIZES:
        ratio = ratios[f"open {label}"]
        verdict = "met" if ratio <= GOAL else "NOT met"
        lines.append(f"goal: open {label} within {GOAL}x of the raw decrypt: {ratio:.2f}x, {verdict}")
    return lines, ratios


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per row per round (default 1)")
    parser.add_argument("--quick", action="store_true", help="2 rounds of 0.3 s")
    parser.add_argument("--json", type=Path, default=None, help="write every sample here")
    args = parser.parse_args(argv)
    rounds, seconds = (2, 0.3) if args.quick else (args.rounds, args.seconds)
    facts = machine()
    print(machine_line(facts))
    samples = measure(rounds, seconds)
    lines, ratios = report(samples)
    print("\n".join(lines))
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": facts, "samples": samples, "ratios": ratios}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
