"""``policy check`` (documents against a policy file or a KMS key policy), ``policy from-document``.

``policy from-eif`` belongs to the image commands (:mod:`nitro_attest.cli.eif`) and is registered here,
under ``policy``, where people look for it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from cryptography import x509

from .. import NitroAttestError, Policy, PolicyViolation, kms, parse, verify
from ..policy_file import dumps_policy
from . import eif
from ._common import (
    EXIT_OK,
    EXIT_REJECTED,
    UsageError,
    action_argument,
    add_root_argument,
    at_argument,
    batch_hints,
    exit_code,
    expand_sources,
    failure_lines,
    field_rows,
    load_document_bytes,
    load_policy_file,
    load_roots,
    pcr_index_argument,
    print_json_results,
    read_batch,
    result_record,
    safe,
    verification_time,
)

_IMAGE_PCRS = (0, 1, 2)
_SIGNING_PCR = 8


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    check.set_defaults(handler=_check)
    check.add_argument(
        "documents",
        metavar="DOC",
        nargs="+",
        help="raw CBOR, hex or base64; - for stdin; a directory: every document below it (other files are skipped)",
    )
    check.add_argument(
        "--json", action="store_true", help="print JSON: a result per document and a summary (see docs/cli.md)"
    )
    check.add_argument(
        "--policy", metavar="FILE", required=True, help="a nitro_attest policy (.json, .toml) or a KMS key policy"
    )
    check.add_argument(
        "--action",
        metavar="ACTION",
        type=action_argument,
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
        type=at_argument,
        help="verification time, ISO 8601 with a zone; default now; 'document': each document's own timestamp",
    )
    add_root_argument(check)

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
    make.set_defaults(handler=_from_document)
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
        type=pcr_index_argument,
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
    eif.register_policy_from_eif(actions)


def _kms_lines(name: str, decision: kms.KmsDecision, action: str) -> list[str]:
    deciding = decision.deciding_statement
    if decision.would_succeed:
        headline = f"KMS would ALLOW {action}"
    elif decision.allowed:
        # Never "ALLOW" beside a reason the call fails: the person would ship a policy that cannot work.
        headline = f"the key policy allows {action}, but KMS would fail the request: {'; '.join(decision.obstacles)}"
    else:
        headline = f"KMS would DENY {action}"
    rows: list[tuple[str, Sequence[str]]] = [
        ("deciding statement", [safe(deciding.label) if deciding else "none (implicit deny)"]),
        ("reasons", [safe(reason) for reason in decision.reasons]),
        ("unevaluated", [", ".join(safe(key) for key in decision.unevaluated) or "(none)"]),
        ("obstacles", [safe(obstacle) for obstacle in decision.obstacles] or ["(none)"]),
    ]
    return [f"{name}: {safe(headline)}", *field_rows(rows, indent="  ")]


def _check_document(
    name: str,
    data: bytes,
    policy: Policy | kms.KeyPolicy,
    args: argparse.Namespace,
    roots: Sequence[x509.Certificate] | None,
) -> dict[str, Any]:
    """Judges one document (printing the verdict unless ``--json``); its ``--json`` result record."""
    try:
        at = verification_time(args.at, data)
        # Genuineness first, with a policy that accepts any enclave: the policy file is judged separately,
        # so that every one of its failures (or KMS's reasons) can be shown, not only the first.
        document = verify(data, Policy.any_enclave(allow_debug=True), at=at, roots=roots)
    except NitroAttestError as error:
        if not args.json:
            # safe: the message may quote the document (names, values), which is not genuine.
            print(f"{name}: rejected [{error.code}]: {safe(error.message)}")
        return result_record(name, "rejected", error=error)
    if isinstance(policy, kms.KeyPolicy):
        action = args.action or "kms:Decrypt"
        decision = kms.evaluate(policy, document, action=action, principal=args.principal)
        if not args.json:
            print("\n".join(_kms_lines(name, decision, action)))
        deciding = decision.deciding_statement
        kms_result = {
            "action": action,
            "allowed": decision.allowed,
            "would_succeed": decision.would_succeed,
            "obstacles": list(decision.obstacles),
            "deciding_statement": None if deciding is None else deciding.label,
            "reasons": list(decision.reasons),
            "unevaluated": list(decision.unevaluated),
        }
        outcome = "accepted" if decision.would_succeed else "rejected"
        return result_record(name, outcome, document=document, kms=kms_result)
    failures = policy.explain(document, at)
    if not failures:
        if not args.json:
            print(f"{name}: accepted")
        return result_record(name, "accepted", document=document)
    violation = PolicyViolation(failures[0].code, "; ".join(failure.message for failure in failures), failures)
    if not args.json:
        count = f"{len(failures)} failure{'s' if len(failures) > 1 else ''}"
        lines = [f"{name}: rejected by the policy ({count})", *(line for f in failures for line in failure_lines(f))]
        print("\n".join(lines))
    return result_record(name, "rejected", error=violation, document=document)


def _check(args: argparse.Namespace) -> int:
    policy = load_policy_file(args.policy)
    if isinstance(policy, Policy):
        kms_only = [
            flag for flag, value in (("--action", args.action), ("--principal", args.principal)) if value is not None
        ]
        if kms_only:
            raise UsageError(
                f"{' and '.join(kms_only)} only appl{'y' if len(kms_only) > 1 else 'ies'} to AWS KMS key policies; "
                f"{args.policy} is a nitro_attest policy"
            )
    roots = load_roots(args.root)
    # Every document is read before any is judged: an unreadable one is a usage error, not a verdict.
    batch = read_batch(expand_sources(args.documents))
    if batch.unreadable:
        raise UsageError("; ".join(reason for _, reason in batch.unreadable))
    results = [_check_document(source.name, data, policy, args, roots) for source, data in batch.documents]
    codes = [result["code"] or "policy" for result in results if result["outcome"] == "rejected"]
    code = exit_code(rejected=len(codes), unreadable=0)
    if args.json:
        print_json_results(results, len(batch.skipped), code)
    elif batch.skipped:
        print(f"{len(batch.skipped)} files skipped (not documents)", file=sys.stderr)
    for hint in batch_hints(codes, at_given=args.at is not None, allow_debug=True):
        print(hint, file=sys.stderr)
    return code


def _from_document(args: argparse.Namespace) -> int:
    if args.kms and args.format == "toml":
        raise UsageError("--kms prints a KMS key policy Condition block, which is JSON: drop --format toml")
    try:
        document = parse(load_document_bytes(args.file))
    except NitroAttestError as error:
        print(f"invalid [{error.code}]: {safe(error.message)}", file=sys.stderr)
        return EXIT_REJECTED
    if document.is_debug and not args.allow_debug:
        raise UsageError(
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
        raise UsageError(f"the document has no {', '.join(missing)}: it has PCRs {', '.join(map(str, document.pcrs))}")
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
        print(json.dumps(kms.attestation_condition(document.pcrs[index] for index in indices), indent=2))
        return EXIT_OK
    policy = Policy({index: document.pcrs[index] for index in indices}, allow_debug=args.allow_debug)
    print(dumps_policy(policy, format=args.format or "json"), end="")
    return EXIT_OK
