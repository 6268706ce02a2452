"""Evaluation: what KMS would decide for one request under a :class:`KeyPolicy`, with its reasons."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, overload

from .._tpm_document import NitroTPMDocument, VerifiedNitroTPMDocument, require_verified_nitrotpm
from ..document import AttestationDocument, VerifiedDocument, require_verified
from ..keys import load_rsa_public_key
from ._key_policy import (
    _ARN,
    _NEGATED_STRING_OPERATORS,
    _NULL,
    _OTHER_OPERATORS,
    ATTESTED_ACTIONS,
    Condition,
    KeyPolicy,
    KmsDecision,
    Statement,
    _glob,
    parse_key_policy,
)

_Relation: TypeAlias = Literal["same", "session", "account", "none"]
# Three-valued truth: None is "unknown" (a condition we cannot evaluate).
_Truth: TypeAlias = "bool | None"
#: What evaluate() judges: a document from either kind of attested environment.
_Document: TypeAlias = "AttestationDocument | NitroTPMDocument"
_KeyPolicySource: TypeAlias = "str | bytes | Mapping[str, Any] | KeyPolicy | os.PathLike[str]"


@dataclass(frozen=True)
class _Request:
    action: str
    principal: str | None
    attested: bool  # the action carries the attestation document, so its keys are in the request
    pcrs: Mapping[int, str]  # lower-case hex, as KMS puts them in the request
    nitrotpm: bool = False  # the document is a NitroTPM one: its PCRs fill NitroTPMPCR<n>, not PCR<n>

    def value(self, condition: Condition) -> str | None:
        """The request's value of an attestation key; None when absent (another kind's key included)."""
        pcr = condition.nitrotpm_pcr if self.nitrotpm else condition.pcr
        return self.pcrs.get(pcr) if self.attested and pcr is not None else None


def _all(truths: Iterable[_Truth]) -> _Truth:
    """Kleene AND: false if any is false, else unknown if any is unknown, else true."""
    result: _Truth = True
    for truth in truths:
        if truth is False:
            return False
        if truth is None:
            result = None
    return result


def _show(truth: _Truth) -> str:
    return "unknown" if truth is None else str(truth).lower()


@overload
def evaluate(
    key_policy: _KeyPolicySource,
    document: VerifiedDocument | VerifiedNitroTPMDocument,
    *,
    action: str = "kms:Decrypt",
    principal: str | None = None,
    allow_unverified: Literal[False] = False,
) -> KmsDecision: ...
@overload
def evaluate(
    key_policy: _KeyPolicySource,
    document: _Document,
    *,
    action: str = "kms:Decrypt",
    principal: str | None = None,
    allow_unverified: Literal[True],
) -> KmsDecision: ...
def evaluate(
    key_policy: _KeyPolicySource,
    document: _Document,
    *,
    action: str = "kms:Decrypt",
    principal: str | None = None,
    allow_unverified: bool = False,
) -> KmsDecision:
    """Would KMS allow ``action`` for an enclave or instance presenting ``document``, under ``key_policy``?

    ``key_policy`` is JSON text, bytes, the decoded mapping, a parsed
    :class:`KeyPolicy`, or a :class:`pathlib.Path` of a JSON file (a ``str``
    is always JSON text, never a file name). ``document`` must come from
    :func:`nitro_attest.verify` (a :class:`~nitro_attest.VerifiedDocument`,
    whose PCRs fill ``ImageSha384`` and ``PCR<n>``) or
    :func:`~nitro_attest.nitrotpm.verify_nitrotpm` (a
    :class:`~nitro_attest.nitrotpm.VerifiedNitroTPMDocument`, whose PCRs fill
    ``NitroTPMPCR<n>``): this function judges the policy, not the document,
    and KMS evaluates only genuine documents. A merely parsed document is a
    ``TypeError`` unless ``allow_unverified=True`` says by name that the
    answer is about PCRs nobody has checked. ``principal`` is the caller's ARN
    (e.g. the parent instance's role); when None, Principal is not evaluated.
    Raises :class:`KmsPolicyError` for a malformed policy. See the module
    documentation for the rules, and for how unknown conditions are treated:
    never as allowing. ``allowed`` is the key policy's verdict;
    :attr:`KmsDecision.would_succeed` also counts the ``obstacles`` that make
    KMS fail the request anyway (no usable ``public_key`` to encrypt to).
    """
    _require_verified(document, allow_unverified=allow_unverified)
    if not isinstance(action, str) or not re.fullmatch(r"[A-Za-z0-9-]+:[A-Za-z0-9]+", action):
        raise ValueError(f"action must be 'service:Operation' (e.g. 'kms:Decrypt'), got {action!r}")
    if principal is not None and not isinstance(principal, str):
        raise TypeError(f"principal must be an ARN string or None, not {type(principal).__name__}")
    policy = key_policy if isinstance(key_policy, KeyPolicy) else parse_key_policy(key_policy)
    request = _Request(
        action=action,
        principal=principal,
        attested=action.lower() in ATTESTED_ACTIONS,
        pcrs={index: pcr.hex() for index, pcr in document.pcrs.items()},
        nitrotpm=isinstance(document, NitroTPMDocument),
    )
    obstacles = _recipient_obstacles(document) if request.attested else ()
    return _judge(policy, request, _notes(document, request), obstacles)


def evaluate_without_recipient(policy: KeyPolicy, *, action: str, principal: str | None) -> KmsDecision:
    """The decision for a request that carries no attestation document (no ``Recipient``).

    For the local KMS server: there every ``kms:RecipientAttestation`` key is
    absent, whatever the action, as in AWS KMS.
    """
    request = _Request(action=action, principal=principal, attested=False, pcrs={})
    notes = [f"note: {action} without Recipient: no kms:RecipientAttestation key is in the request"]
    return _judge(policy, request, notes, ())


def _judge(policy: KeyPolicy, request: _Request, reasons: list[str], obstacles: tuple[str, ...]) -> KmsDecision:
    unevaluated: dict[str, str] = {}
    outcomes: list[tuple[Statement, _Truth]] = []
    for statement in policy.statements:
        applies, lines, unknown_keys = _evaluate_statement(statement, request)
        reasons.extend(lines)
        for key in unknown_keys:
            unevaluated.setdefault(key.lower(), key)
        outcomes.append((statement, applies))
    allowed, deciding, summary = _decide(outcomes, request.action)
    if allowed and obstacles:
        # Never "allowed" alone next to a reason the request fails: the verdict and the failure in one line.
        summary += f", but the request would fail: {'; '.join(obstacles)}"
    reasons.append(summary)
    return KmsDecision(allowed, deciding, tuple(reasons), tuple(unevaluated.values()), obstacles)


def _require_verified(document: object, *, allow_unverified: bool) -> None:
    what = "kms.evaluate's document"
    if isinstance(document, NitroTPMDocument):
        require_verified_nitrotpm(document, what, allow_unverified=allow_unverified)
    elif isinstance(document, AttestationDocument):
        require_verified(document, what, allow_unverified=allow_unverified)
    else:
        raise TypeError(
            f"{what} must be a VerifiedDocument (from nitro_attest.verify) or a VerifiedNitroTPMDocument "
            f"(from nitro_attest.verify_nitrotpm), not {type(document).__name__}"
        )


def _notes(document: _Document, request: _Request) -> list[str]:
    notes = ["note: Resource is not evaluated: a key policy governs its own key"]
    if request.principal is None:
        notes.append("note: no principal given: Principal and NotPrincipal are not evaluated (assumed to match)")
    if not request.attested:
        notes.append(
            f"note: {request.action} does not take an attestation document, so KMS puts no "
            "kms:RecipientAttestation keys in its request: they are absent"
        )
    elif request.nitrotpm:
        notes.append(
            "note: a NitroTPM document: its PCRs are kms:RecipientAttestation:NitroTPMPCR<n>; "
            "the Nitro Enclaves keys (ImageSha384, PCR<n>) are absent"
        )
    if isinstance(document, AttestationDocument) and document.is_debug:
        notes.append(
            "note: debug-mode enclave (PCR0 is zero): KMS evaluates it like any other, "
            "nitro_attest.verify rejects it unless allow_debug"
        )
    return notes


def _recipient_obstacles(document: _Document) -> tuple[str, ...]:
    """Why KMS could not encrypt its response to the document's ``public_key``: it needs a DER RSA key."""
    # KMS's only recipient algorithm is RSAES_OAEP_SHA_256, to the document's public_key (a DER
    # SubjectPublicKeyInfo); without one it has nothing to encrypt the answer to.
    fails = "KMS encrypts its response (CiphertextForRecipient) to it with RSAES-OAEP"
    if not document.public_key:
        shown = "no public_key" if document.public_key is None else "an empty public_key"
        return (f"the document has {shown}: {fails}",)
    try:
        load_rsa_public_key(document.public_key, "the document's public_key")
    except ValueError as error:
        return (f"{error}: {fails}",)
    return ()


def _evaluate_statement(statement: Statement, request: _Request) -> tuple[_Truth, list[str], list[str]]:
    label = f"{statement.label} [{statement.effect}]"
    element = "NotAction" if statement.not_action else "Action"
    if not statement.matches_action(request.action):
        return (
            False,
            [f"{label}: does not apply: {element} {list(statement.actions)} does not cover {request.action}"],
            [],
        )
    lines = [f"{label}: {element} {list(statement.actions)} covers {request.action}"]
    principal_truth, principal_line = _evaluate_principal(statement, request.principal)
    lines.append(f"{label}: {principal_line}")
    truths = [principal_truth]
    unknown_keys = []
    for condition in statement.conditions:
        truth, line = _evaluate_condition(condition, request)
        truths.append(truth)
        lines.append(f"{label}: {line}")
        if truth is None:
            unknown_keys.append(condition.key)
    applies = _all(truths)
    if not statement.conditions:
        lines.append(f"{label}: no Condition")
    lines.append(f"{label}: applies: {_show(applies)}")
    return applies, lines, unknown_keys


def _relation(entry: tuple[str, str], caller: str) -> _Relation:
    """How a Principal entry relates to the caller's ARN."""
    kind, name = entry
    if name in ("*", caller):
        return "same"
    if kind != "AWS":
        return "none"
    caller_arn = _ARN.fullmatch(caller)
    if caller_arn is None:
        return "none"
    account = caller_arn["account"]
    if name == account or name == f"arn:{caller_arn['partition']}:iam::{account}:root":
        return "account"
    named = _ARN.fullmatch(name)
    resource = caller_arn["resource"].split("/")
    if (
        named is not None
        and caller_arn["service"] == "sts"
        and resource[0] == "assumed-role"
        and len(resource) == 3
        and named["service"] == "iam"
        and (named["partition"], named["account"]) == (caller_arn["partition"], account)
        and named["resource"].startswith("role/")
        and named["resource"].rsplit("/", 1)[-1] == resource[1]
    ):
        return "session"  # a role ARN covers the sessions of that role (its path is not in the session ARN)
    return "none"


def _evaluate_principal(statement: Statement, caller: str | None) -> tuple[_Truth, str]:
    element = "NotPrincipal" if statement.not_principal else "Principal"
    listed = [value if kind == "*" else f"{kind}:{value}" for kind, value in statement.principals]
    if caller is None:
        return True, f"{element} {listed} not evaluated (no principal given)"
    relations = {_relation(entry, caller) for entry in statement.principals}
    if statement.not_principal:
        return _not_principal(relations, listed, caller)
    if relations & {"same", "session"}:
        return True, f"Principal {listed} matches {caller}"
    if "account" not in relations:
        return False, f"Principal {listed} does not match {caller}"
    if statement.effect == "Deny":
        return True, f"Principal {listed} names the account of {caller}: the Deny covers every principal in it"
    return None, (
        f"Principal {listed} names the account of {caller}: access also depends on that account's "
        "IAM policies, which are not visible here"
    )


def _not_principal(relations: set[_Relation], listed: list[str], caller: str) -> tuple[_Truth, str]:
    if "same" in relations:
        return False, f"NotPrincipal {listed} excludes {caller}"
    if relations & {"session", "account"}:
        # Whether NotPrincipal excludes a role session through its role or account is subtle in IAM;
        # unknown keeps an Allow from allowing and a Deny blocking.
        return None, f"NotPrincipal {listed} names the role or account of {caller}: may or may not exclude it"
    return True, f"NotPrincipal {listed} does not exclude {caller}"


def _evaluate_condition(condition: Condition, request: _Request) -> tuple[_Truth, str]:
    head = f"{condition.operator} {condition.key}"
    if condition.pcr is None and condition.nitrotpm_pcr is None:
        return None, f"{head}: not evaluated: not an attestation key (unknown, never assumed)"
    if condition.base in _OTHER_OPERATORS:
        return None, f"{head}: not evaluated: {condition.base} is not a string operator (unknown, never assumed)"
    if any("${" in value for value in condition.values) and condition.base != _NULL:
        return None, f"{head}: not evaluated: a policy variable ${{...}} in {list(condition.values)} (unknown)"
    actual = request.value(condition)
    shown = "absent" if actual is None else actual
    head += f" (PCR{condition.pcr})" if condition.nitrotpm_pcr is None else f" (NitroTPM PCR{condition.nitrotpm_pcr})"
    if condition.base == _NULL:
        truth = any((actual is None) == (value.lower() == "true") for value in condition.values)
        return truth, f"{head}: Null expects {list(condition.values)} (true: absent), actual {shown}: {_show(truth)}"
    negated = condition.base in _NEGATED_STRING_OPERATORS
    positive = _NEGATED_STRING_OPERATORS.get(condition.base, condition.base)
    expected = ("none of " if negated else "one of ") + str(list(condition.values))
    if actual is None:
        truth = _absent_truth(condition, negated)
        why = "IfExists" if condition.if_exists else condition.qualifier or ("negated" if negated else "positive")
        other_kind = ""
        if request.attested and (condition.nitrotpm_pcr is not None) != request.nitrotpm:
            other_kind = (
                "; a NitroTPM key, which an enclave's document never fills"
                if condition.nitrotpm_pcr is not None
                else "; a Nitro Enclaves key, which a NitroTPM document never fills"
            )
        return truth, f"{head}: expected {expected}, actual absent ({why} on an absent key{other_kind}): {_show(truth)}"
    hit = any(_string_match(positive, value, actual) for value in condition.values)
    truth = hit != negated
    line = f"{head}: expected {expected}, actual {actual}"
    if (
        not hit
        and positive != "StringEqualsIgnoreCase"
        and any(_string_match(positive, value.lower(), actual) for value in condition.values)
    ):
        line += (
            f" (a value matches ignoring case, but KMS's value is lower-case hex and {positive} "
            "is case-sensitive: use StringEqualsIgnoreCase or lower-case hex)"
        )
    if condition.qualifier is not None:
        line += f" ({condition.qualifier}: AWS advises against set operators on single-valued keys)"
    return truth, f"{line}: {_show(truth)}"


def _absent_truth(condition: Condition, negated: bool) -> bool:
    if condition.if_exists:
        return True
    if condition.qualifier == "ForAllValues":
        return True  # every value of an empty set matches [5]
    if condition.qualifier == "ForAnyValue":
        return False  # no value of an empty set matches
    return negated


def _string_match(operator: str, expected: str, actual: str) -> bool:
    if operator == "StringEquals":
        return expected == actual
    if operator == "StringEqualsIgnoreCase":
        return expected.lower() == actual.lower()
    return _glob(expected, actual, ignore_case=False)  # StringLike: case-sensitive, wildcards


def _decide(outcomes: Sequence[tuple[Statement, _Truth]], action: str) -> tuple[bool, Statement | None, str]:
    denies = [statement for statement, applies in outcomes if statement.effect == "Deny" and applies is True]
    maybe_denies = [statement for statement, applies in outcomes if statement.effect == "Deny" and applies is None]
    allows = [statement for statement, applies in outcomes if statement.effect == "Allow" and applies is True]
    maybe_allows = [statement for statement, applies in outcomes if statement.effect == "Allow" and applies is None]
    if denies:
        return False, denies[0], f"decision: {action} denied explicitly by {denies[0].label}"
    if maybe_denies and allows:
        return (
            False,
            maybe_denies[0],
            (
                f"decision: {action} not allowed: {allows[0].label} allows, but {maybe_denies[0].label} "
                "may deny (it depends on what could not be evaluated)"
            ),
        )
    if allows:
        return True, allows[0], f"decision: {action} allowed by {allows[0].label}"
    also = f" (and {maybe_denies[0].label} may deny)" if maybe_denies else ""
    if maybe_allows:
        return (
            False,
            None,
            (
                f"decision: {action} not allowed: implicitly denied unless {maybe_allows[0].label} applies, "
                f"which depends on what could not be evaluated{also}"
            ),
        )
    return False, None, f"decision: {action} implicitly denied: no Allow statement applies{also}"
