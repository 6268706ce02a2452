"""Which genuine enclaves are acceptable: measurements, bound values, freshness.

A :class:`Policy` is immutable and states everything the caller trusts. It
has the meaning of an AWS KMS key policy for PCRs (every constrained PCR must
equal one of its allowed values; ``image_sha384`` is KMS's name for PCR0)
and adds what KMS does not check: debug mode, nonce, user data, public key,
the document's age and its module ID. :meth:`Policy.any_of` combines
policies for rolling upgrades. Evaluation reports every failed constraint.
"""

import dataclasses
import functools
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any, Literal, Protocol, TypeAlias, overload

from .document import MAX_PCR_INDEX, PCR_SIZE, AttestationDocument, PCRValue, VerifiedDocument, require_verified
from .errors import PolicyFailure, PolicyViolation
from .kms import KeyPolicy, KmsPolicyError, key_policy_pcr_constraints

__all__ = ["PCRPin", "Policy"]

#: One allowed PCR value: 96 hex digits (either case), 48 bytes, or a PCRValue.
PCRPin: TypeAlias = str | bytes | PCRValue
#: The allowed values of one PCR: one pin or a collection of pins (any of them).
PCRPins: TypeAlias = PCRPin | Iterable[PCRPin]


def _pin_bytes(index: int, pin: PCRPin) -> bytes:
    if isinstance(pin, PCRValue):
        value = pin.value
    elif isinstance(pin, bytes):
        value = pin
    elif isinstance(pin, str):
        if len(pin) != 2 * PCR_SIZE:
            raise ValueError(f"PCR{index}: expected {2 * PCR_SIZE} hex digits (SHA-384), got {len(pin)} characters")
        try:
            value = bytes.fromhex(pin)
        except ValueError:
            raise ValueError(f"PCR{index}: {pin!r} is not hexadecimal") from None
    else:
        raise TypeError(f"PCR{index}: an allowed value must be a hex string or bytes, not {type(pin).__name__}")
    if len(value) != PCR_SIZE:
        raise ValueError(f"PCR{index}: expected {PCR_SIZE} bytes (SHA-384), got {len(value)}")
    return value


def _pin_set(index: int, allowed: PCRPins) -> frozenset[bytes]:
    if isinstance(allowed, (str, bytes, PCRValue)):
        pins: list[PCRPin] = [allowed]
    elif isinstance(allowed, Iterable):
        pins = list(allowed)
    else:
        raise TypeError(f"PCR{index}: allowed values must be a hex string, bytes, or a collection of them")
    if not pins:
        raise ValueError(f"PCR{index}: no allowed values (an empty set would reject every document)")
    return frozenset(_pin_bytes(index, pin) for pin in pins)


def _pins_repr(values: frozenset[bytes]) -> str:
    ordered = sorted(value.hex() for value in values)
    return repr(ordered[0]) if len(ordered) == 1 else repr(ordered)


def _normalize_pcrs(pcrs: Mapping[int, PCRPins] | None, image_sha384: PCRPins | None) -> Mapping[int, frozenset[bytes]]:
    if pcrs is not None and not isinstance(pcrs, Mapping):
        raise TypeError(f"pcrs must be a mapping of PCR index to allowed values, not {type(pcrs).__name__}")
    normalized: dict[int, frozenset[bytes]] = {}
    for index, allowed in (pcrs or {}).items():
        if isinstance(index, str):
            # The mistake JSON and TOML make natural: their keys are always strings.
            raise TypeError(
                f"PCR indices are integers 0..{MAX_PCR_INDEX}: write {{{index.strip()}: ...}}, not {{{index!r}: ...}}"
                " (policy files are read with nitro_attest.load_policy, which converts them)"
            )
        if type(index) is not int or not 0 <= index <= MAX_PCR_INDEX:
            raise ValueError(f"PCR index must be an integer 0..{MAX_PCR_INDEX}, got {index!r}")
        normalized[index] = _pin_set(index, allowed)
    if image_sha384 is not None:
        image = _pin_set(0, image_sha384)
        # Two statements of PCR0 must both hold (as KMS ANDs two condition keys).
        normalized[0] = normalized[0] & image if 0 in normalized else image
        if not normalized[0]:
            raise ValueError("image_sha384 and pcrs[0] allow no common value: the policy would reject everything")
    return MappingProxyType(dict(sorted(normalized.items())))


