"""The ``nitro-attest`` command line: formats in, verdicts and exit codes out.

Everything runs in-process through ``main([...])`` on documents minted by the
look-alike test PKI, except one subprocess run proving ``python -m nitro_attest``.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from nitro_attest.cli import EXIT_OK, EXIT_REJECTED, EXIT_USAGE, main
from nitro_attest.cli._common import MAX_INPUT_SIZE
from nitro_attest.measurements import pcr8_for_certificate
from nitro_attest.testing import DEFAULT_PCRS, TestPKI

REPO = Path(__file__).resolve().parents[1]
NONCE = bytes.fromhex("00112233445566778899aabbccddeeff")
USER_DATA = b'{"purpose": "cli test"}'


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI.create()


@pytest.fixture(scope="module")
def document(pki: TestPKI) -> bytes:
    return pki.document(nonce=NONCE, user_data=USER_DATA)


@pytest.fixture
def doc_file(tmp_path: Path, document: bytes) -> Path:
    path = tmp_path / "doc.cbor"
    path.write_bytes(document)
    return path


def _pins(*indices: int) -> list[str]:
    return [arg for index in indices for arg in ("--pcr", f"{index}={DEFAULT_PCRS[index].hex()}")]


def _flip_in_pcr0(document: bytes) -> bytes:
    position = document.index(DEFAULT_PCRS[0]) + 10
    tampered = bytearray(document)
    tampered[position] ^= 0x01
    return bytes(tampered)


# --------------------------------------------------------------------------- inspect


def test_inspect_raw_shows_fields_and_says_not_verified(
    doc_file: Path, document: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inspect", str(doc_file)]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("NOT VERIFIED")
    assert "module_id" in out
    assert DEFAULT_PCRS[0].hex() in out
    assert "enclave image file" in out
    assert NONCE.hex() in out
    assert '"purpose": "cli test"' in out
    assert "public_key  null" in out
    assert "certificate (the enclave's leaf)" in out
    assert "cabundle (" in out
    assert "NOT the AWS Nitro Enclaves Root G1" in out  # the test PKI is a look-alike


def _hex(document: bytes) -> bytes:
    text = document.hex().upper()
    return "\n".join(text[i : i + 64] for i in range(0, len(text), 64)).encode() + b"\n"


def _base64(document: bytes) -> bytes:
    return base64.encodebytes(document)  # standard alphabet, 76-column lines


def _base64_urlsafe_unpadded(document: bytes) -> bytes:
    return base64.urlsafe_b64encode(document).rstrip(b"=")


@pytest.mark.parametrize("encode", [_hex, _base64, _base64_urlsafe_unpadded], ids=["hex", "base64", "base64url"])
def test_inspect_detects_text_encodings(
    tmp_path: Path, document: bytes, encode: Callable[[bytes], bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "doc.txt"
    path.write_bytes(encode(document))
    assert main(["inspect", "--json", str(path)]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["nonce"] == NONCE.hex()


@pytest.mark.parametrize("encode", [bytes, _base64], ids=["raw", "base64"])
def test_inspect_reads_stdin(
    monkeypatch: pytest.MonkeyPatch,
    document: bytes,
    encode: Callable[[bytes], bytes],
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(encode(document))))
    assert main(["inspect", "-"]) == EXIT_OK
    assert DEFAULT_PCRS[1].hex() in capsys.readouterr().out


def test_inspect_json(doc_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "--json", str(doc_file)]) == EXIT_OK
    captured = capsys.readouterr()
    assert "NOT VERIFIED" in captured.err  # stdout stays pure JSON
    shown = json.loads(captured.out)
    assert shown["verified"] is False
    assert shown["digest"] == "SHA384"
    assert shown["timestamp"].endswith("Z")
    assert shown["pcrs"]["0"] == {
        "value": DEFAULT_PCRS[0].hex(),
        "meaning": "enclave image file",
        "all_zero": not any(DEFAULT_PCRS[0]),
    }
    assert set(shown["pcrs"]) == {str(index) for index in DEFAULT_PCRS}
    assert shown["nonce"] == NONCE.hex()
    assert shown["user_data"] == USER_DATA.hex()
    assert shown["public_key"] is None
    assert shown["cabundle_root_is_aws_root_g1"] is False
    assert {"subject", "issuer", "not_before", "not_after", "sha256"} <= set(shown["certificate"])
    assert len(shown["cabundle"]) >= 1


def test_inspect_malformed_document_is_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "truncated.cbor"
    path.write_bytes(b"\x84\x40\xa0")
    assert main(["inspect", str(path)]) == EXIT_REJECTED
    assert "[cbor]" in capsys.readouterr().err


def test_inspect_escapes_control_characters(pki: TestPKI, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # An unverified document must not be able to drive the terminal.
    path = tmp_path / "doc.cbor"
    path.write_bytes(pki.document(module_id="i-0\x1b[2Jevil"))
    assert main(["inspect", str(path)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "i-0\\x1b[2Jevil" in out


# --------------------------------------------------------------------------- verify


def test_verify_accepts_with_pins_nonce_and_document_time(
    doc_file: Path, root_pem: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["verify", str(doc_file), *_pins(0, 1, 2), "--nonce", NONCE.hex(), "--user-data", USER_DATA.hex()]
    assert main([*argv, "--root", str(root_pem), "--at", "document"]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "verified"
    assert "the document's own timestamp" in out
    assert "PCR0, PCR1, PCR2 pinned, nonce required, user_data required" in out
    assert DEFAULT_PCRS[2].hex() in out


def test_verify_accepts_at_an_iso_time(
    pki: TestPKI, doc_file: Path, root_pem: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    at = pki.document_time.isoformat().replace("+00:00", "Z")
    assert main(["verify", str(doc_file), *_pins(0), "--root", str(root_pem), "--at", at]) == EXIT_OK
    assert capsys.readouterr().out.startswith("verified\n")


def test_verify_any_enclave_and_alternative_pins(
    doc_file: Path, root_pem: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--root", str(root_pem), "--at", "document"]
    assert main(["verify", str(doc_file), "--any-enclave", *common]) == EXIT_OK
    assert "any enclave" in capsys.readouterr().out
    # The same index twice: either value is allowed.
    other = "ab" * 48
    assert main(["verify", str(doc_file), "--pcr", f"0={other}", *_pins(0), *common]) == EXIT_OK


def test_verify_rejects_tampered_document(
    tmp_path: Path, document: bytes, root_pem: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tampered.cbor"
    path.write_bytes(_flip_in_pcr0(document))
    assert main(["verify", str(path), "--any-enclave", "--root", str(root_pem), "--at", "document"]) == EXIT_REJECTED
    captured = capsys.readouterr()
    assert captured.err.startswith("rejected [signature]: ")
    assert captured.out == ""


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        (["--pcr", "0=" + "ab" * 48], "pcr"),
        (["--pcr", "31=" + "ab" * 48], "pcr"),  # a PCR the document lacks
        (["--any-enclave", "--nonce", "00"], "nonce"),
        (["--any-enclave", "--public-key", "00"], "public_key"),
    ],
)
def test_verify_rejects_by_policy(
    doc_file: Path, root_pem: Path, extra: list[str], code: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", str(doc_file), *extra, "--at", "document", "--root", str(root_pem)]) == EXIT_REJECTED
    assert capsys.readouterr().err.startswith(f"rejected [{code}]: ")


def test_verify_rejects_stale_document(
    pki: TestPKI, doc_file: Path, root_pem: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Two hours later the leaf (3 hours) is still valid, but the document is older than the replay window.
    later = (pki.document_time + timedelta(hours=2)).isoformat()
    argv = ["verify", str(doc_file), "--any-enclave", "--max-age", "60", "--at", later, "--root", str(root_pem)]
    assert main(argv) == EXIT_REJECTED
    assert capsys.readouterr().err.startswith("rejected [stale]: ")


def test_verify_expired_suggests_at_document(
    doc_file: Path, root_pem: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", str(doc_file), "--any-enclave", "--root", str(root_pem)]) == EXIT_REJECTED
    err = capsys.readouterr().err
    assert err.startswith("rejected [expired]: ")
    assert "--at document" in err


def test_verify_test_document_against_aws_root_is_rejected(doc_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(doc_file), "--any-enclave", "--at", "document"]) == EXIT_REJECTED
    assert capsys.readouterr().err.startswith("rejected [chain]: ")


# --------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["verify", "{doc}"], "--any-enclave"),
        (["verify", "{doc}", "--pcr", "0=abcd"], "96 hex digits"),
        (["verify", "{doc}", "--pcr", "0=" + "zz" * 48], "not all hex"),
        (["verify", "{doc}", "--pcr", "32=" + "ab" * 48], "0..31"),
        (["verify", "{doc}", "--pcr", "ab" * 48], "N=HEX"),
        (["verify", "{doc}", "--any-enclave", "--pcr", "0=" + "ab" * 48], "cannot be combined"),
        (["verify", "{doc}", "--any-enclave", "--at", "yesterday"], "ISO 8601"),
        (["verify", "{doc}", "--any-enclave", "--at", "2025-01-01T00:00:00"], "time zone"),
        (["verify", "{doc}", "--any-enclave", "--nonce", "xyz"], "not hex"),
        (["verify", "{doc}", "--any-enclave", "--max-age", "-1"], "seconds"),
        (["verify", "{doc}", "--any-enclave", "--root", "{doc}"], "not a PEM"),
        (["verify", "{missing}", "--any-enclave"], "cannot read"),
        (["inspect", "{missing}"], "cannot read"),
        (["inspect", "{garbage}"], "not an attestation document"),
        (["inspect", "{empty}"], "is empty"),
        (["inspect", "{huge}"], "larger than"),
        ([], "COMMAND"),
    ],
)
def test_usage_errors_exit_2(
    tmp_path: Path, doc_file: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    files = {
        "doc": doc_file,
        "missing": tmp_path / "missing.cbor",
        "garbage": tmp_path / "garbage.txt",
        "empty": tmp_path / "empty",
        "huge": tmp_path / "huge",
    }
    files["garbage"].write_text("this is neither CBOR, hex nor base64!\n")
    files["empty"].write_bytes(b"")
    files["huge"].write_bytes(b"\x84" * (MAX_INPUT_SIZE + 1))
    assert main([arg.format(**files) for arg in argv]) == EXIT_USAGE
    captured = capsys.readouterr()
    assert message in captured.err
    assert "Traceback" not in captured.err


def test_help_exits_0_and_explains_at_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--help"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "'document'" in out
    assert "archived" in out


# --------------------------------------------------------------------------- pcr

# AWS Nitro Enclaves User Guide, "Where to get an enclave's measurements": the PCR3 and PCR4 examples.
GUIDE_PCR3 = "78fce75db17cd4e0a3fb8dad3ad128ca5e77edbb2b2c7f75329dccd99aa5f6ef4fc1f1a452e315b9e98f9e312e6921e6"
GUIDE_PCR4 = "08f996b5d43e047a9eb51e7f548bfee7e164fd7dc8f65541f2ac09d6545ac812719327281c401a67a10fcba87ae79ce0"


def test_pcr_role_arn(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pcr", "--role-arn", "arn:aws:iam::123456789012:role/Webserver"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "3 (IAM role of the parent instance)" in out
    assert "arn:aws:iam::123456789012:role/Webserver" in out
    assert out.splitlines()[-1].split() == ["value", GUIDE_PCR3]


def test_pcr_instance_id_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pcr", "--instance-id", "i-1234567890abcdef0", "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out) == {
        "index": 4,
        "meaning": "instance ID of the parent instance",
        "value": GUIDE_PCR4,
        "instance_id": "i-1234567890abcdef0",
    }


@pytest.mark.parametrize("encoding", [Encoding.PEM, Encoding.DER])
def test_pcr_signing_cert(tmp_path: Path, pki: TestPKI, encoding: Encoding, capsys: pytest.CaptureFixture[str]) -> None:
    certificate = pki.roots[0]  # any certificate will do: PCR8 only hashes it
    path = tmp_path / "signing-cert"
    path.write_bytes(certificate.public_bytes(encoding))
    assert main(["pcr", "--signing-cert", str(path), "--json"]) == EXIT_OK
    result = json.loads(capsys.readouterr().out)
    assert result["index"] == 8
    assert result["meaning"] == "enclave image signing certificate"
    assert result["value"] == pcr8_for_certificate(certificate).hex()
    assert result["signing_cert"] == str(path)
    assert "TEST-ONLY" in result["subject"]


def test_pcr_signing_cert_from_stdin(
    pki: TestPKI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pem = pki.roots[0].public_bytes(Encoding.PEM)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(pem)))
    assert main(["pcr", "--signing-cert", "-"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "8 (enclave image signing certificate)" in out
    assert pcr8_for_certificate(pem).hex() in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["pcr"], "one of the arguments --role-arn --instance-id --signing-cert is required"),
        (["pcr", "--role-arn", "arn:aws:iam::123456789012:role/a", "--instance-id", "i-12345678"], "not allowed"),
        (["pcr", "--role-arn", "arn:aws:iam::123456789012:instance-profile/a"], "instance profile ARN"),
        (["pcr", "--role-arn", "Webserver"], "not an IAM role ARN"),
        (["pcr", "--instance-id", "i-1234567890abcdef0-enc0123456789abcdef0"], "before '-enc': i-1234567890abcdef0"),
        (["pcr", "--instance-id", "i-1234"], "not an EC2 instance ID"),
        (["pcr", "--signing-cert", "{doc}"], "--signing-cert {doc}: not an X.509 certificate"),
        (["pcr", "--signing-cert", "{two}"], "holds 2 certificates"),
        (["pcr", "--signing-cert", "{missing}"], "cannot read"),
        (["pcr", "--signing-cert", "{huge}"], "larger than"),
    ],
)
def test_pcr_usage_errors_exit_2(
    tmp_path: Path, doc_file: Path, root_pem: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    files = {
        "doc": doc_file,
        "missing": tmp_path / "missing.pem",
        "two": tmp_path / "two.pem",
        "huge": tmp_path / "huge",
    }
    files["two"].write_bytes(root_pem.read_bytes() * 2)
    files["huge"].write_bytes(b"-" * (MAX_INPUT_SIZE + 1))
    assert main([arg.format(**files) for arg in argv]) == EXIT_USAGE
    captured = capsys.readouterr()
    assert message.format(**files) in captured.err
    assert captured.out == ""
    assert "Traceback" not in captured.err


# --------------------------------------------------------------------------- demo


def test_demo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "TEST PKI" in out
    assert "NOT AWS" in out
    assert "-> verified" in out
    assert "-> rejected [signature]" in out
    assert "-> rejected [chain]" in out
    assert "all outcomes as expected" in out


def test_module_entry_point_runs_the_demo() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-m", "nitro_attest", "demo"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "all outcomes as expected" in result.stdout
