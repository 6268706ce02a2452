"""``nitro-attest``: inspect and verify Nitro Enclaves attestation documents from a shell.

Subcommands: ``inspect`` (decode only, nothing verified), ``verify`` (the
library's :func:`~nitro_attest.verify` under a policy built from flags),
``pcr`` (the expected PCR3, PCR4 or PCR8 from a role ARN, an instance ID or a
signing certificate; :mod:`nitro_attest.measurements`), ``policy check``
(documents against a policy file or an AWS KMS key policy;
:mod:`nitro_attest.policy_file`, :mod:`nitro_attest.kms`), ``policy
from-document`` (a policy pinning a document's PCRs) and ``demo`` (a
self-contained run with the look-alike test PKI).

Exit codes: 0 accepted (or shown), 1 rejected (a :class:`NitroAttestError`,
its ``code`` on stderr), 2 usage error (bad flags, unreadable or unrecognised
input). Input may be raw CBOR, hex or base64, from a file or ``-`` (stdin).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import math
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, BinaryIO

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from . import __version__, kms
from ._verify import verify
from .backend import BACKEND
from .batch import verify_batch
from .chain import AWS_NITRO_ROOT_G1
from .document import MAX_PCR_INDEX, PCR_MEANINGS, PCR_SIZE, AttestationDocument, parse
from .errors import NitroAttestError, PolicyFailure
from .measurements import _signing_certificate, pcr3_for_role, pcr4_for_instance, pcr8_for_certificate
from .policy import Policy
from .policy_file import PolicyFileError, dumps_policy, load_policy

__all__ = ["EXIT_OK", "EXIT_REJECTED", "EXIT_USAGE", "main"]

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2

#: Most bytes read from FILE or stdin. Far above any real document (the parser caps
#: documents at 32 KiB) so that hex/base64 with whitespace fits, yet a huge or endless
#: input is refused before it is held in memory.
MAX_INPUT_SIZE = 1024 * 1024

# A COSE_Sign1 is a 4-element CBOR array (0x84), optionally tagged 18 (0xd2).
_CBOR_STARTS = (0x84, 0xD2)
_HEX = re.compile(r"[0-9a-fA-F]*")
_BASE64 = re.compile(r"[A-Za-z0-9+/\-_]*={0,2}")
# Bytes fields longer than this are shortened in the text view (JSON is always complete).
_SHOW_BYTES = 32
_SHOW_TEXT = 60
# The PCRs a person compares (PCR_MEANINGS), in the verified summary.
_SUMMARY_PCRS = (0, 1, 2, 3, 4, 8)
_NOT_VERIFIED = "NOT VERIFIED: decoded only; signature, chain, time and PCRs unchecked (see `nitro-attest verify`)"
# The request actions kms.evaluate accepts ("service:Operation"), checked before any document is judged.
_KMS_ACTION = re.compile(r"[A-Za-z0-9-]+:[A-Za-z0-9]+")
# `policy from-document` pins these by default: the image's identity (PCR8 only when the image is signed).
_IMAGE_PCRS = (0, 1, 2)
_SIGNING_PCR = 8


class _UsageError(Exception):
    """The invocation cannot run (bad input file, bad flag value): exit 2, not a verdict on a document."""


# --------------------------------------------------------------------------- input


def _read_limited(stream: BinaryIO, source: str) -> bytes:
    data = stream.read(MAX_INPUT_SIZE + 1)
    if len(data) > MAX_INPUT_SIZE:
        raise _UsageError(f"{source} is larger than {MAX_INPUT_SIZE >> 20} MiB: not an attestation document")
    return data


def _read_file(path: str) -> bytes:
    """The bytes of ``path`` (``-``: stdin), at most MAX_INPUT_SIZE."""
    if path == "-":
        return _read_limited(sys.stdin.buffer, "stdin")
    try:
        with open(path, "rb") as stream:
            return _read_limited(stream, path)
    except OSError as exc:
        raise _UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def _looks_like_cose(data: bytes) -> bool:
    return bool(data) and data[0] in _CBOR_STARTS


def _decode_input(data: bytes, source: str) -> bytes:
    """Raw CBOR as is; otherwise hex, then base64 (standard or urlsafe, whitespace tolerated).

    A decoding only counts when it yields something that starts like a COSE_Sign1:
    text that happens to be valid base64 would otherwise reach the parser as
    noise, and the person would get a CBOR error instead of "wrong format".
    """
    if not data.strip():
        raise _UsageError(f"{source} is empty")
    if _looks_like_cose(data):
        return data
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        text = None
    if text is not None:
        compact = "".join(text.split())
        hex_text = compact[2:] if compact[:2].lower() == "0x" else compact
        if len(hex_text) % 2 == 0 and _HEX.fullmatch(hex_text):
            decoded = bytes.fromhex(hex_text)
            if _looks_like_cose(decoded):
                return decoded
        if _BASE64.fullmatch(compact):
            standard = compact.rstrip("=").replace("-", "+").replace("_", "/")
            try:
                decoded = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
            except binascii.Error:
                decoded = b""
            if _looks_like_cose(decoded):
                return decoded
    raise _UsageError(
        f"{source} is not an attestation document: not raw CBOR (a COSE_Sign1 starts with byte 0x84 or 0xd2; "
        f"this starts with 0x{data[0]:02x}), nor hex or base64 of one"
    )


def _load_document_bytes(path: str) -> bytes:
    return _decode_input(_read_file(path), "stdin" if path == "-" else path)


def _load_roots(paths: Sequence[str]) -> tuple[x509.Certificate, ...]:
    roots: list[x509.Certificate] = []
    for path in paths:
        data = _read_file(path)
        try:
            if b"-----BEGIN" in data:
                roots.extend(x509.load_pem_x509_certificates(data))
            else:  # a lone DER certificate is accepted too: it is what cabundle[0] holds
                roots.append(x509.load_der_x509_certificate(data))
        except ValueError:
            # cryptography's parse errors name ASN.1 internals; what the person needs is the expected format.
            raise _UsageError(f"--root {path}: not a PEM (or DER) X.509 certificate file") from None
    return tuple(roots)


# --------------------------------------------------------------------------- argument types


@dataclass(frozen=True)
class _DocumentTime:
    """``--at document``: verify at the document's own timestamp."""


