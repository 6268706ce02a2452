"""``pcr``: the expected PCR3, PCR4 or PCR8 from what it measures (:mod:`nitro_attest.measurements`)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from ..keys import load_certificate
from ..measurements import pcr3_for_role, pcr4_for_instance, pcr8_for_certificate
from ._common import EXIT_OK, UsageError, field_rows, read_file, safe, source_name, subject


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pcr = commands.add_parser(
        "pcr",
        help="compute the expected PCR3, PCR4 or PCR8 (role ARN, instance ID, signing certificate)",
        description="Compute a PCR from what it measures, to pin it with `verify --pcr N=HEX` or in a KMS key policy: "
        "PCR3 from the parent instance's IAM role ARN, PCR4 from its instance ID, PCR8 from the certificate "
        "that signed the enclave image file. Give exactly one.",
        epilog="Exit codes: 0 computed, 2 usage error (none or several inputs, or an input of the wrong shape).",
    )
    source = pcr.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--role-arn",
        metavar="ARN",
        help="PCR3: the IAM role ARN (arn:aws:iam::<account>:role/<name>), not the instance profile's ARN",
    )
    source.add_argument("--instance-id", metavar="ID", help="PCR4: the parent instance ID (i-...)")
    source.add_argument(
        "--signing-cert",
        metavar="FILE",
        help="PCR8: the enclave image's signing certificate, PEM or DER (- for stdin)",
    )
    pcr.add_argument("--json", action="store_true", help="print JSON: index, meaning, value and the input")
    pcr.set_defaults(handler=_pcr)


def _pcr(args: argparse.Namespace) -> int:
    details: list[tuple[str, str]]
    try:
        if args.role_arn is not None:
            pcr = pcr3_for_role(args.role_arn)
            details = [("role_arn", args.role_arn)]
        elif args.instance_id is not None:
            pcr = pcr4_for_instance(args.instance_id)
            details = [("instance_id", args.instance_id)]
        else:
            data = read_file(args.signing_cert)
            try:
                # The library's own reading (exactly one certificate, PEM or DER), so that the
                # CLI and pcr8_for_certificate cannot disagree about a file.
                certificate = load_certificate(data)
            except ValueError as exc:
                raise UsageError(f"--signing-cert {source_name(args.signing_cert)}: {exc}") from None
            pcr = pcr8_for_certificate(certificate)
            details = [("signing_cert", args.signing_cert), ("subject", subject(certificate))]
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps({"index": pcr.index, "meaning": pcr.meaning, "value": pcr.hex(), **dict(details)}, indent=2))
        return EXIT_OK
    rows: list[tuple[str, Sequence[str]]] = [
        ("PCR", [f"{pcr.index} ({pcr.meaning})"]),
        *((label, [safe(value)]) for label, value in details),
        ("value", [pcr.hex()]),
    ]
    print("\n".join(field_rows(rows)))
    return EXIT_OK
