"""Expected PCR values computed from what they measure: PCR3, PCR4 and PCR8.

A Nitro enclave's PCR3, PCR4 and PCR8 do not depend on the enclave image's
bytes, so a policy can pin them before the enclave exists:

- PCR3: the ARN of the IAM role of the parent instance (:func:`pcr3_for_role`);
- PCR4: the parent instance's ID (:func:`pcr4_for_instance`);
- PCR8: the certificate that signed the enclave image file (:func:`pcr8_for_certificate`).

Each is one TPM-style extend of an all-zero register:
``PCR = SHA-384(48 zero bytes || data)``. For PCR3 and PCR4 ``data`` is the
UTF-8 string itself (AWS Nitro Enclaves User Guide, "Where to get an enclave's
measurements"); for PCR8 it is the SHA-384 digest of the certificate's DER.

The values are exact hashes of exact strings: a different spelling of the same
role or instance (case, whitespace, an instance profile's ARN instead of its
role's) gives a different PCR that no enclave will ever report. The functions
therefore refuse such input with a :class:`ValueError` that says what to pass,
rather than hash it.

>>> pcr4_for_instance("i-1234567890abcdef0").hex()[:16]
'08f996b5d43e047a'
"""

import hashlib
import re

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .document import PCR_SIZE, PCRValue
from .keys import load_certificate

__all__ = ["pcr3_for_role", "pcr4_for_instance", "pcr8_for_certificate"]

# IAM: role names are 1..64 of [A-Za-z0-9+=,.@_-]; a path is "/" or "/seg/.../" of
# printable ASCII (0x21-0x7E), at most 512 characters. Partitions: aws, aws-cn,
# aws-us-gov, aws-iso, aws-iso-b, ... (lower-case words joined by "-").
_ROLE_ARN = re.compile(
    r"arn:(?P<partition>aws(?:-[a-z]+)*):iam::(?P<account>[0-9]{12}):role"
    r"(?P<path>/(?:[\x21-\x2e\x30-\x7e]+/)*)(?P<name>[A-Za-z0-9+=,.@_-]{1,64})"
)
_MAX_ROLE_PATH = 512
_INSTANCE_PROFILE_ARN = re.compile(r"arn:aws(?:-[a-z]+)*:iam::[0-9]{12}:instance-profile/\S+")
_ASSUMED_ROLE_ARN = re.compile(r"arn:aws(?:-[a-z]+)*:sts::[0-9]{12}:assumed-role/\S+")
# EC2 instance IDs: "i-" and 8 (before 2016) or 17 lower-case hex digits.
_INSTANCE_ID = re.compile(r"i-(?:[0-9a-f]{8}|[0-9a-f]{17})")
# An enclave's module_id is "<instance id>-enc<enclave id>"; people paste it by mistake.
_MODULE_ID = re.compile(r"(?P<instance>i-(?:[0-9a-f]{8}|[0-9a-f]{17}))-enc[0-9a-f]+")


def _extend_from_zero(data: bytes) -> bytes:
    """The register after one extend from its reset value: SHA-384(48 zero bytes || data)."""
    return hashlib.sha384(bytes(PCR_SIZE) + data).digest()


def _refuse_whitespace(value: str, what: str) -> None:
    # "arn:...\n" from a file or a copy-paste hashes to a PCR no enclave reports:
    # say so instead of silently stripping (the caller may rely on exact bytes).
    if any(char.isspace() for char in value):
        raise ValueError(f"{what} {value!r} contains whitespace; PCRs hash the exact string: remove it")


def pcr3_for_role(role_arn: str) -> PCRValue:
    """PCR3 of enclaves whose parent instance has the IAM role ``role_arn``.

    PCR3 = SHA-384(48 zero bytes || UTF-8 of the role's ARN) (AWS Nitro Enclaves
    User Guide, "Where to get an enclave's measurements", PCR3: "a SHA384 hash based
    on the Amazon resource name (ARN) of the IAM role that's associated with the
    instance profile"; its example ``arn:aws:iam::123456789012:role/Webserver``
    gives ``78fce75d...2e6921e6``).

    ``role_arn`` must be an IAM *role* ARN, ``arn:<partition>:iam::<12 digits>:role/[path/]name``,
    exactly as IAM reports it (``aws iam get-role --role-name NAME --query Role.Arn``), path
    included. An instance profile's ARN (``...:instance-profile/...``) is refused: PCR3
    measures the role attached to the profile, whose name may differ and cannot be derived
    from the profile's (``aws iam get-instance-profile --instance-profile-name NAME`` shows it).
    STS session ARNs (``arn:aws:sts::...:assumed-role/...``) are refused too. A parent
    instance without an instance profile has PCR3 all zero, which no role ARN produces.

    Raises :class:`TypeError` for a non-string and :class:`ValueError` for anything
    not shaped like a role ARN.
    """
    if not isinstance(role_arn, str):
        raise TypeError(f"role_arn must be a str, not {type(role_arn).__name__}")
    _refuse_whitespace(role_arn, "role ARN")
    if _INSTANCE_PROFILE_ARN.fullmatch(role_arn):
        raise ValueError(
            f"{role_arn!r} is an instance profile ARN; PCR3 measures the ARN of the IAM role attached to the "
            "instance profile (arn:aws:iam::<account>:role/<name>): find it with "
            "`aws iam get-instance-profile --instance-profile-name <name>` (Roles[].Arn)"
        )
    if _ASSUMED_ROLE_ARN.fullmatch(role_arn):
        raise ValueError(
            f"{role_arn!r} is an STS session ARN; PCR3 measures the IAM role's own ARN "
            "(arn:aws:iam::<account>:role/[path/]<name>, see `aws iam get-role`)"
        )
    match = _ROLE_ARN.fullmatch(role_arn)
    if match is None:
        raise ValueError(
            f"{role_arn!r} is not an IAM role ARN: expected arn:aws:iam::<12-digit account>:role/[path/]<name> "
            "(name: 1-64 of A-Z a-z 0-9 +=,.@_-)"
        )
    if len(match["path"]) > _MAX_ROLE_PATH:
        raise ValueError(f"the path of role ARN {role_arn!r} is longer than IAM's {_MAX_ROLE_PATH} characters")
    return PCRValue(3, _extend_from_zero(role_arn.encode("utf-8")))


