"""Hardening of boot-time secrets, from a security review: each test showed a problem, and failed while it was there.

Library-level where possible (no S3 server): a fake KMS stands for the one
the parent instance can answer with (its own account's key, or a plain-HTTP
endpoint it terminates), ``install_files``/``launch`` on a temporary tree,
the configuration parsers on their inputs. Two tests run the CLI group in a
subprocess, without KMS or S3, to show what ``secrets run`` accepts.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _boot_secrets_support import RUNNER

import nitro_attest
from nitro_attest.boot_secrets import (
    AllowList,
    BootSecretsError,
    EncryptedObject,
    SecretFile,
    SecretsConfig,
    SecretsConfigError,
    _envelope,
    check_key_arn,
    decrypt,
    install_files,
    launch,
    parse_config,
)
from nitro_attest.recipient import seal
from nitro_attest.testing import TestEnclave

_CONTEXT = {"app": "web", "aws:x-amz-cek-alg": "115"}
_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def _tree(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


# --------------------------------------------------------------------------- the data key's origin


class _ParentKms:
    """What answers Decrypt when the parent instance picks the key or the endpoint.

    Real KMS, called with the parent's credentials, decrypts a CiphertextBlob
    of any key those credentials may use (an alias resolves in the caller's
    account), and seals the data key to the attestation document's public
    key; a plain-HTTP endpoint the parent terminates does the same with no
    KMS at all. Either way the data key is the parent's.
    """

    def __init__(self, data_key: bytes) -> None:
        self.data_key = data_key
        self.requests: list[dict[str, Any]] = []

    def decrypt(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        document = nitro_attest.parse(request["Recipient"]["AttestationDocument"])
        assert document.public_key is not None
        return {
            "KeyId": "arn:aws:kms:us-east-1:999999999999:key/parent",
            "CiphertextForRecipient": seal(self.data_key, document.public_key),
        }


def _parent_blob(data_key: bytes) -> EncryptedObject:
    config = SecretsConfig(env={"DB_HOST": "db.parent.example"})
    metadata, body = _envelope.encrypt_v3(config.to_json(), data_key, b"the parent's CiphertextBlob", _CONTEXT)
    return EncryptedObject(metadata, body)


@pytest.fixture(scope="module")
def enclave() -> TestEnclave:
    return TestEnclave.create()


@pytest.mark.parametrize("key_id", [None, "alias/app-boot"], ids=["no key id", "an alias"])
def test_a_configuration_sealed_under_the_parents_key_is_not_applied(enclave: TestEnclave, key_id: str | None) -> None:
    """Without a key ARN pinned in the (measured) command line, the parent replaces the configuration.

    It hands the enclave its own credentials and a blob under its own key
    (same context), whose policy lets any enclave Decrypt; the enclave opens
    it and would apply its DB_HOST. The docs' threat model says only a blob
    "sealed under the same key" can replace it.
    """
    data_key = os.urandom(32)
    kms = _ParentKms(data_key)
    with pytest.raises(SecretsConfigError):  # was: a config with the parent's DB_HOST
        decrypt(_parent_blob(data_key), kms=kms, attester=enclave, context={"app": "web"}, key_id=key_id)  # type: ignore[arg-type]


def _cli(arguments: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    environment.update(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1")
    environment["AWS_EC2_METADATA_DISABLED"] = "true"
    blob = tmp_path / "blob.json"
    blob.write_bytes(_parent_blob(os.urandom(32)).to_file())
    return subprocess.run(
        [sys.executable, "-c", RUNNER, "secrets", "run", "--from", str(blob), "--context", "app=web", *arguments],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


def test_secrets_run_without_key_id_is_a_usage_error(tmp_path: Path) -> None:
    pytest.importorskip("boto3")
    result = _cli(["--allow-env", "DB_HOST", "--", "/bin/true"], tmp_path)
    assert result.returncode == 2 and "--key-id" in result.stderr, result.stderr


def test_secrets_run_on_the_nsm_refuses_a_plain_http_kms_endpoint(tmp_path: Path) -> None:
    """Over http:// the parent (which runs the vsock proxy) answers Decrypt itself: see :class:`_ParentKms`."""
    pytest.importorskip("boto3")
    arguments = ["--key-id", _ARN, "--kms-endpoint", "http://127.0.0.1:9", "--allow-env", "DB_HOST", "--", "/bin/true"]
    result = _cli(arguments, tmp_path)
    assert result.returncode == 2 and "https" in result.stderr, result.stderr


# --------------------------------------------------------------------------- writing the files


@pytest.mark.parametrize("where", ["name", "directory"])
def test_a_path_component_over_255_bytes_is_refused_by_the_configuration_check(tmp_path: Path, where: str) -> None:
    """A 300-byte component passed the checks (1024 bytes a path) and the filesystem's OSError escaped."""
    long = "a" * 300
    path = f"{tmp_path}/{long}" if where == "name" else f"{tmp_path}/{long}/db"
    with pytest.raises(SecretsConfigError) as caught:
        SecretsConfig(files=(SecretFile(path, b"x"),))
    assert caught.value.field == "files[0].path" and "a component is over 255 bytes" in str(caught.value)
    with pytest.raises(SecretsConfigError) as caught:
        AllowList(files=(str(tmp_path / ("\u00e9" * 128)),))  # 256 bytes in UTF-8
    assert caught.value.field == "allow_file"
    assert _tree(tmp_path) == []


