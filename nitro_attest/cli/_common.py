"""What every command group shares: exit codes, usage errors, reading inputs, argument types, text layout.

Only the command-line concerns live here (files, flags, terminal text); what
a document or a key *is* comes from the library's public modules.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, BinaryIO

from cryptography import x509

from ..document import MAX_PCR_INDEX, PCR_MEANINGS, PCR_SIZE, AttestationDocument, document_bytes, parse
from ..errors import NitroAttestError, PolicyFailure, PolicyViolation
from ..keys import certificate_summary, load_certificates
from ..kms import KeyPolicy, KmsPolicyError
from ..policy import Policy
from ..policy_file import PolicyFileError, load_policy

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2

# Inputs are documents, keys, certificates, envelopes and policies: all small; a
# bigger file is a wrong argument, and reading it whole would only cost memory.
MAX_INPUT_SIZE = 1024 * 1024

_HEX = re.compile(r"[0-9a-fA-F]*")
_KMS_ACTION = re.compile(r"[A-Za-z0-9-]+:[A-Za-z0-9]+")
# Bytes fields longer than this are shortened in the text view (JSON is always complete).
_SHOW_BYTES = 32
_SHOW_TEXT = 60

#: The PCRs a verdict shows (the other 26 are unused on Nitro Enclaves).
SUMMARY_PCRS = (0, 1, 2, 3, 4, 8)


class UsageError(Exception):
    """The invocation cannot run (bad input file, bad flag value): exit 2, not a verdict on the input."""


class NotADocument(UsageError):
    """A file that holds no attestation document in any encoding: skipped when found in a directory."""


def rejected(error: NitroAttestError) -> None:
    """Says on stderr why the input was rejected, code first (for scripts), message escaped."""
    print(f"rejected [{error.code}]: {safe(error.message)}", file=sys.stderr)


# --------------------------------------------------------------------------- input


def _read_limited(stream: BinaryIO, source: str, limit: int) -> bytes:
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise UsageError(f"{source} is larger than {limit >> 20} MiB: not what this command reads")
    return data


def read_file(path: str, *, limit: int = MAX_INPUT_SIZE) -> bytes:
    """The bytes of ``path`` (``-``: stdin), at most ``limit``."""
    if path == "-":
        return _read_limited(sys.stdin.buffer, "stdin", limit)
    try:
        with open(path, "rb") as stream:
            return _read_limited(stream, path, limit)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def source_name(path: str) -> str:
    return "stdin" if path == "-" else path


def load_document_bytes(path: str) -> bytes:
    """A document's raw CBOR from ``path`` holding it raw, as hex or as base64 (:func:`document_bytes`)."""
    try:
        return document_bytes(read_file(path))
    except NitroAttestError as error:  # not a verdict: the file is not a document at all
        raise NotADocument(f"{source_name(path)} is {error.message.removeprefix('the input is ')}") from None


@dataclass(frozen=True)
class Source:
    """A document to read: a path as given, or found below a directory given (``in_directory``)."""

    path: str
    in_directory: bool

    @property
    def name(self) -> str:
        return source_name(self.path)


def expand_sources(arguments: Sequence[str]) -> list[Source]:
    """The files named, with each directory replaced by the files below it (sorted, hidden ones left out)."""
    if arguments.count("-") > 1:
        raise UsageError("stdin (-) can be read only once")
    sources: list[Source] = []
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
            sources.extend(Source(path, in_directory=True) for path in found)
        else:
            sources.append(Source(argument, in_directory=False))
    return sources


@dataclass(frozen=True)
class Batch:
    """The documents read from some sources: each with its bytes, or why it could not be read."""

    documents: tuple[tuple[Source, bytes], ...]
    #: Sources that could not be read, or that were named explicitly and hold no document.
    unreadable: tuple[tuple[Source, str], ...]
    #: Files found in a directory that hold no document (a README, a manifest): counted, not judged.
    skipped: tuple[Source, ...]


def read_batch(sources: Sequence[Source]) -> Batch:
    documents: list[tuple[Source, bytes]] = []
    unreadable: list[tuple[Source, str]] = []
    skipped: list[Source] = []
    for source in sources:
        try:
            documents.append((source, load_document_bytes(source.path)))
        except NotADocument as error:
            if source.in_directory:
                skipped.append(source)
            else:
                unreadable.append((source, str(error)))
        except UsageError as error:
            unreadable.append((source, str(error)))
    return Batch(tuple(documents), tuple(unreadable), tuple(skipped))


def exit_code(*, rejected: int, unreadable: int) -> int:
    """The same in single and batch mode: 2 when an input could not be read, else 1 when any was rejected."""
    if unreadable:
        return EXIT_USAGE
    return EXIT_REJECTED if rejected else EXIT_OK


