"""The library's errors: one root, two branches.

:class:`Error` is the root: ``except nitro_attest.Error`` catches every "no"
this library says, and nothing else (a ``TypeError`` for an argument of the
wrong type is a bug in the caller and stays one). Beneath it:

- :class:`NitroAttestError`, **the evidence was rejected**: an attestation
  document (the only family :func:`nitro_attest.verify` raises), a KMS
  ``CiphertextForRecipient`` envelope, an enclave image file. Each carries a
  stable, machine-readable ``code`` (for metrics and alerting) and a message
  a person can act on (for logs). Its subclasses group codes by what went
  wrong, so callers can tell "the enclave is not what we expect"
  (:class:`PolicyViolation`) from "these bytes are not a genuine Nitro
  document" (the other document families).
- :class:`ConfigurationError` (also a ``ValueError``), **what you gave us is
  not usable**: a KMS key policy (:class:`~nitro_attest.KmsPolicyError`), a
  policy file (:class:`~nitro_attest.PolicyFileError`), a configuration.
  Nothing was judged; the message says what to fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "CertificateInvalid",
    "ConfigurationError",
    "DocumentTimeInvalid",
    "Error",
    "MalformedDocument",
    "NitroAttestError",
    "PolicyFailure",
    "PolicyViolation",
    "SignatureInvalid",
]


class Error(Exception):
    """The root of every error this library raises on purpose.

    Catch it to handle "nitro_attest said no" in one place; catch
    :class:`NitroAttestError` (evidence rejected) or :class:`ConfigurationError`
    (unusable input from the caller) to tell the two apart.
    """


class ConfigurationError(Error, ValueError):
    """A key policy, policy file or configuration that cannot be used as given.

    Nothing was verified or rejected: the message names what is wrong and where.
    """


class NitroAttestError(Error):
    """Base class: the evidence (a document, an envelope, an image) was rejected.

    ``code`` is one of the family's ``codes``; ``str(error)`` says what was
    wrong and where (which field, certificate or PCR).
    """

    codes: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, code: str, message: str) -> None:
        if code not in self.codes:
            # A wrong code is a bug in this library, never a property of the input.
            raise AssertionError(f"{type(self).__name__} has no code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r})"

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Errors cross process pools (batch verification): keep them picklable.
        return (type(self), (self.code, self.message))


class MalformedDocument(NitroAttestError, ValueError):
    """The bytes are not a well-formed Nitro attestation document.

    ``size``: over a size bound; ``cbor``: not strict CBOR; ``cose``: not the
    COSE_Sign1/ES384 envelope Nitro uses; ``schema``: a payload field is missing,
    of the wrong type, or out of range.
    """

    codes = frozenset({"size", "cbor", "cose", "schema"})


class SignatureInvalid(NitroAttestError):
    """The COSE ES384 signature does not verify with the leaf certificate's key."""

    codes = frozenset({"signature"})


class CertificateInvalid(NitroAttestError):
    """The certificate chain does not lead from a trusted root to the leaf.

    ``certificate``: a certificate is unparsable or has the wrong key or algorithm;
    ``chain``: root, order, names, constraints or a link signature are wrong;
    ``expired``: a certificate is not valid at the verification time.
    """

    codes = frozenset({"certificate", "chain", "expired"})


class DocumentTimeInvalid(NitroAttestError):
    """The document's timestamp lies outside its leaf certificate's validity or in the future."""

    codes = frozenset({"time"})


@dataclass(frozen=True)
class PolicyFailure:
    """One constraint of a policy that a document does not meet.

    ``code`` is a :class:`PolicyViolation` code; ``index`` the PCR for ``pcr``;
    ``expected`` the allowed values (lower-case hex for byte values) and
    ``actual`` the document's value (None when the document lacks it);
    ``alternative`` the position of the policy in :meth:`Policy.any_of`, if any.
    """

    code: str
    message: str
    index: int | None = None
    expected: tuple[str, ...] = ()
    actual: str | None = None
    alternative: int | None = None


class PolicyViolation(NitroAttestError):
    """The document is genuine, but the policy does not accept this enclave.

    ``pcr``: a measurement differs (or the document lacks it); ``module_id``:
    the module ID does not match its pattern; ``debug``: a debug-mode enclave; ``nonce``,
    ``user_data``, ``public_key``: a field differs from the expected value
    (``nonce`` also when :class:`~nitro_attest.challenge.Challenger` refuses
    the nonce: none, not this client's, unknown, expired or already used);
    ``stale``: the document is older than the policy's ``max_age`` (or the
    challenge lifetime).
    ``failures`` lists every failed constraint, not only the first; ``code``
    is the first one's.
    """

    codes = frozenset({"pcr", "module_id", "debug", "nonce", "user_data", "public_key", "stale"})

    def __init__(self, code: str, message: str, failures: tuple[PolicyFailure, ...] = ()) -> None:
        super().__init__(code, message)
        self.failures = failures or (PolicyFailure(code, message),)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (type(self), (self.code, self.message, self.failures))
