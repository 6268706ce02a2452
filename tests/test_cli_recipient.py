"""``nitro-attest recipient``: keygen, seal, open, inspect, through ``nitro_attest.cli.main``."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from conftest import require_shared

from nitro_attest.cli import EXIT_OK, EXIT_REJECTED, EXIT_USAGE, main
from nitro_attest.recipient import EnclaveKey, inspect, seal
from nitro_attest.testing import DocumentFactory


def run(*argv: str) -> int:
    return main(list(argv))


@pytest.fixture
def key_files(tmp_path: Path) -> tuple[Path, Path]:
    key, public = tmp_path / "key.pem", tmp_path / "pub.der"
    assert run("recipient", "keygen", "--out", str(key), "--public-out", str(public)) == EXIT_OK
    return key, public


def test_keygen_writes_a_private_key_0600_and_its_public_key(key_files: tuple[Path, Path]) -> None:
    key_file, public = key_files
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = EnclaveKey.from_pem(key_file.read_bytes())
    assert public.read_bytes() == key.public_key_der


def test_seal_to_a_public_key_then_open(key_files: tuple[Path, Path], tmp_path: Path) -> None:
    key_file, public = key_files
    secret, envelope, opened = tmp_path / "secret", tmp_path / "envelope.ber", tmp_path / "opened"
    secret.write_bytes(b"s3cret")
    assert run("recipient", "seal", str(secret), "--to", str(public), "--out", str(envelope)) == EXIT_OK
    assert inspect(envelope.read_bytes()).key_id == EnclaveKey.from_pem(key_file.read_bytes()).key_id
    assert run("recipient", "open", str(envelope), "--key", str(key_file), "--out", str(opened)) == EXIT_OK
    assert opened.read_bytes() == b"s3cret"
    assert stat.S_IMODE(opened.stat().st_mode) == 0o600


def test_seal_to_a_document_verifies_it(key_files: tuple[Path, Path], tmp_path: Path, root_pem: Path) -> None:
    key_file, _ = key_files
    key = EnclaveKey.from_pem(key_file.read_bytes())
    make = DocumentFactory()
    document = tmp_path / "doc.cbor"
    document.write_bytes(make(public_key=key.public_key_der))
    secret, envelope = tmp_path / "secret", tmp_path / "envelope.ber"
    secret.write_bytes(b"to the attested enclave")
    at = make.verification_time.isoformat()
    arguments = ["--to", str(document), "--any-enclave", "--at", at, "--root", str(root_pem), "--out", str(envelope)]
    assert run("recipient", "seal", str(secret), *arguments) == EXIT_OK
    assert key.open(envelope.read_bytes()) == b"to the attested enclave"


def test_seal_refuses_a_document_that_does_not_verify(
    tmp_path: Path, root_pem: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = EnclaveKey.generate()
    make = DocumentFactory()
    document = tmp_path / "doc.cbor"
    document.write_bytes(make(public_key=key.public_key_der, broken="signature"))
    secret, envelope = tmp_path / "secret", tmp_path / "envelope.ber"
    secret.write_bytes(b"never sealed")
    at = make.verification_time.isoformat()
    arguments = ["--to", str(document), "--any-enclave", "--at", at, "--root", str(root_pem), "--out", str(envelope)]
    assert run("recipient", "seal", str(secret), *arguments) == EXIT_REJECTED
    assert "rejected [signature]" in capsys.readouterr().err
    assert not envelope.exists()


def test_seal_refuses_a_document_without_public_key(
    tmp_path: Path, root_pem: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make = DocumentFactory()
    document = tmp_path / "doc.cbor"
    document.write_bytes(make())
    secret, envelope = tmp_path / "secret", tmp_path / "envelope.ber"
    secret.write_bytes(b"never sealed")
    at = make.verification_time.isoformat()
    arguments = ["--to", str(document), "--any-enclave", "--at", at, "--root", str(root_pem), "--out", str(envelope)]
    assert run("recipient", "seal", str(secret), *arguments) == EXIT_REJECTED
    assert "rejected [recipient]: the document carries no public_key" in capsys.readouterr().err
    assert not envelope.exists()


def test_seal_to_a_document_needs_a_policy(key_files: tuple[Path, Path], tmp_path: Path) -> None:
    document = tmp_path / "doc.cbor"
    document.write_bytes(DocumentFactory()())
    secret = tmp_path / "secret"
    secret.write_bytes(b"x")
    assert run("recipient", "seal", str(secret), "--to", str(document), "--out", str(tmp_path / "out")) == EXIT_USAGE
    assert not (tmp_path / "out").exists()


def test_seal_refuses_an_empty_secret(key_files: tuple[Path, Path], tmp_path: Path) -> None:
    _, public = key_files
    secret = tmp_path / "secret"
    secret.write_bytes(b"")
    assert run("recipient", "seal", str(secret), "--to", str(public), "--out", str(tmp_path / "out")) == EXIT_USAGE
    assert not (tmp_path / "out").exists()


def test_open_with_another_key_is_rejected_and_writes_nothing(
    key_files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file, _ = key_files
    envelope = tmp_path / "envelope.ber"
    envelope.write_bytes(seal(b"for someone else", EnclaveKey.generate().public_key_der))
    out = tmp_path / "opened"
    assert run("recipient", "open", str(envelope), "--key", str(key_file), "--out", str(out)) == EXIT_REJECTED
    assert "rejected [recipient]" in capsys.readouterr().err
    assert not out.exists()
    assert list(tmp_path.glob(".opened.*")) == []  # no temporary file left either


def test_open_with_a_file_that_is_no_key_is_a_usage_error(tmp_path: Path) -> None:
    envelope, bad_key = tmp_path / "envelope.ber", tmp_path / "key.pem"
    envelope.write_bytes(b"\x30\x80")
    bad_key.write_bytes(b"not a key")
    assert run("recipient", "open", str(envelope), "--key", str(bad_key)) == EXIT_USAGE


def test_open_reads_a_kms_sample(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    key = require_shared("kms/kms_cfr_enclaver_rs.key.pem")
    envelope = require_shared("kms/kms_cfr_enclaver_rs.ber")
    assert run("recipient", "open", str(envelope), "--key", str(key)) == EXIT_OK
    assert capsysbinary.readouterr().out == b"Hello, World"


def test_inspect_prints_the_envelope(capsys: pytest.CaptureFixture[str]) -> None:
    path = require_shared("kms/kms_cfr_rustcrypto_4_chunked.ber")
    assert run("recipient", "inspect", str(path), "--json") == EXIT_OK
    shown = json.loads(capsys.readouterr().out)
    assert shown == {
        "key_id": inspect(path.read_bytes()).key_id.hex(),
        "key_size": 2048,
        "key_encryption": "RSAES-OAEP SHA-256 MGF1-SHA-256",
        "content_encryption": "AES-256-CBC",
        "content_length": 4112,
    }
    assert run("recipient", "inspect", str(path)) == EXIT_OK
    assert "content_length      4112" in capsys.readouterr().out


def test_inspect_rejects_what_is_no_envelope(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "trailing.ber"
    path.write_bytes(seal(b"x", EnclaveKey.generate().public_key_der) + b"\x00")
    assert run("recipient", "inspect", str(path)) == EXIT_REJECTED
    assert "rejected [malformed]: 1 trailing bytes after the envelope" in capsys.readouterr().err


def test_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    assert run("recipient", "inspect", str(tmp_path / "absent")) == EXIT_USAGE
