"""The command line as a new user meets it: JSON output, exit codes, usage, hints, directories, --version."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nitro_attest import __version__
from nitro_attest.cli import EXIT_OK, EXIT_REJECTED, EXIT_USAGE, main
from nitro_attest.testing import DEFAULT_PCRS, TestPKI

PKI = TestPKI.create()
AT = PKI.document_time.isoformat()
PCR0 = DEFAULT_PCRS[0].hex()
OTHER = "ab" * 48


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Any:
    def run(*argv: str | Path) -> Run:
        code = main([str(arg) for arg in argv])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Two genuine documents, a debug-mode one, and the files that sit beside documents in real folders."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.cbor").write_bytes(PKI.document(nonce=b"a"))
    (folder / "b.b64").write_text(__import__("base64").b64encode(PKI.document(nonce=b"b")).decode())
    (folder / "debug.cbor").write_bytes(PKI.document(pcrs={0: bytes(48), 1: bytes(48), 2: bytes(48)}))
    (folder / "README").write_text("documents from the staging enclave\n")
    (folder / "MANIFEST.json").write_text('{"files": 3}\n')
    return folder


def test_verify_json_single_accepted(run: Any, tmp_path: Path, root_pem: Path) -> None:
    path = tmp_path / "doc.cbor"
    path.write_bytes(PKI.document(nonce=b"n"))
    result = run("verify", path, "--pcr", f"0={PCR0}", "--at", AT, "--root", root_pem, "--json")
    assert result.code == EXIT_OK
    output = result.json()
    assert output["summary"] == {
        "total": 1,
        "accepted": 1,
        "rejected": 0,
        "unreadable": 0,
        "skipped": 0,
        "exit_code": 0,
    }
    [record] = output["results"]
    assert (record["source"], record["outcome"], record["code"], record["failures"]) == (
        str(path),
        "accepted",
        None,
        [],
    )
    assert record["document"]["nonce"] == b"n".hex()
    assert record["document"]["verified_at"].startswith(AT[:19])


def test_verify_pcr_mismatch_shows_expected_and_actual(run: Any, tmp_path: Path, root_pem: Path) -> None:
    path = tmp_path / "doc.cbor"
    path.write_bytes(PKI.document())
    result = run("verify", path, "--pcr", f"0={OTHER}", "--at", AT, "--root", root_pem)
    assert result.code == EXIT_REJECTED
    assert "[pcr] PCR0 (enclave image file) is not an allowed value" in result.err
    assert f"expected  {OTHER}" in result.err and f"actual    {PCR0}" in result.err
    as_json = run("verify", path, "--pcr", f"0={OTHER}", "--at", AT, "--root", root_pem, "--json")
    assert as_json.code == EXIT_REJECTED
    [failure] = as_json.json()["results"][0]["failures"]
    assert (failure["index"], failure["expected"], failure["actual"]) == (0, [OTHER], PCR0)


def test_a_directory_skips_what_is_not_a_document_and_says_so(run: Any, folder: Path, root_pem: Path) -> None:
    result = run("verify", folder, "--any-enclave", "--allow-debug", "--at", AT, "--root", root_pem)
    assert result.code == EXIT_OK
    assert "README" not in result.out and "MANIFEST" not in result.out
    assert result.out.splitlines()[-1] == "3 documents: 3 verified, 0 rejected, 0 unreadable, 2 skipped (not documents)"
    as_json = run("verify", folder, "--any-enclave", "--allow-debug", "--at", AT, "--root", root_pem, "--json")
    assert as_json.json()["summary"]["skipped"] == 2


def test_exit_codes_are_the_same_single_and_batch(run: Any, folder: Path, tmp_path: Path, root_pem: Path) -> None:
    genuine, missing = folder / "a.cbor", tmp_path / "missing.cbor"
    policy = ("--pcr", f"0={PCR0}", "--at", AT, "--root", root_pem)
    assert run("verify", genuine, *policy).code == EXIT_OK
    assert run("verify", genuine, genuine, *policy).code == EXIT_OK
    assert run("verify", folder / "debug.cbor", *policy).code == EXIT_REJECTED
    assert run("verify", genuine, folder / "debug.cbor", *policy).code == EXIT_REJECTED
    assert run("verify", missing, *policy).code == EXIT_USAGE
    assert run("verify", genuine, missing, *policy).code == EXIT_USAGE


def test_batch_hints_at_the_flag_that_changes_the_verdict(run: Any, folder: Path, root_pem: Path) -> None:
    now = run("verify", folder, "--any-enclave", "--root", root_pem)  # the test PKI's documents are of 2026-01-01
    assert now.code == EXIT_REJECTED
    assert "add --at document" in now.err
    debug = run("verify", folder, "--any-enclave", "--at", AT, "--root", root_pem)
    assert debug.code == EXIT_REJECTED
    assert "--allow-debug accepts them" in debug.err and "--at document" not in debug.err


def test_policy_check_takes_a_directory_and_json(run: Any, folder: Path, tmp_path: Path, root_pem: Path) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"nitro_attest_policy": 1, "pcrs": {"0": PCR0}}))
    result = run("policy", "check", folder, "--policy", policy, "--at", AT, "--root", root_pem)
    assert result.code == EXIT_REJECTED  # the debug-mode document's PCR0 is zeros
    assert [line.split(":")[0] for line in result.out.splitlines() if not line.startswith(" ")] == [
        str(folder / "a.cbor"),
        str(folder / "b.b64"),
        str(folder / "debug.cbor"),
    ]
    assert "2 files skipped (not documents)" in result.err
    output = run("policy", "check", folder, "--policy", policy, "--at", AT, "--root", root_pem, "--json").json()
    assert [record["outcome"] for record in output["results"]] == ["accepted", "accepted", "rejected"]
    assert [failure["code"] for failure in output["results"][2]["failures"]] == ["debug", "pcr"]
    assert output["summary"]["skipped"] == 2 and output["summary"]["exit_code"] == EXIT_REJECTED


def test_policy_check_json_with_a_kms_key_policy(run: Any, folder: Path, tmp_path: Path, root_pem: Path) -> None:
    key_policy = tmp_path / "key-policy.json"
    statement = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "kms:Decrypt",
        "Resource": "*",
        "Condition": {"StringEqualsIgnoreCase": {"kms:RecipientAttestation:ImageSha384": PCR0}},
    }
    key_policy.write_text(json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
    output = run("policy", "check", folder / "a.cbor", "--policy", key_policy, "--at", AT, "--root", root_pem, "--json")
    [record] = output.json()["results"]
    assert record["kms"]["allowed"] is True and record["kms"]["action"] == "kms:Decrypt"
    assert record["kms"]["deciding_statement"] == "Statement[0]"
    # Allowed by the key policy, but the document has no public key for KMS's answer: not an accept.
    assert record["kms"]["would_succeed"] is False and record["outcome"] == "rejected"
    assert record["kms"]["obstacles"][0].startswith("the document has no public_key")


def test_a_usage_error_prints_that_subcommands_usage(run: Any, folder: Path) -> None:
    no_policy = run("verify", folder / "a.cbor")
    assert no_policy.code == EXIT_USAGE
    assert no_policy.err.startswith("usage: nitro-attest verify ")
    assert "nitro-attest verify: error: no policy" in no_policy.err
    bad_file = run("policy", "check", folder / "a.cbor", "--policy", folder / "README")
    assert bad_file.code == EXIT_USAGE
    assert bad_file.err.startswith("usage: nitro-attest policy check ")


def test_version_names_the_backend_and_where_the_package_is(run: Any) -> None:
    import nitro_attest  # noqa: PLC0415

    result = run("--version")
    assert result.code == EXIT_OK
    assert result.out.strip() == (
        f"nitro-attest {__version__} (P-384 backend: {nitro_attest.BACKEND}) "
        f"from {Path(nitro_attest.__file__).resolve().parent}"
    )


def test_verify_policy_file_and_what_cannot_go_with_it(run: Any, folder: Path, tmp_path: Path, root_pem: Path) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"nitro_attest_policy": 1, "pcrs": {"0": PCR0}}))
    trust = ("--at", AT, "--root", root_pem)
    assert run("verify", folder / "a.cbor", "--policy", policy, *trust).code == EXIT_OK
    both = run("verify", folder / "a.cbor", "--policy", policy, "--pcr", f"0={PCR0}", "--nonce", "6e", *trust)
    assert both.code == EXIT_USAGE
    assert f"--policy holds the whole policy: write --pcr, --nonce into {policy} instead" in both.err
    key_policy = tmp_path / "key-policy.json"
    key_policy.write_text(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}],
            }
        )
    )
    kms = run("verify", folder / "a.cbor", "--policy", key_policy, *trust)
    assert kms.code == EXIT_USAGE and "is an AWS KMS key policy: `nitro-attest policy check" in kms.err
    missing = run("verify", folder / "a.cbor", "--policy", tmp_path / "absent.json", *trust)
    assert missing.code == EXIT_USAGE and "cannot read --policy" in missing.err
