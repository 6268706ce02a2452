"""Boot-time secrets: a configuration in the S3 Encryption Client's format that only an attested enclave opens.

An operator encrypts a configuration (environment variables and files;
:class:`SecretsConfig`, read by :func:`parse_config`) with :func:`encrypt`:
KMS ``GenerateDataKey`` under a key whose policy admits only the enclave's
PCRs, then the Amazon S3 Encryption Client's **V3** format, as AWS's own
clients write it. The result (:class:`EncryptedObject`) is an S3 object (body
and metadata; :func:`put_object`) or a local file (:meth:`EncryptedObject.to_file`).

At boot the enclave opens it with :func:`decrypt`: a fresh
:class:`~nitro_attest.recipient.EnclaveKey`, an attestation document for it
from an :class:`~nitro_attest.nsm.Attester` (the NSM, or a test enclave),
KMS ``Decrypt`` with the stored encryption context and ``Recipient``, the
``CiphertextForRecipient`` opened, the key commitment checked, the content
decrypted and parsed. :func:`launch` then checks the configuration against
an :class:`AllowList`, writes its files all or nothing
(:func:`install_files`) and replaces the process with the command.

**The format** (awslabs/aws-encryption-sdk-specification, ``s3-encryption/``).
V3 object metadata: ``x-amz-c`` ``"115"`` (AES-256-GCM with HKDF-SHA512 key
derivation and key commitment, suite 0x0073); ``x-amz-3`` the KMS
``CiphertextBlob`` of the data key (base64); ``x-amz-w`` ``"12"``
(``kms+context``); ``x-amz-t`` the encryption context as JSON, including
``aws:x-amz-cek-alg: "115"``; ``x-amz-i`` the 28-byte message id and
``x-amz-d`` the 28-byte key commitment (base64). The content key and the
commitment are HKDF-SHA512 of the data key with the message id as salt and
``0x0073 || "DERIVEKEY"`` / ``"COMMITKEY"`` as info; the body is AES-256-GCM
with twelve 0x01 bytes as IV and ``0x0073`` as associated data, tag appended.
Read too: V2 (``x-amz-key-v2``, AES-GCM, ``kms+context``), and with
``legacy=True`` only, V1 and V2 AES-CBC content and the plain ``kms`` wrap,
which authenticate nothing or bind no algorithm. Raw-key wrapping (AES/GCM,
RSA) is refused: the key must be KMS's. Metadata missing from the object is
read from the ``KEY.instruction`` object, as the specification's instruction
file strategy says.

**The local file** holds the same thing as one JSON object::

    {"format": "nitro-attest/boot-secrets/1",
     "metadata": {"x-amz-c": "115", "x-amz-3": "...", ...},
     "body_base64": "..."}

``metadata`` is exactly the S3 object metadata (what ``put-object
--metadata`` takes) and ``body_base64`` the object body, so that the file is
uploaded as the same object and read back the same. One extra, unauthenticated
metadata key, ``nitro-attest-key-id``, records the KMS key ARN for
:func:`inspect`; other clients ignore it.

Every rejection is a :class:`BootSecretsError` with a stable code; an
unusable configuration, allow-list or context to encrypt with is a
:class:`SecretsConfigError`. The data key and the plaintext live only in
local variables and are dropped once used (Python cannot wipe memory); they
are never logged or put in an error message.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NoReturn

from ..nsm import Attester
from ..recipient import EnclaveKey, RecipientError
from . import _envelope, _local
from ._config import (
    FORMATS,
    MAX_CONFIG,
    MAX_ENV,
    MAX_ENV_VALUE,
    MAX_FILE,
    MAX_FILES,
    MAX_NAME,
    MAX_PATH,
    MAX_PATH_COMPONENT,
    SecretFile,
    SecretsConfig,
    config_format,
    parse_config,
)
from ._errors import BootSecretsError, SecretsConfigError
from ._files import AllowList, _install, install_files

__all__ = [
    "FILE_FORMAT",
    "FORMATS",
    "KEY_ID_METADATA",
    "MAX_CONFIG",
    "MAX_ENV",
    "MAX_ENV_VALUE",
    "MAX_FILE",
    "MAX_FILES",
    "MAX_NAME",
    "MAX_PATH",
    "MAX_PATH_COMPONENT",
    "AllowList",
    "BootSecretsError",
    "EncryptedObject",
    "ObjectInfo",
    "SecretFile",
    "SecretsConfig",
    "SecretsConfigError",
    "check_key_arn",
    "child_environment",
    "config_format",
    "decrypt",
    "encrypt",
    "get_object",
    "inspect",
    "install_files",
    "launch",
    "parse_config",
    "parse_s3_url",
    "put_object",
]

#: The ``format`` member of a local file (:meth:`EncryptedObject.to_file`).
FILE_FORMAT = _local.FILE_FORMAT
#: The metadata key recording the KMS key ARN at encryption (informational: not authenticated).
KEY_ID_METADATA = "nitro-attest-key-id"
_INSTRUCTION_SUFFIX = ".instruction"
_MAX_CONTEXT = 8192  # KMS's limit on an encryption context, in characters
_RECIPIENT_ALGORITHM = "RSAES_OAEP_SHA_256"
_KEY_ARN = re.compile(r"arn:aws(?:-[a-z]+)*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]{1,128}")


@dataclass(frozen=True)
class EncryptedObject:
    """An encrypted configuration: the S3 object ``metadata`` (keys without ``x-amz-meta-``) and ``body``."""

    metadata: Mapping[str, str]
    body: bytes = field(repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    def to_file(self) -> bytes:
        """The local file holding this object (the format is in the module's documentation)."""
        return _local.dumps_file(self.metadata, self.body)

    @classmethod
    def from_file(cls, data: bytes) -> EncryptedObject:
        """The object a local file holds.

        :raises BootSecretsError: ``malformed``.
        """
        metadata, body = _local.loads_file(data)
        return cls(metadata, body)


@dataclass(frozen=True)
class ObjectInfo:
    """What :func:`inspect` reads from an object without decrypting anything."""

    #: The S3EC format version: 3, 2 or 1.
    version: int
    #: ``x-amz-c`` / ``x-amz-cek-alg``: ``"115"``, ``"AES/GCM/NoPadding"`` or ``"AES/CBC/PKCS5Padding"``.
    content_algorithm: str
    #: ``kms+context`` or ``kms``.
    wrapping: str
    #: The stored encryption context, the client's ``aws:x-amz-cek-alg`` included.
    context: Mapping[str, str]
    #: The KMS key ARN recorded at encryption, or None (not authenticated: KMS decides which key opens it).
    key_id: str | None
    #: The size of the KMS ``CiphertextBlob`` of the data key, in bytes.
    encrypted_key_size: int
    #: The size of the body, in bytes.
    body_size: int
    #: Whether opening needs ``legacy=True``.
    legacy: bool


def _header(blob: EncryptedObject) -> _envelope.Header:
    return _envelope.parse_header(blob.metadata)


def inspect(blob: EncryptedObject) -> ObjectInfo:
    """The format, algorithms, context, key id and sizes of ``blob``; no key is needed and nothing decrypted.

    :raises BootSecretsError: ``malformed``, ``unsupported``.
    """
    header = _header(blob)
    key_id = blob.metadata.get(KEY_ID_METADATA)
    return ObjectInfo(
        version=header.version,
        content_algorithm=header.content_algorithm,
        wrapping=header.wrapping,
        context=header.context,
        key_id=key_id if isinstance(key_id, str) else None,
        encrypted_key_size=len(header.encrypted_key),
        body_size=len(blob.body),
        legacy=header.legacy,
    )


def _checked_context(context: Mapping[str, str] | None) -> dict[str, str]:
    result = dict(context or {})
    for key, value in result.items():
        if not isinstance(key, str) or not isinstance(value, str) or not key:
            raise SecretsConfigError("context", "keys and values must be strings, keys not empty")
        if not (key.isascii() and value.isascii() and key.isprintable() and value.isprintable()):
            # S3 stores other characters RFC 2047-encoded, which the S3EC clients then fail to match.
            raise SecretsConfigError(f"context.{key[:40]}", "keys and values must be printable US-ASCII")
        if key in (_envelope.CEK_CONTEXT_KEY, "kms_cmk_id"):
            raise SecretsConfigError(f"context.{key}", "is reserved for the S3 Encryption Client")
    if sum(len(key) + len(value) for key, value in result.items()) > _MAX_CONTEXT:
        raise SecretsConfigError("context", f"over KMS's {_MAX_CONTEXT} characters")
    return result


def encrypt(
    config: SecretsConfig, *, kms: Any, key_id: str, context: Mapping[str, str] | None = None
) -> EncryptedObject:
    """``config`` encrypted in the S3EC V3 format under a data key from KMS key ``key_id``.

    ``kms`` is a boto3 KMS client; ``context`` the encryption context (to
    which the client's ``aws:x-amz-cek-alg: "115"`` is added), which the
    enclave must name again to open the object and a key policy may pin.

    :raises SecretsConfigError: a context that is not printable US-ASCII
        strings, or uses a reserved key.
    :raises botocore.exceptions.ClientError: KMS refused GenerateDataKey.
    """
    if not isinstance(config, SecretsConfig):
        raise TypeError(f"config must be a SecretsConfig, not {type(config).__name__}")
    full = {**_checked_context(context), _envelope.CEK_CONTEXT_KEY: _envelope.CONTENT_V3}
    answer = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256", EncryptionContext=full)
    data_key = answer["Plaintext"]
    metadata, body = _envelope.encrypt_v3(config.to_json(), data_key, answer["CiphertextBlob"], full)
    metadata[KEY_ID_METADATA] = str(answer.get("KeyId") or key_id)
    del data_key, answer
    return EncryptedObject(metadata, body)


def check_key_arn(key_id: object) -> str:
    """``key_id`` when it is a full KMS key ARN, ``arn:aws:kms:REGION:ACCOUNT:key/ID``.

    An alias or a bare key id is resolved by KMS in the account of the
    caller's credentials; in an enclave those come from the parent instance,
    which would then pick the key (its own, under a policy admitting any
    enclave) and so the configuration. Only the ARN names the operator's key.

    :raises SecretsConfigError: ``key_id``: not a key ARN.
    """
    if not isinstance(key_id, str) or not _KEY_ARN.fullmatch(key_id):
        shown = repr(key_id)[:120]
        raise SecretsConfigError(
            "key_id",
            f"{shown} is not a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID): an alias or key id is resolved in "
            "the account of the credentials, which the parent instance hands the enclave, so it would choose the key",
        )
    return key_id


def decrypt(
    blob: EncryptedObject,
    *,
    kms: Any,
    attester: Attester,
    key_id: str,
    context: Mapping[str, str] | None = None,
    legacy: bool = False,
) -> SecretsConfig:
    """The configuration in ``blob``, opened as an enclave opens it: KMS releases the data key to its attested key.

    ``kms`` is a boto3 KMS client; ``attester`` makes the attestation
    document (:class:`~nitro_attest.nsm.NsmDevice`, or a test enclave);
    ``key_id`` is the full ARN of the KMS key the blob must be sealed under
    (:func:`check_key_arn`): it is sent with ``Decrypt``, so that KMS refuses
    a blob of another key, and KMS's answer must name it. ``context`` must
    equal the stored encryption context less the client's reserved keys.
    ``legacy`` also opens V1, AES-CBC and plain ``kms`` objects.

    :raises SecretsConfigError: ``key_id`` is not a key ARN.
    :raises BootSecretsError: any code but ``not_allowed`` and ``path``.
    :raises ~nitro_attest.nsm.NsmError: the NSM gave no document.
    """
    check_key_arn(key_id)
    header = _header(blob)
    if header.legacy and not legacy:
        what = (
            "AES-CBC content (unauthenticated)"
            if header.content_algorithm == _envelope.CONTENT_CBC
            else "the plain kms wrap"
        )
        raise BootSecretsError("unsupported", f"the object uses {what}: opened only with legacy=True (--legacy)")
    stored_context = _envelope.request_context(header, dict(context or {}))
    enclave_key = EnclaveKey.generate()
    document = attester.attest(public_key=enclave_key.public_key_der)
    request: dict[str, Any] = {
        "KeyId": key_id,
        "CiphertextBlob": header.encrypted_key,
        "Recipient": {"AttestationDocument": document, "KeyEncryptionAlgorithm": _RECIPIENT_ALGORITHM},
    }
    if stored_context:
        request["EncryptionContext"] = stored_context
    from botocore.exceptions import ClientError  # type: ignore[import-untyped]  # noqa: PLC0415 -- with the client

    try:
        answer = kms.decrypt(**request)
    except ClientError as error:
        details = error.response.get("Error", {})
        raise BootSecretsError(
            "kms", f"KMS refused Decrypt: {details.get('Code', 'error')}: {details.get('Message', '')}"[:500]
        ) from None
    answered = answer.get("KeyId")
    if answered != key_id:
        shown = repr(answered)[:200]
        raise BootSecretsError("kms", f"KMS answered for the key {shown}, not {key_id}: not the key asked for")
    envelope = answer.get("CiphertextForRecipient")
    if not isinstance(envelope, bytes):
        raise BootSecretsError("kms", "KMS answered without CiphertextForRecipient (it ignored Recipient)")
    try:
        data_key = enclave_key.open(envelope)
    except RecipientError as error:
        raise BootSecretsError("kms", f"the CiphertextForRecipient does not open: {error}") from None
    plaintext = _envelope.decrypt_content(header, data_key, blob.body)
    del data_key
    try:
        return parse_config(plaintext, "json")
    except SecretsConfigError as error:
        raise BootSecretsError("config", f"the decrypted configuration is not valid: {error}") from None
    finally:
        del plaintext


def parse_s3_url(url: str) -> tuple[str, str]:
    """``(bucket, key)`` of ``s3://BUCKET/KEY``.

    :raises SecretsConfigError: not that shape.
    """
    bucket, _, key = url.removeprefix("s3://").partition("/")
    if not url.startswith("s3://") or not bucket or not key:
        raise SecretsConfigError("", f"{url!r} is not s3://BUCKET/KEY")
    return bucket, key


def _read_body(s3: Any, bucket: str, key: str, limit: int) -> tuple[dict[str, str], bytes]:
    answer = s3.get_object(Bucket=bucket, Key=key)
    if int(answer.get("ContentLength", 0)) > limit:
        raise BootSecretsError("malformed", f"s3://{bucket}/{key} is {answer['ContentLength']} bytes, over {limit}")
    body: bytes = answer["Body"].read(limit + 1)
    if len(body) > limit:
        raise BootSecretsError("malformed", f"s3://{bucket}/{key} is over {limit} bytes")
    return dict(answer.get("Metadata") or {}), body


def get_object(s3: Any, bucket: str, key: str) -> EncryptedObject:
    """The object at ``s3://bucket/key`` (``s3``: a boto3 S3 client), with ``key.instruction`` merged when needed.

    :raises BootSecretsError: ``malformed`` (over a size bound, a bad instruction file).
    :raises botocore.exceptions.ClientError: S3 refused (no such object...).
    """
    metadata, body = _read_body(s3, bucket, key, _envelope.MAX_BODY)
    if _envelope.needs_instruction(metadata):
        _, instruction = _read_body(s3, bucket, key + _INSTRUCTION_SUFFIX, 64 * 1024)
        metadata = _envelope.merge_instruction(metadata, instruction)
    return EncryptedObject(metadata, body)


def put_object(s3: Any, bucket: str, key: str, blob: EncryptedObject) -> None:
    """Stores ``blob`` at ``s3://bucket/key``: its body, and its metadata as the object metadata."""
    s3.put_object(Bucket=bucket, Key=key, Body=blob.body, Metadata=dict(blob.metadata))


def child_environment(config: SecretsConfig, base: Mapping[str, str]) -> dict[str, str]:
    """``base`` (the environment ``secrets run`` started with) with the configuration's variables set over it."""
    return {**base, **config.env}


def launch(
    config: SecretsConfig, allow: AllowList, command: Sequence[str], *, environ: Mapping[str, str] | None = None
) -> NoReturn:
    """Checks ``config`` against ``allow``, writes its files and replaces this process with ``command``.

    The command is resolved (``PATH`` of the child's environment) and
    checked before any file is written: a regular file this process may
    execute, starting with ``#!`` or the ELF magic (when it is readable), so
    that a missing or unrunnable program writes nothing. Should ``execve``
    fail all the same, the files just written are removed (a file that was
    replaced is removed too: its previous version is not kept once the
    files are in place) and the directories made for them; so they are on
    any other exception from ``execve``, which is then raised again.
    ``environ`` defaults to this process's environment.

    :raises BootSecretsError: ``not_allowed``, ``path``; nothing written, nothing run.
    :raises SecretsConfigError: ``command``: no command, an argument with a
        NUL, not an executable file, or ``execve`` failed (then what was
        written is removed); ``environ``: a name that is empty or holds
        ``=`` or NUL, a value with NUL.
    """
    allow.check(config)
    arguments = _checked_command(command)
    env = _checked_environment(child_environment(config, os.environ if environ is None else environ))
    program = _program(arguments[0], env.get("PATH", os.defpath))
    installation = _install(config, allow)
    try:
        os.execve(program, arguments, env)  # noqa: S606 -- the point: the unchanged application in our place
    except BaseException as error:
        left = installation.undo()
        if not isinstance(error, OSError):
            raise
        undone = f"; not undone: {'; '.join(left)}" if left else "; the files written were removed"
        raise SecretsConfigError("command", f"cannot run {program}: {error.strerror or error}{undone}") from None


def _execve_text(text: object) -> bool:
    """Whether ``execve`` takes ``text`` as an argument, a name or a value: a str without NUL it can encode."""
    if not isinstance(text, str) or "\x00" in text:
        return False
    try:
        os.fsencode(text)
    except UnicodeEncodeError:  # a lone surrogate that surrogateescape did not make
        return False
    return True


def _checked_command(command: Sequence[str]) -> list[str]:
    arguments = list(command)
    if not arguments or not arguments[0]:
        raise SecretsConfigError("command", "no command to run")
    for index, argument in enumerate(arguments):
        if not _execve_text(argument):
            raise SecretsConfigError("command", f"argument {index} is not a string without NUL")
    return arguments


def _checked_environment(env: dict[str, str]) -> dict[str, str]:
    for name, value in env.items():
        if not _execve_text(name) or not name or "=" in name:
            raise SecretsConfigError("environ", f"{name!r:.60} is not a variable name (empty, or with = or NUL)")
        if not _execve_text(value):
            raise SecretsConfigError("environ", f"the value of {name} is not a string without NUL")
    return env


_EXECUTABLE_MAGIC = (b"#!", b"\x7fELF")


def _program(name: str, path: str) -> str:
    """The file ``execve`` runs for ``name``, once it looks runnable: a regular, executable script or ELF file."""
    program = name if "/" in name else shutil.which(name, path=path)
    if program is None or not os.path.isfile(program) or not os.access(program, os.X_OK):
        raise SecretsConfigError("command", f"{name!r} is not an executable file (PATH searched)")
    try:
        with open(program, "rb") as stream:
            head = stream.read(4)
    except PermissionError:
        return program  # execute-only: execve alone can tell
    except OSError as error:
        raise SecretsConfigError("command", f"cannot read {program}: {error.strerror}") from None
    if not head.startswith(_EXECUTABLE_MAGIC):
        raise SecretsConfigError("command", f"{program} starts with neither #! nor the ELF magic: execve cannot run it")
    return program
