"""The boot-secrets parsers and checks: each rejection with the input that triggers it, then hypothesis over them.

Parsers: the configuration (JSON, YAML, TOML), the S3EC content metadata,
the instruction file, the local file; checks: the encryption context, the
key commitment and the content, KMS's answer, the allow-lists, the command.
Every test names the input, the code (or field) and a fragment of the
message. Hypothesis then shows that any input gives a value or one of our
errors, nothing else.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from _boot_secrets_support import CBC, GCM, legacy_object
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nitro_attest.boot_secrets import (
    MAX_CONFIG,
    MAX_FILE,
    AllowList,
    BootSecretsError,
    EncryptedObject,
    SecretFile,
    SecretsConfig,
    SecretsConfigError,
    _envelope,
    _local,
    config_format,
    decrypt,
    encrypt,
    get_object,
    launch,
    parse_config,
    parse_s3_url,
)
from nitro_attest.testing import TestEnclave

_DATA_KEY = bytes(range(32))
_ENCRYPTED_KEY = b"a KMS CiphertextBlob"
_PLAINTEXT = b'{"env":{"A":"b"},"files":[]}'
_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _v3(context: Mapping[str, str] | None = None) -> tuple[dict[str, str], bytes]:
    full = {"app": "web", "aws:x-amz-cek-alg": "115"} if context is None else dict(context)
    return _envelope.encrypt_v3(_PLAINTEXT, _DATA_KEY, _ENCRYPTED_KEY, full)


def _legacy(version: int, content: str, wrap: str) -> tuple[dict[str, str], bytes]:
    context = {"kms_cmk_id": _ARN} if wrap == "kms" else {"app": "web", "aws:x-amz-cek-alg": content}
    return legacy_object(
        version,
        content,
        wrap,
        data_key=_DATA_KEY,
        encrypted_key=_ENCRYPTED_KEY,
        context=context,
        plaintext=_PLAINTEXT,
    )


_V3_CEK = '{"aws:x-amz-cek-alg":"115"}'


def _changed(metadata: Mapping[str, Any], change: Mapping[str, Any]) -> dict[str, Any]:
    result = {**metadata, **change}
    return {key: value for key, value in result.items() if value is not None}


@contextlib.contextmanager
def _refused(code: str, fragment: str) -> Iterator[None]:
    """The block raises a :class:`BootSecretsError` with ``code`` whose message holds ``fragment``."""
    with pytest.raises(BootSecretsError) as caught:
        yield
    assert caught.value.code == code, caught.value
    assert fragment in caught.value.message, caught.value


@contextlib.contextmanager
def _config_error(field: str, fragment: str) -> Iterator[None]:
    """The block raises a :class:`SecretsConfigError` naming ``field``, whose message holds ``fragment``."""
    with pytest.raises(SecretsConfigError) as caught:
        yield
    assert caught.value.field == field, caught.value
    assert fragment in str(caught.value), caught.value


# --------------------------------------------------------------------------- content metadata

_V3_CASES = [
    # unsupported: another content algorithm, raw-key wrapping, unknown wrapping codes
    ({"x-amz-c": "116"}, "unsupported", "x-amz-c is '116'"),
    ({"x-amz-c": "AES/GCM/NoPadding"}, "unsupported", "x-amz-c is 'AES/GCM/NoPadding'"),
    ({"x-amz-w": "02"}, "unsupported", "x-amz-w is AES/GCM: only KMS keys"),
    ({"x-amz-w": "22"}, "unsupported", "x-amz-w is RSA-OAEP-SHA1: only KMS keys"),
    ({"x-amz-w": "13"}, "unsupported", "x-amz-w is unknown ('13')"),
    ({"x-amz-w": "kms+context"}, "unsupported", "x-amz-w is unknown ('kms+context')"),
    # malformed: keys of other formats, missing keys, bad values
    ({"x-amz-m": "{}"}, "malformed", "x-amz-m (a raw key's material description)"),
    ({"x-amz-iv": _b64(bytes(12))}, "malformed", "V3 metadata with V1/V2 keys: x-amz-iv"),
    ({"x-amz-matdesc": "{}"}, "malformed", "V3 metadata with V1/V2 keys: x-amz-matdesc"),
    ({"x-amz-key-v2": "AAAA"}, "malformed", "metadata of several formats at once (V3, V2)"),
    ({"x-amz-key": "AAAA"}, "malformed", "metadata of several formats at once (V3, V1)"),
    ({"x-amz-c": None}, "malformed", "x-amz-c is missing"),
    ({"x-amz-w": None}, "malformed", "x-amz-w is missing"),
    ({"x-amz-3": None}, "malformed", "x-amz-3 is missing"),
    ({"x-amz-i": None}, "malformed", "x-amz-i is missing"),
    ({"x-amz-d": None}, "malformed", "x-amz-d is missing"),
    ({"x-amz-3": "not base64!"}, "malformed", "x-amz-3 is not base64"),
    ({"x-amz-3": "AAA"}, "malformed", "x-amz-3 is not base64"),
    ({"x-amz-3": ""}, "malformed", "x-amz-3 is 0 bytes, not 1 to 6144"),
    ({"x-amz-3": _b64(bytes(6145))}, "malformed", "x-amz-3 is 6145 bytes, not 1 to 6144"),
    ({"x-amz-i": _b64(bytes(27))}, "malformed", "x-amz-i is 27 bytes, not 28"),
    ({"x-amz-d": _b64(bytes(29))}, "malformed", "x-amz-d is 29 bytes, not 28"),
    ({"x-amz-t": "x" * 16385}, "malformed", "x-amz-t is not a string of at most 16384 characters"),
    ({"x-amz-c": 115}, "malformed", "x-amz-c is not a string of at most 16384 characters"),
    ({"x-amz-t": '{"app":"w\u00e9b"}'}, "malformed", "x-amz-t has non-US-ASCII"),
    ({"x-amz-t": "{"}, "malformed", "x-amz-t is not a JSON object without repeated keys"),
    ({"x-amz-t": '{"a":"1","a":"2"}'}, "malformed", "x-amz-t is not a JSON object without repeated keys"),
    ({"x-amz-t": "[" * 16000}, "malformed", "x-amz-t is not a JSON object without repeated keys"),
    ({"x-amz-t": "[]"}, "malformed", "x-amz-t must be a JSON object of strings"),
    ({"x-amz-t": '{"a":1}'}, "malformed", "x-amz-t must be a JSON object of strings"),
]


@pytest.mark.parametrize(("change", "code", "fragment"), _V3_CASES, ids=[case[2] for case in _V3_CASES])
def test_v3_metadata_rejections(change: dict[str, Any], code: str, fragment: str) -> None:
    metadata, _ = _v3()
    with _refused(code, fragment):
        _envelope.parse_header(_changed(metadata, change))


_V2_CASES = [
    ({"x-amz-wrap-alg": "AES/GCM"}, "unsupported", "x-amz-wrap-alg is 'AES/GCM': only KMS keys"),
    ({"x-amz-wrap-alg": "AESWrap"}, "unsupported", "x-amz-wrap-alg is 'AESWrap': only KMS keys"),
    ({"x-amz-wrap-alg": "RSA-OAEP-SHA1"}, "unsupported", "x-amz-wrap-alg is 'RSA-OAEP-SHA1'"),
    (
        {"x-amz-wrap-alg": "RSA/ECB/OAEPWithSHA-256AndMGF1Padding"},
        "unsupported",
        "x-amz-wrap-alg is 'RSA/ECB/OAEPWithSHA-256AndMGF1Padding'",
    ),
    ({"x-amz-wrap-alg": "12"}, "unsupported", "x-amz-wrap-alg is '12'"),
    ({"x-amz-cek-alg": "AES/CTR/NoPadding"}, "unsupported", "x-amz-cek-alg is 'AES/CTR/NoPadding'"),
    ({"x-amz-cek-alg": "115"}, "unsupported", "x-amz-cek-alg is '115'"),
    ({"x-amz-tag-len": None}, "malformed", "x-amz-tag-len must be '128' for AES/GCM content"),
    ({"x-amz-tag-len": "96"}, "malformed", "x-amz-tag-len must be '128' for AES/GCM content"),
    ({"x-amz-iv": _b64(bytes(16))}, "malformed", "x-amz-iv is 16 bytes, not 12"),
    ({"x-amz-iv": None}, "malformed", "x-amz-iv is missing"),
    ({"x-amz-wrap-alg": None}, "malformed", "x-amz-wrap-alg is missing"),
    ({"x-amz-cek-alg": None}, "malformed", "x-amz-cek-alg is missing"),
    ({"x-amz-matdesc": "{"}, "malformed", "x-amz-matdesc is not a JSON object without repeated keys"),
    ({"x-amz-key-v2": "***"}, "malformed", "x-amz-key-v2 is not base64"),
    ({"x-amz-key": "AAAA"}, "malformed", "metadata of several formats at once (V2, V1)"),
]


@pytest.mark.parametrize(("change", "code", "fragment"), _V2_CASES, ids=[case[2] for case in _V2_CASES])
def test_v2_metadata_rejections(change: dict[str, Any], code: str, fragment: str) -> None:
    metadata, _ = _legacy(2, GCM, "kms+context")
    with _refused(code, fragment):
        _envelope.parse_header(_changed(metadata, change))


def test_v2_cbc_content_with_a_tag_length_is_malformed() -> None:
    metadata, _ = _legacy(2, CBC, "kms+context")
    with _refused("malformed", "x-amz-tag-len is present for AES/CBC content"):
        _envelope.parse_header({**metadata, "x-amz-tag-len": "128"})


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"x-amz-iv": _b64(bytes(12))}, "x-amz-iv is 12 bytes, not 16"),
        ({"x-amz-key": ""}, "x-amz-key is 0 bytes, not 1 to 6144"),
        ({"x-amz-matdesc": '{"kms_cmk_id": ["arn"]}'}, "x-amz-matdesc must be a JSON object of strings"),
    ],
)
def test_v1_metadata_rejections(change: dict[str, Any], fragment: str) -> None:
    metadata, _ = _legacy(1, CBC, "kms")
    with _refused("malformed", fragment):
        _envelope.parse_header(_changed(metadata, change))


@pytest.mark.parametrize("metadata", [{}, {"other": "x", "x-amz-meta-app": "web"}], ids=["empty", "unrelated"])
def test_no_s3ec_metadata_is_malformed(metadata: dict[str, str]) -> None:
    with _refused("malformed", "no S3 Encryption Client metadata (x-amz-c, x-amz-key-v2 or x-amz-key)"):
        _envelope.parse_header(metadata)


@pytest.mark.parametrize(
    ("version", "content", "wrap", "legacy"),
    [
        (3, "115", "kms+context", False),
        (2, GCM, "kms+context", False),
        (2, CBC, "kms+context", True),
        (2, GCM, "kms", True),
        (2, CBC, "kms", True),
        (1, CBC, "kms", True),
    ],
)
def test_each_format_parses_and_says_whether_it_is_legacy(version: int, content: str, wrap: str, legacy: bool) -> None:
    metadata, body = _v3() if version == 3 else _legacy(version, content, wrap)
    header = _envelope.parse_header(metadata)
    assert (header.version, header.content_algorithm, header.wrapping, header.legacy) == (
        version,
        content,
        wrap,
        legacy,
    )
    assert header.encrypted_key == _ENCRYPTED_KEY
    assert _envelope.decrypt_content(header, _DATA_KEY, body) == _PLAINTEXT


class _NoAttester:
    def attest(
        self, *, public_key: bytes | None = None, nonce: bytes | None = None, user_data: bytes | None = None
    ) -> bytes:
        raise AssertionError("attested before the format was checked")


@pytest.mark.parametrize(
    ("version", "content", "wrap", "fragment"),
    [
        (1, CBC, "kms", "the object uses AES-CBC content (unauthenticated): opened only with legacy=True (--legacy)"),
        (2, CBC, "kms+context", "the object uses AES-CBC content (unauthenticated)"),
        (2, CBC, "kms", "the object uses AES-CBC content (unauthenticated)"),
        (2, GCM, "kms", "the object uses the plain kms wrap: opened only with legacy=True (--legacy)"),
    ],
)
def test_legacy_objects_are_unsupported_without_legacy(version: int, content: str, wrap: str, fragment: str) -> None:
    metadata, body = _legacy(version, content, wrap)
    with _refused("unsupported", fragment):
        decrypt(EncryptedObject(metadata, body), kms=None, attester=_NoAttester(), key_id=_ARN, context={"app": "web"})


# --------------------------------------------------------------------------- instruction files


def _object_part() -> tuple[dict[str, str], dict[str, str]]:
    """V3 metadata split as the specification's instruction-file strategy splits it: (object, instruction)."""
    metadata, _ = _v3()
    own = {key: metadata[key] for key in ("x-amz-c", "x-amz-d", "x-amz-i")}
    return own, {key: value for key, value in metadata.items() if key not in own}


