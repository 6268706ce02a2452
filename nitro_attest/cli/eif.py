"""``eif describe``, ``eif pcr`` and ``policy from-eif``: enclave image files measured (:mod:`nitro_attest.eif`).

``eif describe --json`` prints the keys and value formats of ``nitro-cli
describe-eif``; ``eif pcr`` exactly ``nitro-cli build-enclave``'s
``{"Measurements": ...}``; ``policy from-eif`` a policy pinning the image's
PCRs (and PCR3/PCR4 from ``--role``/``--instance``), or with
``--kms-key-policy`` the KMS key-policy statement that does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from .. import kms
from ..document import PCRValue
from ..eif import EifDescription, EifError, describe
from ..measurements import pcr3_for_role, pcr4_for_instance
from ..policy import Policy
from ..policy_file import dumps_policy
from ._common import EXIT_OK, EXIT_REJECTED, UsageError, field_rows, pcr_argument, safe, subject

__all__ = ["register", "register_policy_from_eif"]

# Below this a progress bar would only flicker.
_PROGRESS_MIN = 64 * 1024 * 1024
_BAR = 30


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = commands.add_parser(
        "eif",
        help="measure an enclave image file (.eif): PCR0, PCR1, PCR2, PCR8, signature, metadata",
        description="Measure an enclave image file without nitro-cli: the PCRs an enclave booted from it reports.",
    )
    actions = group.add_subparsers(dest="eif_command", metavar="ACTION", required=True)
    describe_ = actions.add_parser(
        "describe",
        help="what nitro-cli describe-eif prints: PCRs, CRC check, signature check, metadata",
        description="Read FILE once and report its PCRs, sections, CRC check, signing certificate, signature "
        "check and metadata. --json prints the keys and formats of `nitro-cli describe-eif`.",
        epilog="Exit codes: 0 a valid image (a CRC mismatch is only a warning without --strict), "
        "1 not a valid image or a signature that does not verify, 2 usage error.",
    )
    describe_.add_argument("file", metavar="FILE", help="the .eif file")
    describe_.add_argument("--strict", action="store_true", help="add QEMU's loader checks (CRC, offsets, flags)")
    describe_.add_argument("--json", action="store_true", help="print nitro-cli describe-eif's JSON")
    describe_.set_defaults(handler=_describe)
    pcr = actions.add_parser(
        "pcr",
        help="print the image's measurements exactly as nitro-cli build-enclave does",
        description='Print {"Measurements": {"HashAlgorithm": ..., "PCR0": ..., ...}} for FILE, as '
        "`nitro-cli build-enclave` prints it when it builds the image.",
        epilog="Exit codes: 0 printed, 1 not a valid image or a signature that does not verify, 2 usage error.",
    )
    pcr.add_argument("file", metavar="FILE", help="the .eif file")
    pcr.add_argument("--strict", action="store_true", help="add QEMU's loader checks (CRC, offsets, flags)")
    pcr.set_defaults(handler=_pcr)


def register_policy_from_eif(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``policy from-eif`` to the ``policy`` group's ``actions``."""
    make = actions.add_parser(
        "from-eif",
        help="print a policy pinning an enclave image file's PCRs",
        description="Measure FILE and print a policy pinning PCR0, PCR1, PCR2 (and PCR8 for a signed image), "
        "plus PCR3 with --role and PCR4 with --instance; --pcr N=HEX pins more or overrides. "
        "With --kms-key-policy, print the KMS key-policy statement that allows kms:Decrypt to such enclaves.",
        epilog="Exit codes: 0 printed, 1 not a valid image or a signature that does not verify, 2 usage error.",
    )
    make.add_argument("file", metavar="FILE", help="the .eif file")
    make.add_argument("--strict", action="store_true", help="add QEMU's loader checks (CRC, offsets, flags)")
    make.add_argument("--role", metavar="ARN", help="pin PCR3: the parent instance's IAM role ARN")
    make.add_argument("--instance", metavar="ID", help="pin PCR4: the parent instance's ID (i-...)")
    make.add_argument(
        "--pcr", metavar="N=HEX", type=pcr_argument, action="append", default=[], help="pin PCR N too; repeatable"
    )
    make.add_argument("--format", choices=("json", "toml"), help="policy file format (default json)")
    make.add_argument(
        "--kms-key-policy",
        action="store_true",
        help="print a KMS key-policy statement instead (Principal: --principal, else --role)",
    )
    make.add_argument("--principal", metavar="ARN", help="--kms-key-policy: who may decrypt (default: --role)")
    make.set_defaults(handler=_from_eif)


