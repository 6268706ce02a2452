"""Interop with AWS's own S3 Encryption Client for Python (``amazon-s3-encryption-client-python``), both ways.

The official client pins cryptography below 49, so it lives in a virtualenv
of its own and runs in a subprocess: ``NITRO_ATTEST_S3EC_PYTHON`` names that
virtualenv's python (default ``/tmp/s3ec-venv/bin/python``; make it with
``python -m venv /tmp/s3ec-venv && /tmp/s3ec-venv/bin/pip install
amazon-s3-encryption-client-python boto3``). Without it these tests skip.

- An object the official client writes (V3, through the local KMS, to the
  S3 server) opens with ``secrets run`` in a test enclave.
- An object ``secrets encrypt`` writes decrypts with the official client to
  the configuration's canonical JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("boto3")
pytest.importorskip("werkzeug")

from _boot_secrets_support import (
    BUCKET,
    CHILD,
    GOOD_PCR0,
    aws_environment,
    key_policy,
    run_cli,
    s3_client,
    s3_server,
)

from nitro_attest.boot_secrets import SecretsConfig, parse_config
from nitro_attest.kms.server import LocalKms
from nitro_attest.testing import TestEnclave

OFFICIAL_PYTHON = os.environ.get("NITRO_ATTEST_S3EC_PYTHON", "/tmp/s3ec-venv/bin/python")

OFFICIAL = """
import sys, boto3
from s3_encryption import S3EncryptionClient, S3EncryptionClientConfig
from s3_encryption.materials.kms_keyring import KmsKeyring
mode, kms_url, s3_url, key_id, bucket, key = sys.argv[1:7]
kms = boto3.client("kms", endpoint_url=kms_url, region_name="us-east-1")
s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1")
client = S3EncryptionClient(s3, S3EncryptionClientConfig(keyring=KmsKeyring(kms_client=kms, kms_key_id=key_id)))
if mode == "put":
    client.put_object(Bucket=bucket, Key=key, Body=sys.stdin.buffer.read(), EncryptionContext={"app": "web"})
else:
    answer = client.get_object(Bucket=bucket, Key=key, EncryptionContext={"app": "web"})
    sys.stdout.buffer.write(answer["Body"].read())
"""


def _official_available() -> str | None:
    if not Path(OFFICIAL_PYTHON).exists():
        return f"no {OFFICIAL_PYTHON}: set NITRO_ATTEST_S3EC_PYTHON to a venv with amazon-s3-encryption-client-python"
    probe = subprocess.run(
        [OFFICIAL_PYTHON, "-c", "import s3_encryption, boto3"], capture_output=True, text=True, check=False
    )
    return None if probe.returncode == 0 else f"the official client does not import: {probe.stderr[-300:]}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    reason = _official_available()
    if reason is not None:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("interop")
    enclave = TestEnclave.create(root / "enclave", pcrs={0: GOOD_PCR0})
    (root / "s3").mkdir()
    with LocalKms(roots=enclave.roots) as kms, s3_server(root / "s3") as (endpoint, _):
        client = kms.client()
        attested = client.create_key(Policy=key_policy())["KeyMetadata"]["Arn"]
        plain = client.create_key()["KeyMetadata"]["KeyId"]  # the official client decrypts without Recipient
        s3_client(endpoint).create_bucket(Bucket=BUCKET)
        yield {
            "root": root,
            "kms": kms.endpoint_url,
            "s3": endpoint,
            "attested": attested,
            "plain": plain,
            "enclave": str(enclave.directory),
            "environment": aws_environment(PYTHONCOERCECLOCALE="0"),
        }


def _official(world: dict[str, Any], mode: str, key_id: str, key: str, data: bytes = b"") -> bytes:
    result = subprocess.run(
        [OFFICIAL_PYTHON, "-c", OFFICIAL, mode, world["kms"], world["s3"], key_id, BUCKET, key],
        input=data,
        capture_output=True,
        env=world["environment"],
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    return result.stdout


def test_an_object_the_official_client_writes_opens_with_secrets_run(world: dict[str, Any], tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    config = {"env": {"TOKEN": "from-the-official-client"}, "files": [{"path": f"{target}/t", "content": "x"}]}
    _official(world, "put", world["attested"], "official/config", json.dumps(config).encode())
    metadata = s3_client(world["s3"]).head_object(Bucket=BUCKET, Key="official/config")["Metadata"]
    assert metadata["x-amz-c"] == "115" and metadata["x-amz-w"] == "12"
    endpoints = ["--kms-endpoint", world["kms"], "--s3-endpoint", world["s3"], "--region", "us-east-1"]
    result = run_cli(
        [
            "run",
            "--from",
            f"s3://{BUCKET}/official/config",
            "--context",
            "app=web",
            "--attestation",
            f"test:{world['enclave']}",
            "--key-id",
            world["attested"],
            "--allow-env",
            "TOKEN",
            "--allow-file",
            str(target),
            *endpoints,
            "--",
            sys.executable,
            "-c",
            CHILD,
            str(tmp_path / "child.json"),
        ],
        world["environment"],
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "child.json").read_text())["TOKEN"] == "from-the-official-client"
    assert (target / "t").read_text() == "x" and (target / "t").stat().st_mode & 0o777 == 0o600


def test_an_object_secrets_encrypt_writes_decrypts_with_the_official_client(
    world: dict[str, Any], tmp_path: Path
) -> None:
    config = {"env": {"DB": "pw"}, "files": [{"path": "/run/secrets/db", "content": "secret\n", "mode": "0400"}]}
    (tmp_path / "config.json").write_text(json.dumps(config))
    endpoints = ["--kms-endpoint", world["kms"], "--s3-endpoint", world["s3"], "--region", "us-east-1"]
    result = run_cli(
        [
            "encrypt",
            str(tmp_path / "config.json"),
            "--key-id",
            world["plain"],
            "--to",
            f"s3://{BUCKET}/ours/config",
            "--context",
            "app=web",
            *endpoints,
        ],
        world["environment"],
    )
    assert result.returncode == 0, result.stderr
    plaintext = _official(world, "get", world["plain"], "ours/config")
    assert parse_config(plaintext) == SecretsConfig(
        env={"DB": "pw"}, files=parse_config(json.dumps(config).encode()).files
    )
