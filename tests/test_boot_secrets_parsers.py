"""Hypothesis over the boot-secrets parsers: any input gives a value or one of our errors, nothing else.

Parsers: the configuration (JSON, YAML, TOML), the S3EC content metadata,
the instruction file, and the local file.
"""

from __future__ import annotations

import base64
import contextlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nitro_attest.boot_secrets import BootSecretsError, EncryptedObject, SecretsConfigError, _envelope, parse_config

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
