"""End to end, all local: the local KMS, test enclaves, an S3 server on loopback, ``secrets encrypt|run`` as processes.

The main path: a configuration encrypted to S3 and to a file is opened by
``secrets run``, whose child gets exactly the configured environment (over
the one it started with) and files (modes as asked, renamed into place).
Every denied path exits 1, names its code, writes nothing and starts no child.
Then: V3 metadata from an ``.instruction`` object, the legacy formats (V1,
V2 with AES-CBC or the plain ``kms`` wrap) built from the specification
with ``cryptography`` and opened only with ``legacy=True``/``--legacy``, and
the file writes failing at each step (injected) or the exec failing, each
undone.
"""

from __future__ import annotations

import base64
import errno
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("boto3")
pytest.importorskip("werkzeug")

from _boot_secrets_support import (
    BUCKET,
    CBC,
    CHILD,
    GCM,
    GOOD_PCR0,
    OTHER_PCR0,
    aws_environment,
    key_policy,
    legacy_object,
    run_cli,
    s3_client,
    s3_server,
)

from nitro_attest.boot_secrets import (
    AllowList,
    BootSecretsError,
    EncryptedObject,
    SecretFile,
    SecretsConfig,
    SecretsConfigError,
    _envelope,
    decrypt,
    encrypt,
    install_files,
    launch,
    parse_config,
)
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
    key_arn: str
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
        key = kms.client().create_key(Policy=key_policy())["KeyMetadata"]
        s3_client(endpoint).create_bucket(Bucket=BUCKET)
        environment = aws_environment(PYTHONCOERCECLOCALE="0", NITRO_ATTEST_TEST_MARK="inherited")
        assert good.directory is not None and bad.directory is not None
        yield World(root, kms, key["KeyId"], key["Arn"], endpoint, kind, good.directory, bad.directory, environment)


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
    options += ["--key-id", world.key_arn]
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


# --------------------------------------------------------------------------- instruction files on S3

_OBJECT_ONLY = ("x-amz-c", "x-amz-d", "x-amz-i", "nitro-attest-key-id")


def _case_config(case: Path) -> SecretsConfig:
    return parse_config(json.dumps(CONFIG).replace("{ROOT}", str(case / "out")).encode())


def _put_split(world: World, key: str, blob: EncryptedObject, instruction: bytes | None = None) -> None:
    """``blob`` stored as the instruction-file strategy stores V3: x-amz-c, -d, -i on the object, the rest beside."""
    own = {name: value for name, value in blob.metadata.items() if name in _OBJECT_ONLY}
    rest = {name: value for name, value in blob.metadata.items() if name not in _OBJECT_ONLY}
    s3 = s3_client(world.s3_endpoint)
    s3.put_object(Bucket=BUCKET, Key=key, Body=blob.body, Metadata=own)
    if instruction is None:
        instruction = json.dumps(rest).encode()
    if instruction:
        s3.put_object(Bucket=BUCKET, Key=f"{key}.instruction", Body=instruction)


def test_v3_metadata_in_an_instruction_object_opens_with_secrets_run(world: World, case: Path) -> None:
    key = f"instruction/{case.name}"
    blob = encrypt(_case_config(case), kms=world.kms.client(), key_id=world.key_id, context={"app": "web"})
    _put_split(world, key, blob)
    assert "x-amz-3" not in s3_client(world.s3_endpoint).head_object(Bucket=BUCKET, Key=key)["Metadata"]
    _expect_child(world, case, _run(world, case, f"s3://{BUCKET}/{key}"))


