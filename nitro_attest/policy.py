"""Which genuine enclaves are acceptable: measurements, bound values, freshness.

A :class:`Policy` is immutable and states everything the caller trusts. It
has the meaning of an AWS KMS key policy for PCRs (every constrained PCR must
equal one of its allowed values) and adds what KMS does not check: debug
mode, nonce, user data, public key and the document's age.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import TypeAlias

from .document import MAX_PCR_INDEX, PCR_SIZE, AttestationDocument, PCRValue
from .errors import PolicyViolation

__all__ = ["PCRPin", "Policy"]

#: One allowed PCR value: 96 hex digits (either case), 48 bytes, or a PCRValue.
PCRPin: TypeAlias = "str | bytes | PCRValue"


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


def _normalize_pcrs(pcrs: Mapping[int, PCRPin | Iterable[PCRPin]]) -> Mapping[int, frozenset[bytes]]:
    if not isinstance(pcrs, Mapping):
        raise TypeError(f"pcrs must be a mapping of PCR index to allowed values, not {type(pcrs).__name__}")
    normalized: dict[int, frozenset[bytes]] = {}
    for index, allowed in pcrs.items():
        if type(index) is not int or not 0 <= index <= MAX_PCR_INDEX:
            raise ValueError(f"PCR index must be an integer 0..{MAX_PCR_INDEX}, got {index!r}")
        if isinstance(allowed, (str, bytes, PCRValue)):
            pins: list[PCRPin] = [allowed]
        elif isinstance(allowed, Iterable):
            pins = list(allowed)
        else:
            raise TypeError(f"PCR{index}: allowed values must be a hex string, bytes, or a collection of them")
        if not pins:
            raise ValueError(f"PCR{index}: no allowed values (an empty set would reject every document)")
        normalized[index] = frozenset(_pin_bytes(index, pin) for pin in pins)
    return MappingProxyType(dict(sorted(normalized.items())))


def _optional_bytes(name: str, value: bytes | None) -> bytes | None:
    if value is not None and not isinstance(value, bytes):
        raise TypeError(f"{name} must be bytes or None, not {type(value).__name__}")
    return value


def _matches(actual: bytes, allowed: frozenset[bytes]) -> bool:
    # Every allowed value is compared, in constant time, so timing reveals
    # neither which pin nearly matched nor how much of it.
    found = False
    for pin in allowed:
        found |= hmac.compare_digest(actual, pin)
    return found


@dataclass(frozen=True, init=False)
class Policy:
    """What a verified document must show to be accepted.

    ``pcrs`` maps a PCR index to its allowed value or values (hex in either
    case, or bytes); each constrained PCR must equal one of them, and a PCR
    the document lacks fails. ``nonce``, ``user_data`` and ``public_key``,
    when given, must equal the document's field exactly. ``max_age`` rejects
    documents older than the verification time minus ``max_age``. Debug-mode
    enclaves (PCR0 all zeros, unmeasured) are rejected unless ``allow_debug``.

    A policy without PCR constraints raises ``ValueError``: accepting any
    enclave must be asked for by name, with :meth:`any_enclave`.
    """

    pcrs: Mapping[int, frozenset[bytes]]
    nonce: bytes | None
    user_data: bytes | None
    public_key: bytes | None
    max_age: timedelta | None
    allow_debug: bool

    def __init__(
        self,
        pcrs: Mapping[int, PCRPin | Iterable[PCRPin]],
        *,
        nonce: bytes | None = None,
        user_data: bytes | None = None,
        public_key: bytes | None = None,
        max_age: timedelta | None = None,
        allow_debug: bool = False,
    ) -> None:
        normalized = _normalize_pcrs(pcrs)
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
    ) -> Policy:
        """A policy that accepts any genuine enclave, whatever it runs.

        Only the other constraints (nonce, user data, public key, age, debug)
        apply. Meant for inspection tools and tests, rarely for releasing secrets.
        """
        policy = cls.__new__(cls)
        policy._set(
            pcrs=MappingProxyType({}),
            nonce=nonce,
            user_data=user_data,
            public_key=public_key,
            max_age=max_age,
            allow_debug=allow_debug,
        )
        return policy

    def _set(
        self,
        *,
        pcrs: Mapping[int, frozenset[bytes]],
        nonce: bytes | None,
        user_data: bytes | None,
        public_key: bytes | None,
        max_age: timedelta | None,
        allow_debug: bool,
    ) -> None:
        if max_age is not None and (not isinstance(max_age, timedelta) or max_age < timedelta(0)):
            raise ValueError(f"max_age must be a non-negative timedelta, got {max_age!r}")
        if not isinstance(allow_debug, bool):
            raise TypeError(f"allow_debug must be a bool, not {type(allow_debug).__name__}")
        fields = {
            "pcrs": pcrs,
            "nonce": _optional_bytes("nonce", nonce),
            "user_data": _optional_bytes("user_data", user_data),
            "public_key": _optional_bytes("public_key", public_key),
            "max_age": max_age,
            "allow_debug": allow_debug,
        }
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def check(self, document: AttestationDocument, at: datetime) -> None:
        """Raises :class:`PolicyViolation` unless ``document`` (already verified) is acceptable at ``at``."""
        if document.is_debug and not self.allow_debug:
            raise PolicyViolation(
                "debug", "the enclave runs in debug mode (PCR0 is all zeros): its code is not measured"
            )
        for index, allowed in self.pcrs.items():
            actual = document.pcrs.get(index)
            if actual is None:
                raise PolicyViolation("pcr", f"PCR{index} is constrained by the policy but absent from the document")
            if not _matches(actual.value, allowed):
                raise PolicyViolation("pcr", f"PCR{index} is {actual.hex()}, not an allowed value")
        for code, expected, actual_value in (
            ("nonce", self.nonce, document.nonce),
            ("user_data", self.user_data, document.user_data),
            ("public_key", self.public_key, document.public_key),
        ):
            if expected is not None and (actual_value is None or not hmac.compare_digest(expected, actual_value)):
                shown = "absent" if actual_value is None else f"{len(actual_value)} bytes that differ"
                raise PolicyViolation(code, f"{code} does not match the expected value (the document has {shown})")
        if self.max_age is not None and document.timestamp < at - self.max_age:
            raise PolicyViolation(
                "stale",
                f"document was made at {document.timestamp.isoformat()}, "
                f"more than {self.max_age} before {at.isoformat()}",
            )