def _at_argument(text: str) -> datetime | _DocumentTime:
    if text.strip().lower() == "document":
        return _DocumentTime()
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


def _pcr_argument(text: str) -> tuple[int, str]:
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


def _pcr_index_argument(text: str) -> int:
    index_text = text.strip().lower().removeprefix("pcr")
    if not (index_text.isascii() and index_text.isdigit()) or not 0 <= int(index_text) <= MAX_PCR_INDEX:
        raise argparse.ArgumentTypeError(f"{text!r} is not a PCR index 0..{MAX_PCR_INDEX}")
    return int(index_text)


def _action_argument(text: str) -> str:
    if not _KMS_ACTION.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a KMS action such as kms:Decrypt")
    return text


def _hex_argument(text: str) -> bytes:
    try:
        return bytes.fromhex(text.strip().removeprefix("0x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not hex (two digits per byte)") from None


def _seconds_argument(text: str) -> timedelta:
    try:
        seconds = float(text)
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError
        return timedelta(seconds=seconds)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds >= 0") from None


# --------------------------------------------------------------------------- formatting


def _safe(text: str) -> str:
    """``text`` with control characters escaped: unverified documents must not drive the terminal."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else ascii(char)[1:-1] for char in text)


def _iso(moment: datetime, *, milliseconds: bool = False) -> str:
    text = moment.astimezone(timezone.utc).isoformat(timespec="milliseconds" if milliseconds else "seconds")
    return text.replace("+00:00", "Z")


def _subject(certificate: x509.Certificate) -> str:
    try:
        return certificate.subject.rfc4514_string()
    except ValueError:  # an undecodable name in an unverified certificate is shown, not fatal
        return "(unreadable subject)"


def _issuer(certificate: x509.Certificate) -> str:
    try:
        return certificate.issuer.rfc4514_string()
    except ValueError:
        return "(unreadable issuer)"


def _bytes_text(value: bytes | None) -> list[str]:
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


def _field_rows(rows: Sequence[tuple[str, Sequence[str]]], indent: str = "") -> list[str]:
    """``label  value`` lines with the values aligned; extra value lines continue under the first."""
    width = max(len(label) for label, _ in rows)
    lines = []
    for label, values in rows:
        for number, value in enumerate(values):
            lines.append(f"{indent}{label if number == 0 else '':<{width}}  {value}".rstrip())
    return lines


def _pcr_rows(document: AttestationDocument, indices: Sequence[int] | None = None, indent: str = "  ") -> list[str]:
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


def _debug_text(document: AttestationDocument) -> str:
    if document.is_debug:
        return "YES: PCR0 is all zero, the enclave's code is not measured"
    return "no"


def _inspect_text(document: AttestationDocument) -> str:
    lines = [
        _NOT_VERIFIED,
        "",
        *_field_rows(
            [
                ("module_id", [_safe(document.module_id)]),
                ("digest", [document.digest]),
                ("timestamp", [_iso(document.timestamp, milliseconds=True)]),
                ("debug mode", [_debug_text(document)]),
                ("user_data", _bytes_text(document.user_data)),
                ("nonce", _bytes_text(document.nonce)),
                ("public_key", _bytes_text(document.public_key)),
            ]
        ),
        "",
        f"PCRs ({len(document.pcrs)})",
        *_pcr_rows(document),
        "",
        "certificate (the enclave's leaf)",
        *_field_rows(
            [
                ("subject", [_safe(_subject(document.certificate))]),
                ("valid", [_validity(document.certificate)]),
            ],
            indent="  ",
        ),
        "",
        f"cabundle ({len(document.cabundle)}, root first)",
    ]
    aws_root = AWS_NITRO_ROOT_G1.public_bytes(Encoding.DER)
    for position, certificate in enumerate(document.cabundle):
        rows: list[tuple[str, Sequence[str]]] = [
            ("subject", [_safe(_subject(certificate))]),
            ("valid", [_validity(certificate)]),
        ]
        if position == 0:
            is_aws = certificate.public_bytes(Encoding.DER) == aws_root
            rows.append(
                (
                    "root",
                    [
                        "same bytes as the AWS Nitro Enclaves Root G1"
                        if is_aws
                        else "NOT the AWS Nitro Enclaves Root G1"
                    ],
                )
            )
        row_lines = _field_rows(rows, indent="      ")
        lines.append(f"  [{position}] {row_lines[0].lstrip()}")
        lines += row_lines[1:]
    return "\n".join(lines)


def _validity(certificate: x509.Certificate) -> str:
    return f"{_iso(certificate.not_valid_before_utc)} to {_iso(certificate.not_valid_after_utc)}"


def _certificate_json(certificate: x509.Certificate) -> dict[str, Any]:
    der = certificate.public_bytes(Encoding.DER)
    return {
        "subject": _subject(certificate),
        "issuer": _issuer(certificate),
        "serial_number": format(certificate.serial_number, "x"),
        "not_before": _iso(certificate.not_valid_before_utc),
        "not_after": _iso(certificate.not_valid_after_utc),
        "sha256": hashlib.sha256(der).hexdigest(),
    }


def _hex_or_none(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def _inspect_json(document: AttestationDocument) -> dict[str, Any]:
    aws_root = AWS_NITRO_ROOT_G1.public_bytes(Encoding.DER)
    return {
        "verified": False,
        "module_id": document.module_id,
        "digest": document.digest,
        "timestamp": _iso(document.timestamp, milliseconds=True),
        "debug": document.is_debug,
        "pcrs": {
            str(index): {"value": pcr.hex(), "meaning": pcr.meaning, "all_zero": pcr.is_zero}
            for index, pcr in document.pcrs.items()
        },
        "user_data": _hex_or_none(document.user_data),
        "nonce": _hex_or_none(document.nonce),
        "public_key": _hex_or_none(document.public_key),
        "certificate": _certificate_json(document.certificate),
        "cabundle": [_certificate_json(certificate) for certificate in document.cabundle],
        "cabundle_root_is_aws_root_g1": document.cabundle[0].public_bytes(Encoding.DER) == aws_root,
    }


def _rejected(error: NitroAttestError) -> None:
    print(f"rejected [{error.code}]: {error.message}", file=sys.stderr)


# --------------------------------------------------------------------------- commands


def _parse_file(path: str) -> AttestationDocument | None:
    """The decoded document (NOT verified), or None after saying why it is not one."""
    try:
        return parse(_load_document_bytes(path))
    except NitroAttestError as error:
        print(f"invalid [{error.code}]: {error.message}", file=sys.stderr)
        return None


def _cmd_inspect(args: argparse.Namespace) -> int:
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


def _policy(args: argparse.Namespace) -> Policy:
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


def _policy_text(policy: Policy) -> str:
    parts = [", ".join(f"PCR{index}" for index in policy.pcrs) + " pinned" if policy.pcrs else "any enclave"]
    parts += [f"{name} required" for name in ("nonce", "user_data", "public_key") if getattr(policy, name) is not None]
    if policy.max_age is not None:
        parts.append(f"max age {policy.max_age.total_seconds():g} s")
    if policy.allow_debug:
        parts.append("debug allowed")
    return ", ".join(parts)


def _cmd_verify(args: argparse.Namespace) -> int:
    if args.pcr and args.any_enclave:
        raise _UsageError("--any-enclave accepts every enclave, so it cannot be combined with --pcr; choose one")
    if not args.pcr and not args.any_enclave:
        raise _UsageError(
            "no policy: pin the measurements you expect with --pcr N=HEX (repeat it; the same N twice allows "
            "either value), or pass --any-enclave to accept any genuine enclave whatever it runs"
        )
    policy = _policy(args)
    roots = _load_roots(args.root) if args.root else None
    paths = _expand_paths(args.files)
    if len(paths) > 1 or any(os.path.isdir(path) for path in args.files):
        return _verify_many(paths, policy, args.at, roots)
    data = _load_document_bytes(paths[0])
    try:
        if isinstance(args.at, _DocumentTime):
            at = parse(data).timestamp
            at_note = "the document's own timestamp"
        else:
            at = args.at if args.at is not None else datetime.now(timezone.utc)
            at_note = "given" if args.at is not None else "now"
        document = verify(data, policy, at=at, roots=roots)
    except NitroAttestError as error:
        _rejected(error)
        if error.code == "expired" and args.at is None:
            print("hint: to re-check an archived document at its own time, add --at document", file=sys.stderr)
        return EXIT_REJECTED

    root_origin = "the AWS root shipped with nitro_attest" if roots is None else "from --root"
    print("verified")
    print(
        "\n".join(
            _field_rows(
                [
                    ("module_id", [_safe(document.module_id)]),
                    ("timestamp", [_iso(document.timestamp, milliseconds=True)]),
                    ("checked at", [f"{_iso(at, milliseconds=True)} ({at_note})"]),
                    ("root", [f"{_safe(_subject(document.cabundle[0]))} ({root_origin})"]),
                    ("policy", [_policy_text(policy)]),
                ],
                indent="  ",
            )
        )
    )
    print("\n".join(_pcr_rows(document, _SUMMARY_PCRS)))
    return EXIT_OK


def _expand_paths(arguments: Sequence[str]) -> list[str]:
    """The files named, with each directory replaced by the regular files below it, in sorted order."""
    if arguments.count("-") > 1:
        raise _UsageError("stdin (-) can be read only once")
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
                raise _UsageError(f"{argument} is a directory with no files in it")
            paths.extend(found)
        else:
            paths.append(argument)
    return paths


# Progress is worth drawing only when it takes a while and a person watches it.
_PROGRESS_MIN_DOCUMENTS = 200
_BATCH_CHUNK = 256


def _progress(done: int, total: int) -> None:
    width = 30
    filled = width * done // total
    print(f"\r[{'#' * filled}{' ' * (width - filled)}] {done}/{total}", end="", file=sys.stderr, flush=True)


def _verify_many(
    paths: Sequence[str],
    policy: Policy,
    at_argument: datetime | _DocumentTime | None,
    roots: Sequence[x509.Certificate] | None,
) -> int:
    """verify_batch over many files: a line per file, a progress bar on a terminal, a summary line."""
    outcomes: dict[int, str] = {}
    pending: dict[datetime, list[tuple[int, bytes]]] = {}
    now = datetime.now(timezone.utc)
    for position, path in enumerate(paths):
        try:
            data = _load_document_bytes(path)
        except _UsageError as error:
            outcomes[position] = f"unreadable: {error}"
            continue
        at = now if at_argument is None else at_argument
        if isinstance(at, _DocumentTime):
            try:
                at = parse(data).timestamp
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
        print(f"{_safe(path)}: {outcomes[position]}")
    verified = sum(outcome == "verified" for outcome in outcomes.values())
    unreadable = sum(outcome.startswith("unreadable") for outcome in outcomes.values())
    rejected = len(paths) - verified - unreadable
    print(f"{len(paths)} documents: {verified} verified, {rejected} rejected, {unreadable} unreadable")
    return EXIT_OK if verified == len(paths) else EXIT_REJECTED


def _read_signing_certificate(path: str) -> x509.Certificate:
    """The one certificate in ``path`` (``-``: stdin), PEM or DER, read by pcr8_for_certificate's rules."""
    source = "stdin" if path == "-" else path
    try:
        if path == "-":
            data = sys.stdin.buffer.read(MAX_INPUT_SIZE + 1)
        else:
            with open(path, "rb") as stream:
                data = stream.read(MAX_INPUT_SIZE + 1)
    except OSError as exc:
        raise _UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_INPUT_SIZE:
        raise _UsageError(f"--signing-cert {source} is larger than {MAX_INPUT_SIZE >> 20} MiB: not a certificate")
    try:
        # The library's own reading (exactly one certificate, PEM or DER), so that the
        # CLI and pcr8_for_certificate cannot disagree about a file.
        return _signing_certificate(data)
    except ValueError as exc:
        raise _UsageError(f"--signing-cert {source}: {exc}") from None


def _cmd_pcr(args: argparse.Namespace) -> int:
    details: list[tuple[str, str]]
    try:
        if args.role_arn is not None:
            pcr = pcr3_for_role(args.role_arn)
            details = [("role_arn", args.role_arn)]
        elif args.instance_id is not None:
            pcr = pcr4_for_instance(args.instance_id)
            details = [("instance_id", args.instance_id)]
        else:
            certificate = _read_signing_certificate(args.signing_cert)
            pcr = pcr8_for_certificate(certificate)
            details = [("signing_cert", args.signing_cert), ("subject", _subject(certificate))]
    except ValueError as exc:
        raise _UsageError(str(exc)) from None
    if args.json:
        print(json.dumps({"index": pcr.index, "meaning": pcr.meaning, "value": pcr.hex(), **dict(details)}, indent=2))
        return EXIT_OK
    rows: list[tuple[str, Sequence[str]]] = [
        ("PCR", [f"{pcr.index} ({pcr.meaning})"]),
        *((label, [_safe(value)]) for label, value in details),
        ("value", [pcr.hex()]),
    ]
    print("\n".join(_field_rows(rows)))
    return EXIT_OK


def _load_policy_file(path: str) -> Policy | kms.KeyPolicy:
    try:
        return load_policy(path)
    except (PolicyFileError, kms.KmsPolicyError) as error:  # their messages name the file and the key
        raise _UsageError(str(error)) from None
    except OSError as exc:
        raise _UsageError(f"cannot read --policy {path}: {exc.strerror or exc}") from None


def _failure_lines(failure: PolicyFailure) -> list[str]:
    """One policy failure: code and message, then the PCR, the allowed values and the document's value."""
    alternative = "" if failure.alternative is None else f"[policy {failure.alternative}] "
    if failure.code == "pcr" and failure.index is not None:
        # The library's message spells out the value, which the rows below show aligned with the expected ones.
        meaning = PCR_MEANINGS.get(failure.index)
        pcr = f"PCR{failure.index}" + (f" ({meaning})" if meaning else "")
        summary = f"{pcr} is not an allowed value" if failure.actual else f"{pcr} is absent from the document"
    else:
        summary = _safe(failure.message)
    lines = [f"  {alternative}[{failure.code}] {summary}"]
    rows: list[tuple[str, Sequence[str]]] = []
    if failure.expected:
        rows.append(("expected", [_safe(value) for value in failure.expected]))
        rows.append(("actual", ["(absent)" if failure.actual is None else _safe(failure.actual)]))
    return lines + (_field_rows(rows, indent="      ") if rows else [])


def _kms_lines(name: str, decision: kms.KmsDecision, action: str) -> list[str]:
    deciding = decision.deciding_statement
    verdict = "ALLOW" if decision.allowed else "DENY"
    rows: list[tuple[str, Sequence[str]]] = [
        ("deciding statement", [_safe(deciding.label) if deciding else "none (implicit deny)"]),
        ("reasons", [_safe(reason) for reason in decision.reasons]),
        ("unevaluated", [", ".join(_safe(key) for key in decision.unevaluated) or "(none)"]),
    ]
    return [f"{name}: KMS would {verdict} {action}", *_field_rows(rows, indent="  ")]


def _check_document(
    name: str,
    data: bytes,
    policy: Policy | kms.KeyPolicy,
    args: argparse.Namespace,
    roots: Sequence[x509.Certificate] | None,
) -> bool:
    """Prints the verdict on one document; True when it is genuine and the policy accepts (KMS allows) it."""
    try:
        if isinstance(args.at, _DocumentTime):
            at = parse(data).timestamp
        else:
            at = args.at if args.at is not None else datetime.now(timezone.utc)
        # Genuineness first, with a policy that accepts any enclave: the policy file is judged separately,
        # so that every one of its failures (or KMS's reasons) can be shown, not only the first.
        document = verify(data, Policy.any_enclave(allow_debug=True), at=at, roots=roots)
    except NitroAttestError as error:
        # _safe: the message may quote the document (names, values), which is not genuine.
        print(f"{name}: rejected [{error.code}]: {_safe(error.message)}")
        if error.code == "expired" and args.at is None:
            print("hint: to re-check an archived document at its own time, add --at document", file=sys.stderr)
        return False
    if isinstance(policy, kms.KeyPolicy):
        action = args.action or "kms:Decrypt"
        decision = kms.evaluate(policy, document, action=action, principal=args.principal)
        print("\n".join(_kms_lines(name, decision, action)))
        return decision.allowed
    failures = policy.explain(document, at)
    if not failures:
        print(f"{name}: accepted")
        return True
    count = f"{len(failures)} failure{'s' if len(failures) > 1 else ''}"
    print(
        "\n".join(
            [f"{name}: rejected by the policy ({count})", *(line for f in failures for line in _failure_lines(f))]
        )
    )
    return False


def _cmd_policy_check(args: argparse.Namespace) -> int:
    policy = _load_policy_file(args.policy)
    if isinstance(policy, Policy):
        kms_only = [
            flag for flag, value in (("--action", args.action), ("--principal", args.principal)) if value is not None
        ]
        if kms_only:
            raise _UsageError(
                f"{' and '.join(kms_only)} only appl{'y' if len(kms_only) > 1 else 'ies'} to AWS KMS key policies; "
                f"{args.policy} is a nitro_attest policy"
            )
    roots = _load_roots(args.root) if args.root else None
    # Every document is read before any is judged: an unreadable one is a usage error, not a verdict.
    documents = [("stdin" if path == "-" else path, _load_document_bytes(path)) for path in args.documents]
    verdicts = [_check_document(name, data, policy, args, roots) for name, data in documents]
    return EXIT_OK if all(verdicts) else EXIT_REJECTED


def _kms_condition(document: AttestationDocument, indices: Sequence[int]) -> dict[str, dict[str, str]]:
    keys = {index: kms.IMAGE_SHA384_KEY if index == 0 else f"kms:RecipientAttestation:PCR{index}" for index in indices}
    # IgnoreCase, as AWS's examples: KMS compares strings, and hex is written in either case.
    return {"StringEqualsIgnoreCase": {keys[index]: document.pcrs[index].hex() for index in indices}}


def _cmd_policy_from_document(args: argparse.Namespace) -> int:
    if args.kms and args.format == "toml":
        raise _UsageError("--kms prints a KMS key policy Condition block, which is JSON: drop --format toml")
    document = _parse_file(args.file)
    if document is None:
        return EXIT_REJECTED
    if document.is_debug and not args.allow_debug:
        raise _UsageError(
            "the document comes from a debug-mode enclave: PCR0, PCR1 and PCR2 are all zero because nothing is "
            "measured, so pinning them would accept every debug-mode enclave, whatever code it runs. Use a "
            "production enclave's document, or pass --allow-debug for a development-only policy"
        )
    if args.pcr_index:
        indices = sorted(set(args.pcr_index))
    else:
        signed = _SIGNING_PCR in document.pcrs and not document.pcrs[_SIGNING_PCR].is_zero
        indices = [*_IMAGE_PCRS, *((_SIGNING_PCR,) if signed else ())]
    missing = [f"PCR{index}" for index in indices if index not in document.pcrs]
    if missing:
        raise _UsageError(f"the document has no {', '.join(missing)}: it has PCRs {', '.join(map(str, document.pcrs))}")
    # stdout carries only the policy (for redirection into a file); what the person must know goes to stderr.
    print(
        "NOT VERIFIED: these PCRs are copied from a document that was only decoded; verify it "
        "(nitro-attest verify) or compare them with your build's measurements before trusting the policy",
        file=sys.stderr,
    )
    print(f"pinned: {', '.join(f'PCR{index}' for index in indices)}", file=sys.stderr)
    if 0 not in indices:
        print("warning: PCR0 (the enclave image file) is not pinned: other images may be accepted", file=sys.stderr)
    if args.kms:
        if document.is_debug:
            print(
                "warning: KMS does not know debug mode: this condition admits every debug-mode enclave",
                file=sys.stderr,
            )
        print(json.dumps(_kms_condition(document, indices), indent=2))
        return EXIT_OK
    policy = Policy({index: document.pcrs[index] for index in indices}, allow_debug=args.allow_debug)
    print(dumps_policy(policy, format=args.format or "json"), end="")
    return EXIT_OK


def _cmd_policy(args: argparse.Namespace) -> int:
    if args.policy_command == "check":
        return _cmd_policy_check(args)
    return _cmd_policy_from_document(args)


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


def _cmd_demo(args: argparse.Namespace) -> int:
    try:
        from .testing import DEFAULT_PCRS, TestPKI  # noqa: PLC0415 (test PKI code only when the demo runs)
    except ImportError as exc:
        raise _UsageError(f"the demo needs nitro_attest.testing, which cannot be imported: {exc}") from None

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
            _field_rows(
                [
                    ("module_id", [_safe(document.module_id)]),
                    ("timestamp", [_iso(document.timestamp, milliseconds=True)]),
                    ("nonce", _bytes_text(document.nonce)),
                ],
                indent="   ",
            )
        )
    )
    print()
    print("\n".join(_pcr_rows(document, _SUMMARY_PCRS, indent="   ")))
    print()
    genuine = _demo_verdict(
        f"2. Verified at {_iso(pki.document_time)}, trusting the TEST root, policy: {_policy_text(policy)}:",
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


# --------------------------------------------------------------------------- parser


def _add_root_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        metavar="PEM",
        action="append",
        default=[],
        help="trust the certificate(s) in this PEM file instead of the shipped AWS root; repeatable",
    )


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nitro-attest",
        description="Inspect and verify AWS Nitro Enclaves attestation documents.",
        epilog="FILE is raw CBOR, hex or base64 (detected), or - for stdin. "
        "Exit codes: 0 ok, 1 rejected, 2 usage error.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__} (P-384 backend: {BACKEND})")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    inspect = commands.add_parser(
        "inspect",
        help="show a document's fields (NOT verified)",
        description="Decode a document and show its fields. Nothing is verified: anyone could have made it.",
    )
    inspect.add_argument("file", metavar="FILE", help="raw CBOR, hex or base64; - for stdin")
    inspect.add_argument("--json", action="store_true", help="print JSON (bytes as hex, times ISO 8601 UTC)")

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
    check.add_argument(
        "--pcr",
        metavar="N=HEX",
        type=_pcr_argument,
        action="append",
        default=[],
        help="PCR N must equal HEX (96 hex digits); repeat for other PCRs, or the same N for alternative values",
    )
    check.add_argument(
        "--any-enclave",
        action="store_true",
        help="accept any genuine enclave, whatever its PCRs (instead of --pcr)",
    )
    check.add_argument(
        "--at",
        metavar="TIME",
        type=_at_argument,
        help="verification time, ISO 8601 with a zone (e.g. 2025-01-31T12:00:00Z); default now. "
        "'document' uses the document's own timestamp: for re-checking archived documents, "
        "whose certificates (about 3 hours for the leaf) have since expired",
    )
    check.add_argument("--nonce", metavar="HEX", type=_hex_argument, help="the document's nonce must equal this")
    check.add_argument("--user-data", metavar="HEX", type=_hex_argument, help="user_data must equal this")
    check.add_argument("--public-key", metavar="HEX", type=_hex_argument, help="public_key must equal this")
    check.add_argument(
        "--max-age",
        metavar="SECONDS",
        type=_seconds_argument,
        help="reject documents older than this at the verification time (replay window)",
    )
    check.add_argument("--allow-debug", action="store_true", help="accept debug-mode enclaves (PCR0 all zero)")
    _add_root_argument(check)

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

    _add_policy_parser(commands)

    commands.add_parser(
        "demo",
        help="mint, verify and tamper with a document from a TEST PKI (not AWS)",
        description="A self-contained walk-through with the look-alike TEST PKI of nitro_attest.testing (not AWS).",
    )
    return parser