def test_secrets_inspect_reads_an_s3_object_and_its_instruction_file(world: World, case: Path) -> None:
    key = f"inspect/{case.name}"
    blob = encrypt(_case_config(case), kms=world.kms.client(), key_id=world.key_id, context={"app": "web"})
    _put_split(world, key, blob)
    endpoint = ["--s3-endpoint", world.s3_endpoint, "--region", "us-east-1"]
    result = run_cli(["inspect", f"s3://{BUCKET}/{key}", "--json", *endpoint], world.environment)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "format": "S3EC V3",
        "content_algorithm": "115",
        "wrapping": "kms+context",
        "key_id": blob.metadata["nitro-attest-key-id"],
        "context": {"app": "web", "aws:x-amz-cek-alg": "115"},
        "encrypted_key_size": len(base64.b64decode(blob.metadata["x-amz-3"])),
        "body_size": len(blob.body),
        "legacy": False,
    }
    text = run_cli(["inspect", f"s3://{BUCKET}/{key}", *endpoint], world.environment)
    assert text.returncode == 0, text.stderr
    assert "S3EC V3" in text.stdout and "kms+context" in text.stdout and world.key_id in text.stdout


def test_a_missing_or_bad_instruction_object_is_refused(world: World, case: Path) -> None:
    blob = encrypt(_case_config(case), kms=world.kms.client(), key_id=world.key_id, context={"app": "web"})
    _put_split(world, f"no-instruction/{case.name}", blob, instruction=b"")
    result = _run(world, case, f"s3://{BUCKET}/no-instruction/{case.name}")
    assert result.returncode == 1 and "NoSuchKey" in result.stderr, result.stderr
    assert not (case / "child.json").exists() and list((case / "out").iterdir()) == []
    foreign = json.dumps({"x-amz-3": blob.metadata["x-amz-3"], "x-amz-w": "12", "owner": "me"}).encode()
    _put_split(world, f"bad-instruction/{case.name}", blob, instruction=foreign)
    result = _run(world, case, f"s3://{BUCKET}/bad-instruction/{case.name}")
    _expect_denied(case, result, "malformed")
    assert "keys that are not S3EC metadata: owner" in result.stderr
    endpoint = ["--s3-endpoint", world.s3_endpoint, "--region", "us-east-1"]
    inspected = run_cli(["inspect", f"s3://{BUCKET}/bad-instruction/{case.name}", *endpoint], world.environment)
    assert inspected.returncode == 1 and "rejected [malformed]" in inspected.stderr, inspected.stderr
    missing = run_cli(["inspect", f"s3://{BUCKET}/no-such-object", *endpoint], world.environment)
    assert missing.returncode == 1 and "NoSuchKey" in missing.stderr, missing.stderr
    usage = run_cli(["inspect", f"s3://{BUCKET}", *endpoint], world.environment)
    assert usage.returncode == 2 and "is not s3://BUCKET/KEY" in usage.stderr, usage.stderr


# --------------------------------------------------------------------------- legacy formats


def _legacy_blob(world: World, case: Path, version: int, content: str, wrap: str) -> EncryptedObject:
    """A V1/V2 object of ``CONFIG`` under a data key from the local KMS, as the specification lays it out."""
    # The plain kms wrap's context is the V1-era client's: the key, and no algorithm.
    context = {"kms_cmk_id": world.key_arn} if wrap == "kms" else {"app": "web", "aws:x-amz-cek-alg": content}
    answer = world.kms.client().generate_data_key(KeyId=world.key_id, KeySpec="AES_256", EncryptionContext=context)
    metadata, body = legacy_object(
        version,
        content,
        wrap,
        data_key=answer["Plaintext"],
        encrypted_key=answer["CiphertextBlob"],
        context=context,
        plaintext=_case_config(case).to_json(),
    )
    return EncryptedObject(metadata, body)