def test_an_instruction_file_completes_v3_object_metadata() -> None:
    own, instruction = _object_part()
    assert _envelope.needs_instruction(own) and not _envelope.needs_instruction({**own, **instruction})
    merged = _envelope.merge_instruction(own, json.dumps(instruction).encode())
    assert _envelope.parse_header(merged).encrypted_key == _ENCRYPTED_KEY


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b" " * (64 * 1024 + 1), "the instruction file is 65537 bytes, over 65536"),
        (b"\xff{}", "the instruction file is not UTF-8"),
        (b"{", "the instruction file is not a JSON object without repeated keys"),
        (b'{"x-amz-3":"AAAA","x-amz-3":"AAAA"}', "the instruction file is not a JSON object without repeated keys"),
        (b"[" * 16000, "the instruction file is not a JSON object without repeated keys"),
        (b"[]", "the instruction file must be a JSON object of strings"),
        (b'{"x-amz-w": 12}', "the instruction file must be a JSON object of strings"),
        (b'{"x-amz-3":"AAAA","nitro-attest-key-id":"k"}', "keys that are not S3EC metadata: nitro-attest-key-id"),
        (b'{"x-amz-3":"AAAA","x-amz-c":"115"}', "holds x-amz-c, which V3 keeps in the object metadata"),
        (b'{"x-amz-3":"AAAA","x-amz-d":"AAAA"}', "holds x-amz-d, which V3 keeps in the object metadata"),
        (b'{"x-amz-3":"AAAA","x-amz-i":"AAAA"}', "holds x-amz-i, which V3 keeps in the object metadata"),
    ],
)
def test_instruction_file_rejections(data: bytes, fragment: str) -> None:
    own, _ = _object_part()
    with _refused("malformed", fragment):
        _envelope.merge_instruction(own, data)


