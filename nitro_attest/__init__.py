"""Verify AWS Nitro Enclaves attestation documents.

>>> import nitro_attest
>>> document = nitro_attest.verify(data, nitro_attest.Policy({0: expected_pcr0}))  # doctest: +SKIP

:func:`verify` returns a :class:`VerifiedDocument` or raises a
:class:`NitroAttestError`; :func:`parse` only decodes (nothing verified) and
returns a plain :class:`AttestationDocument`, which the functions that act on
trust refuse. Every exception this library raises on purpose derives from
:class:`Error`.
"""

from . import challenge, kms, nitrotpm
from ._backend import BACKEND
from ._batch import verify_batch
from ._chain import AWS_NITRO_ROOT_G1, AWS_NITRO_ROOT_G1_SHA256
from ._verify import CLOCK_SKEW, verify
from .document import PCR_MEANINGS, AttestationDocument, PCRValue, VerifiedDocument, document_bytes, parse
from .errors import (
    CertificateInvalid,
    ConfigurationError,
    DocumentTimeInvalid,
    Error,
    MalformedDocument,
    NitroAttestError,
    PolicyFailure,
    PolicyViolation,
    SignatureInvalid,
)
from .kms import KmsDecision, KmsPolicyError
from .measurements import pcr3_for_role, pcr4_for_instance, pcr8_for_certificate
from .nitrotpm import NitroTPMPolicy, VerifiedNitroTPMDocument, verify_nitrotpm
from .policy import Policy
from .policy_file import PolicyFileError, dumps_policy, load_policy, loads_policy

__version__ = "0.1.0"

__all__ = [
    "AWS_NITRO_ROOT_G1",
    "AWS_NITRO_ROOT_G1_SHA256",
    "BACKEND",
    "CLOCK_SKEW",
    "PCR_MEANINGS",
    "AttestationDocument",
    "CertificateInvalid",
    "ConfigurationError",
    "DocumentTimeInvalid",
    "Error",
    "KmsDecision",
    "KmsPolicyError",
    "MalformedDocument",
    "NitroAttestError",
    "NitroTPMPolicy",
    "PCRValue",
    "Policy",
    "PolicyFailure",
    "PolicyFileError",
    "PolicyViolation",
    "SignatureInvalid",
    "VerifiedDocument",
    "VerifiedNitroTPMDocument",
    "challenge",
    "document_bytes",
    "dumps_policy",
    "kms",
    "load_policy",
    "loads_policy",
    "nitrotpm",
    "parse",
    "pcr3_for_role",
    "pcr4_for_instance",
    "pcr8_for_certificate",
    "verify",
    "verify_batch",
    "verify_nitrotpm",
]
