"""Key policies: the JSON KMS stores, validated into :class:`KeyPolicy` (parsing and the policy model)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

from ..document import MAX_PCR_INDEX, PCR_SIZE
from ..errors import ConfigurationError

#: The condition key that KMS fills with the enclave image digest: PCR0.
IMAGE_SHA384_KEY = "kms:RecipientAttestation:ImageSha384"
#: The prefix of the condition keys KMS fills with a NitroTPM document's PCRs: ``...NitroTPMPCR<n>``.
NITROTPM_PCR_KEY_PREFIX = "kms:RecipientAttestation:NitroTPMPCR"

#: The KMS operations that take a ``Recipient`` attestation document, the only
#: ones whose requests carry the ``kms:RecipientAttestation:*`` keys (lower case).
ATTESTED_ACTIONS: frozenset[str] = frozenset(
    {"kms:decrypt", "kms:derivesharedsecret", "kms:generatedatakey", "kms:generatedatakeypair", "kms:generaterandom"}
)

Effect: TypeAlias = Literal["Allow", "Deny"]
Qualifier: TypeAlias = Literal["ForAnyValue", "ForAllValues"]

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
_NITRO_TPM_KEY = re.compile(r"nitrotpmpcr(0|[1-9][0-9]?)")
_HEX_PCR = re.compile(f"[0-9a-fA-F]{{{2 * PCR_SIZE}}}")
_ARN = re.compile(r"arn:(?P<partition>[^:]+):(?P<service>[^:]+):(?P<region>[^:]*):(?P<account>[^:]*):(?P<resource>.+)")


class KmsPolicyError(ConfigurationError):
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
    ``true`` is ``"true"``). ``pcr`` is the enclave PCR a Nitro Enclaves key
    names (``ImageSha384`` is 0), ``nitrotpm_pcr`` the TPM PCR a
    ``NitroTPMPCR<n>`` key names; both are None for any other key.
    """

    operator: str
    base: str
    qualifier: Qualifier | None
    if_exists: bool
    key: str
    values: tuple[str, ...]
    pcr: int | None
    nitrotpm_pcr: int | None = None


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

    ``allowed`` is the key policy's verdict. ``obstacles`` says why KMS would
    fail the request whatever the key policy says (it encrypts its response
    to the document's ``public_key``, so a document without a usable RSA key
    gets no answer); :attr:`would_succeed` is both together, the answer to
    "will the enclave or instance get its secret?".
    """

    allowed: bool
    deciding_statement: Statement | None
    reasons: tuple[str, ...]
    unevaluated: tuple[str, ...]
    obstacles: tuple[str, ...] = ()

    @property
    def would_succeed(self) -> bool:
        """True when the key policy allows the request and nothing in ``obstacles`` makes it fail."""
        return self.allowed and not self.obstacles


# --------------------------------------------------------------------------- parsing


def parse_key_policy(key_policy: str | bytes | Mapping[str, Any] | os.PathLike[str]) -> KeyPolicy:
    """Validates a key policy (JSON text, UTF-8 bytes, the decoded mapping, or a file holding the JSON).

    A ``str`` is always the policy's text, never a file name: pass a
    :class:`pathlib.Path` to read a file (``OSError`` when it cannot be read).
    Raises :class:`KmsPolicyError` for text that is not JSON, duplicate JSON
    keys (JSON parsers disagree on them), a policy over 32 KB or with
    characters KMS refuses [9], an unknown element, a missing ``Statement``,
    ``Effect`` other than ``Allow``/``Deny``, a statement without
    Action/NotAction, Principal/NotPrincipal or Resource/NotResource, an
    unknown condition operator or attestation key, and malformed values.
    """
    if isinstance(key_policy, os.PathLike):
        with open(key_policy, "rb") as stream:
            # One byte past the limit is enough to refuse it: a huge file is never read whole.
            document = _load_json(stream.read(_MAX_POLICY_BYTES + 1))
    elif isinstance(key_policy, (str, bytes)):
        document = _load_json(key_policy)
    elif isinstance(key_policy, Mapping):
        document = key_policy
    else:
        raise TypeError(f"key_policy must be JSON text, bytes, a mapping or a path, not {type(key_policy).__name__}")
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
    except KmsPolicyError:
        raise  # a duplicate key or NaN, from the hooks; a ValueError too, so before the next clause
    except ValueError as exc:  # an integer over Python's digit limit (sys.set_int_max_str_digits)
        raise KmsPolicyError(f"the policy holds a number too long to read: {exc}") from None
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
                    nitrotpm_pcr=_nitrotpm_pcr(key),
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
    """The enclave PCR a Nitro Enclaves attestation key names; None for any other key.

    Raises for a ``kms:RecipientAttestation:`` key that is neither an enclave's nor a NitroTPM's.
    """
    lowered = key.lower()
    if not lowered.startswith(_ATTESTATION_PREFIX):
        return None
    name = lowered[len(_ATTESTATION_PREFIX) :]
    if name == "imagesha384":
        return 0
    if _nitrotpm_pcr(key) is not None:
        return None
    match = _PCR_KEY.fullmatch(name)
    if match is None or int(match.group(1)) > MAX_PCR_INDEX:
        raise KmsPolicyError(
            f"{where}: unknown attestation key; Nitro Enclaves has {IMAGE_SHA384_KEY} "
            f"and kms:RecipientAttestation:PCR0 .. PCR{MAX_PCR_INDEX}, "
            f"NitroTPM {NITROTPM_PCR_KEY_PREFIX}0 .. NitroTPMPCR{MAX_PCR_INDEX}"
        )
    return int(match.group(1))


def _nitrotpm_pcr(key: str) -> int | None:
    """The TPM PCR a ``kms:RecipientAttestation:NitroTPMPCR<n>`` key names (0..31); None for any other key."""
    lowered = key.lower()
    if not lowered.startswith(_ATTESTATION_PREFIX):
        return None
    match = _NITRO_TPM_KEY.fullmatch(lowered[len(_ATTESTATION_PREFIX) :])
    return None if match is None or int(match.group(1)) > MAX_PCR_INDEX else int(match.group(1))


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