def test_a_key_in_both_the_object_metadata_and_the_instruction_file_is_malformed() -> None:
    own, instruction = _object_part()
    with _refused("malformed", "x-amz-w in both the object metadata and the instruction file"):
        _envelope.merge_instruction({**own, "x-amz-w": "12"}, json.dumps(instruction).encode())


class _S3:
    """A boto3 S3 client's get_object for fixed objects: ``{key: (metadata, body, ContentLength)}``."""

    def __init__(self, objects: dict[str, tuple[dict[str, str], bytes, int]]) -> None:
        self.objects = objects

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        metadata, body, length = self.objects[Key]
        return {"Metadata": metadata, "Body": io.BytesIO(body), "ContentLength": length}


def test_get_object_refuses_a_body_over_the_bound_by_its_length_and_by_its_bytes() -> None:
    big = bytes(_envelope.MAX_BODY + 1)
    with _refused("malformed", f"s3://b/k is {len(big)} bytes, over {_envelope.MAX_BODY}"):
        get_object(_S3({"k": (_v3()[0], big, len(big))}), "b", "k")
    with _refused("malformed", f"s3://b/k is over {_envelope.MAX_BODY} bytes"):  # a length that lies
        get_object(_S3({"k": (_v3()[0], big, 10)}), "b", "k")


