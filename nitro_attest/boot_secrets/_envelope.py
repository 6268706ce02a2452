"""The Amazon S3 Encryption Client's object format: content metadata (V1, V2, V3), instruction files, content crypto.

Sources: awslabs/aws-encryption-sdk-specification, ``s3-encryption/``
(``data-format/content-metadata.md``, ``data-format/metadata-strategy.md``,
``key-derivation.md``, ``key-commitment.md``, ``decryption.md``) and
``framework/algorithm-suites.md`` (suite 0x0073: 28-byte message id and
commitment, HKDF-SHA512, AES-256-GCM with a fixed IV of twelve 0x01 bytes and
the suite id as associated data).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ._errors import BootSecretsError
from ._json import unique_keys

__all__ = [
    "CEK_CONTEXT_KEY",
    "CONTENT_CBC",
    "CONTENT_GCM",
    "CONTENT_V3",
    "MAX_BODY",
    "WRAP_KMS",
    "WRAP_KMS_CONTEXT",
    "Header",
    "decrypt_content",
    "encrypt_v3",
    "merge_instruction",
    "needs_instruction",
    "parse_header",
    "request_context",
]

CONTENT_V3 = "115"  # ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY, suite 0x0073
CONTENT_GCM = "AES/GCM/NoPadding"  # ALG_AES_256_GCM_IV12_TAG16_NO_KDF (V2)
CONTENT_CBC = "AES/CBC/PKCS5Padding"  # ALG_AES_256_CBC_IV16_NO_KDF (V1, V2; legacy)
WRAP_KMS_CONTEXT = "kms+context"
WRAP_KMS = "kms"  # legacy: KMS without the algorithm bound into the context
#: The encryption-context key the client adds, naming the content algorithm (so KMS binds it).
CEK_CONTEXT_KEY = "aws:x-amz-cek-alg"
_V1_CONTEXT_KEY = "kms_cmk_id"
_RESERVED_CONTEXT_KEYS = frozenset({CEK_CONTEXT_KEY, _V1_CONTEXT_KEY})

_SUITE_ID = b"\x00\x73"
_MESSAGE_ID_SIZE = 28
_COMMITMENT_SIZE = 28
_DATA_KEY_SIZE = 32
_GCM_IV = b"\x01" * 12
_GCM_IV_SIZE = 12
_CBC_IV_SIZE = 16
_TAG_SIZE = 16
_MAX_ENCRYPTED_KEY = 6144  # KMS's largest CiphertextBlob
_MAX_VALUE = 16 * 1024  # one metadata value; S3 allows 2 KB of user metadata in all
_MAX_INSTRUCTION = 64 * 1024
#: The largest object body read: a configuration (1 MiB) with its tag or padding.
MAX_BODY = 1024 * 1024 + 32

# Which S3EC keys belong to which format; keys outside all three are unrelated user metadata, ignored.
_V3_KEYS = frozenset({"x-amz-c", "x-amz-3", "x-amz-w", "x-amz-t", "x-amz-m", "x-amz-d", "x-amz-i"})
_V2_KEYS = frozenset({"x-amz-key-v2", "x-amz-wrap-alg", "x-amz-cek-alg", "x-amz-tag-len"})
_V1_KEYS = frozenset({"x-amz-key"})
_SHARED_V1_V2 = frozenset({"x-amz-matdesc", "x-amz-iv", "x-amz-unencrypted-content-length"})
_MARKER = "x-amz-crypto-instr-file"
_S3EC_KEYS = _V3_KEYS | _V2_KEYS | _V1_KEYS | _SHARED_V1_V2 | {_MARKER}
_V3_OBJECT_ONLY = frozenset({"x-amz-c", "x-amz-d", "x-amz-i"})
_V3_WRAPS = {"12": WRAP_KMS_CONTEXT, "02": "AES/GCM", "22": "RSA-OAEP-SHA1"}


def _malformed(message: str) -> BootSecretsError:
    return BootSecretsError("malformed", message)


@dataclass(frozen=True)
class Header:
    """What an object's content metadata says (validated; nothing decrypted)."""

    version: int  # 1, 2 or 3
    content_algorithm: str  # CONTENT_V3, CONTENT_GCM or CONTENT_CBC
    wrapping: str  # WRAP_KMS_CONTEXT or WRAP_KMS (others are refused when parsed)
    encrypted_key: bytes = field(repr=False)
    #: The encryption context stored with the object (``x-amz-t``, or ``x-amz-matdesc`` for V1/V2).
    context: Mapping[str, str] = field(default_factory=dict)
    iv: bytes | None = None  # V1, V2
    message_id: bytes | None = None  # V3
    commitment: bytes | None = None  # V3

    @property
    def legacy(self) -> bool:
        """Whether opening needs ``legacy=True``: unauthenticated CBC content, or the plain ``kms`` wrap."""
        return self.content_algorithm == CONTENT_CBC or self.wrapping == WRAP_KMS


