"""Peer: evervault-attestation-bindings (Rust, PyPI) on one real document, under libfaketime.

Run by run.py as ``faketime '<document time>' python benchmarks/evervault_peer.py FILE``:
the bindings check certificates at the current time only, so the process's
clock is set to the document's time (libfaketime; the monotonic clock is left
real so the timings are). Prints one JSON object on stdout.

``attest_enclave(cert, pcrs, document)`` is Evervault's entry point: it
decodes the document, validates the chain to the AWS root (webpki, at the
current time), checks the COSE signature, then requires the document's
``user_data`` to be the SubjectPublicKeyInfo of ``cert`` (Evervault's TLS
binding). For a real document whose ``user_data`` is an SPKI we make a
throwaway certificate carrying that key; ``pcrs=[]`` checks no PCR.

In the same process and interleaved with it, round by round, it times the
hand-written baseline and nitro_attest.verify() (cold and warm) on the same
document at the same (faked) time, so the ratios are side by side.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, load_der_public_key

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import cache_clearers, clear_all  # first: puts this checkout's nitro_attest on the path
from baseline import root_set, verify_baseline

import nitro_attest


def _binding_certificate(user_data: bytes) -> bytes:
    """A self-signed certificate whose public key is ``user_data`` (an SPKI); its signature is never checked."""
    public_key = load_der_public_key(user_data)
    signer = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "evervault binding (benchmark)")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(1)
        .not_valid_before(datetime(2000, 1, 1, tzinfo=timezone.utc))
        .not_valid_after(datetime(2100, 1, 1, tzinfo=timezone.utc))
        .sign(signer, hashes.SHA384())
    )
    return certificate.public_bytes(Encoding.DER)


def _evervault_check(data: bytes) -> tuple[Callable[[], object] | None, str]:
    """A call of the bindings that accepts ``data`` now, or None and why not."""
    try:
        import evervault_attestation_bindings as evervault  # type: ignore[import-untyped]  # noqa: PLC0415 (optional)
    except ImportError as exc:
        return None, f"evervault-attestation-bindings not importable: {exc}"
    parsed = nitro_attest.parse(data)
    if parsed.user_data is None:
        return None, "no user_data: attest_enclave needs it to be the binding certificate's SPKI"
    try:
        certificate = _binding_certificate(parsed.user_data)
    except ValueError as exc:
        return None, f"user_data is not a SubjectPublicKeyInfo ({exc})"
    try:
        accepted = evervault.attest_enclave(certificate, [], data)
    except ValueError as exc:
        return None, f"attest_enclave rejected it at {datetime.now(timezone.utc).isoformat()}: {exc}"
    if accepted is not True:
        return None, f"attest_enclave returned {accepted!r}"
    return lambda: evervault.attest_enclave(certificate, [], data), ""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("document", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=40)
    args = parser.parse_args()
    data = args.document.read_bytes()
    now = datetime.now(timezone.utc)
    policy = nitro_attest.Policy.any_enclave(allow_debug=True)
    # Found first, while nothing is cached yet (the check below parses the document).
    clearers = cache_clearers(lambda: nitro_attest.verify(data, policy))
    evervault_once, why_not = _evervault_check(data)
    if evervault_once is None:
        print(json.dumps({"skip": why_not}))
        return

    roots = root_set([nitro_attest.AWS_NITRO_ROOT_G1])

    def baseline_once() -> None:
        verify_baseline(data, roots, datetime.now(timezone.utc))

    def cold_once() -> None:
        clear_all(clearers)
        nitro_attest.verify(data, policy)

    def warm_once() -> None:
        nitro_attest.verify(data, policy)

    methods: dict[str, Callable[[], object]] = {
        "evervault": evervault_once,
        "baseline": baseline_once,
        "verify_cold": cold_once,
        "verify_warm": warm_once,
    }
    for method in methods.values():  # all accept, and the warm cache is warm
        method()
    samples: dict[str, list[float]] = {name: [] for name in methods}
    names = list(methods)
    for round_index in range(args.rounds):
        order = names[round_index % len(names) :] + names[: round_index % len(names)]
        for name in order:
            if name == "verify_warm":
                warm_once()
            gc.collect()
            began = time.perf_counter()
            for _ in range(args.iterations):
                methods[name]()
            samples[name].append(args.iterations / (time.perf_counter() - began))
    ratios = {
        f"{name}/baseline": [a / b for a, b in zip(samples[name], samples["baseline"], strict=True)] for name in names
    }
    ratios.update(
        {
            f"{name}/evervault": [a / b for a, b in zip(samples[name], samples["evervault"], strict=True)]
            for name in names
        }
    )
    print(
        json.dumps(
            {
                "document": args.document.stem,
                "faked_now": now.isoformat(),
                "samples": samples,
                "ratios": ratios,
                "median": {name: statistics.median(values) for name, values in samples.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