def test_get_object_refuses_an_instruction_file_over_64_kib() -> None:
    own, _ = _object_part()
    objects = {"k": (own, b"body", 4), "k.instruction": ({}, bytes(64 * 1024 + 1), 64 * 1024 + 1)}
    with _refused("malformed", "s3://b/k.instruction is 65537 bytes, over 65536"):
        get_object(_S3(objects), "b", "k")


def test_get_object_merges_the_instruction_file() -> None:
    own, instruction = _object_part()
    data = json.dumps(instruction).encode()
    blob = get_object(_S3({"k": (own, b"body", 4), "k.instruction": ({}, data, len(data))}), "b", "k")
    assert blob.metadata == {**own, **instruction} and blob.body == b"body"


@pytest.mark.parametrize("url", ["s3://bucket", "s3://bucket/", "s3:///key", "https://bucket/key", "bucket/key"])
def test_parse_s3_url_rejections(url: str) -> None:
    with _config_error("", f"{url!r} is not s3://BUCKET/KEY"):
        parse_s3_url(url)


# --------------------------------------------------------------------------- local files


def _file(**change: Any) -> bytes:
    metadata, body = _v3()
    document = {"format": _local.FILE_FORMAT, "metadata": metadata, "body_base64": _b64(body), **change}
    return json.dumps({key: value for key, value in document.items() if value is not None}).encode()


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b" " * (_local.MAX_FILE + 1), f"the file is {_local.MAX_FILE + 1} bytes, over {_local.MAX_FILE}"),
        (b"\xff\xfe{}", "not a boot-secrets file: not a JSON object without repeated keys"),
        (b"{", "not a boot-secrets file: not a JSON object without repeated keys"),
        (b'{"format":"a","format":"b"}', "not a boot-secrets file: not a JSON object without repeated keys"),
        (b"[" * 100000, "not a boot-secrets file: not a JSON object without repeated keys"),
        (b"[]", 'not a boot-secrets file: no "format": "nitro-attest/boot-secrets/1"'),
        (_file(format="nitro-attest/boot-secrets/2"), 'no "format": "nitro-attest/boot-secrets/1"'),
        (_file(format=None), 'no "format": "nitro-attest/boot-secrets/1"'),
        (_file(extra=1), "a boot-secrets file has exactly format, metadata and body_base64"),
        (_file(body_base64=None), "a boot-secrets file has exactly format, metadata and body_base64"),
        (_file(metadata=[]), "metadata must be an object of at most 64 strings"),
        (_file(metadata={f"k{i}": "v" for i in range(65)}), "metadata must be an object of at most 64 strings"),
        (_file(metadata={"x-amz-c": 115}), "metadata must map strings to strings"),
        (_file(body_base64=12), "body_base64 must be a base64 string"),
        (_file(body_base64="\u00e9"), "body_base64 is not base64"),
        (_file(body_base64="abc"), "body_base64 is not base64"),
    ],
    ids=lambda value: value[:40] if isinstance(value, str) else None,
)
def test_local_file_rejections(data: bytes, fragment: str) -> None:
    with _refused("malformed", fragment):
        EncryptedObject.from_file(data)


def test_a_local_file_round_trips() -> None:
    blob = EncryptedObject.from_file(_file())
    assert EncryptedObject.from_file(blob.to_file()) == blob


# --------------------------------------------------------------------------- encryption context


def _header(context: Mapping[str, str] | None = None) -> _envelope.Header:
    return _envelope.parse_header(_v3(context)[0])


@pytest.mark.parametrize(
    ("header", "requested", "fragment"),
    [
        (_header(), {"app": "web", "aws:x-amz-cek-alg": "115"}, "aws:x-amz-cek-alg is reserved for the S3"),
        (_header(), {"app": "web", "kms_cmk_id": _ARN}, "kms_cmk_id is reserved for the S3 Encryption Client"),
        (_header({"app": "web"}), {"app": "web"}, "the stored context's aws:x-amz-cek-alg does not name '115'"),
        (_header({"aws:x-amz-cek-alg": GCM}), {}, "the stored context's aws:x-amz-cek-alg does not name '115'"),
        (
            _envelope.parse_header(
                {**_legacy(2, GCM, "kms+context")[0], "x-amz-matdesc": '{"aws:x-amz-cek-alg":"115"}'}
            ),
            {"app": "web"},
            "does not name 'AES/GCM/NoPadding'",
        ),
        (_header(), {"app": "api"}, "the object's encryption context has keys ['app'], with values that are not"),
        (_header(), {}, "has keys ['app'], with values that are not the ones asked for (keys [])"),
        (_header(), {"app": "web", "tier": "db"}, "(keys ['app', 'tier'])"),
        (_envelope.parse_header(_legacy(2, GCM, "kms")[0]), {"app": "web"}, "wrapped with plain kms, which carries"),
    ],
)
def test_context_rejections(header: _envelope.Header, requested: dict[str, str], fragment: str) -> None:
    with _refused("context", fragment):
        _envelope.request_context(header, requested)