def batch_hints(codes: Sequence[str], *, at_given: bool, allow_debug: bool) -> list[str]:
    """What to try when a batch is rejected for a reason the flags can change."""
    hints = []
    if not at_given and codes and codes.count("expired") * 2 > len(codes):
        hints.append(
            "hint: most documents have expired certificates; to re-check archived documents at their own "
            "time, add --at document"
        )
    if not allow_debug and "debug" in codes:
        hints.append(
            "hint: some documents come from debug-mode enclaves (PCR0 all zero); --allow-debug accepts "
            "them, for development only"
        )
    return hints


def failure_record(failure: PolicyFailure) -> dict[str, Any]:
    return {
        "code": failure.code,
        "message": failure.message,
        "index": failure.index,
        "expected": list(failure.expected),
        "actual": failure.actual,
        "alternative": failure.alternative,
    }


def result_record(
    name: str,
    outcome: str,
    *,
    error: NitroAttestError | None = None,
    reason: str | None = None,
    document: AttestationDocument | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One entry of ``results`` in the ``--json`` output (the schema is in docs/cli.md, "JSON output")."""
    failures = error.failures if isinstance(error, PolicyViolation) else ()
    return {
        "source": name,
        "outcome": outcome,
        "code": error.code if error is not None else None,
        "message": error.message if error is not None else reason,
        "failures": [failure_record(failure) for failure in failures],
        "document": document.as_dict() if document is not None else None,
        **extra,
    }


def print_json_results(results: Sequence[dict[str, Any]], skipped: int, code: int) -> None:
    counts = {outcome: sum(result["outcome"] == outcome for result in results) for outcome in OUTCOMES}
    summary = {"total": len(results), **counts, "skipped": skipped, "exit_code": code}
    print(json.dumps({"results": list(results), "summary": summary}, indent=2))


#: The outcomes a ``--json`` result can have.
OUTCOMES = ("accepted", "rejected", "unreadable")


def load_roots(paths: Sequence[str]) -> tuple[x509.Certificate, ...] | None:
    """The trust roots of ``--root`` files (PEM bundles or DER), or None for the shipped AWS root."""
    roots: list[x509.Certificate] = []
    for path in paths:
        try:
            roots.extend(load_certificates(read_file(path)))
        except ValueError:
            raise UsageError(f"--root {path}: not a PEM (or DER) X.509 certificate file") from None
    return tuple(roots) if roots else None


def write_atomically(path: str, data: bytes, *, mode: int = 0o644) -> None:
    """Writes ``data`` to ``path`` (``-``: stdout) so that a failure leaves nothing there.

    A temporary file in the same directory is written, given ``mode`` and
    renamed over ``path``: readers never see a half-written file, and a secret
    never exists with wider permissions than ``mode``.
    """
    if path == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    try:
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(descriptor, "wb") as stream:
            os.fchmod(stream.fileno(), mode)
            stream.write(data)
        os.replace(temporary, target)
    except OSError as exc:
        os.unlink(temporary)
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


# --------------------------------------------------------------------------- argument types


@dataclass(frozen=True)
class DocumentTime:
    """``--at document``: verify at the document's own timestamp."""


def at_argument(text: str) -> datetime | DocumentTime:
    if text.strip().lower() == "document":
        return DocumentTime()
    iso = text.strip()
    # Python 3.10's fromisoformat does not read the "Z" suffix everyone writes.
    if iso[-1:] in ("Z", "z"):
        iso = iso[:-1] + "+00:00"
    try:
        at = datetime.fromisoformat(iso)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither 'document' nor an ISO 8601 time such as 2025-01-31T12:00:00Z"
        ) from None
    if at.tzinfo is None or at.utcoffset() is None:
        # Guessing a zone would shift every validity check by hours.
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone; add Z for UTC or an offset such as +02:00")
    return at.astimezone(timezone.utc)


def pcr_argument(text: str) -> tuple[int, str]:
    index_text, separator, value = text.partition("=")
    if not separator:
        raise argparse.ArgumentTypeError(f"{text!r} is not N=HEX (for example 0=<96 hex digits>)")
    index_text = index_text.strip().lower().removeprefix("pcr")
    if not (index_text.isascii() and index_text.isdigit()) or not 0 <= int(index_text) <= MAX_PCR_INDEX:
        raise argparse.ArgumentTypeError(f"{text.partition('=')[0]!r} is not a PCR index 0..{MAX_PCR_INDEX}")
    index = int(index_text)
    value = value.strip()
    if len(value) != 2 * PCR_SIZE or not _HEX.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"PCR{index}: expected {2 * PCR_SIZE} hex digits (a SHA-384 value), got {len(value)} characters"
            + ("" if _HEX.fullmatch(value) else " that are not all hex")
        )
    return index, value.lower()


