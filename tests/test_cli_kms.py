"""``nitro-attest kms serve`` and ``nitro-attest testing init|attest``, through ``nitro_attest.cli.main``.

``kms serve`` runs until stopped, so it runs in a subprocess (``python -m nitro_attest``); the AWS CLI, when
installed, talks to it.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nitro_attest import Policy, verify
from nitro_attest.cli import EXIT_OK, EXIT_USAGE, main
from nitro_attest.recipient import EnclaveKey
from nitro_attest.testing import TestEnclave

PCR0 = "ab" * 48
_SERVE = "from nitro_attest.cli import main; import sys; sys.exit(main(sys.argv[1:]))"


def run(*argv: str) -> int:
    return main(list(argv))


# --------------------------------------------------------------------------- testing init / attest


def test_init_then_attest_makes_a_document_valid_now(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory, document, public = tmp_path / "enclave", tmp_path / "doc.cbor", tmp_path / "pub.der"
    key = EnclaveKey.generate()
    public.write_bytes(key.public_key_der)
    assert run("testing", "init", str(directory), "--pcr", f"0={PCR0}") == EXIT_OK
    assert "root.pem" in capsys.readouterr().out
    assert stat.S_IMODE((directory / "root-key.pem").stat().st_mode) == 0o600
    assert (
        run(
            "testing",
            "attest",
            str(directory),
            "--public-key",
            str(public),
            "--nonce",
            "0a0b",
            "--user-data",
            "ff",
            "--out",
            str(document),
        )
        == EXIT_OK
    )
    enclave = TestEnclave.load(directory)
    verified = verify(
        document.read_bytes(), Policy({0: PCR0}, nonce=b"\x0a\x0b", user_data=b"\xff"), roots=enclave.roots
    )
    assert verified.public_key == key.public_key_der


def test_init_debug(tmp_path: Path) -> None:
    assert run("testing", "init", str(tmp_path), "--debug") == EXIT_OK
    assert TestEnclave.load(tmp_path).debug


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["testing", "attest", "{missing}"], "cannot read"),
        (["testing", "attest", "{enclave}", "--public-key", "{missing}"], "cannot read"),
        (["testing", "attest", "{enclave}", "--public-key", "{big}"], "at most 1024"),
        (["testing", "attest", "{enclave}", "--nonce", "zz"], "not hex"),
        (["testing", "init", "{enclave}", "--pcr", "0=ab"], "96 hex digits"),
        (["testing", "init", "{file}/sub"], "cannot write"),
    ],
)
def test_testing_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    TestEnclave.create(tmp_path / "enclave")
    (tmp_path / "big").write_bytes(b"x" * 1025)
    (tmp_path / "file").write_bytes(b"")
    names = {name: str(tmp_path / name) for name in ("missing", "enclave", "big", "file")}
    assert run(*(part.format(**names) for part in argv)) == EXIT_USAGE
    assert message in capsys.readouterr().err


# --------------------------------------------------------------------------- kms serve


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[object]:
    pytest.importorskip("werkzeug", reason="kms serve needs werkzeug (the kms-server extra)")
    processes: list[subprocess.Popen[str]] = []

    def start(*argv: str) -> tuple[subprocess.Popen[str], str]:
        process = subprocess.Popen(
            [sys.executable, "-c", _SERVE, "kms", "serve", "--port", "0", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        processes.append(process)
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:"), (line, process.stderr and process.stderr.read())
        return process, line.split()[-1]

    yield start
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)


def test_serve_prints_its_url_first_and_says_it_accepts_any_signature(serve: object, tmp_path: Path) -> None:
    boto3 = pytest.importorskip("boto3", reason="the test extra")
    enclave = TestEnclave.create(tmp_path / "enclave", pcrs={0: PCR0})
    db = tmp_path / "kms.sqlite"
    process, url = serve(
        "--db", str(db), "--roots", str(tmp_path / "enclave" / "root.pem"), "--audit-log", str(tmp_path / "audit")
    )  # type: ignore[operator]
    client = boto3.client(
        "kms", endpoint_url=url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    key_id = client.create_key()["KeyMetadata"]["KeyId"]
    blob = client.encrypt(KeyId=key_id, Plaintext=b"from the CLI server")["CiphertextBlob"]
    enclave_key = EnclaveKey.generate()
    document = enclave.attest(public_key=enclave_key.public_key_der)
    answer = client.decrypt(
        CiphertextBlob=blob, Recipient={"AttestationDocument": document, "KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256"}
    )
    assert enclave_key.open(answer["CiphertextForRecipient"]) == b"from the CLI server"
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == EXIT_OK
    assert process.stderr is not None
    assert "any signature is accepted" in process.stderr.read()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    records = [json.loads(line) for line in (tmp_path / "audit").read_text().splitlines()]
    assert [record["operation"] for record in records] == ["CreateKey", "Encrypt", "Decrypt"]


def test_the_aws_cli_is_accepted(serve: object, tmp_path: Path) -> None:
    aws = shutil.which("aws")
    if aws is None:
        pytest.skip("the AWS CLI (aws) is not installed")
    _, url = serve()  # type: ignore[operator]
    environment = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }

    def cli(*argv: str) -> str:
        result = subprocess.run(
            [aws, "--endpoint-url", url, "--output", "text", "kms", *argv],
            capture_output=True,
            text=True,
            env=environment,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    key_id = cli("create-key", "--query", "KeyMetadata.KeyId")
    (tmp_path / "plain").write_bytes(b"via the AWS CLI")
    blob = cli(
        "encrypt", "--key-id", key_id, "--plaintext", f"fileb://{tmp_path / 'plain'}", "--query", "CiphertextBlob"
    )
    (tmp_path / "blob").write_bytes(base64.b64decode(blob))
    plain = cli("decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'blob'}", "--query", "Plaintext")
    assert base64.b64decode(plain) == b"via the AWS CLI"


def test_serve_with_credentials_checks_signatures(serve: object, tmp_path: Path) -> None:
    boto3 = pytest.importorskip("boto3", reason="the test extra")
    client_error = pytest.importorskip("botocore.exceptions", reason="the test extra").ClientError
    credentials = tmp_path / "credentials.json"
    credentials.write_text(
        json.dumps({"AKIDTEST": {"secret_access_key": "s3cret", "principal": "arn:aws:iam::123456789012:root"}})
    )
    _, url = serve("--credentials", str(credentials))  # type: ignore[operator]
    good = boto3.client(
        "kms", endpoint_url=url, region_name="us-east-1", aws_access_key_id="AKIDTEST", aws_secret_access_key="s3cret"
    )
    assert good.create_key()["KeyMetadata"]["KeyState"] == "Enabled"
    bad = boto3.client(
        "kms", endpoint_url=url, region_name="us-east-1", aws_access_key_id="AKIDTEST", aws_secret_access_key="wrong"
    )
    with pytest.raises(client_error) as excinfo:
        bad.list_keys()
    assert excinfo.value.response["Error"]["Code"] == "InvalidSignatureException"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--host", "0.0.0.0"], "without credentials"),
        (["--port", "70000"], "not a port number"),
        (["--roots", "{missing}"], "cannot read"),
        (["--roots", "{junk}"], "not a PEM"),
        (["--credentials", "{junk}"], "not JSON"),
        (["--account", "12"], "12 digits"),
        (["--db", "{junk}"], "not a usable SQLite database"),
    ],
)
def test_serve_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    pytest.importorskip("werkzeug", reason="kms serve needs werkzeug (the kms-server extra)")
    (tmp_path / "junk").write_bytes(b"junk" * 1000)
    names = {"missing": str(tmp_path / "missing"), "junk": str(tmp_path / "junk")}
    assert run("kms", "serve", "--port", "0", *(part.format(**names) for part in argv)) == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_the_cli_help_does_not_import_the_server() -> None:
    code = (
        "import sys, argparse\n"
        "from nitro_attest.cli import kms, testing\n"
        "parser = argparse.ArgumentParser()\n"
        "commands = parser.add_subparsers()\n"
        "kms.register(commands); testing.register(commands)\n"
        "print(','.join(m for m in ('werkzeug', 'botocore', 'boto3', 'nitro_attest.kms.server') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