def test_the_stored_context_is_what_kms_is_sent() -> None:
    assert _envelope.request_context(_header(), {"app": "web"}) == {"app": "web", "aws:x-amz-cek-alg": "115"}
    legacy = _envelope.parse_header(_legacy(1, CBC, "kms")[0])
    assert _envelope.request_context(legacy, {}) == {"kms_cmk_id": _ARN}


class _NoKms:
    def generate_data_key(self, **request: Any) -> dict[str, Any]:
        raise AssertionError("asked KMS before the context was checked")


@pytest.mark.parametrize(
    ("context", "field", "fragment"),
    [
        ({"": "x"}, "context", "keys and values must be strings, keys not empty"),
        ({"app": 1}, "context", "keys and values must be strings, keys not empty"),
        ({"app": "w\u00e9b"}, "context.app", "keys and values must be printable US-ASCII"),
        ({"app": "a\nb"}, "context.app", "keys and values must be printable US-ASCII"),
        ({"aws:x-amz-cek-alg": "115"}, "context.aws:x-amz-cek-alg", "is reserved for the S3 Encryption Client"),
        ({"kms_cmk_id": _ARN}, "context.kms_cmk_id", "is reserved for the S3 Encryption Client"),
        ({"k": "v" * 8192}, "context", "over KMS's 8192 characters"),
    ],
)
def test_encrypt_context_rejections(context: dict[str, Any], field: str, fragment: str) -> None:
    with _config_error(field, fragment):
        encrypt(SecretsConfig(env={"A": "b"}), kms=_NoKms(), key_id="alias/k", context=context)


def test_encrypt_takes_a_secrets_config_only() -> None:
    with pytest.raises(TypeError, match="config must be a SecretsConfig, not dict"):
        encrypt({"env": {}}, kms=_NoKms(), key_id="alias/k")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- commitment and content


def test_content_rejections_v3() -> None:
    metadata, body = _v3()
    header = _envelope.parse_header(metadata)
    with _refused("decrypt", "the data key is 16 bytes, not 32"):
        _envelope.decrypt_content(header, _DATA_KEY[:16], body)
    with _refused("malformed", f"the body is {_envelope.MAX_BODY + 1} bytes, over {_envelope.MAX_BODY}"):
        _envelope.decrypt_content(header, _DATA_KEY, bytes(_envelope.MAX_BODY + 1))
    with _refused("commitment", "the key commitment (x-amz-d) does not match the data key"):
        _envelope.decrypt_content(header, bytes(32), body)
    other_id = _envelope.parse_header({**metadata, "x-amz-i": _b64(bytes(range(28)))})
    with _refused("commitment", "the key commitment (x-amz-d) does not match the data key"):
        _envelope.decrypt_content(other_id, _DATA_KEY, body)
    flipped = bytes([body[0] ^ 1]) + body[1:]
    with _refused("decrypt", "the content does not decrypt (AES-GCM tag mismatch: changed bytes)"):
        _envelope.decrypt_content(header, _DATA_KEY, flipped)
    with _refused("decrypt", "the body is 15 bytes, shorter than the GCM tag"):
        _envelope.decrypt_content(header, _DATA_KEY, body[:15])


def test_content_rejections_v2_and_v1() -> None:
    gcm_metadata, gcm_body = _legacy(2, GCM, "kms+context")
    gcm = _envelope.parse_header(gcm_metadata)
    with _refused("decrypt", "AES-GCM tag mismatch"):
        _envelope.decrypt_content(gcm, _DATA_KEY, gcm_body[:-1] + bytes([gcm_body[-1] ^ 1]))
    cbc = _envelope.parse_header(_legacy(1, CBC, "kms")[0])
    for body in (b"", bytes(17)):
        with _refused("decrypt", "the AES-CBC body is not a whole number of blocks"):
            _envelope.decrypt_content(cbc, _DATA_KEY, body)
    # One block whose last plaintext byte is 0: not PKCS#7 padding.
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # noqa: PLC0415

    assert cbc.iv is not None
    encryptor = Cipher(algorithms.AES(_DATA_KEY), modes.CBC(cbc.iv)).encryptor()
    unpadded = encryptor.update(bytes(16)) + encryptor.finalize()
    with _refused("decrypt", "the AES-CBC content does not decrypt (bad padding)"):
        _envelope.decrypt_content(cbc, _DATA_KEY, unpadded)


# --------------------------------------------------------------------------- KMS's answer


@pytest.fixture(scope="module")
def enclave() -> TestEnclave:
    return TestEnclave.create()