def _text(metadata: Mapping[str, str], key: str) -> str:
    value = metadata.get(key)
    if value is None:
        raise _malformed(f"{key} is missing")
    if not isinstance(value, str) or len(value) > _MAX_VALUE:
        raise _malformed(f"{key} is not a string of at most {_MAX_VALUE} characters")
    if not value.isascii():
        # S3 would have RFC 2047-encoded it; the S3EC format keeps metadata US-ASCII.
        raise _malformed(f"{key} has non-US-ASCII characters, which this reader does not accept")
    return value


def _b64(metadata: Mapping[str, str], key: str, size: int | None = None, *, limit: int = _MAX_VALUE) -> bytes:
    try:
        value = base64.b64decode(_text(metadata, key).encode("ascii"), validate=True)
    except binascii.Error:
        raise _malformed(f"{key} is not base64") from None
    if size is not None and len(value) != size:
        raise _malformed(f"{key} is {len(value)} bytes, not {size}")
    if not 1 <= len(value) <= limit:
        raise _malformed(f"{key} is {len(value)} bytes, not 1 to {limit}")
    return value


def _json_object(text: str, what: str) -> dict[str, str]:
    try:
        value = json.loads(text, object_pairs_hook=unique_keys)
    except (ValueError, RecursionError):
        raise _malformed(f"{what} is not a JSON object without repeated keys") from None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise _malformed(f"{what} must be a JSON object of strings")
    return value


def _context(metadata: Mapping[str, str], key: str) -> Mapping[str, str]:
    if key not in metadata:
        return MappingProxyType({})
    return MappingProxyType(_json_object(_text(metadata, key), key))


def parse_header(metadata: Mapping[str, str]) -> Header:
    """The content metadata of an object (S3 object metadata merged with its instruction file, if any).

    :raises BootSecretsError: ``malformed`` (keys of two formats, a key
        missing or of the wrong shape), ``unsupported`` (an algorithm not read here).
    """
    keys = {key for key in metadata if key in _S3EC_KEYS}
    present = [version for version, own in ((3, _V3_KEYS), (2, _V2_KEYS), (1, _V1_KEYS)) if keys & own]
    if len(present) != 1:
        raise _malformed(
            "no S3 Encryption Client metadata (x-amz-c, x-amz-key-v2 or x-amz-key)"
            if not present
            else f"metadata of several formats at once (V{', V'.join(map(str, present))})"
        )
    version = present[0]
    if version == 3:
        if keys & _SHARED_V1_V2:
            raise _malformed(f"V3 metadata with V1/V2 keys: {', '.join(sorted(keys & _SHARED_V1_V2))}")
        return _v3(metadata)
    if version == 2:
        return _v2(metadata)
    return _v1(metadata)


def _v3(metadata: Mapping[str, str]) -> Header:
    content = _text(metadata, "x-amz-c")
    if content != CONTENT_V3:
        raise BootSecretsError("unsupported", f"x-amz-c is {content[:40]!r}: V3 content is {CONTENT_V3!r}")
    wrap_code = _text(metadata, "x-amz-w")
    wrapping = _V3_WRAPS.get(wrap_code)
    if wrapping != WRAP_KMS_CONTEXT:
        shown = wrapping or f"unknown ({wrap_code[:40]!r})"
        raise BootSecretsError("unsupported", f"x-amz-w is {shown}: only KMS keys (12, kms+context) are read")
    if "x-amz-m" in metadata:
        raise _malformed("x-amz-m (a raw key's material description) on a KMS-wrapped object")
    return Header(
        version=3,
        content_algorithm=content,
        wrapping=wrapping,
        encrypted_key=_b64(metadata, "x-amz-3", limit=_MAX_ENCRYPTED_KEY),
        context=_context(metadata, "x-amz-t"),
        message_id=_b64(metadata, "x-amz-i", _MESSAGE_ID_SIZE),
        commitment=_b64(metadata, "x-amz-d", _COMMITMENT_SIZE),
    )