@pytest.mark.parametrize(
    ("where", "fragment"),
    [("name", "cannot look at it: File name too long"), ("directory", "cannot open")],
)
def test_a_name_the_filesystem_refuses_is_a_path_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, fragment: str
) -> None:
    """Any OSError but a missing file (a filesystem with a shorter NAME_MAX; no search permission) is ``path``."""
    path = f"{tmp_path}/db" if where == "name" else f"{tmp_path}/sub/db"
    (tmp_path / "sub").mkdir()
    real_stat, real_open = os.stat, os.open
    too_long = OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG))

    def failing_stat(name: Any, *rest: Any, **options: Any) -> os.stat_result:
        if name in ("db", "sub") and options.get("dir_fd") is not None:
            raise too_long
        return real_stat(name, *rest, **options)

    def failing_open(name: Any, flags: int, *rest: Any, **options: Any) -> int:
        if name == "sub" and options.get("dir_fd") is not None:
            raise too_long
        return real_open(name, flags, *rest, **options)

    monkeypatch.setattr(os, "stat", failing_stat)
    monkeypatch.setattr(os, "open", failing_open)
    config = SecretsConfig(files=(SecretFile(path, b"x"),))
    with pytest.raises(BootSecretsError) as caught:
        install_files(config, AllowList(files=(str(tmp_path),)))
    monkeypatch.undo()
    assert caught.value.code == "path" and fragment in caught.value.message, caught.value.message
    assert _tree(tmp_path) == ["sub"]


def test_a_directory_made_but_not_opened_is_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """_walk records a directory it made only once it opens it: a failing open leaves it behind.

    (Without root, a umask that takes the owner's read bit makes this happen for real.)
    """
    real_open = os.open

    def failing_open(name: Any, flags: int, *rest: Any, **options: Any) -> int:
        if name == "sub" and options.get("dir_fd") is not None and os.path.isdir(tmp_path / "sub"):
            raise OSError(errno.EACCES, os.strerror(errno.EACCES))
        return real_open(name, flags, *rest, **options)

    monkeypatch.setattr(os, "open", failing_open)
    config = SecretsConfig(files=(SecretFile(f"{tmp_path}/sub/db", b"x"),))
    with pytest.raises(BootSecretsError):
        install_files(config, AllowList(files=(str(tmp_path),)))
    monkeypatch.undo()
    assert _tree(tmp_path) == []


@pytest.mark.parametrize(
    ("command", "environ"),
    [(["/bin/true", "a\x00b"], {}), (["/bin/true"], {"A=B": "x"}), (["/bin/true"], {"X": "a\x00b"})],
    ids=["NUL in an argument", "= in a name", "NUL in a value"],
)
def test_an_execve_that_refuses_its_arguments_writes_nothing(
    tmp_path: Path, command: list[str], environ: dict[str, str]
) -> None:
    """os.execve raises ValueError (not OSError) for these: the files stay in place and the ValueError escapes."""
    config = SecretsConfig(files=(SecretFile(f"{tmp_path}/db", b"secret"),))
    with pytest.raises(SecretsConfigError):
        launch(config, AllowList(files=(str(tmp_path),)), command, environ=environ)
    assert _tree(tmp_path) == []


# --------------------------------------------------------------------------- the configuration


@pytest.mark.parametrize(
    ("data", "form"),
    [
        (b"a: 2001-13-01\n", "yaml"),
        (b"a: 2001-12-14t21:59:43.10-99:00\n", "yaml"),
        (b"a: " + b"1" * 5000 + b"\n", "yaml"),
        (b"a: !!int x\n", "yaml"),
        (b"a: !!float x\n", "yaml"),
        (b"a: !!timestamp x\n", "yaml"),
        (b"a: 0x_\n", "yaml"),
        (b"a = " + b"1" * 5000 + b"\n", "toml"),
    ],
    ids=["bad date", "bad offset", "5000 digits", "!!int", "!!float", "!!timestamp", "0x_", "toml 5000 digits"],
)
def test_yaml_and_toml_values_the_parsers_cannot_build_are_config_errors(data: bytes, form: str) -> None:
    if form == "yaml":
        pytest.importorskip("yaml")
    with pytest.raises(SecretsConfigError):
        parse_config(data, form)