class _Kms:
    """A boto3 KMS client whose Decrypt answers ``answer`` (or raises it) and records the request."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.requests: list[dict[str, Any]] = []

    def decrypt(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        if isinstance(self.answer, BaseException):
            raise self.answer
        return dict(self.answer)


def test_kms_rejections(enclave: TestEnclave) -> None:
    from botocore.exceptions import ClientError  # type: ignore[import-untyped]  # noqa: PLC0415

    blob = EncryptedObject(*_v3())
    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not this enclave"}}, "Decrypt")
    with _refused("kms", "KMS refused Decrypt: AccessDeniedException: not this enclave"):
        decrypt(blob, kms=_Kms(denied), attester=enclave, key_id=_ARN, context={"app": "web"})
    with _refused("kms", "KMS answered without CiphertextForRecipient (it ignored Recipient)"):
        decrypt(
            blob,
            kms=_Kms({"KeyId": _ARN, "Plaintext": _DATA_KEY}),
            attester=enclave,
            key_id=_ARN,
            context={"app": "web"},
        )
    kms = _Kms({"KeyId": _ARN, "CiphertextForRecipient": b"not CMS"})
    with _refused("kms", "the CiphertextForRecipient does not open"):
        decrypt(blob, kms=kms, attester=enclave, context={"app": "web"}, key_id=_ARN)
    request = kms.requests[0]
    assert request["EncryptionContext"] == {"app": "web", "aws:x-amz-cek-alg": "115"} and request["KeyId"] == _ARN
    assert request["Recipient"]["KeyEncryptionAlgorithm"] == "RSAES_OAEP_SHA_256"


# --------------------------------------------------------------------------- configurations


def _config(document: Any) -> bytes:
    return json.dumps(document).encode()


def _one(**entry: Any) -> bytes:
    return _config({"files": [{"path": "/run/secrets/a", "content": "x", **entry}]})


_CONFIG_CASES: list[tuple[bytes, str, str, str]] = [
    (b" " * (MAX_CONFIG + 1), "json", "", f"the configuration is {MAX_CONFIG + 1} bytes, over {MAX_CONFIG}"),
    (b"\xff", "json", "", "the configuration is not UTF-8 text"),
    (b"[" * 100000, "json", "", "the JSON is nested too deeply"),
    (b"{", "json", "", "not JSON: Expecting property name"),
    (b'{"env":{},"env":{}}', "json", "", "not JSON: the key 'env' appears twice"),
    (b'{"env":{"A":NaN}}', "json", "", "not JSON: NaN is not JSON"),
    (b"a: [", "yaml", "", "not YAML (syntax): line 1, column 5"),
    (b"[" * 3000, "yaml", "", "the YAML is nested too deeply"),
    (b"a = ", "toml", "", "not TOML: Invalid value"),
    (b"a = " + b"[" * 100000, "toml", "", "the TOML is nested too deeply"),
    (b"[]", "json", "", 'the configuration must be an object {"env": {...}, "files": [...]}'),
    (_config({"env": {}, "extra": 1}), "json", "extra", "unknown key: a configuration has only 'env' and 'files'"),
    (_config({"env": []}), "json", "env", "must be an object of NAME: value"),
    (_config({"files": {}}), "json", "files", "must be a list of {path, content | content_base64, mode}"),
    (_config({"files": [{}] * 65}), "json", "files", "65 files, over 64"),
    (_config({"files": ["/run/a"]}), "json", "files[0]", "must be an object {path, content | content_base64, mode}"),
    (_one(owner="root"), "json", "files[0].owner", "unknown key: a file has path, content or content_base64, mode"),
    (_config({"files": [{"content": "x"}]}), "json", "files[0].path", "required, a string"),
    (_one(content_base64="eA=="), "json", "files[0]", "give exactly one of content (text) and content_base64"),
    (_config({"files": [{"path": "/run/a"}]}), "json", "files[0]", "give exactly one of content (text) and"),
    (_one(content=1), "json", "files[0].content", "must be a string (use content_base64 for bytes)"),
    (_one(content="\ud800"), "json", "files[0].content", "is not valid Unicode text"),
    (_config({"files": [{"path": "/run/a", "content_base64": 1}]}), "json", "files[0].content_base64", "must be a"),
    (_config({"files": [{"path": "/run/a", "content_base64": "\u00e9"}]}), "json", "files[0].content_base64", "not"),
    (_config({"files": [{"path": "/run/a", "content_base64": "abc"}]}), "json", "files[0].content_base64", "not"),
    (_one(mode=384), "json", "files[0].mode", 'must be octal digits in a string, such as "0400"'),
    (_one(mode="0800"), "json", "files[0].mode", "must be octal digits in a string"),
    (_one(mode="00600"), "json", "files[0].mode", "must be octal digits in a string"),
    (_one(mode="0644"), "json", "files[0].mode", "0644 is wider than 0600: secrets are readable by their owner only"),
    (_one(mode="0700"), "json", "files[0].mode", "0700 is wider than 0600"),
    (_one(content="x" * (MAX_FILE + 1)), "json", "files[0].content", f"{MAX_FILE + 1} bytes, over {MAX_FILE}"),
    (_one(path="/run/a\u0000b"), "json", "files[0].path", "must be at most 1024 bytes, without NUL"),
    (_one(path="/" + "a" * 1024), "json", "files[0].path", "must be at most 1024 bytes, without NUL"),
    (_one(path="/run/\udc80"), "json", "files[0].path", "is not valid Unicode text"),
    (_one(path="run/a"), "json", "files[0].path", "'run/a' is not an absolute path to a file"),
    (_one(path="/"), "json", "files[0].path", "'/' is not an absolute path to a file"),
    (_one(path="/run/../etc/passwd"), "json", "files[0].path", "has a '..' component"),
    (_one(path="/run//a"), "json", "files[0].path", "'/run//a' is not normalised (write '/run/a')"),
    (_one(path="/run/./a"), "json", "files[0].path", "is not normalised (write '/run/a')"),
    (_one(path="/run/a/"), "json", "files[0].path", "is not normalised (write '/run/a')"),
    (
        _config({"files": [{"path": "/run/a", "content": "x"}, {"path": "/run/a", "content": "y"}]}),
        "json",
        "files[1].path",
        "'/run/a' is listed twice",
    ),
    (_config({"env": {"1A": "x"}}), "json", "env.'1A'", "not an environment variable name ([A-Za-z_][A-Za-z0-9_]*"),
    (_config({"env": {"A-B": "x"}}), "json", "env.'A-B'", "not an environment variable name"),
    (_config({"env": {"A" * 129: "x"}}), "json", f"env.{'A' * 129!r}"[:64], "not an environment variable name"),
    (_config({"env": {"A": 1}}), "json", "env.A", "the value must be a string"),
    (_config({"env": {"A": "a\u0000b"}}), "json", "env.A", "the value must be at most 65536 bytes, without NUL"),
    (_config({"env": {"A": "x" * 65537}}), "json", "env.A", "the value must be at most 65536 bytes, without NUL"),
    (_config({"env": {"A": "\ud800"}}), "json", "env.A", "is not valid Unicode text"),
    (_config({"env": {f"A{i}": "x" for i in range(257)}}), "json", "env", "257 variables, over 256"),
    (
        _config({"files": [{"path": f"/run/{i}", "content": "x" * 200_000} for i in range(4)]}),
        "json",
        "",
        "bytes as JSON, over 1048576",
    ),
]


@pytest.mark.parametrize(
    ("data", "form", "field", "fragment"), _CONFIG_CASES, ids=[f"{case[2]}:{case[3][:40]}" for case in _CONFIG_CASES]
)
def test_config_rejections(data: bytes, form: str, field: str, fragment: str) -> None:
    if form == "yaml":
        pytest.importorskip("yaml")
    with _config_error(field, fragment):
        parse_config(data, form)


def test_config_format_and_parser_rejections(monkeypatch: pytest.MonkeyPatch) -> None:
    with _config_error("", "format must be one of json, yaml, toml, not 'xml'"):
        parse_config(b"{}", "xml")
    with _config_error("", "config.ini: name the format with .json, .yaml, .yml or .toml"):
        config_format("config.ini")
    assert [config_format(name) for name in ("a.JSON", "a.yml", "a.yaml", "a.toml")] == ["json", "yaml", "yaml", "toml"]
    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml raises ImportError
    with _config_error("", "reading YAML needs PyYAML: pip install pyyaml"):
        parse_config(b"env: {}", "yaml")


def test_configs_built_in_python_are_checked_as_parsed_ones() -> None:
    with _config_error("files[0]", "must be a SecretFile with bytes content"):
        SecretsConfig(files=("/run/a",))  # type: ignore[arg-type]
    with _config_error("files[0]", "must be a SecretFile with bytes content"):
        SecretsConfig(files=(SecretFile("/run/a", "text"),))  # type: ignore[arg-type]
    for mode in ("0600", True):
        with _config_error("files[0].mode", "must be an int"):
            SecretsConfig(files=(SecretFile("/run/a", b"x", mode),))  # type: ignore[arg-type]
    with _config_error("files[0].mode", "0640 is wider than 0600"):
        SecretsConfig(files=(SecretFile("/run/a", b"x", 0o640),))


# --------------------------------------------------------------------------- allow-lists and the command


@pytest.mark.parametrize(
    ("env", "files", "field", "fragment"),
    [
        (frozenset({"1A"}), (), "allow_env", "not an environment variable name"),
        (frozenset(), (1,), "allow_file", "1 is not a path"),
        (frozenset(), ("run/secrets",), "allow_file", "'run/secrets' is not an absolute path"),
        (frozenset(), ("/run/secrets/",), "allow_file", "is not normalised (write '/run/secrets')"),
        (frozenset(), ("/run/../etc",), "allow_file", "has a '..' component"),
    ],
)
def test_allow_list_rejections(env: frozenset[str], files: tuple[Any, ...], field: str, fragment: str) -> None:
    with _config_error(field, fragment):
        AllowList(env=env, files=files)


def test_allow_list_check_names_the_first_entry_outside() -> None:
    config = SecretsConfig(env={"A": "x", "B": "y"}, files=(SecretFile("/run/secrets/a", b"x"),))
    with _refused("not_allowed", "env.B is not in the allowed environment names"):
        AllowList(env=frozenset({"A"}), files=("/run/secrets",)).check(config)
    with _refused("not_allowed", "files[0].path '/run/secrets/a' is not at or below an allowed file location"):
        AllowList(env=frozenset({"A", "B"}), files=("/run/secret", "/run/secrets/a/b")).check(config)
    assert AllowList(files=("/run", "/run/secrets")).base("/run/secrets/a") == "/run/secrets"


def _program(directory: Path, name: str, content: bytes, mode: int = 0o755) -> str:
    path = directory / name
    path.write_bytes(content)
    path.chmod(mode)
    return str(path)


def test_launch_refuses_a_command_that_cannot_run_before_writing(tmp_path: Path) -> None:
    target = tmp_path / "out"
    config = SecretsConfig(files=(SecretFile(f"{target}/a", b"secret"),))
    allow = AllowList(files=(str(target),))
    cases = [
        ([], "no command to run"),
        ([str(tmp_path / "missing")], "is not an executable file (PATH searched)"),
        (["nitro-attest-no-such-program"], "'nitro-attest-no-such-program' is not an executable file"),
        ([str(tmp_path)], "is not an executable file"),
        ([_program(tmp_path, "not-executable", b"#!/bin/sh\n", 0o644)], "is not an executable file"),
        ([_program(tmp_path, "text", b"echo hi\n")], "starts with neither #! nor the ELF magic: execve cannot run it"),
        ([_program(tmp_path, "empty", b"")], "starts with neither #! nor the ELF magic"),
    ]
    for command, fragment in cases:
        with _config_error("command", fragment):
            launch(config, allow, command, environ={"PATH": str(tmp_path)})
        assert not target.exists()
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "fifo").chmod(0o755)
    with _config_error("command", "is not an executable file"):  # not opened: a FIFO would block
        launch(config, allow, [str(tmp_path / "fifo")], environ={})
    assert not target.exists()


_KEYS = [
    "x-amz-c",
    "x-amz-3",
    "x-amz-w",
    "x-amz-t",
    "x-amz-m",
    "x-amz-d",
    "x-amz-i",
    "x-amz-key-v2",
    "x-amz-wrap-alg",
    "x-amz-cek-alg",
    "x-amz-tag-len",
    "x-amz-key",
    "x-amz-matdesc",
    "x-amz-iv",
    "other",
]
_VALUES = st.one_of(
    st.sampled_from(
        [
            "115",
            "12",
            "02",
            "kms",
            "kms+context",
            "AES/GCM/NoPadding",
            "AES/CBC/PKCS5Padding",
            "128",
            '{"aws:x-amz-cek-alg":"115"}',
            "{}",
            "[]",
            '{"a":1}',
            "\u00e9",
        ]
    ),
    st.binary(max_size=40).map(lambda raw: base64.b64encode(raw).decode()),
    st.text(max_size=40),
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20) | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
_CONFIGISH = st.fixed_dictionaries(
    {},
    optional={
        "env": st.dictionaries(st.text(max_size=10), _JSON, max_size=4),
        "files": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "path": st.sampled_from(["/run/s/a", "run/a", "/run/../a", "/run//a", "/", "/a/"]) | st.text(),
                    "content": _JSON,
                    "content_base64": st.text(max_size=12),
                    "mode": st.sampled_from(["0400", "0600", "0644", "777", "x"]) | _JSON,
                },
            ),
            max_size=3,
        ),
        "extra": _JSON,
    },
)
_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(st.binary(max_size=200))
@pytest.mark.parametrize("form", ["json", "yaml", "toml"])
def test_config_bytes_give_a_config_or_a_config_error(form: str, data: bytes) -> None:
    with contextlib.suppress(SecretsConfigError):
        parse_config(data, form)


@_SETTINGS
@given(_CONFIGISH)
def test_config_shapes_give_a_config_or_an_error_naming_a_field(document: dict[str, Any]) -> None:
    try:
        config = parse_config(json.dumps(document).encode())
    except SecretsConfigError as error:
        assert isinstance(error.field, str)
        return
    assert parse_config(config.to_json()) == config


@_SETTINGS
@given(st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=8))
def test_metadata_gives_a_header_or_a_boot_secrets_error(metadata: dict[str, str]) -> None:
    try:
        header = _envelope.parse_header(metadata)
    except BootSecretsError as error:
        assert error.code in ("malformed", "unsupported")
        return
    assert header.version in (1, 2, 3)
    try:
        _envelope.request_context(header, {})
    except BootSecretsError as error:
        assert error.code == "context"


@_SETTINGS
@given(
    st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=4),
    st.binary(max_size=100) | _JSON.map(lambda value: json.dumps(value).encode()),
)
def test_instruction_files_give_metadata_or_a_boot_secrets_error(metadata: dict[str, str], data: bytes) -> None:
    try:
        _envelope.merge_instruction(metadata, data)
    except BootSecretsError as error:
        assert error.code == "malformed"


@_SETTINGS
@given(
    st.binary(max_size=200)
    | _JSON.map(lambda value: json.dumps(value).encode())
    | st.fixed_dictionaries(
        {"format": st.just("nitro-attest/boot-secrets/1"), "metadata": _JSON, "body_base64": _JSON}
    ).map(lambda value: json.dumps(value).encode())
)
def test_local_files_give_an_object_or_a_boot_secrets_error(data: bytes) -> None:
    try:
        EncryptedObject.from_file(data)
    except BootSecretsError as error:
        assert error.code == "malformed"
