"""``demo``: a self-contained walk-through with the look-alike TEST PKI (not AWS)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from datetime import datetime

from cryptography import x509

from .. import NitroAttestError, Policy, parse, verify
from ._common import (
    EXIT_OK,
    EXIT_REJECTED,
    SUMMARY_PCRS,
    UsageError,
    bytes_text,
    field_rows,
    iso,
    pcr_rows,
    policy_text,
    safe,
)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser(
        "demo",
        help="mint, verify and tamper with a document from a TEST PKI (not AWS)",
        description="A self-contained walk-through with the look-alike TEST PKI of nitro_attest.testing (not AWS).",
    )
    demo.set_defaults(handler=_demo)


def _flip_byte_inside(data: bytes, needle: bytes) -> bytes:
    """``data`` with one bit of ``needle``'s first occurrence flipped: same length, still parses."""
    position = data.find(needle)
    if position < 0:
        raise RuntimeError("demo: the PCR0 value is not in the minted document")
    tampered = bytearray(data)
    tampered[position + len(needle) // 2] ^= 0x01
    return bytes(tampered)


def _demo_verdict(
    label: str, data: bytes, policy: Policy, at: datetime, roots: Sequence[x509.Certificate] | None
) -> str:
    """Runs one verification and prints its outcome; returns the code, or "" when verified."""
    print(label)
    try:
        verify(data, policy, at=at, roots=roots)
    except NitroAttestError as error:
        print(f"   -> rejected [{error.code}]: {error.message}")
        return error.code
    print("   -> verified")
    return ""


def _demo(args: argparse.Namespace) -> int:
    try:
        from ..testing import DEFAULT_PCRS, TestPKI  # noqa: PLC0415 (test PKI code only when the demo runs)
    except ImportError as exc:
        raise UsageError(f"the demo needs nitro_attest.testing, which cannot be imported: {exc}") from None

    print("nitro-attest demo with a TEST PKI: a look-alike of the AWS chain generated here, NOT AWS.")
    print("Its documents never verify against the real AWS root.")
    print()
    pki = TestPKI.create()
    nonce = b"nitro-attest demo nonce"
    data = pki.document(nonce=nonce)
    document = parse(data)
    pins: Mapping[int, bytes] = {index: DEFAULT_PCRS[index] for index in (0, 1, 2)}
    policy = Policy(pins, nonce=nonce)
    print(f"1. Minted a {len(data)}-byte document with the test PKI:")
    print(
        "\n".join(
            field_rows(
                [
                    ("module_id", [safe(document.module_id)]),
                    ("timestamp", [iso(document.timestamp, milliseconds=True)]),
                    ("nonce", bytes_text(document.nonce)),
                ],
                indent="   ",
            )
        )
    )
    print()
    print("\n".join(pcr_rows(document, SUMMARY_PCRS, indent="   ")))
    print()
    genuine = _demo_verdict(
        f"2. Verified at {iso(pki.document_time)}, trusting the TEST root, policy: {policy_text(policy)}:",
        data,
        policy,
        pki.document_time,
        pki.roots,
    )
    tampered = _demo_verdict(
        "3. A copy with one bit of PCR0 flipped inside the signed payload:",
        _flip_byte_inside(data, DEFAULT_PCRS[0]),
        policy,
        pki.document_time,
        pki.roots,
    )
    aws_only = _demo_verdict(
        "4. The genuine test document, but trusting only the real AWS root:",
        data,
        policy,
        pki.document_time,
        None,
    )
    as_expected = genuine == "" and tampered == "signature" and aws_only == "chain"
    print()
    print("demo: all outcomes as expected" if as_expected else "demo: UNEXPECTED outcome (see above)")
    return EXIT_OK if as_expected else EXIT_REJECTED