def _progress_bar(path: str) -> object:
    """A progress callback drawing on stderr for a large file when stdout is a terminal, else None."""
    try:
        size = os.path.getsize(path)
    except OSError:
        return None
    if size < _PROGRESS_MIN or not sys.stdout.isatty():
        return None

    def draw(done: int, total: int | None) -> None:
        fraction = done / (total or size)
        end = "\n" if done >= (total or size) else ""
        filled = int(fraction * _BAR)
        print(
            f"\r[{'#' * filled}{'.' * (_BAR - filled)}] {fraction:4.0%} of {size >> 20} MiB", end=end, file=sys.stderr
        )

    return draw


def _measure(path: str, *, strict: bool) -> EifDescription | None:
    """The description of ``path``, or None after saying on stderr why it is not valid."""
    try:
        description = describe(path, strict=strict, progress=_progress_bar(path))  # type: ignore[arg-type]
    except EifError as error:
        print(f"invalid [{error.code}]: {safe(error.message)}", file=sys.stderr)
        return None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not description.crc_valid:
        print(
            f"warning: CRC mismatch: the header says {description.crc:#010x}, the file's is "
            f"{description.computed_crc:#010x} (CheckCRC false; --strict refuses it)",
            file=sys.stderr,
        )
    if not description.table_matches:
        print(
            "warning: the header's offset table does not match the sections as read "
            "(nitro-cli reads them one after another; --strict refuses it)",
            file=sys.stderr,
        )
    check = description.signature
    if check is not None and not check.valid:
        print(f"invalid [signature]: {check.status.value}: {safe(check.message)}", file=sys.stderr)
        return None
    return description


def _describe(args: argparse.Namespace) -> int:
    description = _measure(args.file, strict=args.strict)
    if description is None:
        return EXIT_REJECTED
    if args.json:
        print(json.dumps(description.describe_eif_json(), indent=2))
    else:
        print(_text(description))
    return EXIT_OK


def _pcr(args: argparse.Namespace) -> int:
    description = _measure(args.file, strict=args.strict)
    if description is None:
        return EXIT_REJECTED
    print(json.dumps({"Measurements": description.measurements()}, indent=2))
    return EXIT_OK


def _text(description: EifDescription) -> str:
    rows: list[tuple[str, Sequence[str]]] = [
        ("version", [f"{description.version} ({description.architecture.value})"]),
        ("size", [f"{description.size} bytes"]),
        ("defaults", [f"{description.default_memory >> 20} MiB, {description.default_cpus} vCPUs"]),
        ("cmdline", [safe(description.cmdline.decode("utf-8", "backslashreplace"))]),
        ("sections", [f"{s.index}: {s.type.name.lower()} at {s.offset}, {s.size} bytes" for s in description.sections]),
        ("CRC", [f"{description.crc:#010x} ({'ok' if description.crc_valid else 'MISMATCH'})"]),
    ]
    rows += [(f"PCR{index}", [f"{value.hex()}  ({value.meaning})"]) for index, value in description.pcrs.items()]
    if description.signing_certificate is not None and description.signature is not None:
        rows += [
            ("signed by", [safe(subject(description.signing_certificate))]),
            ("signature", [f"{description.signature.status.value}: {safe(description.signature.message)}"]),
        ]
    else:
        rows.append(("signature", ["none (unsigned image: no PCR8)"]))
    if description.metadata is not None:
        metadata = description.metadata
        rows.append(("image", [safe(f"{metadata.image_name} {metadata.image_version}")]))
        rows += [(key, [safe(value)]) for key, value in metadata.build_info.items()]
    return "\n".join(field_rows(rows))


def _from_eif(args: argparse.Namespace) -> int:
    if args.kms_key_policy and args.format == "toml":
        raise UsageError("--kms-key-policy prints a KMS key-policy statement, which is JSON: drop --format toml")
    if args.principal is not None and not args.kms_key_policy:
        raise UsageError("--principal only applies with --kms-key-policy")
    principal = args.principal or args.role
    if args.kms_key_policy and principal is None:
        raise UsageError("--kms-key-policy needs the principal allowed to decrypt: --principal ARN (or --role ARN)")
    extra: dict[int, PCRValue] = {}
    try:
        if args.role is not None:
            extra[3] = pcr3_for_role(args.role)
        if args.instance is not None:
            extra[4] = pcr4_for_instance(args.instance)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    extra.update({index: PCRValue(index, bytes.fromhex(value)) for index, value in args.pcr})
    description = _measure(args.file, strict=args.strict)
    if description is None:
        return EXIT_REJECTED
    pcrs = {**description.pcrs, **extra}
    pins = dict(sorted(pcrs.items()))
    print(f"pinned: {', '.join(f'PCR{index}' for index in pins)} (measured from {args.file})", file=sys.stderr)
    if args.kms_key_policy:
        statement = {
            "Sid": "Allow decryption only to this enclave image",
            "Effect": "Allow",
            "Principal": {"AWS": principal},
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": kms.attestation_condition(pins.values()),
        }
        print(json.dumps(statement, indent=2))
        return EXIT_OK
    print(dumps_policy(Policy(pins), format=args.format or "json"), end="")
    return EXIT_OK