def _add_policy_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    policy = commands.add_parser(
        "policy",
        help="check documents against a policy file or KMS key policy; write a policy from a document",
        description="Policy files: nitro_attest's own format (JSON or TOML, see docs/policies.md) "
        "or an AWS KMS key policy (JSON with a Statement).",
    )
    actions = policy.add_subparsers(dest="policy_command", metavar="ACTION", required=True)

    check = actions.add_parser(
        "check",
        help="verify documents, then judge them under a policy file or KMS key policy",
        description="For each DOC: verify that it is genuine (signature, certificate chain to the AWS root "
        "unless --root, time), then apply the policy: a nitro_attest policy lists every failure; "
        "an AWS KMS key policy is evaluated as KMS would (ALLOW or DENY, the deciding statement, the reasons, "
        "and the conditions that cannot be evaluated offline).",
        epilog="Exit codes: 0 every document accepted (allowed), 1 any rejected (denied), "
        "2 usage error (unreadable or malformed policy file, bad flags, unreadable document).",
    )
    check.add_argument("documents", metavar="DOC", nargs="+", help="raw CBOR, hex or base64; - for stdin")
    check.add_argument(
        "--policy", metavar="FILE", required=True, help="a nitro_attest policy (.json, .toml) or a KMS key policy"
    )
    check.add_argument(
        "--action",
        metavar="ACTION",
        type=_action_argument,
        help="KMS key policies only: the request's action (default kms:Decrypt)",
    )
    check.add_argument(
        "--principal",
        metavar="ARN",
        help="KMS key policies only: the caller's ARN (e.g. the parent instance's role); "
        "without it Principal is not evaluated",
    )
    check.add_argument(
        "--at",
        metavar="TIME",
        type=_at_argument,
        help="verification time, ISO 8601 with a zone; default now; 'document': each document's own timestamp",
    )
    _add_root_argument(check)

    make = actions.add_parser(
        "from-document",
        help="print a policy pinning a document's PCRs (the document is NOT verified)",
        description="Print a policy that pins the PCRs of DOC: by default PCR0, PCR1, PCR2 (the enclave image "
        "file, kernel and application) and PCR8 when it is non-zero (the image's signing certificate), which "
        "identify the image wherever it runs. The document is only decoded, not verified: take it from an "
        "enclave you trust.",
        epilog="Exit codes: 0 printed, 1 the document cannot be decoded, 2 usage error "
        "(including a debug-mode document without --allow-debug).",
    )
    make.add_argument("file", metavar="DOC", help="raw CBOR, hex or base64; - for stdin")
    make.add_argument(
        "--kms",
        action="store_true",
        help="print a KMS key policy Condition block (StringEqualsIgnoreCase on kms:RecipientAttestation:...) "
        "instead of a nitro_attest policy",
    )
    make.add_argument(
        "--format",
        choices=("json", "toml"),
        help="nitro_attest policy format (default json; reading TOML policies needs Python 3.11+)",
    )
    make.add_argument(
        "--pcr-index",
        metavar="N",
        type=_pcr_index_argument,
        action="append",
        default=[],
        help="pin PCR N instead of the default set (list 0, 1 and 2 as well to keep pinning the image); repeat for "
        "several. PCR3 (the parent instance's IAM role) and PCR4 (its instance ID) tie the policy to one role or "
        "one instance",
    )
    make.add_argument(
        "--allow-debug",
        action="store_true",
        help="accept a debug-mode document (PCR0 all zero) and write allow_debug; for development only",
    )


_COMMANDS: Mapping[str, Callable[[argparse.Namespace], int]] = {
    "inspect": _cmd_inspect,
    "verify": _cmd_verify,
    "pcr": _cmd_pcr,
    "policy": _cmd_policy,
    "demo": _cmd_demo,
}


def _exit_code(code: object) -> int:
    if code is None:
        return EXIT_OK
    return code if isinstance(code, int) else EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``nitro-attest`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits on --help and bad usage; main returns codes instead
        return _exit_code(exit_.code)
    try:
        return _COMMANDS[args.command](args)
    except _UsageError as error:
        command = " ".join(filter(None, (args.command, getattr(args, "policy_command", None))))
        print(f"nitro-attest {command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader (e.g. `| head`) left: stop quietly, and keep Python's exit-time flush from failing again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_REJECTED