def pcr4_for_instance(instance_id: str) -> PCRValue:
    """PCR4 of enclaves whose parent is the EC2 instance ``instance_id``.

    PCR4 = SHA-384(48 zero bytes || UTF-8 of the instance ID) (AWS Nitro Enclaves
    User Guide, "Where to get an enclave's measurements", PCR4; its example
    ``i-1234567890abcdef0`` gives ``08f996b5...7ae79ce0``). Real attestation
    documents agree: their PCR4 is this hash of the ``i-...`` part of their
    ``module_id`` (``<instance id>-enc<enclave id>``).

    ``instance_id`` is ``i-`` and 8 or 17 lower-case hex digits, as EC2 prints it.
    An enclave ``module_id`` is refused with the instance ID it contains in the
    message; upper-case hex is refused (EC2 IDs are lower-case, and the hash is of
    the exact string).

    Raises :class:`TypeError` for a non-string and :class:`ValueError` otherwise.
    """
    if not isinstance(instance_id, str):
        raise TypeError(f"instance_id must be a str, not {type(instance_id).__name__}")
    _refuse_whitespace(instance_id, "instance ID")
    if _INSTANCE_ID.fullmatch(instance_id):
        return PCRValue(4, _extend_from_zero(instance_id.encode("ascii")))
    module = _MODULE_ID.fullmatch(instance_id)
    if module is not None:
        raise ValueError(
            f"{instance_id!r} is an enclave module_id; PCR4 measures the parent instance's ID, "
            f"the part before '-enc': {module['instance']}"
        )
    if _INSTANCE_ID.fullmatch(instance_id.lower()):
        raise ValueError(f"{instance_id!r}: EC2 instance IDs are lower-case, and PCR4 hashes the exact string")
    raise ValueError(f"{instance_id!r} is not an EC2 instance ID: expected i- and 8 or 17 lower-case hex digits")


def pcr8_for_certificate(certificate: bytes | bytearray | memoryview | str | x509.Certificate) -> PCRValue:
    """PCR8 of enclaves booted from an image file signed with ``certificate``.

    PCR8 = SHA-384(48 zero bytes || SHA-384(DER of the signing certificate)), that is
    an extend from zero with the certificate's SHA-384 fingerprint. Source: the code
    that computes PCR8 for ``nitro-cli build-enclave`` and ``describe-eif``, in
    github.com/aws/aws-nitro-enclaves-image-format:

    - ``src/utils/mod.rs``, ``EifBuilder::measure``: parses the ``--signing-certificate``
      PEM (``openssl::x509::X509::from_pem``), re-encodes it ``to_der()`` and writes the
      DER into ``certificate_hasher``, a pass-through SHA-384
      (``EifHasher::new_without_cache``); its comment: "This is equivalent to
      extend(cert.digest(sha384))". ``get_pcrs`` reports that hasher's
      ``tpm_extend_finalize_reset()`` as ``PCR8``.
    - ``src/defs/eif_hasher.rs``, ``EifHasher::tpm_extend_finalize_reset`` (lines 97-104 at
      commit 40288e23): ``result = SHA-384(data)``, then returns
      ``SHA-384(initial_digest(48) || result)``, ``initial_digest`` being 48 zero bytes.
    - ``src/utils/eif_reader.rs``, ``EifReader::from_eif`` (``describe-eif``): the same for
      the certificate stored in an image's signature section (PEM, to DER, into
      ``cert_hasher``).

    So the PEM's text layout does not matter, only the certificate's DER. ``certificate``
    may be PEM (``str`` or bytes, exactly one certificate), DER bytes (``bytes``,
    ``bytearray`` or ``memoryview``, as :func:`nitro_attest.parse` takes), or a
    :class:`cryptography.x509.Certificate`. Nothing about the certificate is checked
    beyond being one (not its validity dates, key or issuer): it is only hashed.

    Raises :class:`TypeError` for another type and :class:`ValueError` for input
    that is not exactly one X.509 certificate.
    """
    der = load_certificate(certificate).public_bytes(Encoding.DER)
    return PCRValue(8, _extend_from_zero(hashlib.sha384(der).digest()))