def _v2(metadata: Mapping[str, str]) -> Header:
    content = _text(metadata, "x-amz-cek-alg")
    wrapping = _text(metadata, "x-amz-wrap-alg")
    if wrapping not in (WRAP_KMS_CONTEXT, WRAP_KMS):
        raise BootSecretsError("unsupported", f"x-amz-wrap-alg is {wrapping[:40]!r}: only KMS keys are read")
    if content == CONTENT_GCM:
        if metadata.get("x-amz-tag-len") != "128":
            raise _malformed("x-amz-tag-len must be '128' for AES/GCM content")
        iv_size = _GCM_IV_SIZE
    elif content == CONTENT_CBC:
        if "x-amz-tag-len" in metadata:
            raise _malformed("x-amz-tag-len is present for AES/CBC content")
        iv_size = _CBC_IV_SIZE
    else:
        raise BootSecretsError("unsupported", f"x-amz-cek-alg is {content[:40]!r}: not an S3EC content algorithm")
    return Header(
        version=2,
        content_algorithm=content,
        wrapping=wrapping,
        encrypted_key=_b64(metadata, "x-amz-key-v2", limit=_MAX_ENCRYPTED_KEY),
        context=_context(metadata, "x-amz-matdesc"),
        iv=_b64(metadata, "x-amz-iv", iv_size),
    )


def _v1(metadata: Mapping[str, str]) -> Header:
    # V1 objects have no wrapping or content key: AES-CBC content, and (for KMS) the plain kms wrap.
    return Header(
        version=1,
        content_algorithm=CONTENT_CBC,
        wrapping=WRAP_KMS,
        encrypted_key=_b64(metadata, "x-amz-key", limit=_MAX_ENCRYPTED_KEY),
        context=_context(metadata, "x-amz-matdesc"),
        iv=_b64(metadata, "x-amz-iv", _CBC_IV_SIZE),
    )


def needs_instruction(metadata: Mapping[str, str]) -> bool:
    """Whether the object metadata lacks the encrypted data key, so that the ``.instruction`` object holds it."""
    return not any(key in metadata for key in ("x-amz-3", "x-amz-key-v2", "x-amz-key"))


def merge_instruction(metadata: Mapping[str, str], instruction: bytes) -> dict[str, str]:
    """The object metadata completed by its instruction file (a JSON object of S3EC metadata keys).

    :raises BootSecretsError: ``malformed``: not such a JSON object, a key that
        is not the S3EC's, a V3 key that must live in the object metadata, or
        a key present in both.
    """
    if len(instruction) > _MAX_INSTRUCTION:
        raise _malformed(f"the instruction file is {len(instruction)} bytes, over {_MAX_INSTRUCTION}")
    try:
        text = instruction.decode("utf-8")
    except UnicodeDecodeError:
        raise _malformed("the instruction file is not UTF-8") from None
    stored = _json_object(text, "the instruction file")
    foreign = sorted(key for key in stored if key not in _S3EC_KEYS)
    if foreign:
        raise _malformed(f"the instruction file has keys that are not S3EC metadata: {', '.join(foreign)[:200]}")
    misplaced = sorted(set(stored) & _V3_OBJECT_ONLY)
    if misplaced:
        raise _malformed(f"the instruction file holds {', '.join(misplaced)}, which V3 keeps in the object metadata")
    both = sorted(set(stored) & {key for key in metadata if key in _S3EC_KEYS})
    if both:
        raise _malformed(f"{', '.join(both)} in both the object metadata and the instruction file")
    return {**metadata, **stored}


def request_context(header: Header, requested: Mapping[str, str]) -> dict[str, str]:
    """The encryption context to send KMS: the stored one, once it is checked against ``requested``.

    For ``kms+context``, the stored context less the client's reserved keys
    must equal ``requested``, and its ``aws:x-amz-cek-alg`` must name the
    object's content algorithm; for ``kms``, ``requested`` must be empty.

    :raises BootSecretsError: ``context``.
    """
    reserved = sorted(set(requested) & _RESERVED_CONTEXT_KEYS)
    if reserved:
        raise BootSecretsError("context", f"{', '.join(reserved)} is reserved for the S3 Encryption Client")
    stored = dict(header.context)
    if header.wrapping == WRAP_KMS:
        if requested:
            raise BootSecretsError("context", "the object is wrapped with plain kms, which carries no context")
        return stored
    if stored.get(CEK_CONTEXT_KEY) != header.content_algorithm:
        raise BootSecretsError(
            "context", f"the stored context's {CEK_CONTEXT_KEY} does not name {header.content_algorithm!r}"
        )
    own = {key: value for key, value in stored.items() if key not in _RESERVED_CONTEXT_KEYS}
    if own != dict(requested):
        raise BootSecretsError(
            "context",
            f"the object's encryption context has keys {sorted(own)}, with values that are not the ones asked "
            f"for (keys {sorted(requested)})",
        )
    return stored