def test_a_yaml_syntax_error_does_not_show_the_secret(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    with pytest.raises(SecretsConfigError) as caught:
        parse_config(b'env:\n  DB_PASSWORD: "hunter2\n', "yaml")
    assert "hunter2" not in str(caught.value)


def test_a_path_with_a_leading_double_slash_is_refused() -> None:
    """docs/boot-secrets.md: paths are 'normalised (no .., no //)'; posixpath.normpath keeps a leading //."""
    with pytest.raises(SecretsConfigError):
        parse_config(b'{"files": [{"path": "//run/secrets/db", "content": "x"}]}')


def test_an_allow_list_of_one_string_is_refused() -> None:
    """AllowList(env="DB_PASSWORD") is frozenset("DB_PASSWORD"): it allows D, B, _, P, A, S, W, O and R."""
    with pytest.raises((TypeError, SecretsConfigError)):
        AllowList(env="DB_PASSWORD")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the fixes' other edges


def test_kms_must_answer_for_the_key_asked_for(enclave: TestEnclave) -> None:
    """With the ARN pinned, an answer for another key (or none) is refused before the envelope is opened."""
    data_key = os.urandom(32)
    kms = _ParentKms(data_key)
    with pytest.raises(BootSecretsError) as caught:
        decrypt(_parent_blob(data_key), kms=kms, attester=enclave, context={"app": "web"}, key_id=_ARN)
    assert caught.value.code == "kms" and "999999999999:key/parent" in caught.value.message
    assert kms.requests[0]["KeyId"] == _ARN


@pytest.mark.parametrize(
    "key_id",
    ["1234abcd-12ab-34cd-56ef-1234567890ab", "arn:aws:kms:us-east-1:123456789012:alias/app-boot", "", 7],
    ids=["bare id", "alias ARN", "empty", "not a string"],
)
def test_only_a_key_arn_is_accepted(key_id: object) -> None:
    with pytest.raises(SecretsConfigError) as caught:
        check_key_arn(key_id)
    assert caught.value.field == "key_id" and "resolved in the account of the credentials" in str(caught.value)
    assert check_key_arn(_ARN) == _ARN
    assert check_key_arn("arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/mrk-0123") is not None


def test_secrets_run_refuses_an_alias_as_key_id(tmp_path: Path) -> None:
    pytest.importorskip("boto3")
    result = _cli(["--key-id", "alias/app-boot", "--allow-env", "DB_HOST", "--", "/bin/true"], tmp_path)
    assert result.returncode == 2 and "is not a KMS key ARN" in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [(["--kms-endpoint", "not a url"], "Invalid endpoint"), (["--region", ""], "cannot make the kms client")],
    ids=["bad endpoint", "no region"],
)
def test_secrets_run_with_an_unusable_kms_client_is_a_usage_error(
    tmp_path: Path, arguments: list[str], fragment: str
) -> None:
    pytest.importorskip("boto3")
    result = _cli(["--key-id", _ARN, *arguments, "--allow-env", "DB_HOST", "--", "/bin/true"], tmp_path)
    assert result.returncode == 2 and fragment in result.stderr, result.stderr


def test_an_exception_from_execve_that_is_not_an_oserror_still_undoes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*arguments: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "execve", interrupted)
    config = SecretsConfig(files=(SecretFile(f"{tmp_path}/sub/db", b"secret"),))
    with pytest.raises(KeyboardInterrupt):
        launch(config, AllowList(files=(str(tmp_path),)), ["/bin/true"], environ={})
    assert _tree(tmp_path) == []


@pytest.mark.parametrize(
    ("command", "environ", "fragment"),
    [
        ([""], {}, "command: no command to run"),
        (["/bin/true", "\ud800"], {}, "command: argument 1 is not a string without NUL"),
        (["/bin/true"], {"": "x"}, "environ: '' is not a variable name"),
    ],
    ids=["empty program", "lone surrogate", "empty name"],
)
def test_launch_refuses_what_execve_cannot_take(
    tmp_path: Path, command: list[str], environ: dict[str, str], fragment: str
) -> None:
    config = SecretsConfig(files=(SecretFile(f"{tmp_path}/db", b"secret"),))
    with pytest.raises(SecretsConfigError) as caught:
        launch(config, AllowList(files=(str(tmp_path),)), command, environ=environ)
    assert fragment in str(caught.value)
    assert _tree(tmp_path) == []


def test_an_allow_list_of_one_path_string_is_refused() -> None:
    with pytest.raises(TypeError, match="files must be a collection of paths"):
        AllowList(files="/run/secrets")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"a: !!float hunter2\n", "not YAML: line 1, column 4: not a valid float"),
        (b"env:\n  A: [1, {b: 2001-13-01}]\n", "not YAML: line 2, column 14: not a valid timestamp"),
        (b"env: {A: !secret hunter2}\n", "not YAML (a value the safe loader refuses): line 1, column 10"),
        (b"env: {A: hunter2\x01}\n", "not YAML (syntax): character 16"),
    ],
    ids=["value", "nested", "unknown tag", "control character"],
)
def test_yaml_errors_say_where_and_never_what(data: bytes, message: str) -> None:
    pytest.importorskip("yaml")
    with pytest.raises(SecretsConfigError) as caught:
        parse_config(data, "yaml")
    assert str(caught.value) == message and "hunter2" not in str(caught.value)


def test_toml_numbers_it_cannot_build_are_config_errors() -> None:
    with pytest.raises(SecretsConfigError, match="not TOML: a number it cannot build"):
        parse_config(b"a = " + b"1" * 5000 + b"\n", "toml")
