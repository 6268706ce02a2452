"""Evaluate an AWS KMS key policy against a verified attestation document, as KMS would.

:func:`evaluate` answers "would KMS let this enclave use the key?" before the
policy is deployed: it parses the key policy (:func:`parse_key_policy`, which
raises :class:`KmsPolicyError` for anything KMS would refuse or this module
cannot read), evaluates every statement for one action with IAM's rules, and
returns a :class:`KmsDecision` whose ``reasons`` say, statement by statement
and condition by condition, what matched and what did not.

What is evaluated, and how (IAM semantics, sources below):

- **Effect.** An explicit ``Deny`` that applies wins; otherwise an ``Allow``
  that applies allows; otherwise the request is implicitly denied [1].
- **Action / NotAction**: case-insensitive, with the wildcards ``*`` and ``?``.
- **Principal / NotPrincipal**: evaluated only when ``principal`` (the
  caller's ARN) is given; otherwise assumed to match, and ``reasons`` say so.
  ``"*"`` matches everyone; an ARN matches itself, and a role ARN matches
  that role's ``sts`` assumed-role sessions. IAM allows ``*`` only as the whole
  value [6]. An account (``"111122223333"`` or ``arn:aws:iam::111122223333:root``)
  hands the decision to that account's IAM policies, which we cannot see.
- **Resource / NotResource** are not evaluated: a key policy governs its own
  key, so the resource is assumed to be the key.
- **Condition**: the operators ``StringEquals``, ``StringNotEquals``,
  ``StringEqualsIgnoreCase``, ``StringNotEqualsIgnoreCase``, ``StringLike``,
  ``StringNotLike`` (each also as ``...IfExists``) and ``Null`` are evaluated
  on the attestation keys. Several operators, and several keys in one
  operator, must all hold (AND); several values of one key are alternatives
  (OR), and for a negated operator none may match (NOR) [4]. A key absent from
  the request makes a positive operator false and a negated one true;
  ``...IfExists`` is true when the key is absent; ``Null: {key: "true"}`` is
  true exactly when the key is absent [2]. Condition key names are
  case-insensitive; values follow the operator [3].
- **Set operators** ``ForAnyValue:`` / ``ForAllValues:`` are evaluated
  faithfully, the attestation keys being single-valued (a set of one value,
  or the empty set when absent): with the key present they mean the plain
  operator; with it absent ``ForAnyValue`` is false and ``ForAllValues`` is
  true [5]. AWS advises against them on single-valued keys, and ``reasons``
  repeat the warning.

The attestation keys [7]: ``kms:RecipientAttestation:ImageSha384`` is PCR0,
``kms:RecipientAttestation:PCR<n>`` is PCR ``n`` (0..31). Their value in the
request is the document's PCR as 96 **lower-case** hex digits: KMS documents
PCR values as "a lower-case hexadecimal string" [8] and compares them as
strings, so with the case-sensitive ``StringEquals``/``StringLike`` an
upper-case value in the policy never matches (``reasons`` then point out that
it would match ignoring case); ``StringEqualsIgnoreCase``, which AWS's own
examples use, matches either case. KMS puts these keys in the request only
for the operations that take a ``Recipient`` attestation document
(:data:`ATTESTED_ACTIONS`) [7]; for any other action (``kms:Encrypt``...) they
are absent. A PCR index the document lacks (e.g. PCR16 on most documents) is
an absent key too.

**Conditions we cannot evaluate.** Any other key (``aws:SourceIp``,
``kms:ViaService``, ``kms:EncryptionContext:...``, ``kms:CallerAccount``,
``kms:RecipientAttestation:NitroTPMPCR<n>``...), a non-string operator
(``Bool``, ``IpAddress``, ``Numeric...``) or a value with a policy variable
(``${...}``) has an unknown result. Each such key is listed in
``KmsDecision.unevaluated`` and never assumed true or false: conditions are
combined in three-valued logic (false AND unknown is false; true AND unknown is
unknown), and the decision is conservative, so that we never say "allowed"
when KMS could deny:

- an ``Allow`` whose result is unknown does not allow;
- a ``Deny`` whose result is unknown blocks: the decision is not allowed,
  and ``reasons`` say that the deny *may* apply.

The same holds for a principal we cannot judge (an account principal on an
``Allow``, a ``NotPrincipal`` naming the caller's role or account).

**Where** :func:`nitro_attest.verify` **is stricter than KMS.** KMS checks
that the document is genuine, then evaluates the key policy on its PCRs. It
does not reject debug-mode enclaves (their PCR0-2 are zero: a policy that pins
zeros accepts them), does not bound the document's age (``max_age``), and does
not check a nonce or user data. ``verify`` does all of that by policy, so a
document that ``verify`` rejects may still be accepted by KMS. ``allowed`` is
the key policy's verdict only; KMS also needs the document's ``public_key`` to
encrypt its answer (``reasons`` note when it is absent).

Sources (AWS documentation):

- [1] IAM, "The difference between explicit and implicit denies",
  <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_AccessPolicyLanguage_Interplay.html>
- [2] IAM, "IAM JSON policy elements: Condition operators",
  <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html>
- [3] IAM, "IAM JSON policy elements: Condition",
  <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition.html>
- [4] IAM, "Conditions with multiple context keys or values",
  <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_multi-value-conditions.html>
- [5] IAM, "Single-valued vs. multivalued context keys",
  <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html>
- [6] IAM, "AWS JSON policy elements: Principal",
  <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html>
- [7] KMS, "Condition keys for Nitro Enclaves",
  <https://docs.aws.amazon.com/kms/latest/developerguide/conditions-nitro-enclave.html>
- [8] KMS, "Condition keys for NitroTPM",
  <https://docs.aws.amazon.com/kms/latest/developerguide/conditions-nitro-tpm.html>
- [9] KMS, "Creating a key policy" (format: 32 KB, characters, required elements),
  <https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-overview.html>
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

from .document import MAX_PCR_INDEX, PCR_SIZE, AttestationDocument

__all__ = [
    "ATTESTED_ACTIONS",
    "IMAGE_SHA384_KEY",
    "Condition",
    "Effect",
    "KeyPolicy",
    "KmsDecision",
    "KmsPolicyError",
    "Qualifier",
    "Statement",
    "evaluate",
    "key_policy_pcr_constraints",
    "parse_key_policy",
    "pcr_constraints",
]

#: The condition key that KMS fills with the enclave image digest: PCR0.
IMAGE_SHA384_KEY = "kms:RecipientAttestation:ImageSha384"

#: The KMS operations that take a ``Recipient`` attestation document, the only
#: ones whose requests carry the ``kms:RecipientAttestation:*`` keys (lower case).
ATTESTED_ACTIONS: frozenset[str] = frozenset(
    {"kms:decrypt", "kms:derivesharedsecret", "kms:generatedatakey", "kms:generatedatakeypair", "kms:generaterandom"}
)

Effect: TypeAlias = Literal["Allow", "Deny"]
Qualifier: TypeAlias = Literal["ForAnyValue", "ForAllValues"]
_Relation: TypeAlias = Literal["same", "session", "account", "none"]
# Three-valued truth: None is "unknown" (a condition we cannot evaluate).
_Truth: TypeAlias = "bool | None"

_MAX_POLICY_BYTES = 32 * 1024  # KMS's key policy size limit [9]
_VERSIONS = ("2012-10-17", "2008-10-17")
_POLICY_ELEMENTS = frozenset({"Version", "Id", "Statement"})
_STATEMENT_ELEMENTS = frozenset(
    {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"}
)
_PRINCIPAL_KINDS = frozenset({"AWS", "Service", "Federated", "CanonicalUser"})

_POSITIVE_STRING_OPERATORS = frozenset({"StringEquals", "StringEqualsIgnoreCase", "StringLike"})
_NEGATED_STRING_OPERATORS: Mapping[str, str] = MappingProxyType(
    {
        "StringNotEquals": "StringEquals",
        "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
        "StringNotLike": "StringLike",
    }
)
# Valid IAM operators that this module does not evaluate: a condition using one is "unknown".
_OTHER_OPERATORS = frozenset(
    {
        *(
            f"Numeric{suffix}"
            for suffix in ("Equals", "NotEquals", "LessThan", "LessThanEquals", "GreaterThan", "GreaterThanEquals")
        ),
        *(
            f"Date{suffix}"
            for suffix in ("Equals", "NotEquals", "LessThan", "LessThanEquals", "GreaterThan", "GreaterThanEquals")
        ),
        *("Bool", "BinaryEquals", "IpAddress", "NotIpAddress", "ArnEquals", "ArnNotEquals", "ArnLike", "ArnNotLike"),
    }
)
_NULL = "Null"
_KNOWN_BASES = _POSITIVE_STRING_OPERATORS | frozenset(_NEGATED_STRING_OPERATORS) | _OTHER_OPERATORS

_ATTESTATION_PREFIX = "kms:recipientattestation:"
_PCR_KEY = re.compile(r"pcr(0|[1-9][0-9]?)")
_NITRO_TPM_KEY = re.compile(r"nitrotpmpcr[0-9]+")
_HEX_PCR = re.compile(f"[0-9a-fA-F]{{{2 * PCR_SIZE}}}")
_ARN = re.compile(r"arn:(?P<partition>[^:]+):(?P<service>[^:]+):(?P<region>[^:]*):(?P<account>[^:]*):(?P<resource>.+)")


class KmsPolicyError(ValueError):
    """A key policy that KMS would refuse, or that this module cannot read.

    The message names the statement (``Statement[i]`` and its ``Sid``) and the
    element or condition key that is wrong.
    """


@dataclass(frozen=True)
class Condition:
    """One condition key under one operator: ``"<operator>": {"<key>": <values>}``.

    ``operator`` is as written (``ForAnyValue:StringEqualsIfExists``);
    ``base`` is the operator without qualifier and ``IfExists``
    (``StringEquals``); ``values`` are the policy's values as strings (JSON
    ``true`` is ``"true"``). ``pcr`` is the PCR the key names, or None for
    a key that is not a Nitro Enclaves attestation key.
    """

    operator: str
    base: str
    qualifier: Qualifier | None
    if_exists: bool
    key: str
    values: tuple[str, ...]
    pcr: int | None


@dataclass(frozen=True)
class Statement:
    """One statement of a key policy, validated.

    ``index`` is its position in ``Statement`` (0-based), ``label`` how
    messages name it. ``actions`` are the ``Action`` patterns, or the
    ``NotAction`` patterns when ``not_action``; ``principals`` are
    ``(kind, value)`` pairs (``("*", "*")`` for ``"Principal": "*"``), of
    ``NotPrincipal`` when ``not_principal``. Resource is kept only as written:
    it is not evaluated.
    """

    index: int
    sid: str | None
    effect: Effect
    actions: tuple[str, ...]
    not_action: bool
    principals: tuple[tuple[str, str], ...]
    not_principal: bool
    resources: tuple[str, ...]
    conditions: tuple[Condition, ...]

    @property
    def label(self) -> str:
        return f"Statement[{self.index}]" + (f" (Sid {self.sid!r})" if self.sid is not None else "")

    def matches_action(self, action: str) -> bool:
        """True when this statement covers ``action`` (Action/NotAction, case-insensitive, wildcards)."""
        listed = any(_glob(pattern, action, ignore_case=True) for pattern in self.actions)
        return listed != self.not_action


@dataclass(frozen=True)
class KeyPolicy:
    """A parsed, validated key policy: ``Version``, ``Id`` and its statements, in order."""

    version: str | None
    id: str | None
    statements: tuple[Statement, ...]


@dataclass(frozen=True)
class KmsDecision:
    """What KMS would decide for one request, and why.

    ``deciding_statement`` is the ``Deny`` that won (or, when we say not allowed
    only because a ``Deny`` *may* apply, that ``Deny``), or the ``Allow`` that
    allowed; None when the request is implicitly denied. ``reasons`` has a line
    per statement and per condition (operator, key, expected, actual), and a
    last line with the decision. ``unevaluated`` lists, once each, the
    condition keys of applicable statements that could not be evaluated.
    """

    allowed: bool
    deciding_statement: Statement | None
    reasons: tuple[str, ...]
    unevaluated: tuple[str, ...]


# --------------------------------------------------------------------------- parsing


def parse_key_policy(key_policy: str | bytes | Mapping[str, Any]) -> KeyPolicy:
    """Validates a key policy (JSON text, UTF-8 bytes, or the decoded mapping).

    Raises :class:`KmsPolicyError` for text that is not JSON, duplicate JSON
    keys (JSON parsers disagree on them), a policy over 32 KB or with
    characters KMS refuses [9], an unknown element, a missing ``Statement``,
    ``Effect`` other than ``Allow``/``Deny``, a statement without
    Action/NotAction, Principal/NotPrincipal or Resource/NotResource, an
    unknown condition operator or attestation key, and malformed values.
    """
    if isinstance(key_policy, (str, bytes)):
        document = _load_json(key_policy)
    elif isinstance(key_policy, Mapping):
        document = key_policy
    else:
        raise TypeError(f"key_policy must be JSON text, bytes or a mapping, not {type(key_policy).__name__}")
    if not isinstance(document, Mapping):
        raise KmsPolicyError(f"a key policy is a JSON object, not {_json_type(document)}")
    unknown = sorted(str(name) for name in document if name not in _POLICY_ELEMENTS)
    if unknown:
        raise KmsPolicyError(
            f"unknown top-level element(s) {', '.join(unknown)}: a key policy has Version, Id, Statement"
        )
    version = document.get("Version")
    if version is not None and version not in _VERSIONS:
        raise KmsPolicyError(f"Version must be one of {', '.join(_VERSIONS)}, got {version!r}")
    policy_id = document.get("Id")
    if policy_id is not None and not isinstance(policy_id, str):
        raise KmsPolicyError(f"Id must be a string, got {_json_type(policy_id)}")
    if "Statement" not in document:
        raise KmsPolicyError("the policy has no Statement")
    raw = document["Statement"]
    # IAM accepts a single statement object as well as a list of them.
    raw_statements = [raw] if isinstance(raw, Mapping) else raw
    if not isinstance(raw_statements, list) or not raw_statements:
        raise KmsPolicyError("Statement must be a statement object or a non-empty list of them")
    statements = tuple(_parse_statement(index, item) for index, item in enumerate(raw_statements))
    return KeyPolicy(version=version, id=policy_id, statements=statements)


def _load_json(text: str | bytes) -> Any:
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise KmsPolicyError(f"the policy is not UTF-8 text: {exc}") from None
    # Every character is at least one byte: a long text is refused before it is scanned.
    if len(text) > _MAX_POLICY_BYTES:
        raise KmsPolicyError(f"the policy is over {_MAX_POLICY_BYTES} bytes, the KMS key policy limit")
    for position, char in enumerate(text):
        if not _allowed_character(char):
            raise KmsPolicyError(f"character {char!r} at offset {position} is not allowed in a KMS key policy")
    if len(text.encode("utf-8")) > _MAX_POLICY_BYTES:
        raise KmsPolicyError(f"the policy is over {_MAX_POLICY_BYTES} bytes (UTF-8), the KMS key policy limit")
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise KmsPolicyError(f"the policy is not valid JSON: {exc}") from None
    except RecursionError:
        raise KmsPolicyError("the policy nests too deeply to be a key policy") from None


def _allowed_character(char: str) -> bool:
    # KMS: printable ASCII, printable Basic Latin and Latin-1 Supplement, tab, LF, CR [9].
    code = ord(char)
    return char in "\t\n\r" or 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xFF


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            # Python keeps the last duplicate, other parsers the first: the policy would mean two things.
            raise KmsPolicyError(f"duplicate JSON key {key!r}")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise KmsPolicyError(f"{name} is not JSON")


def _json_type(value: object) -> str:
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return type(value).__name__


def _parse_statement(index: int, raw: object) -> Statement:
    where = f"Statement[{index}]"
    if not isinstance(raw, Mapping):
        raise KmsPolicyError(f"{where} must be an object, got {_json_type(raw)}")
    sid = raw.get("Sid")
    if sid is not None:
        if not isinstance(sid, str):
            raise KmsPolicyError(f"{where}: Sid must be a string, got {_json_type(sid)}")
        where += f" (Sid {sid!r})"
    unknown = sorted(str(name) for name in raw if name not in _STATEMENT_ELEMENTS)
    if unknown:
        raise KmsPolicyError(f"{where}: unknown element(s) {', '.join(unknown)}")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise KmsPolicyError(f"{where}: Effect must be 'Allow' or 'Deny', got {effect!r}")
    actions, not_action = _one_of(raw, where, "Action", "NotAction")
    for pattern in actions:
        if pattern != "*" and (":" not in pattern or pattern.startswith(":")):
            raise KmsPolicyError(f"{where}: action {pattern!r} is not '*' or 'service:action' (e.g. 'kms:Decrypt')")
    resources, _ = _one_of(raw, where, "Resource", "NotResource")
    principals, not_principal = _parse_principal(raw, where)
    return Statement(
        index=index,
        sid=sid,
        effect=effect,
        actions=actions,
        not_action=not_action,
        principals=principals,
        not_principal=not_principal,
        resources=resources,
        conditions=_parse_conditions(raw.get("Condition", {}), where),
    )


def _one_of(raw: Mapping[str, Any], where: str, name: str, negated: str) -> tuple[tuple[str, ...], bool]:
    if (name in raw) == (negated in raw):
        raise KmsPolicyError(f"{where}: a key policy statement needs exactly one of {name} and {negated}")
    element = name if name in raw else negated
    return _strings(raw[element], f"{where}: {element}"), element == negated


def _strings(value: object, where: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise KmsPolicyError(f"{where} is an empty list")
    for item in items:
        if not isinstance(item, str) or not item:
            raise KmsPolicyError(f"{where} must be a non-empty string or a list of them, got {item!r}")
    return tuple(items)


def _parse_principal(raw: Mapping[str, Any], where: str) -> tuple[tuple[tuple[str, str], ...], bool]:
    if ("Principal" in raw) == ("NotPrincipal" in raw):
        raise KmsPolicyError(
            f"{where}: a key policy statement needs exactly one of Principal and NotPrincipal "
            "(an IAM identity policy, which has none, is not a key policy)"
        )
    element = "Principal" if "Principal" in raw else "NotPrincipal"
    value = raw[element]
    if value == "*":
        return (("*", "*"),), element == "NotPrincipal"
    if not isinstance(value, Mapping) or not value:
        raise KmsPolicyError(f"{where}: {element} must be '*' or an object such as {{'AWS': 'arn:...'}}, got {value!r}")
    entries: list[tuple[str, str]] = []
    for kind, names in value.items():
        if kind not in _PRINCIPAL_KINDS:
            raise KmsPolicyError(
                f"{where}: {element} kind {kind!r} is not one of {', '.join(sorted(_PRINCIPAL_KINDS))}"
            )
        for name in _strings(names, f"{where}: {element} {kind}"):
            if "*" in name and name != "*":
                # IAM: a wildcard cannot match part of a principal name or ARN [6].
                raise KmsPolicyError(f"{where}: {element} {kind} {name!r}: '*' is allowed only as the whole value")
            entries.append((kind, name))
    return tuple(entries), element == "NotPrincipal"


def _parse_conditions(raw: object, where: str) -> tuple[Condition, ...]:
    if not isinstance(raw, Mapping):
        raise KmsPolicyError(f"{where}: Condition must be an object, got {_json_type(raw)}")
    conditions: list[Condition] = []
    for operator, block in raw.items():
        if not isinstance(operator, str):
            raise KmsPolicyError(f"{where}: condition operator {operator!r} is not a string")
        base, qualifier, if_exists = _parse_operator(operator, where)
        if not isinstance(block, Mapping) or not block:
            raise KmsPolicyError(f"{where}: Condition {operator} must map condition keys to values, got {block!r}")
        for key, value in block.items():
            context = f"{where}: Condition {operator} {key!r}"
            if not isinstance(key, str) or not key:
                raise KmsPolicyError(f"{context}: a condition key is a non-empty string")
            values = _condition_values(value, context)
            if base == _NULL and any(item.lower() not in ("true", "false") for item in values):
                raise KmsPolicyError(f"{context}: Null takes 'true' or 'false', got {list(values)}")
            conditions.append(
                Condition(
                    operator=operator,
                    base=base,
                    qualifier=qualifier,
                    if_exists=if_exists,
                    key=key,
                    values=values,
                    pcr=_key_pcr(key, context),
                )
            )
    return tuple(conditions)


def _parse_operator(operator: str, where: str) -> tuple[str, Qualifier | None, bool]:
    qualifier: Qualifier | None = None
    base = operator
    if base.startswith("ForAnyValue:"):
        qualifier, base = "ForAnyValue", base[len("ForAnyValue:") :]
    elif base.startswith("ForAllValues:"):
        qualifier, base = "ForAllValues", base[len("ForAllValues:") :]
    if_exists = base.endswith("IfExists") and base != "IfExists"
    if if_exists:
        base = base[: -len("IfExists")]
    if base == _NULL and qualifier is None and not if_exists:
        return base, None, False
    if base in _KNOWN_BASES:
        return base, qualifier, if_exists
    hint = next(
        (f" (did you mean {known!r}?)" for known in (*_KNOWN_BASES, _NULL) if known.lower() == base.lower()), ""
    )
    raise KmsPolicyError(f"{where}: unknown condition operator {operator!r}{hint}")


def _condition_values(value: object, where: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise KmsPolicyError(f"{where}: an empty list of values")
    values = []
    for item in items:
        # IAM reads JSON scalars as their text: true is "true", 12 is "12".
        if isinstance(item, bool):
            values.append("true" if item else "false")
        elif isinstance(item, (str, int, float)):
            values.append(str(item))
        else:
            raise KmsPolicyError(
                f"{where}: a condition value must be a string, number or boolean, got {_json_type(item)}"
            )
    return tuple(values)


def _key_pcr(key: str, where: str) -> int | None:
    """The PCR a Nitro Enclaves attestation key names; None for any other key (not evaluated here)."""
    lowered = key.lower()
    if not lowered.startswith(_ATTESTATION_PREFIX):
        return None
    name = lowered[len(_ATTESTATION_PREFIX) :]
    if name == "imagesha384":
        return 0
    if _NITRO_TPM_KEY.fullmatch(name):
        return None  # NitroTPM's keys: a different document, not evaluated here
    match = _PCR_KEY.fullmatch(name)
    if match is None or int(match.group(1)) > MAX_PCR_INDEX:
        raise KmsPolicyError(
            f"{where}: unknown attestation key; Nitro Enclaves has {IMAGE_SHA384_KEY} "
            f"and kms:RecipientAttestation:PCR0 .. PCR{MAX_PCR_INDEX}"
        )
    return int(match.group(1))


def _glob(pattern: str, text: str, *, ignore_case: bool) -> bool:
    """IAM wildcards: ``*`` is any run of characters, ``?`` exactly one, everything else literal.

    Greedy matching that backtracks only to the last ``*``: O(len(pattern) * len(text)),
    where a regular expression could take exponential time on a pattern like ``*a*a*a*b``.
    """
    if ignore_case:
        pattern, text = pattern.lower(), text.lower()
    p = t = 0
    star, resume = -1, 0
    while t < len(text):
        if p < len(pattern) and pattern[p] in ("?", text[t]):
            p, t = p + 1, t + 1
        elif p < len(pattern) and pattern[p] == "*":
            star, resume = p, t
            p += 1
        elif star >= 0:
            # Let the last * swallow one more character and retry from there.
            resume += 1
            p, t = star + 1, resume
        else:
            return False
    return pattern[p:].strip("*") == ""


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class _Request:
    action: str
    principal: str | None
    attested: bool  # the action carries the attestation document, so its keys are in the request
    pcrs: Mapping[int, str]  # lower-case hex, as KMS puts them in the request

    def value(self, pcr: int) -> str | None:
        return self.pcrs.get(pcr) if self.attested else None


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


def evaluate(
    key_policy: str | bytes | Mapping[str, Any] | KeyPolicy,
    document: AttestationDocument,
    *,
    action: str = "kms:Decrypt",
    principal: str | None = None,
) -> KmsDecision:
    """Would KMS allow ``action`` for an enclave presenting ``document``, under ``key_policy``?

    ``document`` should come from :func:`nitro_attest.verify`: this function
    judges the policy, not the document. ``principal`` is the caller's ARN
    (e.g. the parent instance's role); when None, Principal is not evaluated.
    Raises :class:`KmsPolicyError` for a malformed policy. See the module
    documentation for the rules, and for how unknown conditions are treated:
    never as allowing.
    """
    if not isinstance(document, AttestationDocument):
        raise TypeError(f"document must be an AttestationDocument, not {type(document).__name__}")
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
    )
    reasons = _notes(document, request)
    unevaluated: dict[str, str] = {}
    outcomes: list[tuple[Statement, _Truth]] = []
    for statement in policy.statements:
        applies, lines, unknown_keys = _evaluate_statement(statement, request)
        reasons.extend(lines)
        for key in unknown_keys:
            unevaluated.setdefault(key.lower(), key)
        outcomes.append((statement, applies))
    allowed, deciding, summary = _decide(outcomes, action)
    reasons.append(summary)
    return KmsDecision(allowed, deciding, tuple(reasons), tuple(unevaluated.values()))


def _notes(document: AttestationDocument, request: _Request) -> list[str]:
    notes = ["note: Resource is not evaluated: a key policy governs its own key"]
    if request.principal is None:
        notes.append("note: no principal given: Principal and NotPrincipal are not evaluated (assumed to match)")
    if not request.attested:
        notes.append(
            f"note: {request.action} does not take an attestation document, so KMS puts no "
            "kms:RecipientAttestation keys in its request: they are absent"
        )
    elif document.public_key is None:
        notes.append("note: the document has no public_key: KMS encrypts its response to it, so the call would fail")
    if document.is_debug:
        notes.append(
            "note: debug-mode enclave (PCR0 is zero): KMS evaluates it like any other, "
            "nitro_attest.verify rejects it unless allow_debug"
        )
    return notes


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
    if condition.pcr is None:
        return None, f"{head}: not evaluated: not a Nitro Enclaves attestation key (unknown, never assumed)"
    if condition.base in _OTHER_OPERATORS:
        return None, f"{head}: not evaluated: {condition.base} is not a string operator (unknown, never assumed)"
    if any("${" in value for value in condition.values) and condition.base != _NULL:
        return None, f"{head}: not evaluated: a policy variable ${{...}} in {list(condition.values)} (unknown)"
    actual = request.value(condition.pcr)
    shown = "absent" if actual is None else actual
    head += f" (PCR{condition.pcr})"
    if condition.base == _NULL:
        truth = any((actual is None) == (value.lower() == "true") for value in condition.values)
        return truth, f"{head}: Null expects {list(condition.values)} (true: absent), actual {shown}: {_show(truth)}"
    negated = condition.base in _NEGATED_STRING_OPERATORS
    positive = _NEGATED_STRING_OPERATORS.get(condition.base, condition.base)
    expected = ("none of " if negated else "one of ") + str(list(condition.values))
    if actual is None:
        truth = _absent_truth(condition, negated)
        why = "IfExists" if condition.if_exists else condition.qualifier or ("negated" if negated else "positive")
        return truth, f"{head}: expected {expected}, actual absent ({why} on an absent key): {_show(truth)}"
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


# --------------------------------------------------------------------------- PCR constraints (for Policy)


def pcr_constraints(statement: Statement) -> Mapping[int, frozenset[bytes]]:
    """The PCR values a statement lets through, as a :class:`~nitro_attest.Policy` states them.

    For an ``Allow``: its attestation conditions, each PCR mapped to the set of
    48-byte values that satisfy every condition on it (``ImageSha384`` and
    ``PCR0`` intersect). For a ``Deny``: only the "deny unless" shape, a single
    ``StringNotEquals[IgnoreCase]`` on one attestation key (the PCR must be one
    of its values).

    The result may be stricter than KMS, never looser: a Policy requires every
    constrained PCR to be present, where ``...IfExists`` and the set operators
    may let an absent one through. Values KMS can never match are dropped:
    under the case-sensitive ``StringEquals`` anything but 96 lower-case hex
    digits (KMS's value), under ``...IgnoreCase`` anything but 96 hex digits.
    Principal is ignored (a Policy has none). An empty mapping means the
    statement pins no PCR.

    Raises :class:`KmsPolicyError` naming the statement, operator and key when
    it cannot be expressed: a condition on any other key, a wildcard, a
    negated operator in an ``Allow``, ``Null``, a policy variable, a ``Deny`` of
    another shape, or a PCR whose values can never match.
    """
    if statement.effect == "Deny":
        pcr, required = _deny_requirement(statement)
        if required is None:
            raise KmsPolicyError(
                f"{statement.label} only requires PCR{pcr} to be present, which a Policy cannot state alone "
                f"(key_policy_pcr_constraints accepts it when the Allow pins PCR{pcr})"
            )
        return MappingProxyType({pcr: required})
    constraints: dict[int, frozenset[bytes]] = {}
    for condition in statement.conditions:
        if condition.base not in _POSITIVE_STRING_OPERATORS:
            raise _inexpressible(
                statement, condition, "only StringEquals[IgnoreCase] (or StringLike without wildcards)"
            )
        pcr, values = _pinned_values(statement, condition)
        constraints[pcr] = constraints[pcr] & values if pcr in constraints else values
        if not constraints[pcr]:
            raise KmsPolicyError(
                f"{statement.label}: no value of PCR{pcr} satisfies all its conditions: the statement never allows"
            )
    return MappingProxyType(dict(sorted(constraints.items())))


def _deny_requirement(statement: Statement) -> tuple[int, frozenset[bytes] | None]:
    """What a "deny unless" statement requires: a PCR and its allowed values, or None for "present" (Null)."""
    shape = "a Deny is expressible only as 'deny unless': one StringNotEquals[IgnoreCase] or Null 'true' condition"
    if len(statement.conditions) != 1:
        raise KmsPolicyError(f"{statement.label}: {shape}; it has {len(statement.conditions)} condition(s)")
    condition = statement.conditions[0]
    if condition.base == _NULL and condition.pcr is not None and condition.values == ("true",):
        return condition.pcr, None
    if condition.base not in ("StringNotEquals", "StringNotEqualsIgnoreCase"):
        raise _inexpressible(statement, condition, shape)
    return _pinned_values(statement, condition)


def _pinned_values(statement: Statement, condition: Condition) -> tuple[int, frozenset[bytes]]:
    """The PCR a (possibly negated) equality condition pins, and the 48-byte values KMS could match."""
    if condition.pcr is None:
        raise _inexpressible(statement, condition, "it is not a Nitro Enclaves attestation key")
    if any("${" in value for value in condition.values):
        raise _inexpressible(statement, condition, "a policy variable cannot be pinned")
    case_sensitive = not condition.base.endswith("IgnoreCase")
    if condition.base.endswith("Like") and any(char in value for value in condition.values for char in "*?"):
        raise _inexpressible(statement, condition, "a wildcard is not a finite set of values")
    values = frozenset(
        bytes.fromhex(value)
        for value in condition.values
        if _HEX_PCR.fullmatch(value) and (not case_sensitive or value == value.lower())
    )
    if not values:
        raise KmsPolicyError(
            f"{statement.label}: {condition.operator} {condition.key}: none of {list(condition.values)} can equal "
            f"KMS's value ({2 * PCR_SIZE} {'lower-case ' if case_sensitive else ''}hex digits)"
        )
    return condition.pcr, values


def _inexpressible(statement: Statement, condition: Condition, why: str) -> KmsPolicyError:
    return KmsPolicyError(
        f"{statement.label}: {condition.operator} {condition.key} cannot be expressed as a nitro_attest Policy: {why}"
    )


def key_policy_pcr_constraints(
    key_policy: str | bytes | Mapping[str, Any] | KeyPolicy,
    *,
    action: str = "kms:Decrypt",
    sid: str | None = None,
    principal: str | None = None,
) -> Mapping[int, frozenset[bytes]]:
    """The PCR values a whole key policy lets through for ``action``, for a :class:`~nitro_attest.Policy`.

    Picks the ``Allow`` statement that covers ``action`` (the one whose Sid is
    ``sid``, or else the only one that could apply to ``principal``; with no
    principal, every Allow's Principal is assumed to match) and intersects its
    :func:`pcr_constraints` with those of every ``Deny`` that covers ``action``
    (and could apply to ``principal``). Other ``Allow`` statements are ignored
    when ``sid`` is given: ignoring an Allow makes the Policy stricter, never
    looser.

    Raises :class:`KmsPolicyError` when the policy is malformed, when no Allow
    or more than one could apply (KMS allows if any does: not one Policy), or
    when a statement involved cannot be expressed (see :func:`pcr_constraints`).
    """
    policy = key_policy if isinstance(key_policy, KeyPolicy) else parse_key_policy(key_policy)
    relevant = [
        statement
        for statement in policy.statements
        if statement.matches_action(action)
        and (principal is None or _evaluate_principal(statement, principal)[0] is not False)
    ]
    allows = [statement for statement in relevant if statement.effect == "Allow"]
    if sid is not None:
        allows = [statement for statement in allows if statement.sid == sid]
    if len(allows) != 1:
        named = ", ".join(statement.label for statement in allows) or "none"
        which = f"with Sid {sid!r} " if sid is not None else ""
        raise KmsPolicyError(
            f"exactly one Allow statement {which}must cover {action}"
            f"{f' for {principal}' if principal else ''}; found {named}"
            + ("" if sid is not None else " (pass sid= to choose one)")
        )
    constraints = dict(pcr_constraints(allows[0]))
    present: list[tuple[Statement, int]] = []
    for deny in (statement for statement in relevant if statement.effect == "Deny"):
        pcr, required = _deny_requirement(deny)
        if required is None:
            present.append((deny, pcr))
            continue
        constraints[pcr] = constraints[pcr] & required if pcr in constraints else required
        if not constraints[pcr]:
            raise KmsPolicyError(f"{deny.label} denies every PCR{pcr} value that {allows[0].label} allows")
    for deny, pcr in present:
        # A Policy requires every pinned PCR to be present; an unpinned one it cannot require.
        if pcr not in constraints:
            raise KmsPolicyError(f"{deny.label} requires PCR{pcr} to be present, which no statement pins")
    return MappingProxyType(dict(sorted(constraints.items())))