def _optional_bytes(name: str, value: bytes | None) -> bytes | None:
    if value is not None and not isinstance(value, bytes):
        raise TypeError(f"{name} must be bytes or None, not {type(value).__name__}")
    return value


@functools.lru_cache(maxsize=256)
def _module_id_regex(pattern: str) -> re.Pattern[str]:
    # IAM StringLike wildcards: '*' any run, '?' one character; nothing else is special.
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL)


def _matches(actual: bytes, allowed: frozenset[bytes]) -> bool:
    # A hash lookup, not a byte comparison with each pin: timing reveals neither
    # which pin nearly matched nor how much of it. The set compares bytes only
    # with a pin of the same 64-bit hash, and str/bytes hashes are SipHash keyed
    # by a per-process secret, so near-misses cannot be aimed at a pin; unlike
    # comparing with every pin in constant time, its cost does not grow with
    # their number (20 pins a PCR were a sixth of verify_batch's Python work).
    return actual in allowed


@dataclass(frozen=True, init=False, repr=False)
class Policy:
    """What a verified document must show to be accepted.

    ``pcrs`` maps a PCR index to its allowed value or values (hex in either
    case, or bytes); each constrained PCR must equal one of them, and a PCR
    the document lacks fails. ``image_sha384`` is PCR0 under its KMS name.
    ``nonce``, ``user_data`` and ``public_key``, when given, must equal the
    document's field exactly. ``max_age`` rejects documents older than the
    verification time minus ``max_age``. ``module_id`` is a pattern with IAM
    ``StringLike`` wildcards (``*``, ``?``). Debug-mode enclaves (PCR0 all
    zeros, unmeasured) are rejected unless ``allow_debug``.

    A policy without PCR constraints raises ``ValueError``: accepting any
    enclave must be asked for by name, with :meth:`any_enclave`.
    """

    #: PCR index -> its allowed values, as 48-byte strings (``image_sha384`` is merged into PCR0);
    #: empty for :meth:`any_enclave` and :meth:`any_of` policies.
    pcrs: Mapping[int, frozenset[bytes]]
    #: The nonce the document must carry, or None.
    nonce: bytes | None
    #: The user data the document must carry, or None.
    user_data: bytes | None
    #: The public key the document must carry, or None.
    public_key: bytes | None
    #: The oldest a document may be at the verification time, or None.
    max_age: timedelta | None
    #: Whether debug-mode enclaves (PCR0 all zeros) are accepted.
    allow_debug: bool
    #: The pattern ``module_id`` must match (``*``: any run of characters, ``?``: one), or None.
    module_id: str | None
    #: For :meth:`any_of`: the policies of which one must accept; empty otherwise.
    alternatives: "tuple[Policy, ...]"

    def __init__(
        self,
        pcrs: Mapping[int, PCRPins] | None = None,
        *,
        image_sha384: PCRPins | None = None,
        nonce: bytes | None = None,
        user_data: bytes | None = None,
        public_key: bytes | None = None,
        max_age: timedelta | None = None,
        allow_debug: bool = False,
        module_id: str | None = None,
    ) -> None:
        normalized = _normalize_pcrs(pcrs, image_sha384)
        if not normalized:
            raise ValueError(
                "a Policy without PCR constraints accepts every enclave; "
                "if that is what you mean, use Policy.any_enclave(...)"
            )
        self._set(
            pcrs=normalized,
            nonce=nonce,
            user_data=user_data,
            public_key=public_key,
            max_age=max_age,
            allow_debug=allow_debug,
            module_id=module_id,
        )

    @classmethod
    def any_enclave(
        cls,
        *,
        nonce: bytes | None = None,
        user_data: bytes | None = None,
        public_key: bytes | None = None,
        max_age: timedelta | None = None,
        allow_debug: bool = False,
        module_id: str | None = None,
    ) -> "Policy":
        """A policy that accepts any genuine enclave, whatever it runs.

        Only the other constraints (nonce, user data, public key, age, debug,
        module ID) apply. Meant for inspection tools and tests, rarely for
        releasing secrets.
        """
        policy = cls.__new__(cls)
        policy._set(
            pcrs=MappingProxyType({}),
            nonce=nonce,
            user_data=user_data,
            public_key=public_key,
            max_age=max_age,
            allow_debug=allow_debug,
            module_id=module_id,
        )
        return policy

    @classmethod
    def any_of(cls, *policies: "Policy") -> "Policy":
        """A policy that accepts a document when at least one of ``policies`` does.

        Each policy is checked as a whole (for a rolling upgrade: the old
        image's PCR set OR the new one's, never PCR0 of one with PCR1 of the
        other). Failures of every alternative are reported, tagged with its
        position.
        """
        if not policies:
            raise ValueError("Policy.any_of needs at least one policy")
        flat: list[Policy] = []
        for policy in policies:
            if not isinstance(policy, Policy):
                raise TypeError(f"Policy.any_of takes Policy objects, not {type(policy).__name__}")
            flat.extend(policy.alternatives or (policy,))
        if len(flat) == 1:
            return flat[0]
        combined = cls.__new__(cls)
        combined._set(pcrs=MappingProxyType({}), alternatives=tuple(flat))
        return combined

    @classmethod
    def from_kms_key_policy(
        cls,
        key_policy: str | bytes | Mapping[str, Any] | KeyPolicy,
        *,
        action: str = "kms:Decrypt",
        sid: str | None = None,
        principal: str | None = None,
        nonce: bytes | None = None,
        user_data: bytes | None = None,
        public_key: bytes | None = None,
        max_age: timedelta | None = None,
        allow_debug: bool = False,
        module_id: str | None = None,
    ) -> "Policy":
        """The Policy that accepts the PCRs an AWS KMS key policy lets through for ``action``.

        One Allow statement must decide (name it with ``sid`` when several
        could apply, e.g. beside a root-account administration statement);
        Deny statements of the "deny unless PCRn is ..." shape narrow it. The
        result is never looser than KMS, and stricter where KMS is lax: a
        pinned PCR must be present, and what KMS does not check at all
        (debug mode, freshness, nonce) is set by the other arguments.

        Raises :class:`~nitro_attest.kms.KmsPolicyError` (a ``ValueError``)
        saying why when the key policy cannot be expressed as one Policy.
        """
        pcrs = key_policy_pcr_constraints(key_policy, action=action, sid=sid, principal=principal)
        if not pcrs:
            raise KmsPolicyError(
                f"the key policy's deciding statement for {action} pins no PCR; "
                "if accepting any enclave is meant, use Policy.any_enclave(...)"
            )
        if not allow_debug and bytes(PCR_SIZE) in pcrs.get(0, frozenset()):
            raise KmsPolicyError(
                "the key policy allows PCR0 all zeros, a debug-mode enclave; pass allow_debug=True if that is meant"
            )
        return cls(
            pcrs,
            nonce=nonce,
            user_data=user_data,
            public_key=public_key,
            max_age=max_age,
            allow_debug=allow_debug,
            module_id=module_id,
        )

    def _set(
        self,
        *,
        pcrs: Mapping[int, frozenset[bytes]],
        nonce: bytes | None = None,
        user_data: bytes | None = None,
        public_key: bytes | None = None,
        max_age: timedelta | None = None,
        allow_debug: bool = False,
        module_id: str | None = None,
        alternatives: "tuple[Policy, ...]" = (),
    ) -> None:
        if max_age is not None and (not isinstance(max_age, timedelta) or max_age < timedelta(0)):
            raise ValueError(f"max_age must be a non-negative timedelta, got {max_age!r}")
        if not isinstance(allow_debug, bool):
            raise TypeError(f"allow_debug must be a bool, not {type(allow_debug).__name__}")
        if module_id is not None and (not isinstance(module_id, str) or not module_id):
            raise TypeError("module_id must be a non-empty pattern string or None")
        fields = {
            "pcrs": pcrs,
            "nonce": _optional_bytes("nonce", nonce),
            "user_data": _optional_bytes("user_data", user_data),
            "public_key": _optional_bytes("public_key", public_key),
            "max_age": max_age,
            "allow_debug": allow_debug,
            "module_id": module_id,
            "alternatives": alternatives,
        }
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        # What a person would write to make this policy: PCR values in hex, options only when set.
        if self.alternatives:
            return f"Policy.any_of({', '.join(map(repr, self.alternatives))})"
        pins = ", ".join(
            f"{index}: {_pins_repr(values)}" for index, values in sorted(self.pcrs.items(), key=lambda item: item[0])
        )
        options = [
            f"{name}={value!r}"
            for name, value, default in (
                ("nonce", self.nonce, None),
                ("user_data", self.user_data, None),
                ("public_key", self.public_key, None),
                ("max_age", self.max_age, None),
                ("allow_debug", self.allow_debug, False),
                ("module_id", self.module_id, None),
            )
            if value != default
        ]
        if not self.pcrs:
            return f"Policy.any_enclave({', '.join(options)})"
        return f"Policy({', '.join([f'{{{pins}}}', *options])})"

    def __hash__(self) -> int:
        # The generated hash would fail on the read-only pcrs mapping.
        pins = tuple(self.pcrs.items())
        return hash(
            (
                pins,
                self.nonce,
                self.user_data,
                self.public_key,
                self.max_age,
                self.allow_debug,
                self.module_id,
                self.alternatives,
            )
        )

    @overload
    def explain(
        self, document: VerifiedDocument, at: datetime | None = None, *, allow_unverified: Literal[False] = False
    ) -> tuple[PolicyFailure, ...]: ...
    @overload
    def explain(
        self, document: AttestationDocument, at: datetime | None = None, *, allow_unverified: Literal[True]
    ) -> tuple[PolicyFailure, ...]: ...
    def explain(
        self, document: AttestationDocument, at: datetime | None = None, *, allow_unverified: bool = False
    ) -> tuple[PolicyFailure, ...]:
        """Every constraint ``document`` fails at ``at`` (default now); empty when the policy accepts it.

        For :meth:`any_of` policies: empty when one alternative accepts,
        otherwise the failures of all alternatives. ``document`` must come from
        :func:`nitro_attest.verify` (a :class:`VerifiedDocument`; its own policy
        may differ from this one): a document from :func:`nitro_attest.parse`
        is a ``TypeError`` unless ``allow_unverified=True`` says by name that
        the answer is about measurements nobody has checked.
        """
        checked = require_verified(document, "the policy's document", allow_unverified=allow_unverified)
        return self._explain(checked, at or datetime.now(timezone.utc))

    def _explain(self, document: AttestationDocument, at: datetime) -> tuple[PolicyFailure, ...]:
        if not self.alternatives:
            return self._failures(document, at)
        failures: list[PolicyFailure] = []
        for position, alternative in enumerate(self.alternatives):
            found = alternative._failures(document, at)
            if not found:
                return ()
            failures.extend(dataclasses.replace(failure, alternative=position) for failure in found)
        return tuple(failures)

    @overload
    def check(self, document: VerifiedDocument, at: datetime, *, allow_unverified: Literal[False] = False) -> None: ...
    @overload
    def check(self, document: AttestationDocument, at: datetime, *, allow_unverified: Literal[True]) -> None: ...
    def check(self, document: AttestationDocument, at: datetime, *, allow_unverified: bool = False) -> None:
        """Raises :class:`PolicyViolation` (with every failure) unless ``document`` is acceptable at ``at``.

        ``allow_unverified`` as for :meth:`explain`.
        """
        failures = self._explain(
            require_verified(document, "the policy's document", allow_unverified=allow_unverified), at
        )
        if failures:
            message = "; ".join(
                failure.message if failure.alternative is None else f"[policy {failure.alternative}] {failure.message}"
                for failure in failures
            )
            raise PolicyViolation(failures[0].code, message, failures)

    def _failures(self, document: AttestationDocument, at: datetime) -> tuple[PolicyFailure, ...]:
        failures: list[PolicyFailure] = []
        if document.is_debug and not self.allow_debug:
            failures.append(
                PolicyFailure("debug", "the enclave runs in debug mode (PCR0 is all zeros): its code is not measured")
            )
        for index, allowed in self.pcrs.items():
            actual = document.pcrs.get(index)
            if actual is not None and _matches(actual.value, allowed):
                continue
            expected = tuple(sorted(pin.hex() for pin in allowed))
            if actual is None:
                failures.append(
                    PolicyFailure("pcr", f"PCR{index} is constrained but absent from the document", index, expected)
                )
            else:
                failures.append(
                    PolicyFailure(
                        "pcr", f"PCR{index} is {actual.hex()}, not an allowed value", index, expected, actual.hex()
                    )
                )
        failures.extend(binding_failures(self, document, at))
        return tuple(failures)