def pcr_index_argument(text: str) -> int:
    index_text = text.strip().lower().removeprefix("pcr")
    if not (index_text.isascii() and index_text.isdigit()) or not 0 <= int(index_text) <= MAX_PCR_INDEX:
        raise argparse.ArgumentTypeError(f"{text!r} is not a PCR index 0..{MAX_PCR_INDEX}")
    return int(index_text)


def action_argument(text: str) -> str:
    if not _KMS_ACTION.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a KMS action such as kms:Decrypt")
    return text


def hex_argument(text: str) -> bytes:
    try:
        return bytes.fromhex(text.strip().removeprefix("0x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not hex (two digits per byte)") from None


def seconds_argument(text: str) -> timedelta:
    try:
        seconds = float(text)
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError
        return timedelta(seconds=seconds)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds >= 0") from None


def add_root_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        metavar="PEM",
        action="append",
        default=[],
        help="trust the certificate(s) in this PEM file instead of the shipped AWS root; repeatable",
    )


def add_at_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--at",
        metavar="TIME",
        type=at_argument,
        help="verification time, ISO 8601 with a zone (e.g. 2025-01-31T12:00:00Z); default now. "
        "'document' uses the document's own timestamp: for re-checking archived documents, "
        "whose certificates (about 3 hours for the leaf) have since expired",
    )


def load_policy_file(path: str) -> Policy | KeyPolicy:
    """A policy file: nitro_attest's own (JSON or TOML) or an AWS KMS key policy; usage errors name the file."""
    try:
        return load_policy(path)
    except (PolicyFileError, KmsPolicyError) as error:  # their messages name the file and the key
        raise UsageError(str(error)) from None
    except OSError as exc:
        raise UsageError(f"cannot read --policy {path}: {exc.strerror or exc}") from None


def add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that build a :class:`Policy` (read back by :func:`policy_from_arguments`)."""
    parser.add_argument(
        "--policy",
        metavar="FILE",
        help="a nitro_attest policy file (.json or .toml, e.g. from `policy from-document` or `policy from-eif`) "
        "instead of --pcr; it holds every constraint, so the other policy flags cannot be added to it",
    )
    parser.add_argument(
        "--pcr",
        metavar="N=HEX",
        type=pcr_argument,
        action="append",
        default=[],
        help="PCR N must equal HEX (96 hex digits); repeat for other PCRs, or the same N for alternative values",
    )
    parser.add_argument(
        "--any-enclave",
        action="store_true",
        help="accept any genuine enclave, whatever its PCRs (instead of --pcr)",
    )
    add_at_argument(parser)
    parser.add_argument("--nonce", metavar="HEX", type=hex_argument, help="the document's nonce must equal this")
    parser.add_argument("--user-data", metavar="HEX", type=hex_argument, help="user_data must equal this")
    parser.add_argument("--public-key", metavar="HEX", type=hex_argument, help="public_key must equal this")
    parser.add_argument(
        "--max-age",
        metavar="SECONDS",
        type=seconds_argument,
        help="reject documents older than this at the verification time (replay window)",
    )
    parser.add_argument("--allow-debug", action="store_true", help="accept debug-mode enclaves (PCR0 all zero)")
    add_root_argument(parser)


def policy_from_arguments(args: argparse.Namespace) -> Policy:
    """The policy ``--pcr``/``--any-enclave`` and the other policy flags state; one of the two is required."""
    if args.policy is not None:
        return _policy_file_alone(args)
    if args.pcr and args.any_enclave:
        raise UsageError("--any-enclave accepts every enclave, so it cannot be combined with --pcr; choose one")
    if not args.pcr and not args.any_enclave:
        raise UsageError(
            "no policy: pin the measurements you expect with --pcr N=HEX (repeat it; the same N twice allows "
            "either value), pass --policy FILE, or pass --any-enclave to accept any genuine enclave whatever it runs"
        )
    options: dict[str, Any] = {
        "nonce": args.nonce,
        "user_data": args.user_data,
        "public_key": args.public_key,
        "max_age": args.max_age,
        "allow_debug": args.allow_debug,
    }
    if args.any_enclave:
        return Policy.any_enclave(**options)
    pins: dict[int, list[str]] = {}
    for index, value in args.pcr:
        pins.setdefault(index, []).append(value)
    return Policy(pins, **options)


def _policy_file_alone(args: argparse.Namespace) -> Policy:
    flags = {
        "--pcr": bool(args.pcr),
        "--any-enclave": args.any_enclave,
        "--nonce": args.nonce is not None,
        "--user-data": args.user_data is not None,
        "--public-key": args.public_key is not None,
        "--max-age": args.max_age is not None,
        "--allow-debug": args.allow_debug,
    }
    given = [flag for flag, present in flags.items() if present]
    if given:
        raise UsageError(f"--policy holds the whole policy: write {', '.join(given)} into {args.policy} instead")
    policy = load_policy_file(args.policy)
    if not isinstance(policy, Policy):
        raise UsageError(
            f"{args.policy} is an AWS KMS key policy: `nitro-attest policy check --policy {args.policy}` evaluates "
            "it as KMS would"
        )
    return policy


def verification_time(at: datetime | DocumentTime | None, data: bytes) -> datetime:
    """The time ``--at`` names for the document ``data``: given, the document's own (``document``), or now.

    Raises :class:`NitroAttestError` when ``--at document`` meets bytes that do not decode.
    """
    if isinstance(at, DocumentTime):
        return parse(data).timestamp
    return at if at is not None else datetime.now(timezone.utc)


# --------------------------------------------------------------------------- text for people


def safe(text: str) -> str:
    """``text`` with control characters escaped: unverified documents must not drive the terminal."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else ascii(char)[1:-1] for char in text)


