"""``inspect`` (decode only) and ``verify`` (one document, or many as a batch)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .. import AWS_NITRO_ROOT_G1, NitroAttestError, Policy, parse, verify, verify_batch
from ..document import AttestationDocument
from ._common import (
    EXIT_OK,
    EXIT_REJECTED,
    SUMMARY_PCRS,
    DocumentTime,
    UsageError,
    add_policy_arguments,
    bytes_text,
    field_rows,
    iso,
    load_document_bytes,
    load_roots,
    pcr_rows,
    policy_from_arguments,
    policy_text,
    rejected,
    safe,
    subject,
    verification_time,
)

_NOT_VERIFIED = "NOT VERIFIED: decoded only; signature, chain, time and PCRs unchecked (see `nitro-attest verify`)"
# Progress is worth drawing only when it takes a while and a person watches it.
_PROGRESS_MIN_DOCUMENTS = 200
_BATCH_CHUNK = 256


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    inspect = commands.add_parser(
        "inspect",
        help="show a document's fields (NOT verified)",
        description="Decode a document and show its fields. Nothing is verified: anyone could have made it.",
    )
    inspect.add_argument("file", metavar="FILE", help="raw CBOR, hex or base64; - for stdin")
    inspect.add_argument("--json", action="store_true", help="print JSON (bytes as hex, times ISO 8601 UTC)")
    inspect.set_defaults(handler=_inspect)

    check = commands.add_parser(
        "verify",
        help="verify a document under a policy",
        description="Verify signature, certificate chain (to the AWS root unless --root) and time, then the policy. "
        "A policy is required: --pcr pins, or --any-enclave.",
        epilog="Exit codes: 0 verified, 1 rejected ('rejected [code]: message' on stderr), 2 usage error.",
    )
    check.add_argument(
        "files",
        metavar="FILE",
        nargs="+",
        help="raw CBOR, hex or base64; - for stdin; several files or a directory are verified as a batch",
    )
    add_policy_arguments(check)
    check.set_defaults(handler=_verify)


# --------------------------------------------------------------------------- inspect


def _parse_file(path: str) -> AttestationDocument | None:
    """The decoded document (NOT verified), or None after saying why it is not one."""
    try:
        return parse(load_document_bytes(path))
    except NitroAttestError as error:
        print(f"invalid [{error.code}]: {safe(error.message)}", file=sys.stderr)
        return None


def _inspect(args: argparse.Namespace) -> int:
    document = _parse_file(args.file)
    if document is None:
        return EXIT_REJECTED
    if args.json:
        # stdout stays pure JSON for pipes; the warning is in "verified": false and on stderr.
        print("NOT VERIFIED: decoded only (see `nitro-attest verify`)", file=sys.stderr)
        print(json.dumps(_inspect_json(document), indent=2))
    else:
        print(_inspect_text(document))
    return EXIT_OK


def _is_aws_root(certificate: x509.Certificate) -> bool:
    return certificate.public_bytes(Encoding.DER) == AWS_NITRO_ROOT_G1.public_bytes(Encoding.DER)


def _inspect_json(document: AttestationDocument) -> dict[str, Any]:
    return {
        "verified": False,
        **document.as_dict(),
        "cabundle_root_is_aws_root_g1": _is_aws_root(document.cabundle[0]),
    }


def _validity(certificate: x509.Certificate) -> str:
    return f"{iso(certificate.not_valid_before_utc)} to {iso(certificate.not_valid_after_utc)}"


def _debug_text(document: AttestationDocument) -> str:
    if document.is_debug:
        return "YES: PCR0 is all zero, the enclave's code is not measured"
    return "no"


def _inspect_text(document: AttestationDocument) -> str:
    lines = [
        _NOT_VERIFIED,
        "",
        *field_rows(
            [
                ("module_id", [safe(document.module_id)]),
                ("digest", [document.digest]),
                ("timestamp", [iso(document.timestamp, milliseconds=True)]),
                ("debug mode", [_debug_text(document)]),
                ("user_data", bytes_text(document.user_data)),
                ("nonce", bytes_text(document.nonce)),
                ("public_key", bytes_text(document.public_key)),
            ]
        ),
        "",
        f"PCRs ({len(document.pcrs)})",
        *pcr_rows(document),
        "",
        "certificate (the enclave's leaf)",
        *field_rows(
            [
                ("subject", [safe(subject(document.certificate))]),
                ("valid", [_validity(document.certificate)]),
            ],
            indent="  ",
        ),
        "",
        f"cabundle ({len(document.cabundle)}, root first)",
    ]
    for position, certificate in enumerate(document.cabundle):
        rows: list[tuple[str, Sequence[str]]] = [
            ("subject", [safe(subject(certificate))]),
            ("valid", [_validity(certificate)]),
        ]
        if position == 0:
            rows.append(
                (
                    "root",
                    [
                        "same bytes as the AWS Nitro Enclaves Root G1"
                        if _is_aws_root(certificate)
                        else "NOT the AWS Nitro Enclaves Root G1"
                    ],
                )
            )
        row_lines = field_rows(rows, indent="      ")
        lines.append(f"  [{position}] {row_lines[0].lstrip()}")
        lines += row_lines[1:]
    return "\n".join(lines)


# --------------------------------------------------------------------------- verify


def _verify(args: argparse.Namespace) -> int:
    policy = policy_from_arguments(args)
    roots = load_roots(args.root)
    paths = _expand_paths(args.files)
    if len(paths) > 1 or any(os.path.isdir(path) for path in args.files):
        return _verify_many(paths, policy, args.at, roots)
    data = load_document_bytes(paths[0])
    try:
        at = verification_time(args.at, data)
        document = verify(data, policy, at=at, roots=roots)
    except NitroAttestError as error:
        rejected(error)
        if error.code == "expired" and args.at is None:
            print("hint: to re-check an archived document at its own time, add --at document", file=sys.stderr)
        return EXIT_REJECTED

    if isinstance(args.at, DocumentTime):
        at_note = "the document's own timestamp"
    else:
        at_note = "given" if args.at is not None else "now"
    root_origin = "the AWS root shipped with nitro_attest" if roots is None else "from --root"
    print("verified")
    print(
        "\n".join(
            field_rows(
                [
                    ("module_id", [safe(document.module_id)]),
                    ("timestamp", [iso(document.timestamp, milliseconds=True)]),
                    ("checked at", [f"{iso(at, milliseconds=True)} ({at_note})"]),
                    ("root", [f"{safe(subject(document.cabundle[0]))} ({root_origin})"]),
                    ("policy", [policy_text(policy)]),
                ],
                indent="  ",
            )
        )
    )
    print("\n".join(pcr_rows(document, SUMMARY_PCRS)))
    return EXIT_OK


def _expand_paths(arguments: Sequence[str]) -> list[str]:
    """The files named, with each directory replaced by the regular files below it, in sorted order."""
    if arguments.count("-") > 1:
        raise UsageError("stdin (-) can be read only once")
    paths: list[str] = []
    for argument in arguments:
        if os.path.isdir(argument):
            found = sorted(
                os.path.join(folder, name)
                for folder, _, names in os.walk(argument)
                for name in names
                if not name.startswith(".")
            )
            if not found:
                raise UsageError(f"{argument} is a directory with no files in it")
            paths.extend(found)
        else:
            paths.append(argument)
    return paths


def _progress(done: int, total: int) -> None:
    width = 30
    filled = width * done // total
    print(f"\r[{'#' * filled}{' ' * (width - filled)}] {done}/{total}", end="", file=sys.stderr, flush=True)


def _verify_many(
    paths: Sequence[str],
    policy: Policy,
    at_argument: datetime | DocumentTime | None,
    roots: Sequence[x509.Certificate] | None,
) -> int:
    """verify_batch over many files: a line per file, a progress bar on a terminal, a summary line."""
    outcomes: dict[int, str] = {}
    pending: dict[datetime, list[tuple[int, bytes]]] = {}
    now = datetime.now(timezone.utc)
    for position, path in enumerate(paths):
        try:
            data = load_document_bytes(path)
        except UsageError as error:
            outcomes[position] = f"unreadable: {error}"
            continue
        try:
            at = verification_time(now if at_argument is None else at_argument, data)
        except NitroAttestError as error:
            outcomes[position] = f"rejected [{error.code}]: {error.message}"
            continue
        pending.setdefault(at, []).append((position, data))

    show_progress = sys.stderr.isatty() and len(paths) >= _PROGRESS_MIN_DOCUMENTS
    done = len(outcomes)
    for at, items in pending.items():
        for start in range(0, len(items), _BATCH_CHUNK):
            chunk = items[start : start + _BATCH_CHUNK]
            results = verify_batch([data for _, data in chunk], policy, at=at, roots=roots)
            for (position, _), result in zip(chunk, results, strict=True):
                outcomes[position] = (
                    f"rejected [{result.code}]: {result.message}"
                    if isinstance(result, NitroAttestError)
                    else "verified"
                )
            done += len(chunk)
            if show_progress:
                _progress(done, len(paths))
    if show_progress:
        print(file=sys.stderr)

    for position, path in enumerate(paths):
        print(f"{safe(path)}: {outcomes[position]}")
    verified = sum(outcome == "verified" for outcome in outcomes.values())
    unreadable = sum(outcome.startswith("unreadable") for outcome in outcomes.values())
    rejected_count = len(paths) - verified - unreadable
    print(f"{len(paths)} documents: {verified} verified, {rejected_count} rejected, {unreadable} unreadable")
    return EXIT_OK if verified == len(paths) else EXIT_REJECTED