class _Attested(Protocol):
    """What the checks below read of a document: an enclave's or a NitroTPM's."""

    @property
    def module_id(self) -> str: ...
    @property
    def nonce(self) -> bytes | None: ...
    @property
    def user_data(self) -> bytes | None: ...
    @property
    def public_key(self) -> bytes | None: ...
    @property
    def timestamp(self) -> datetime: ...


class _Bindings(Protocol):
    """What the checks below read of a policy: an enclave's or a NitroTPM's."""

    @property
    def module_id(self) -> str | None: ...
    @property
    def nonce(self) -> bytes | None: ...
    @property
    def user_data(self) -> bytes | None: ...
    @property
    def public_key(self) -> bytes | None: ...
    @property
    def max_age(self) -> timedelta | None: ...


def binding_failures(policy: _Bindings, document: _Attested, at: datetime) -> list[PolicyFailure]:
    """The failures of the constraints every kind of document has: module_id, nonce, user_data, public_key, age.

    Shared by :class:`Policy` and :class:`~nitro_attest.NitroTPMPolicy`, so the two kinds are judged
    by one reading of these fields.
    """
    module_id, max_age = policy.module_id, policy.max_age
    failures: list[PolicyFailure] = []
    if module_id is not None and not _module_id_regex(module_id).fullmatch(document.module_id):
        failures.append(
            PolicyFailure(
                "module_id",
                f"module_id {document.module_id!r} does not match {module_id!r}",
                expected=(module_id,),
                actual=document.module_id,
            )
        )
    for code, wanted, actual_value in (
        ("nonce", policy.nonce, document.nonce),
        ("user_data", policy.user_data, document.user_data),
        ("public_key", policy.public_key, document.public_key),
    ):
        if wanted is not None and (actual_value is None or not hmac.compare_digest(wanted, actual_value)):
            shown = "has none" if actual_value is None else f"has {len(actual_value)} bytes that differ"
            failures.append(
                PolicyFailure(
                    code,
                    f"{code} does not match the expected value (the document {shown})",
                    expected=(wanted.hex(),),
                    actual=None if actual_value is None else actual_value.hex(),
                )
            )
    # Subtracting from at could leave datetime's range for a huge max_age; the age cannot.
    if max_age is not None and at - document.timestamp > max_age:
        failures.append(
            PolicyFailure(
                "stale",
                f"document was made at {document.timestamp.isoformat()}, more than {max_age} before {at.isoformat()}",
                expected=(str(max_age),),
                actual=document.timestamp.isoformat(),
            )
        )
    return failures
