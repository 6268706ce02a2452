"""Verify NitroTPM attestation documents: an EC2 instance's TPM, attested by the Nitro hypervisor.

A NitroTPM document is what ``nitro-tpm-attest`` returns on an instance with
NitroTPM: the same COSE_Sign1 envelope, AWS Nitro PKI and fields as an
enclave's document, but its measurements are the instance's TPM PCRs
(``nitrotpm_pcrs``, 24 SHA-384 registers: firmware, boot manager, Secure Boot
policy, kernel command line...) instead of an enclave image's.

:func:`verify_nitrotpm` is :func:`nitro_attest.verify` for these documents:
the same decoding, certificate chain, signature and time checks (the same
code), then a :class:`NitroTPMPolicy`. The kinds never mix:
:func:`nitro_attest.verify` refuses a NitroTPM document and
:func:`verify_nitrotpm` an enclave's (both ``MalformedDocument``, code
``schema``, naming the kind), a :class:`NitroTPMPolicy` pins TPM PCRs and a
:class:`~nitro_attest.Policy` enclave PCRs, and each verify function takes
only its own kind of policy.

>>> document = verify_nitrotpm(data, NitroTPMPolicy({4: boot_manager, 7: secure_boot}))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Literal, TypeAlias, overload

from cryptography import x509

from ._tpm_document import (
    NITROTPM_PCR_MEANINGS,
    NitroTPMDocument,
    TPMPCRValue,
    VerifiedNitroTPMDocument,
    parse_nitrotpm,
    require_verified_nitrotpm,
)
from ._verify import check_signed_document, trusted_roots, verification_time
from .document import PCRValue
from .errors import PolicyFailure, PolicyViolation
from .policy import Policy, _matches, _normalize_pcrs, _optional_bytes, _pins_repr, binding_failures

__all__ = [
    "NITROTPM_PCR_MEANINGS",
    "NitroTPMDocument",
    "NitroTPMPolicy",
    "TPMPCRValue",
    "VerifiedNitroTPMDocument",
    "parse_nitrotpm",
    "verify_nitrotpm",
]

#: One allowed TPM PCR value: 96 hex digits (either case), 48 bytes, or a TPMPCRValue.
TPMPCRPin: TypeAlias = "str | bytes | TPMPCRValue"
#: The allowed values of one TPM PCR: one pin or a collection of pins (any of them).
TPMPCRPins: TypeAlias = "TPMPCRPin | Iterable[TPMPCRPin]"


def _as_pin(index: int, pin: TPMPCRPin) -> str | bytes:
    # An enclave's PCRValue is refused, not unwrapped: its index means something else on a TPM.
    if isinstance(pin, PCRValue):
        raise TypeError(f"NitroTPM PCR{index}: {pin!r} is an enclave's PCR (PCRValue); pin a TPMPCRValue, hex or bytes")
    return pin.value if isinstance(pin, TPMPCRValue) else pin


def _tpm_pins(pcrs: Mapping[int, TPMPCRPins] | None) -> Mapping[int, frozenset[bytes]]:
    if pcrs is not None and not isinstance(pcrs, Mapping):
        raise TypeError(f"pcrs must be a mapping of TPM PCR index to allowed values, not {type(pcrs).__name__}")
    unwrapped: dict[int, str | bytes | list[str | bytes]] = {
        index: (
            [_as_pin(index, pin) for pin in allowed]
            if isinstance(allowed, Iterable) and not isinstance(allowed, (str, bytes))
            else _as_pin(index, allowed)
        )
        for index, allowed in (pcrs or {}).items()
    }
    # The same reading of indices and pins (hex, bytes, sets of them) as an enclave Policy's.
    return _normalize_pcrs(unwrapped, None)


@dataclass(frozen=True, init=False, repr=False)
class NitroTPMPolicy:
    """What a verified NitroTPM document must show to be accepted.

    ``pcrs`` maps a TPM PCR index to its allowed value or values (hex in
    either case, bytes, or :class:`TPMPCRValue`); each constrained PCR must
    equal one of them, and a PCR the document lacks fails. As KMS's
    ``kms:RecipientAttestation:NitroTPMPCR<n>`` keys do, but also: ``nonce``,
    ``user_data`` and ``public_key``, when given, must equal the document's
    field exactly; ``max_age`` rejects documents older than the verification
    time minus ``max_age``; ``module_id`` is a pattern with IAM ``StringLike``
    wildcards (``i-*-tpm*``).

    A policy without PCR constraints raises ``ValueError``: accepting any
    instance must be asked for by name, with :meth:`any_instance`.
    """

    #: TPM PCR index -> its allowed values, as 48-byte strings; empty for :meth:`any_instance`.
    pcrs: Mapping[int, frozenset[bytes]]
    #: The nonce the document must carry, or None.
    nonce: bytes | None
    #: The user data the document must carry, or None.
    user_data: bytes | None
    #: The public key the document must carry, or None.
    public_key: bytes | None
    #: The oldest a document may be at the verification time, or None.
    max_age: timedelta | None
    #: The pattern ``module_id`` must match (``*``: any run of characters, ``?``: one), or None.
    module_id: str | None

    def __init__(
        self,
        pcrs: Mapping[int, TPMPCRPins] | None = None,
        *,
        nonce: bytes | None = None,
        user_data: bytes | None = None,
        public_key: bytes | None = None,
        max_age: timedelta | None = None,
        module_id: str | None = None,
    ) -> None:
        normalized = _tpm_pins(pcrs)
        if not normalized:
            raise ValueError(
                "a NitroTPMPolicy without PCR constraints accepts every instance; "
                "if that is what you mean, use NitroTPMPolicy.any_instance(...)"
            )
        self._set(
            normalized, nonce=nonce, user_data=user_data, public_key=public_key, max_age=max_age, module_id=module_id
        )

    @classmethod
    def any_instance(
        cls,
        *,
        nonce: bytes | None = None,
        user_data: bytes | None = None,
        public_key: bytes | None = None,
        max_age: timedelta | None = None,
        module_id: str | None = None,
    ) -> NitroTPMPolicy:
        """A policy that accepts any genuine NitroTPM document, whatever the instance booted.

        Only the other constraints (nonce, user data, public key, age, module
        ID) apply. Meant for inspection tools and tests, rarely for releasing secrets.
        """
        policy = cls.__new__(cls)
        policy._set(
            MappingProxyType({}),
            nonce=nonce,
            user_data=user_data,
            public_key=public_key,
            max_age=max_age,
            module_id=module_id,
        )
        return policy

    def _set(
        self,
        pcrs: Mapping[int, frozenset[bytes]],
        *,
        nonce: bytes | None,
        user_data: bytes | None,
        public_key: bytes | None,
        max_age: timedelta | None,
        module_id: str | None,
    ) -> None:
        if max_age is not None and (not isinstance(max_age, timedelta) or max_age < timedelta(0)):
            raise ValueError(f"max_age must be a non-negative timedelta, got {max_age!r}")
        if module_id is not None and (not isinstance(module_id, str) or not module_id):
            raise TypeError("module_id must be a non-empty pattern string or None")
        values = {
            "pcrs": pcrs,
            "nonce": _optional_bytes("nonce", nonce),
            "user_data": _optional_bytes("user_data", user_data),
            "public_key": _optional_bytes("public_key", public_key),
            "max_age": max_age,
            "module_id": module_id,
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        options = [
            f"{name}={value!r}"
            for name, value in (
                ("nonce", self.nonce),
                ("user_data", self.user_data),
                ("public_key", self.public_key),
                ("max_age", self.max_age),
                ("module_id", self.module_id),
            )
            if value is not None
        ]
        if not self.pcrs:
            return f"NitroTPMPolicy.any_instance({', '.join(options)})"
        pins = ", ".join(f"{index}: {_pins_repr(values)}" for index, values in self.pcrs.items())
        return f"NitroTPMPolicy({', '.join([f'{{{pins}}}', *options])})"

    def __hash__(self) -> int:
        # The generated hash would fail on the read-only pcrs mapping.
        return hash(
            (tuple(self.pcrs.items()), self.nonce, self.user_data, self.public_key, self.max_age, self.module_id)
        )

    @overload
    def explain(
        self,
        document: VerifiedNitroTPMDocument,
        at: datetime | None = None,
        *,
        allow_unverified: Literal[False] = False,
    ) -> tuple[PolicyFailure, ...]: ...
    @overload
    def explain(
        self, document: NitroTPMDocument, at: datetime | None = None, *, allow_unverified: Literal[True]
    ) -> tuple[PolicyFailure, ...]: ...
    def explain(
        self, document: NitroTPMDocument, at: datetime | None = None, *, allow_unverified: bool = False
    ) -> tuple[PolicyFailure, ...]:
        """Every constraint ``document`` fails at ``at`` (default now); empty when the policy accepts it.

        ``document`` must come from :func:`verify_nitrotpm`; one from
        :func:`parse_nitrotpm` is a ``TypeError`` unless ``allow_unverified=True``,
        and an enclave's document is a ``TypeError`` always.
        """
        checked = require_verified_nitrotpm(
            document, "the NitroTPM policy's document", allow_unverified=allow_unverified
        )
        return self._failures(checked, at or datetime.now(timezone.utc))

    @overload
    def check(
        self, document: VerifiedNitroTPMDocument, at: datetime, *, allow_unverified: Literal[False] = False
    ) -> None: ...
    @overload
    def check(self, document: NitroTPMDocument, at: datetime, *, allow_unverified: Literal[True]) -> None: ...
    def check(self, document: NitroTPMDocument, at: datetime, *, allow_unverified: bool = False) -> None:
        """Raises :class:`~nitro_attest.PolicyViolation` (with every failure) unless ``document`` is acceptable.

        ``allow_unverified`` as for :meth:`explain`.
        """
        checked = require_verified_nitrotpm(
            document, "the NitroTPM policy's document", allow_unverified=allow_unverified
        )
        failures = self._failures(checked, at)
        if failures:
            raise PolicyViolation(failures[0].code, "; ".join(failure.message for failure in failures), failures)

    def _failures(self, document: NitroTPMDocument, at: datetime) -> tuple[PolicyFailure, ...]:
        failures: list[PolicyFailure] = []
        for index, allowed in self.pcrs.items():
            actual = document.pcrs.get(index)
            if actual is not None and _matches(actual.value, allowed):
                continue
            expected = tuple(sorted(pin.hex() for pin in allowed))
            if actual is None:
                message = f"NitroTPM PCR{index} is constrained but absent from the document"
                failures.append(PolicyFailure("pcr", message, index, expected))
            else:
                message = f"NitroTPM PCR{index} is {actual.hex()}, not an allowed value"
                failures.append(PolicyFailure("pcr", message, index, expected, actual.hex()))
        failures.extend(binding_failures(self, document, at))
        return tuple(failures)


def verify_nitrotpm(
    data: bytes,
    policy: NitroTPMPolicy,
    *,
    at: datetime | None = None,
    roots: Sequence[x509.Certificate] | None = None,
) -> VerifiedNitroTPMDocument:
    """Verifies a NitroTPM attestation document and applies ``policy``; returns it verified.

    :func:`nitro_attest.verify` for NitroTPM documents, with the same checks in
    the same order: strict decoding (:func:`parse_nitrotpm`), the certificate
    chain from ``roots`` (default: the AWS Nitro root shipped with this
    package, which signs NitroTPM documents too), the COSE ES384 signature, the
    document's time against ``at`` (timezone-aware; default now), then
    ``policy``. An enclave's document is refused (``MalformedDocument``,
    ``schema``).

    Raises a :class:`~nitro_attest.NitroAttestError` subclass for every
    rejection, ``TypeError``/``ValueError`` for bad arguments: an enclave
    :class:`~nitro_attest.Policy` is a ``TypeError``.
    """
    if not isinstance(policy, NitroTPMPolicy):
        hint = " (an enclave Policy never judges a NitroTPM document)" if isinstance(policy, Policy) else ""
        raise TypeError(f"policy must be a nitro_attest.NitroTPMPolicy, not {type(policy).__name__}{hint}")
    at, roots = verification_time(at), trusted_roots(roots)
    document = parse_nitrotpm(data)
    check_signed_document(document, at, roots)
    # Unverified by type until this function returns, but every other check has passed by now.
    policy.check(document, at, allow_unverified=True)
    return VerifiedNitroTPMDocument._of(document, at)