@pytest.mark.parametrize(
    ("version", "content", "wrap", "legacy"),
    [(2, GCM, "kms+context", False), (2, CBC, "kms+context", True), (2, GCM, "kms", True), (1, CBC, "kms", True)],
    ids=["v2-gcm", "v2-cbc", "v2-plain-kms", "v1"],
)
def test_v2_and_legacy_objects_open_in_the_enclave(
    world: World, case: Path, version: int, content: str, wrap: str, legacy: bool
) -> None:
    blob = _legacy_blob(world, case, version, content, wrap)
    context = {} if wrap == "kms" else {"app": "web"}
    options: dict[str, Any] = {
        "kms": world.kms.client(),
        "attester": TestEnclave.load(world.good),
        "key_id": world.key_arn,
        "context": context,
    }
    if legacy:
        with pytest.raises(BootSecretsError) as caught:
            decrypt(blob, **options)
        assert caught.value.code == "unsupported" and "legacy=True (--legacy)" in caught.value.message
    assert decrypt(blob, **options, legacy=True) == _case_config(case)
    with pytest.raises(BootSecretsError) as denied:  # the key policy still decides
        decrypt(blob, **{**options, "attester": TestEnclave.load(world.bad)}, legacy=True)
    assert denied.value.code == "kms" and "AccessDeniedException" in denied.value.message


def test_secrets_run_opens_a_v1_object_only_with_legacy(world: World, case: Path) -> None:
    (case / "blob.json").write_bytes(_legacy_blob(world, case, 1, CBC, "kms").to_file())
    options = ["--from", str(case / "blob.json"), "--attestation", f"test:{world.good}", "--key-id", world.key_arn]
    options += ["--allow-env", "DB_PASSWORD", "--allow-env", "API_TOKEN", "--allow-file", str(case / "out/secrets")]
    command = ["--", sys.executable, "-c", CHILD, str(case / "child.json")]
    refused = run_cli(["run", *options, *world.endpoints(), *command], world.environment)
    _expect_denied(case, refused, "unsupported")
    assert "AES-CBC content (unauthenticated): opened only with legacy=True (--legacy)" in refused.stderr
    opened = run_cli(["run", *options, "--legacy", *world.endpoints(), *command], world.environment)
    _expect_child(world, case, opened)
    inspected = run_cli(["inspect", str(case / "blob.json"), "--json"], world.environment)
    shown = json.loads(inspected.stdout)
    assert (shown["format"], shown["content_algorithm"], shown["wrapping"], shown["legacy"]) == (
        "S3EC V1",
        CBC,
        "kms",
        True,
    )


def test_a_decrypted_configuration_that_is_not_one_is_refused(world: World) -> None:
    context = {"app": "web", "aws:x-amz-cek-alg": "115"}
    answer = world.kms.client().generate_data_key(KeyId=world.key_id, KeySpec="AES_256", EncryptionContext=context)
    metadata, body = _envelope.encrypt_v3(b"not json", answer["Plaintext"], answer["CiphertextBlob"], context)
    with pytest.raises(BootSecretsError) as caught:
        decrypt(
            EncryptedObject(metadata, body),
            kms=world.kms.client(),
            attester=TestEnclave.load(world.good),
            key_id=world.key_arn,
            context={"app": "web"},
        )
    assert (
        caught.value.code == "config" and "the decrypted configuration is not valid: not JSON" in caught.value.message
    )


# --------------------------------------------------------------------------- writing files, failing at each step


def _tree(root: Path) -> dict[str, bytes | str | None]:
    """Every entry below ``root``: a file's bytes, a link's target (text), None for a directory."""
    entries: dict[str, bytes | str | None] = {}
    for directory, names, files in os.walk(root):
        for name in names + files:
            path = Path(directory, name)
            key = str(path.relative_to(root))
            if path.is_symlink():
                entries[key] = os.readlink(path)
            else:
                entries[key] = None if path.is_dir() else path.read_bytes()
    return dict(sorted(entries.items()))


def _two_files(root: Path) -> tuple[SecretsConfig, AllowList]:
    config = SecretsConfig(
        files=(
            SecretFile(f"{root}/secrets/db.txt", b"new db", 0o400),
            SecretFile(f"{root}/secrets/tls/key.pem", b"new key"),
        )
    )
    return config, AllowList(files=(f"{root}/secrets",))


