"""``inspect`` (decode only) and ``verify`` (one document, or many as a batch)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .. import AWS_NITRO_ROOT_G1, NitroAttestError, Policy, PolicyViolation, parse, verify, verify_batch
from ..document import AttestationDocument, VerifiedDocument
from ._common import (
    EXIT_OK,
    EXIT_REJECTED,
    SUMMARY_PCRS,
    DocumentTime,
    Source,
    add_policy_arguments,
    batch_hints,
    bytes_text,
    exit_code,
    expand_sources,
    failure_lines,
    field_rows,
    iso,
    load_document_bytes,
    load_roots,
    pcr_rows,
    policy_from_arguments,
    policy_text,
    print_json_results,
    read_batch,
    rejected,
    result_record,
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
    check.add_argument(
        "--json", action="store_true", help="print JSON: a result per document and a summary (see docs/cli.md)"
    )
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
    sources = expand_sources(args.files)
    if len(sources) > 1 or sources[0].in_directory:
        return _verify_many(sources, policy, args, roots)
    data = load_document_bytes(sources[0].path)
    try:
        at = verification_time(args.at, data)
        document = verify(data, policy, at=at, roots=roots)
    except NitroAttestError as error:
        if args.json:
            print_json_results([result_record(sources[0].name, "rejected", error=error)], 0, EXIT_REJECTED)
        else:
            rejected(error)
            if isinstance(error, PolicyViolation):
                # Every failed constraint with the expected and the actual value, not only the first message.
                print("\n".join(line for failure in error.failures for line in failure_lines(failure)), file=sys.stderr)
        for hint in batch_hints([error.code], at_given=args.at is not None, allow_debug=args.allow_debug):
            print(hint, file=sys.stderr)
        return EXIT_REJECTED
    if args.json:
        print_json_results([result_record(sources[0].name, "accepted", document=document)], 0, EXIT_OK)
        return EXIT_OK

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


def _progress(done: int, total: int) -> None:
    width = 30
    filled = width * done // total
    print(f"\r[{'#' * filled}{' ' * (width - filled)}] {done}/{total}", end="", file=sys.stderr, flush=True)


def _verify_many(
    sources: Sequence[Source],
    policy: Policy,
    args: argparse.Namespace,
    roots: Sequence[x509.Certificate] | None,
) -> int:
    """verify_batch over many files: a line per file, a progress bar on a terminal, a summary line."""
    batch = read_batch(sources)
    outcomes: dict[Source, tuple[str, NitroAttestError | VerifiedDocument | str]] = {
        source: ("unreadable", reason) for source, reason in batch.unreadable
    }
    pending: dict[datetime, list[tuple[Source, bytes]]] = {}
    now = datetime.now(timezone.utc)
    for source, data in batch.documents:
        try:
            at = verification_time(now if args.at is None else args.at, data)
        except NitroAttestError as error:
            outcomes[source] = ("rejected", error)
            continue
        pending.setdefault(at, []).append((source, data))

    total = len(batch.documents)
    show_progress = sys.stderr.isatty() and total >= _PROGRESS_MIN_DOCUMENTS
    done = total - sum(map(len, pending.values()))
    for at, items in pending.items():
        for start in range(0, len(items), _BATCH_CHUNK):
            chunk = items[start : start + _BATCH_CHUNK]
            results = verify_batch([data for _, data in chunk], policy, at=at, roots=roots)
            for (source, _), result in zip(chunk, results, strict=True):
                outcomes[source] = ("rejected" if isinstance(result, NitroAttestError) else "accepted", result)
            done += len(chunk)
            if show_progress:
                _progress(done, total)
    if show_progress:
        print(file=sys.stderr)

    judged = [source for source in sources if source in outcomes]
    codes = [result.code for outcome, result in outcomes.values() if isinstance(result, NitroAttestError)]
    unreadable = len(batch.unreadable)
    code = exit_code(rejected=len(codes), unreadable=unreadable)
    if args.json:
        print_json_results([_record(source, *outcomes[source]) for source in judged], len(batch.skipped), code)
    else:
        for source in judged:
            print(f"{safe(source.name)}: {_line(*outcomes[source])}")
        verified = len(judged) - len(codes) - unreadable
        skipped = f", {len(batch.skipped)} skipped (not documents)" if batch.skipped else ""
        print(f"{len(judged)} documents: {verified} verified, {len(codes)} rejected, {unreadable} unreadable{skipped}")
    for hint in batch_hints(codes, at_given=args.at is not None, allow_debug=args.allow_debug):
        print(hint, file=sys.stderr)
    return code


def _line(outcome: str, result: NitroAttestError | VerifiedDocument | str) -> str:
    if isinstance(result, NitroAttestError):
        return f"rejected [{result.code}]: {safe(result.message)}"
    if isinstance(result, str):
        return f"unreadable: {result}"
    return "verified"


def _record(source: Source, outcome: str, result: NitroAttestError | VerifiedDocument | str) -> dict[str, Any]:
    if isinstance(result, NitroAttestError):
        return result_record(source.name, outcome, error=result)
    if isinstance(result, str):
        return result_record(source.name, outcome, reason=result)
    return result_record(source.name, outcome, document=result)
