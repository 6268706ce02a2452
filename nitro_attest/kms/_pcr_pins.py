"""PCR pins: the PCR values a key policy lets through, as a :class:`~nitro_attest.Policy` states them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from .._tpm_document import TPMPCRValue
from ..document import PCR_SIZE, PCRValue
from ._evaluation import _evaluate_principal
from ._key_policy import (
    _HEX_PCR,
    _NULL,
    _POSITIVE_STRING_OPERATORS,
    IMAGE_SHA384_KEY,
    NITROTPM_PCR_KEY_PREFIX,
    Condition,
    KeyPolicy,
    KmsPolicyError,
    Statement,
    parse_key_policy,
)


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
    if condition.nitrotpm_pcr is not None:
        raise _inexpressible(
            statement, condition, "a NitroTPM key: a Policy pins enclave PCRs (NitroTPMPolicy pins TPM PCRs)"
        )
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


def attestation_condition(pcrs: Iterable[PCRValue] | Iterable[TPMPCRValue]) -> dict[str, dict[str, str]]:
    """A key policy ``Condition`` block that pins ``pcrs``, as AWS's examples write it.

    For an enclave's PCRs (:class:`~nitro_attest.PCRValue`), PCR0 becomes
    ``kms:RecipientAttestation:ImageSha384`` and every other PCR
    ``kms:RecipientAttestation:PCR<n>``; a NitroTPM document's
    (:class:`~nitro_attest.nitrotpm.TPMPCRValue`) become
    ``kms:RecipientAttestation:NitroTPMPCR<n>``. One condition pins one kind:
    KMS fills only the keys of the document's kind, so a mix would never
    allow. The operator is ``StringEqualsIgnoreCase`` because KMS compares
    strings and hex is written in either case. The values are taken as given:
    pin PCRs from a verified document or from the image's own measurements
    (:mod:`nitro_attest.eif`).
    """
    keys: dict[str, str] = {}
    kinds: set[bool] = set()  # True: NitroTPM
    for pcr in pcrs:
        if isinstance(pcr, TPMPCRValue):
            key = f"{NITROTPM_PCR_KEY_PREFIX}{pcr.index}"
        elif isinstance(pcr, PCRValue):
            key = IMAGE_SHA384_KEY if pcr.index == 0 else f"kms:RecipientAttestation:PCR{pcr.index}"
        else:
            raise TypeError(f"pcrs must be PCRValue or TPMPCRValue objects, not {type(pcr).__name__}")
        kinds.add(isinstance(pcr, TPMPCRValue))
        if len(kinds) > 1:
            raise ValueError("pcrs mixes an enclave's PCRs and NitroTPM PCRs: no document has both")
        if key in keys:
            raise ValueError(f"PCR{pcr.index} is given twice")
        keys[key] = pcr.hex()
    if not keys:
        raise ValueError("pcrs is empty: a condition that pins nothing would admit every enclave")
    return {"StringEqualsIgnoreCase": keys}