def _with_old_db(root: Path) -> int:
    (root / "secrets").mkdir()
    (root / "secrets" / "db.txt").write_bytes(b"old db")
    return (root / "secrets" / "db.txt").stat().st_ino


def _failing(real: Callable[..., Any], fails: Callable[..., bool], number: int = errno.EIO) -> Callable[..., Any]:
    def call(*args: Any, **options: Any) -> Any:
        if fails(*args):
            raise OSError(number, os.strerror(number))
        return real(*args, **options)

    return call


def _path_error(fragment: str) -> Any:
    return pytest.raises(BootSecretsError, match=re.escape(fragment))


def test_install_files_replaces_and_creates_with_nothing_left_beside(tmp_path: Path) -> None:
    inode = _with_old_db(tmp_path)
    install_files(*_two_files(tmp_path))
    assert _tree(tmp_path) == {
        "secrets": None,
        "secrets/db.txt": b"new db",
        "secrets/tls": None,
        "secrets/tls/key.pem": b"new key",
    }
    assert (tmp_path / "secrets/db.txt").stat().st_ino != inode


def test_a_rename_failing_after_the_first_gives_the_replaced_file_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inode = _with_old_db(tmp_path)
    before = _tree(tmp_path)
    monkeypatch.setattr(os, "rename", _failing(os.rename, lambda src, dst: src.endswith(".tmp") and dst == "key.pem"))
    with _path_error("key.pem: cannot rename it into place: Input/output error") as caught:
        install_files(*_two_files(tmp_path))
    assert caught.value.code == "path" and "not undone" not in caught.value.message
    assert _tree(tmp_path) == before  # db.txt's old version back, tls/ and every temporary or kept name gone
    assert (tmp_path / "secrets/db.txt").stat().st_ino == inode  # the very same file, not a copy


def test_a_rename_failing_removes_a_file_that_was_new(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "rename", _failing(os.rename, lambda src, dst: dst == "key.pem"))
    with _path_error("cannot rename it into place"):
        install_files(*_two_files(tmp_path))
    assert _tree(tmp_path) == {}  # secrets/ was made for these files: removed too


def test_a_directory_sync_failing_undoes_every_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _with_old_db(tmp_path)
    before = _tree(tmp_path)
    directories: list[int] = []
    real_fsync = os.fsync

    def fsync(descriptor: int) -> None:
        if os.path.isdir(f"/proc/self/fd/{descriptor}"):
            directories.append(descriptor)
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)
    with _path_error("cannot sync its directory: Input/output error"):
        install_files(*_two_files(tmp_path))
    assert directories and _tree(tmp_path) == before


def test_keeping_the_replaced_file_failing_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _with_old_db(tmp_path)
    before = _tree(tmp_path)
    monkeypatch.setattr(os, "link", _failing(os.link, lambda src, dst: True, errno.EPERM))
    with _path_error("db.txt: cannot keep the existing file while replacing it: Operation not permitted"):
        install_files(*_two_files(tmp_path))
    assert _tree(tmp_path) == before


def test_removing_the_kept_version_failing_undoes_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _with_old_db(tmp_path)
    before = _tree(tmp_path)
    failed: list[str] = []

    def fails(name: str) -> bool:
        if name.endswith(".old") and not failed:
            failed.append(name)
            return True
        return False

    monkeypatch.setattr(os, "unlink", _failing(os.unlink, fails))
    with _path_error("db.txt: cannot remove the kept previous version: Input/output error"):
        install_files(*_two_files(tmp_path))
    assert failed and _tree(tmp_path) == before


