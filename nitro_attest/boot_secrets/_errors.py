"""The two error families of :mod:`nitro_attest.boot_secrets`, kept apart so that every private module raises them."""

from __future__ import annotations

from ..errors import ConfigurationError, NitroAttestError

__all__ = ["BootSecretsError", "SecretsConfigError"]


class SecretsConfigError(ConfigurationError):
    """A configuration to encrypt (or an allow-list) is not usable; ``field`` names where.

    ``field`` is a path into the configuration such as ``env.DB_PASSWORD`` or
    ``files[2].mode`` (empty for the document as a whole).
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class BootSecretsError(NitroAttestError):
    """A boot-secrets blob was rejected, or could not be applied; nothing was written and nothing run.

    ``malformed``: the metadata, instruction file or local file is not the
    S3 Encryption Client's format (missing, duplicated or unknown keys, bad
    base64 or JSON, wrong lengths, over a size bound); ``unsupported``: a
    format, content or key-wrapping algorithm that is not accepted (V1,
    AES-CBC and the plain ``kms`` wrap without ``legacy=True``; raw-key
    wrapping); ``context``: the encryption context stored with the blob is not
    the one asked for, or names another content algorithm; ``kms``: KMS
    refused to release the data key (the key policy does not admit this
    enclave, or the encrypted key or its context was changed);
    ``commitment``: the key commitment (``x-amz-d``) does not match the data
    key and message id (a changed ``x-amz-d`` or ``x-amz-i``); ``decrypt``:
    the content does not decrypt (a changed byte of the body); ``config``: the decrypted
    configuration is not a valid configuration; ``not_allowed``: an entry lies
    outside the allow-lists; ``path``: a file's directory is a symbolic link
    or not a directory, or a file cannot be written (what could not be
    undone, if anything, is named).
    """

    codes = frozenset(
        {"malformed", "unsupported", "context", "kms", "commitment", "decrypt", "config", "not_allowed", "path"}
    )
