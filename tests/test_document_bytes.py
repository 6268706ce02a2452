"""document_bytes: the one reading of the encodings documents travel in, and as_dict, their JSON form."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

import nitro_attest
from nitro_attest import MalformedDocument, Policy
from nitro_attest.document import MAX_ENCODED_SIZE, document_bytes
from nitro_attest.testing import TestPKI


@pytest.fixture(scope="module")
def raw() -> bytes:
    return TestPKI.create().document(nonce=b"n")


def _encodings(raw: bytes) -> dict[str, bytes | str]:
    b64 = base64.b64encode(raw).decode()
    url = base64.urlsafe_b64encode(raw).decode()
    return {
        "raw": raw,
        "bytearray": bytearray(raw),
        "memoryview": memoryview(raw),
        "hex": raw.hex(),
        "HEX with 0x": "0x" + raw.hex().upper(),
        "hex bytes with newlines": "\n".join(raw.hex()[i : i + 64] for i in range(0, 2 * len(raw), 64)).encode(),
        "base64": b64,
        "base64 unpadded": b64.rstrip("="),
        "base64 url-safe": url,
        "base64 url-safe unpadded": url.rstrip("="),
        "base64 wrapped": "\n".join(b64[i : i + 76] for i in range(0, len(b64), 76)) + "\n",
    }


def test_every_encoding_gives_the_raw_document(raw: bytes) -> None:
    for name, value in _encodings(raw).items():
        assert document_bytes(value) == raw, name


def test_a_file_of_any_encoding(tmp_path: Path, raw: bytes) -> None:
    for position, value in enumerate(_encodings(raw).values()):
        path = tmp_path / f"{position}.doc"
        path.write_bytes(value.encode() if isinstance(value, str) else bytes(value))
        assert document_bytes(path) == raw


def test_the_result_verifies(raw: bytes) -> None:
    pki = TestPKI.create()
    document = nitro_attest.verify(
        document_bytes(base64.b64encode(raw)), Policy.any_enclave(), at=pki.document_time, roots=pki.roots
    )
    assert document.nonce == b"n"


@pytest.mark.parametrize(
    ("value", "code", "message"),
    [
        (b"", "size", "empty"),
        ("  \n", "size", "empty"),
        ("A" * (MAX_ENCODED_SIZE + 1), "size", "larger than"),
        (b"hello world", "cbor", "not raw CBOR .* starts with 0x68"),
        ("00ff", "cbor", "nor hex or base64"),  # hex, but not of a COSE_Sign1
        ("aGVsbG8=", "cbor", "nor hex or base64"),  # base64 of "hello"
        ("a===", "cbor", "nor hex or base64"),  # looks like base64, does not decode
        ("\u00e9t\u00e9", "cbor", "nor hex or base64"),  # not ASCII
    ],
)
def test_what_is_not_a_document(value: bytes | str, code: str, message: str) -> None:
    with pytest.raises(MalformedDocument, match=message) as caught:
        document_bytes(value)
    assert caught.value.code == code


def test_a_file_too_large_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "big"
    path.write_bytes(b"\x84" * (MAX_ENCODED_SIZE + 1))
    with pytest.raises(MalformedDocument, match="larger than") as caught:
        document_bytes(path)
    assert caught.value.code == "size"


def test_raw_cbor_of_any_size_is_left_to_parse_to_judge() -> None:
    oversized = b"\x84" + bytes(40_000)
    assert document_bytes(oversized) is oversized
    with pytest.raises(MalformedDocument) as caught:
        nitro_attest.parse(oversized)
    assert caught.value.code == "size"


def test_other_types_are_a_type_error() -> None:
    with pytest.raises(TypeError, match="must be bytes, str or a path, not int"):
        document_bytes(42)  # type: ignore[arg-type]


def test_as_dict_is_json_ready_and_names_verification(raw: bytes) -> None:
    pki = TestPKI.create()
    parsed = nitro_attest.parse(raw)
    verified = nitro_attest.verify(raw, Policy.any_enclave(), at=pki.document_time, roots=pki.roots)
    shown = json.loads(json.dumps(parsed.as_dict()))
    assert shown["nonce"] == b"n".hex()
    assert shown["pcrs"]["0"]["value"] == parsed.pcrs[0].hex()
    assert shown["timestamp"].endswith("Z")
    assert shown["cabundle"][0]["not_before"].endswith("Z")
    assert "verified_at" not in shown
    assert verified.as_dict() == {**parsed.as_dict(), "verified_at": shown["timestamp"]}