def test_what_cannot_be_undone_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _with_old_db(tmp_path)
    # key.pem's rename fails, and so does giving db.txt its previous version back.
    monkeypatch.setattr(
        os,
        "rename",
        _failing(os.rename, lambda src, dst: dst == "key.pem" or (src.endswith(".old") and dst == "db.txt")),
    )
    with pytest.raises(BootSecretsError) as caught:
        install_files(*_two_files(tmp_path))
    message = caught.value.message
    assert caught.value.code == "path" and "key.pem: cannot rename it into place" in message
    kept = [name for name in os.listdir(tmp_path / "secrets") if name.endswith(".old")]
    assert len(kept) == 1 and os.listdir(tmp_path / "secrets") == kept  # the new db.txt removed, the old one kept
    assert (tmp_path / "secrets" / kept[0]).read_bytes() == b"old db"
    assert f"not undone: cannot give {tmp_path}/secrets/db.txt its previous version back: Input/output error" in message
    assert f"the previous version of {tmp_path}/secrets/db.txt is at {tmp_path}/secrets/{kept[0]}" in message


def test_a_write_failing_removes_the_temporary_files_and_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _with_old_db(tmp_path)
    before = _tree(tmp_path)
    writes: list[int] = []
    real_write = os.write

    def write(descriptor: int, data: Any) -> int:
        writes.append(descriptor)
        if len(writes) == 2:  # key.pem's
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(descriptor, data)

    monkeypatch.setattr(os, "write", write)
    with _path_error("key.pem: cannot write: No space left on device"):
        install_files(*_two_files(tmp_path))
    assert _tree(tmp_path) == before


def test_a_temporary_file_that_cannot_be_made_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "open", _failing(os.open, lambda name, *rest: name.endswith(".tmp"), errno.EROFS))
    with _path_error("db.txt: cannot create a temporary file beside it: Read-only file system"):
        install_files(*_two_files(tmp_path))
    assert _tree(tmp_path) == {}


@pytest.mark.parametrize("missing", ["secrets", "secrets/tls"])
def test_a_directory_that_cannot_be_made_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    if missing != "secrets":
        (tmp_path / "secrets").mkdir()
    before = _tree(tmp_path)
    monkeypatch.setattr(os, "mkdir", _failing(os.mkdir, lambda name, *rest: name.endswith("tls"), errno.EROFS))
    with _path_error("cannot create"):
        install_files(*_two_files(tmp_path))
    assert _tree(tmp_path) == before


def test_paths_that_are_not_directories_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(config: SecretsConfig, allow: AllowList, fragment: str) -> None:
        before = _tree(tmp_path)
        with _path_error(fragment) as caught:
            install_files(config, allow)
        assert caught.value.code == "path" and _tree(tmp_path) == before

    (tmp_path / "file").write_text("a file")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    (tmp_path / "link").symlink_to(tmp_path / "dir")

    def one(path: str, allowed: str) -> tuple[SecretsConfig, AllowList]:
        return SecretsConfig(files=(SecretFile(path, b"x"),)), AllowList(files=(allowed,))

    root = str(tmp_path)
    refused(*one(f"{root}/file/a", f"{root}/file"), f"{root}/file is not a directory")
    refused(*one(f"{root}/file/sub/a", f"{root}/file/sub"), f"{root}/file/sub is not a directory")
    refused(*one(f"{root}/dangling/sub/a", f"{root}/dangling/sub"), f"{root}/dangling is not a directory")
    refused(*one(f"{root}/link/a", f"{root}/link"), f"{root}/link is a symbolic link, which is not followed")
    refused(*one(f"{root}/file/a", root), f"{root}/file is not a directory")
    refused(*one(f"{root}/link/a", root), f"{root}/link is a symbolic link, which is not followed")
    refused(*one(f"{root}/dir", root), f"{root}/dir: exists and is not a regular file")
    monkeypatch.setattr(os, "open", _failing(os.open, lambda name, *rest: name == f"{root}/dir", errno.EACCES))
    refused(*one(f"{root}/dir/a", f"{root}/dir"), f"cannot open {root}/dir: Permission denied")


# --------------------------------------------------------------------------- exec failing


def _script(directory: Path, content: bytes) -> str:
    path = directory / "app"
    path.write_bytes(content)
    path.chmod(0o755)
    return str(path)