def iso(moment: datetime, *, milliseconds: bool = False) -> str:
    text = moment.astimezone(timezone.utc).isoformat(timespec="milliseconds" if milliseconds else "seconds")
    return text.replace("+00:00", "Z")


def subject(certificate: x509.Certificate) -> str:
    return certificate_summary(certificate)["subject"]


def bytes_text(value: bytes | None) -> list[str]:
    """A bytes field for people: length and hex (shortened), plus the text when it is readable."""
    if value is None:
        return ["null"]
    if not value:
        return ["0 bytes (empty)"]
    # A little slack: cutting 34 bytes down to 32 saves nothing a reader would notice.
    shown = value.hex() if len(value) <= _SHOW_BYTES + 8 else value[:_SHOW_BYTES].hex() + "..."
    lines = [f"{len(value)} bytes  {shown}"]
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return lines
    if text.isprintable():
        lines.append(f'text: "{text[:_SHOW_TEXT]}{"..." if len(text) > _SHOW_TEXT else ""}"')
    return lines


def field_rows(rows: Sequence[tuple[str, Sequence[str]]], indent: str = "") -> list[str]:
    """``label  value`` lines with the values aligned; extra value lines continue under the first."""
    width = max(len(label) for label, _ in rows)
    lines = []
    for label, values in rows:
        for number, value in enumerate(values):
            lines.append(f"{indent}{label if number == 0 else '':<{width}}  {value}".rstrip())
    return lines


def pcr_rows(document: AttestationDocument, indices: Sequence[int] | None = None, indent: str = "  ") -> list[str]:
    """The PCR table: index, meaning, value. The value comes last so that all-zero
    registers can be named rather than spelled out (96 zeros hide the PCRs that matter)."""
    pcrs = [pcr for index, pcr in document.pcrs.items() if indices is None or index in indices]
    if not pcrs:
        return []
    width = max(len("meaning"), *(len(pcr.meaning or "") for pcr in pcrs))
    lines = [f"{indent}{'PCR':>3}  {'meaning':<{width}}  value (SHA-384)"]
    for pcr in pcrs:
        if not pcr.is_zero:
            value = pcr.hex()
        elif document.is_debug and pcr.index in (0, 1, 2):
            value = "(all zero: debug mode)"
        else:
            value = "(all zero)"
        lines.append(f"{indent}{pcr.index:>3}  {pcr.meaning or '':<{width}}  {value}")
    return lines


def failure_lines(failure: PolicyFailure) -> list[str]:
    """One policy failure: code and message, then the PCR, the allowed values and the document's value."""
    alternative = "" if failure.alternative is None else f"[policy {failure.alternative}] "
    if failure.code == "pcr" and failure.index is not None:
        # The library's message spells out the value, which the rows below show aligned with the expected ones.
        meaning = PCR_MEANINGS.get(failure.index)
        pcr = f"PCR{failure.index}" + (f" ({meaning})" if meaning else "")
        summary = f"{pcr} is not an allowed value" if failure.actual else f"{pcr} is absent from the document"
    else:
        summary = safe(failure.message)
    lines = [f"  {alternative}[{failure.code}] {summary}"]
    rows: list[tuple[str, Sequence[str]]] = []
    if failure.expected:
        rows.append(("expected", [safe(value) for value in failure.expected]))
        rows.append(("actual", ["(absent)" if failure.actual is None else safe(failure.actual)]))
    return lines + (field_rows(rows, indent="      ") if rows else [])


def policy_text(policy: Policy) -> str:
    parts = [", ".join(f"PCR{index}" for index in policy.pcrs) + " pinned" if policy.pcrs else "any enclave"]
    parts += [f"{name} required" for name in ("nonce", "user_data", "public_key") if getattr(policy, name) is not None]
    if policy.max_age is not None:
        parts.append(f"max age {policy.max_age.total_seconds():g} s")
    if policy.allow_debug:
        parts.append("debug allowed")
    return ", ".join(parts)
