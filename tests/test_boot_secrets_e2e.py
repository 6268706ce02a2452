"""End to end, all local: the local KMS, test enclaves, an S3 server on loopback, ``secrets encrypt|run`` as processes.

The main path: a configuration encrypted to S3 and to a file is opened by
``secrets run``, whose child gets exactly the configured environment (over
the one it started with) and files (modes as asked, renamed into place).
Every denied path exits 1, names its code, writes nothing and starts no child.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("boto3")
pytest.importorskip("werkzeug")

from _boot_secrets_support import (
    BUCKET,
    CHILD,
    GOOD_PCR0,
    OTHER_PCR0,
    aws_environment,
    key_policy,
    run_cli,
    s3_client,
    s3_server,
)

from nitro_attest.boot_secrets import _envelope
from nitro_attest.kms.server import LocalKms
from nitro_attest.testing import TestEnclave

CONFIG: dict[str, Any] = {
    "env": {"DB_PASSWORD": "hunter2 with spaces", "API_TOKEN": "tok-\u00e9\u4e2d"},
    "files": [
        {"path": "{ROOT}/secrets/db.txt", "content": "postgres://app:hunter2@db/app\n", "mode": "0400"},
        {"path": "{ROOT}/secrets/tls/key.pem", "content_base64": base64.b64encode(bytes(range(256))).decode()},
    ],
}


@dataclass
class World:
    root: Path
    kms: LocalKms
    key_id: str
    s3_endpoint: str
    s3_kind: str
    good: Path
    bad: Path
    environment: dict[str, str]

    def endpoints(self) -> list[str]:
        return ["--kms-endpoint", self.kms.endpoint_url, "--s3-endpoint", self.s3_endpoint, "--region", "us-east-1"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("boot-secrets")
    good = TestEnclave.create(root / "good-enclave", pcrs={0: GOOD_PCR0})
    bad = TestEnclave.create(root / "other-enclave", pcrs={0: OTHER_PCR0})
    (root / "s3").mkdir()
    with LocalKms(roots=good.roots + bad.roots) as kms, s3_server(root / "s3") as (endpoint, kind):
        key_id = kms.client().create_key(Policy=key_policy())["KeyMetadata"]["KeyId"]
        s3_client(endpoint).create_bucket(Bucket=BUCKET)
        environment = aws_environment(PYTHONCOERCECLOCALE="0", NITRO_ATTEST_TEST_MARK="inherited")
        assert good.directory is not None and bad.directory is not None
        yield World(root, kms, key_id, endpoint, kind, good.directory, bad.directory, environment)


def _config_file(directory: Path, config: dict[str, Any], target: Path) -> Path:
    text = json.dumps(config).replace("{ROOT}", str(target))
    path = directory / "config.json"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def case(world: World, tmp_path: Path) -> Path:
    """A fresh directory: the configuration's files go below ``case/out``, the child's marker to ``case/child``."""
    (tmp_path / "out").mkdir()
    return tmp_path


def _encrypt(world: World, case: Path, *target: str, config: dict[str, Any] = CONFIG, context: str = "app=web") -> None:
    path = _config_file(case, config, case / "out")
    result = run_cli(
        ["encrypt", str(path), "--key-id", world.key_id, *target, "--context", context, *world.endpoints()],
        world.environment,
    )
    assert result.returncode == 0, result.stderr


def _run(
    world: World,
    case: Path,
    source: str,
    *,
    enclave: Path | None = None,
    context: str = "app=web",
    allow_env: tuple[str, ...] = ("DB_PASSWORD", "API_TOKEN"),
    allow_file: tuple[str, ...] = ("{ROOT}/secrets",),
) -> Any:
    options = ["--from", source, "--context", context, "--attestation", f"test:{enclave or world.good}"]
    for name in allow_env:
        options += ["--allow-env", name]
    for path in allow_file:
        options += ["--allow-file", path.replace("{ROOT}", str(case / "out"))]
    command = ["--", sys.executable, "-c", CHILD, str(case / "child.json")]
    return run_cli(["run", *options, *world.endpoints(), *command], world.environment)


def _expect_child(world: World, case: Path, result: Any) -> None:
    assert result.returncode == 0, result.stderr
    child = json.loads((case / "child.json").read_text(encoding="utf-8"))
    assert child == {**world.environment, **CONFIG["env"]}
    secrets = case / "out" / "secrets"
    database = secrets / "db.txt"
    assert database.read_bytes() == b"postgres://app:hunter2@db/app\n"
    assert database.stat().st_mode & 0o7777 == 0o400
    key = secrets / "tls" / "key.pem"
    assert key.read_bytes() == bytes(range(256))
    assert key.stat().st_mode & 0o7777 == 0o600
    assert (secrets / "tls").stat().st_mode & 0o777 == 0o700
    assert sorted(os.listdir(secrets)) == ["db.txt", "tls"]  # no temporary file left
    assert os.listdir(secrets / "tls") == ["key.pem"]


def _expect_denied(case: Path, result: Any, code: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert f"[{code}]" in result.stderr or code in result.stderr, result.stderr
    assert not (case / "child.json").exists(), "the child was started"
    assert list((case / "out").iterdir()) == [], "something was written"


def test_the_s3_server_is_named(world: World) -> None:
    assert world.s3_kind in ("seaweedfs", "moto")


def test_encrypt_to_s3_and_run_gives_the_child_the_configuration(world: World, case: Path) -> None:
    _encrypt(world, case, "--to", f"s3://{BUCKET}/app/{case.name}")
    result = _run(world, case, f"s3://{BUCKET}/app/{case.name}")
    _expect_child(world, case, result)


def test_encrypt_to_a_file_and_run_replaces_files_by_renaming(world: World, case: Path) -> None:
    _encrypt(world, case, "--out", str(case / "blob.json"))
    existing = case / "out" / "secrets" / "db.txt"
    existing.parent.mkdir()
    existing.write_text("old")
    inode = existing.stat().st_ino
    result = _run(world, case, str(case / "blob.json"))
    _expect_child(world, case, result)
    assert existing.stat().st_ino != inode  # a new file renamed over the old one, not rewritten in place


def test_a_file_uploaded_as_is_opens_from_s3(world: World, case: Path) -> None:
    _encrypt(world, case, "--out", str(case / "blob.json"))
    document = json.loads((case / "blob.json").read_text())
    body = base64.b64decode(document["body_base64"])
    s3_client(world.s3_endpoint).put_object(
        Bucket=BUCKET, Key=f"uploaded/{case.name}", Body=body, Metadata=document["metadata"]
    )
    _expect_child(world, case, _run(world, case, f"s3://{BUCKET}/uploaded/{case.name}"))


def test_inspect_shows_format_key_and_context(world: World, case: Path) -> None:
    _encrypt(world, case, "--out", str(case / "blob.json"))
    result = run_cli(["inspect", str(case / "blob.json"), "--json"], world.environment)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["format"] == "S3EC V3" and shown["content_algorithm"] == "115"
    assert shown["context"] == {"app": "web", "aws:x-amz-cek-alg": "115"}
    assert shown["key_id"].endswith(world.key_id)


# --------------------------------------------------------------------------- denied


def _tampered(case: Path, change: Any) -> str:
    path = case / "blob.json"
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))
    return str(path)


def test_an_enclave_whose_pcr0_differs_from_the_key_policy_gets_nothing(world: World, case: Path) -> None:
    _encrypt(world, case, "--out", str(case / "blob.json"))
    result = _run(world, case, str(case / "blob.json"), enclave=world.bad)
    _expect_denied(case, result, "kms")
    assert "AccessDeniedException" in result.stderr


def test_a_flipped_ciphertext_byte_is_refused(world: World, case: Path) -> None:
    _encrypt(world, case, "--out", str(case / "blob.json"))

    def flip(document: dict[str, Any]) -> None:
        body = bytearray(base64.b64decode(document["body_base64"]))
        body[10] ^= 0x01
        document["body_base64"] = base64.b64encode(bytes(body)).decode()

    _expect_denied(case, _run(world, case, _tampered(case, flip)), "decrypt")


def test_a_changed_commitment_is_refused(world: World, case: Path) -> None:
    _encrypt(world, case, "--out", str(case / "blob.json"))

    def change(document: dict[str, Any]) -> None:
        commitment = bytearray(base64.b64decode(document["metadata"]["x-amz-d"]))
        commitment[0] ^= 0x80
        document["metadata"]["x-amz-d"] = base64.b64encode(bytes(commitment)).decode()

    _expect_denied(case, _run(world, case, _tampered(case, change)), "commitment")


def test_a_swapped_encryption_context_is_refused_by_us_and_by_kms(world: World, case: Path) -> None:
    _encrypt(world, case, "--out", str(case / "other.json"), context="app=other")
    other = json.loads((case / "other.json").read_text())["metadata"]["x-amz-t"]
    (case / "other.json").unlink()
    _encrypt(world, case, "--out", str(case / "blob.json"))

    def swap(document: dict[str, Any]) -> None:
        document["metadata"]["x-amz-t"] = other

    source = _tampered(case, swap)
    _expect_denied(case, _run(world, case, source), "context")  # not the context asked for
    result = _run(world, case, source, context="app=other")  # asked for, but not the one KMS bound the key to
    _expect_denied(case, result, "kms")
    assert "InvalidCiphertextException" in result.stderr


def test_an_environment_name_outside_the_allow_list_is_refused(world: World, case: Path) -> None:
    _encrypt(world, case, "--out", str(case / "blob.json"))
    result = _run(world, case, str(case / "blob.json"), allow_env=("DB_PASSWORD",))
    _expect_denied(case, result, "not_allowed")
    assert "env.API_TOKEN" in result.stderr


def test_a_file_outside_the_allow_list_is_refused(world: World, case: Path) -> None:
    _encrypt(world, case, "--out", str(case / "blob.json"))
    result = _run(world, case, str(case / "blob.json"), allow_file=("{ROOT}/secrets/tls",))
    _expect_denied(case, result, "not_allowed")
    assert "files[0].path" in result.stderr


def test_a_dot_dot_path_is_refused_when_encrypting_and_when_opening(world: World, case: Path) -> None:
    sneaky = {"files": [{"path": "{ROOT}/secrets/../../escaped", "content": "x"}]}
    path = _config_file(case, sneaky, case / "out")
    result = run_cli(
        ["encrypt", str(path), "--key-id", world.key_id, "--out", str(case / "blob.json"), *world.endpoints()],
        world.environment,
    )
    assert result.returncode == 2 and "files[0].path" in result.stderr and "'..'" in result.stderr
    assert not (case / "blob.json").exists()
    # A blob that carries one anyway (written without our validation) is refused after decryption.
    plaintext = json.dumps(sneaky).replace("{ROOT}", str(case / "out")).encode()
    kms = world.kms.client()
    context = {"app": "web", "aws:x-amz-cek-alg": "115"}
    answer = kms.generate_data_key(KeyId=world.key_id, KeySpec="AES_256", EncryptionContext=context)
    metadata, body = _envelope.encrypt_v3(plaintext, answer["Plaintext"], answer["CiphertextBlob"], context)
    document = {
        "format": "nitro-attest/boot-secrets/1",
        "metadata": metadata,
        "body_base64": base64.b64encode(body).decode(),
    }
    (case / "blob.json").write_text(json.dumps(document))
    result = _run(world, case, str(case / "blob.json"), allow_file=("{ROOT}",))
    _expect_denied(case, result, "config")
    assert not (case / "escaped").exists()


def test_a_path_through_a_symbolic_link_is_refused(world: World, case: Path) -> None:
    elsewhere = case / "elsewhere"
    elsewhere.mkdir()
    _encrypt(world, case, "--out", str(case / "blob.json"))
    (case / "out" / "secrets").mkdir()
    (case / "out" / "secrets" / "tls").symlink_to(elsewhere)
    result = _run(world, case, str(case / "blob.json"))
    assert result.returncode == 1 and "[path]" in result.stderr and "symbolic link" in result.stderr
    assert not (case / "child.json").exists()
    assert os.listdir(case / "out" / "secrets") == ["tls"]  # db.txt, checked first, was not written either
    assert list(elsewhere.iterdir()) == []


def test_a_symbolic_link_in_place_of_a_file_is_refused(world: World, case: Path) -> None:
    target = case / "target"
    target.write_text("untouched")
    _encrypt(world, case, "--out", str(case / "blob.json"))
    (case / "out" / "secrets").mkdir()
    (case / "out" / "secrets" / "db.txt").symlink_to(target)
    result = _run(world, case, str(case / "blob.json"))
    assert result.returncode == 1 and "[path]" in result.stderr
    assert not (case / "child.json").exists()
    assert target.read_text() == "untouched"
    assert sorted(os.listdir(case / "out" / "secrets")) == ["db.txt"]