def test_an_exec_that_fails_removes_the_files_it_wrote(tmp_path: Path) -> None:
    _with_old_db(tmp_path)
    program = _script(tmp_path, b"#!/nonexistent/interpreter\n")  # passes the checks; execve says ENOENT
    with pytest.raises(SecretsConfigError) as caught:
        launch(*_two_files(tmp_path), [program], environ={})
    assert caught.value.field == "command"
    assert f"cannot run {program}: No such file or directory; the files written were removed" in str(caught.value)
    # db.txt was replaced, so its previous version is gone too (as documented); tls/ was made for key.pem.
    assert _tree(tmp_path) == {"app": b"#!/nonexistent/interpreter\n", "secrets": None}


def test_an_exec_format_error_removes_the_files_it_wrote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    program = _script(tmp_path, b"\x7fELF not really")
    monkeypatch.setattr(os, "execve", _failing(os.execve, lambda *args: True, errno.ENOEXEC))
    with pytest.raises(SecretsConfigError) as caught:
        launch(*_two_files(tmp_path), [program], environ={})
    assert f"cannot run {program}: Exec format error; the files written were removed" in str(caught.value)
    assert _tree(tmp_path) == {"app": b"\x7fELF not really"}


def test_secrets_run_refuses_a_command_it_cannot_run(world: World, case: Path) -> None:
    _encrypt(world, case, "--out", str(case / "blob.json"))
    options = ["--from", str(case / "blob.json"), "--context", "app=web", "--attestation", f"test:{world.good}"]
    options += ["--key-id", world.key_arn]
    options += ["--allow-env", "DB_PASSWORD", "--allow-env", "API_TOKEN", "--allow-file", str(case / "out/secrets")]
    text = case / "text"
    text.write_text("echo not a script\n")
    text.chmod(0o755)
    result = run_cli(["run", *options, *world.endpoints(), "--", str(text)], world.environment)
    _expect_denied(case, result, "command")
    assert "starts with neither #! nor the ELF magic" in result.stderr
    bad = case / "bad-interpreter"
    bad.write_text("#!/nonexistent/interpreter\n")
    bad.chmod(0o755)
    result = run_cli(["run", *options, *world.endpoints(), "--", str(bad)], world.environment)
    _expect_denied(case, result, "command")
    assert "cannot run" in result.stderr and "the files written were removed" in result.stderr


@pytest.mark.parametrize(
    ("arguments", "code", "fragment"),
    [
        (["--context", "app"], 2, "'app' is not KEY=VALUE"),
        (["--context", "app=web", "--context", "app=api"], 2, "--context app is given twice"),
        (["--allow-env", "1A"], 2, "allow_env: env.'1A': not an environment variable name"),
        (["--allow-file", "run/secrets"], 2, "allow_file: 'run/secrets' is not an absolute path"),
        (["--attestation", "tpm"], 1, "--attestation 'tpm': nsm, or test:DIR"),
        (["--attestation", "test:/nonexistent"], 1, "/nonexistent/enclave.json: cannot read a test enclave file"),
        ([], 1, "blob.json: No such file or directory"),
    ],
)
def test_secrets_run_usage_rejections(
    world: World, tmp_path: Path, arguments: list[str], code: int, fragment: str
) -> None:
    options = ["--from", str(tmp_path / "blob.json"), "--key-id", world.key_arn]
    result = run_cli(["run", *options, *arguments, "--", "true"], world.environment)
    assert result.returncode == code and fragment in result.stderr, result.stderr


def test_secrets_run_without_a_command_is_a_usage_error(world: World, tmp_path: Path) -> None:
    result = run_cli(["run", "--from", str(tmp_path / "blob.json"), "--key-id", world.key_arn, "--"], world.environment)
    assert result.returncode == 2 and "no command: end the options with -- COMMAND [ARGS...]" in result.stderr
