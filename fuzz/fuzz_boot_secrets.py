"""Fuzz the boot-secrets parsers: configurations, S3EC metadata, instruction files, local files.

The first byte picks the parser; the rest is its input:

- 0-2: :func:`nitro_attest.boot_secrets.parse_config` as JSON, YAML, TOML
  (PyYAML and tomllib when installed): a configuration, or
  :class:`SecretsConfigError`; an accepted one survives ``to_json`` and
  parses back equal;
- 3: S3EC content metadata (the input read as a JSON object of strings):
  a header, or :class:`BootSecretsError` ``malformed``/``unsupported``;
- 4: an instruction file merged with V3 object metadata: metadata, or
  ``malformed``;
- 5: a local file: an object, or ``malformed``.

Run: ``python fuzz/fuzz_boot_secrets.py [libFuzzer flags] [corpus dirs]``.
"""

from __future__ import annotations

import json

from _fuzz_common import fuzz_main, require

from nitro_attest.boot_secrets import BootSecretsError, EncryptedObject, SecretsConfigError, _envelope, parse_config

__all__ = ["main", "own_seeds", "shared_seeds", "test_one_input"]

_FORMATS = ("json", "yaml", "toml")
_V3_OBJECT = {"x-amz-c": "115", "x-amz-d": "A" * 36 + "==", "x-amz-i": "A" * 36 + "=="}


def _config(data: bytes, form: str) -> None:
    try:
        config = parse_config(data, form)
    except SecretsConfigError as error:
        require(isinstance(error.field, str), "a configuration error without a field")
        return
    require(parse_config(config.to_json()) == config, "a configuration does not survive to_json")


def _metadata(data: bytes) -> None:
    try:
        metadata = json.loads(data)
    except (ValueError, RecursionError):
        return
    if not isinstance(metadata, dict) or not all(isinstance(value, str) for value in metadata.values()):
        return
    try:
        _envelope.parse_header(metadata)
    except BootSecretsError as error:
        require(error.code in ("malformed", "unsupported"), f"metadata refused with {error.code}")


def test_one_input(data: bytes) -> None:
    if not data:
        return
    choice, rest = data[0] % 6, data[1:]
    try:
        if choice < 3:
            _config(rest, _FORMATS[choice])
        elif choice == 3:
            _metadata(rest)
        elif choice == 4:
            _envelope.merge_instruction(_V3_OBJECT, rest)
        else:
            EncryptedObject.from_file(rest)
    except BootSecretsError as error:
        require(error.code == "malformed", f"choice {choice} refused with {error.code}")


def own_seeds() -> list[tuple[str, bytes]]:
    """A valid configuration in each format, V3 and V2 metadata, an instruction file and a local file."""
    config = b'{"env": {"A": "b"}, "files": [{"path": "/run/s/x", "content": "y", "mode": "0400"}]}'
    metadata = {**_V3_OBJECT, "x-amz-3": "AAAA", "x-amz-w": "12", "x-amz-t": '{"aws:x-amz-cek-alg":"115"}'}
    v2 = {
        "x-amz-key-v2": "AAAA",
        "x-amz-wrap-alg": "kms+context",
        "x-amz-cek-alg": "AES/GCM/NoPadding",
        "x-amz-tag-len": "128",
        "x-amz-iv": "A" * 16,
        "x-amz-matdesc": "{}",
    }
    local = EncryptedObject(metadata, b"body").to_file()
    return [
        ("config-json", b"\x00" + config),
        ("config-yaml", b"\x01env:\n  A: b\nfiles:\n  - path: /run/s/x\n    content: y\n"),
        ("config-toml", b'\x02[env]\nA = "b"\n[[files]]\npath = "/run/s/x"\ncontent = "y"\n'),
        ("metadata-v3", b"\x03" + json.dumps(metadata).encode()),
        ("metadata-v2", b"\x03" + json.dumps(v2).encode()),
        ("instruction", b'\x04{"x-amz-3": "AAAA", "x-amz-w": "12", "x-amz-t": "{}"}'),
        ("local-file", b"\x05" + local),
        # The edges the parsers draw, each a step from a valid input.
        ("config-env-only", b'\x00{"env": {"DB_PASSWORD": "s3cret", "_X1": ""}}'),
        ("config-files-only", b'\x00{"files": [{"path": "/run/secrets/tls.key", "content_base64": "AAEC"}]}'),
        ("config-both-contents", b'\x00{"files": [{"path": "/a", "content": "x", "content_base64": "eA=="}]}'),
        ("config-dotdot", b'\x00{"files": [{"path": "/run/../etc/passwd", "content": "x"}]}'),
        ("config-relative", b'\x00{"files": [{"path": "run/x", "content": "x"}]}'),
        ("config-bad-env-name", b'\x00{"env": {"1A": "b", "A=B": "c"}}'),
        ("config-mode", b'\x00{"files": [{"path": "/x", "content": "y", "mode": "4755"}]}'),
        ("config-unknown-key", b'\x00{"env": {}, "extra": 1}'),
        ("config-yaml-anchor", b"\x01env: &a\n  A: b\nmore: *a\n"),
        ("config-toml-bad", b"\x02[env\nA = 1\n"),
        (
            "metadata-v3-no-commitment",
            b"\x03" + json.dumps({k: v for k, v in metadata.items() if k != "x-amz-d"}).encode(),
        ),
        ("metadata-v3-other-suite", b"\x03" + json.dumps({**metadata, "x-amz-c": "114"}).encode()),
        (
            "metadata-v1",
            b"\x03" + json.dumps({"x-amz-key": "AAAA", "x-amz-iv": "A" * 24, "x-amz-matdesc": "{}"}).encode(),
        ),
        ("metadata-v2-cbc", b"\x03" + json.dumps({**v2, "x-amz-cek-alg": "AES/CBC/PKCS5Padding"}).encode()),
        ("instruction-not-json", b"\x04{not json"),
        ("local-file-truncated", b"\x05" + local[: len(local) // 2]),
    ]


def shared_seeds() -> list[tuple[str, bytes]]:
    """None: ../shared holds no boot-secrets objects."""
    return []


def main() -> None:
    fuzz_main(test_one_input)


if __name__ == "__main__":
    main()