def _hkdf(data_key: bytes, message_id: bytes, label: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA512(), length=length, salt=message_id, info=_SUITE_ID + label).derive(data_key)


def encrypt_v3(
    plaintext: bytes, data_key: bytes, encrypted_key: bytes, context: Mapping[str, str]
) -> tuple[dict[str, str], bytes]:
    """V3 metadata and body for ``plaintext`` under ``data_key`` (from GenerateDataKey with ``context``)."""
    if len(data_key) != _DATA_KEY_SIZE:
        raise ValueError(f"the data key must be {_DATA_KEY_SIZE} bytes")
    message_id = os.urandom(_MESSAGE_ID_SIZE)
    while not any(message_id):  # as the spec advises: all zeros means a broken generator, not luck
        message_id = os.urandom(_MESSAGE_ID_SIZE)
    commitment = _hkdf(data_key, message_id, b"COMMITKEY", _COMMITMENT_SIZE)
    body = AESGCM(_hkdf(data_key, message_id, b"DERIVEKEY", _DATA_KEY_SIZE)).encrypt(_GCM_IV, plaintext, _SUITE_ID)
    metadata = {
        "x-amz-c": CONTENT_V3,
        "x-amz-3": base64.b64encode(encrypted_key).decode("ascii"),
        "x-amz-w": "12",
        "x-amz-t": json.dumps(dict(context), separators=(",", ":")),
        "x-amz-d": base64.b64encode(commitment).decode("ascii"),
        "x-amz-i": base64.b64encode(message_id).decode("ascii"),
    }
    return metadata, body


def decrypt_content(header: Header, data_key: bytes, body: bytes) -> bytes:
    """The plaintext of ``body``; for V3, only once the key commitment matches.

    :raises BootSecretsError: ``commitment``, ``decrypt``.
    """
    if len(data_key) != _DATA_KEY_SIZE:
        raise BootSecretsError("decrypt", f"the data key is {len(data_key)} bytes, not {_DATA_KEY_SIZE}")
    if len(body) > MAX_BODY:
        raise _malformed(f"the body is {len(body)} bytes, over {MAX_BODY}")
    if header.version == 3:
        assert header.message_id is not None and header.commitment is not None  # set by _v3
        derived = _hkdf(data_key, header.message_id, b"COMMITKEY", _COMMITMENT_SIZE)
        if not hmac.compare_digest(derived, header.commitment):
            raise BootSecretsError("commitment", "the key commitment (x-amz-d) does not match the data key")
        key = _hkdf(data_key, header.message_id, b"DERIVEKEY", _DATA_KEY_SIZE)
        return _gcm(key, _GCM_IV, body, _SUITE_ID)
    assert header.iv is not None  # set by _v1 and _v2
    if header.content_algorithm == CONTENT_GCM:
        return _gcm(data_key, header.iv, body, None)
    return _cbc(data_key, header.iv, body)


def _gcm(key: bytes, iv: bytes, body: bytes, associated: bytes | None) -> bytes:
    if len(body) < _TAG_SIZE:
        raise BootSecretsError("decrypt", f"the body is {len(body)} bytes, shorter than the GCM tag")
    try:
        return AESGCM(key).decrypt(iv, body, associated)
    except InvalidTag:
        raise BootSecretsError(
            "decrypt", "the content does not decrypt (AES-GCM tag mismatch: changed bytes)"
        ) from None


def _cbc(key: bytes, iv: bytes, body: bytes) -> bytes:
    if not body or len(body) % _CBC_IV_SIZE:
        raise BootSecretsError("decrypt", "the AES-CBC body is not a whole number of blocks")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(body) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise BootSecretsError("decrypt", "the AES-CBC content does not decrypt (bad padding)") from None
