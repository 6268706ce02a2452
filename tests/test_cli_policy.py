"""``nitro-attest policy check`` and ``policy from-document``, on documents from the look-alike test PKI."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from nitro_attest import Policy, kms, parse
from nitro_attest.cli import EXIT_OK, EXIT_REJECTED, EXIT_USAGE, main
from nitro_attest.policy_file import dumps_policy, load_policy
from nitro_attest.recipient import EnclaveKey
from nitro_attest.testing import DEFAULT_PCRS, DEFAULT_ROLE_ARN, TestPKI

NONCE = b"policy check nonce"
needs_tomllib = pytest.mark.skipif(sys.version_info < (3, 11), reason="reading TOML needs tomllib (Python 3.11+)")
OTHER = "ab" * 48
ROLE = DEFAULT_ROLE_ARN


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI.create()


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Any:
    def run(*argv: str | Path) -> Run:
        code = main([str(arg) for arg in argv])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def doc_file(tmp_path: Path, pki: TestPKI) -> Path:
    path = tmp_path / "doc.cbor"
    path.write_bytes(pki.document(nonce=NONCE))
    return path


@pytest.fixture
def debug_file(tmp_path: Path, pki: TestPKI) -> Path:
    path = tmp_path / "debug.cbor"
    path.write_bytes(pki.document(pcrs={**DEFAULT_PCRS, 0: bytes(48), 1: bytes(48), 2: bytes(48)}))
    return path


@pytest.fixture
def trust(root_pem: Path, pki: TestPKI) -> list[str]:
    """The flags that make test documents genuine: the test root, at the document's time."""
    return ["--root", str(root_pem), "--at", pki.document_time.isoformat()]


def _write(path: Path, policy: Policy, fmt: str = "json") -> Path:
    path.write_text(dumps_policy(policy, format="toml" if fmt == "toml" else "json"), encoding="utf-8")
    return path


def _key_policy(condition: Mapping[str, Any], *, action: str = "kms:Decrypt", **extra: Any) -> dict[str, Any]:
    statement = {
        "Sid": "EnclaveDecrypt",
        "Effect": "Allow",
        "Principal": {"AWS": ROLE},
        "Action": action,
        "Resource": "*",
        "Condition": condition,
        **extra,
    }
    return {"Version": "2012-10-17", "Statement": [statement]}


def _pcr0_condition(value: str) -> dict[str, Any]:
    return {"StringEqualsIgnoreCase": {kms.IMAGE_SHA384_KEY: value}}


# --------------------------------------------------------------------------- policy check: our format


@pytest.mark.parametrize("fmt", ["json", pytest.param("toml", marks=needs_tomllib)])
def test_check_accepts(tmp_path: Path, doc_file: Path, trust: list[str], run: Any, fmt: str) -> None:
    policy = _write(tmp_path / f"policy.{fmt}", Policy({0: DEFAULT_PCRS[0], 1: DEFAULT_PCRS[1]}, nonce=NONCE), fmt)
    result = run("policy", "check", "--policy", policy, *trust, doc_file)
    assert result.code == EXIT_OK
    assert result.out == f"{doc_file}: accepted\n"


def test_check_rejects_with_every_failure_listed(tmp_path: Path, doc_file: Path, trust: list[str], run: Any) -> None:
    policy = _write(tmp_path / "policy.json", Policy({0: OTHER, 1: DEFAULT_PCRS[1], 20: OTHER}, nonce=b"other"))
    result = run("policy", "check", "--policy", policy, *trust, doc_file)
    assert result.code == EXIT_REJECTED
    lines = result.out.splitlines()
    assert lines[0] == f"{doc_file}: rejected by the policy (3 failures)"
    assert "  [pcr] PCR0 (enclave image file) is not an allowed value" in lines
    assert f"      expected  {OTHER}" in lines
    assert f"      actual    {DEFAULT_PCRS[0].hex()}" in lines
    assert "  [pcr] PCR20 is absent from the document" in lines
    assert "      actual    (absent)" in lines
    assert any(line.startswith("  [nonce] nonce does not match") for line in lines)
    assert f"      expected  {b'other'.hex()}" in lines
    assert f"      actual    {NONCE.hex()}" in lines
    assert "PCR1" not in result.out  # only failures are listed


def test_check_any_of_names_the_alternatives(tmp_path: Path, doc_file: Path, trust: list[str], run: Any) -> None:
    policy = _write(tmp_path / "policy.json", Policy.any_of(Policy({0: OTHER}), Policy({1: OTHER})))
    result = run("policy", "check", "--policy", policy, *trust, doc_file)
    assert result.code == EXIT_REJECTED
    assert "  [policy 0] [pcr] PCR0 (enclave image file) is not an allowed value" in result.out
    assert "  [policy 1] [pcr] PCR1 (Linux kernel and bootstrap) is not an allowed value" in result.out
    # A rolling upgrade: the old image or the new one.
    policy = _write(tmp_path / "policy.json", Policy.any_of(Policy({0: OTHER}), Policy({0: DEFAULT_PCRS[0]})))
    assert run("policy", "check", "--policy", policy, *trust, doc_file).code == EXIT_OK


def test_check_debug_and_stale(tmp_path: Path, debug_file: Path, pki: TestPKI, root_pem: Path, run: Any) -> None:
    policy = _write(tmp_path / "policy.json", Policy.any_enclave(max_age=timedelta(minutes=5)))
    later = (pki.document_time + timedelta(hours=1)).isoformat()
    result = run("policy", "check", "--policy", policy, "--root", root_pem, "--at", later, debug_file)
    assert result.code == EXIT_REJECTED
    assert "  [debug] the enclave runs in debug mode" in result.out
    assert "  [stale] document was made at" in result.out


def test_check_several_documents(tmp_path: Path, pki: TestPKI, doc_file: Path, trust: list[str], run: Any) -> None:
    other = tmp_path / "other.cbor"
    other.write_bytes(pki.document(pcrs={**DEFAULT_PCRS, 2: bytes.fromhex(OTHER)}))
    policy = _write(tmp_path / "policy.json", Policy({0: DEFAULT_PCRS[0], 2: DEFAULT_PCRS[2]}))
    result = run("policy", "check", "--policy", policy, *trust, doc_file, other)
    assert result.code == EXIT_REJECTED
    assert result.out.startswith(f"{doc_file}: accepted\n{other}: rejected by the policy (1 failure)\n")
    assert run("policy", "check", "--policy", policy, *trust, doc_file, doc_file).code == EXIT_OK


def test_check_rejects_documents_that_are_not_genuine(
    tmp_path: Path, doc_file: Path, pki: TestPKI, trust: list[str], run: Any
) -> None:
    policy = _write(tmp_path / "policy.json", Policy.any_enclave())
    tampered = tmp_path / "tampered.cbor"
    data = bytearray(doc_file.read_bytes())
    data[data.index(DEFAULT_PCRS[0]) + 5] ^= 1
    tampered.write_bytes(bytes(data))
    result = run("policy", "check", "--policy", policy, *trust, tampered)
    assert result.code == EXIT_REJECTED
    assert result.out.startswith(f"{tampered}: rejected [signature]: ")
    # Without --root only the AWS root is trusted: the test PKI's documents are not genuine.
    result = run("policy", "check", "--policy", policy, "--at", "document", doc_file)
    assert result.code == EXIT_REJECTED
    assert result.out.startswith(f"{doc_file}: rejected [chain]: ")


def test_check_at_document_time(tmp_path: Path, doc_file: Path, root_pem: Path, run: Any) -> None:
    policy = _write(tmp_path / "policy.json", Policy({0: DEFAULT_PCRS[0]}))
    assert run("policy", "check", "--policy", policy, "--root", root_pem, "--at", "document", doc_file).code == EXIT_OK
    # Now (the default), the test leaf of 2026-01-01 has expired or is not yet valid: rejected, with a hint.
    result = run("policy", "check", "--policy", policy, "--root", root_pem, doc_file)
    assert result.code == EXIT_REJECTED
    assert "rejected [expired]" in result.out
    assert "--at document" in result.err


# --------------------------------------------------------------------------- policy check: KMS key policies


def _write_key_policy(tmp_path: Path, key_policy: Mapping[str, Any]) -> Path:
    path = tmp_path / "key-policy.json"
    path.write_text(json.dumps(key_policy, indent=2), encoding="utf-8")
    return path


def test_check_kms_allow(tmp_path: Path, pki: TestPKI, trust: list[str], run: Any) -> None:
    doc_file = tmp_path / "with-key.cbor"  # KMS seals its answer to the document's RSA key: it needs one
    doc_file.write_bytes(pki.document(nonce=NONCE, public_key=EnclaveKey.generate().public_key_der))
    key_policy = _write_key_policy(tmp_path, _key_policy(_pcr0_condition(DEFAULT_PCRS[0].hex().upper())))
    result = run("policy", "check", "--policy", key_policy, "--principal", ROLE, *trust, doc_file)
    assert result.code == EXIT_OK, result.out + result.err
    assert result.out.startswith(f"{doc_file}: KMS would ALLOW kms:Decrypt\n")
    assert "obstacles           (none)" in result.out


def test_check_kms_allowed_but_no_public_key_is_not_an_allow(
    tmp_path: Path, doc_file: Path, trust: list[str], run: Any
) -> None:
    key_policy = _write_key_policy(tmp_path, _key_policy(_pcr0_condition(DEFAULT_PCRS[0].hex())))
    result = run("policy", "check", "--policy", key_policy, "--principal", ROLE, *trust, doc_file)
    assert result.code == EXIT_REJECTED
    assert "ALLOW" not in result.out
    assert result.out.startswith(
        f"{doc_file}: the key policy allows kms:Decrypt, but KMS would fail the request: the document has no public_key"
    )
    assert "deciding statement  Statement[0] (Sid 'EnclaveDecrypt')" in result.out
    assert "unevaluated         (none)" in result.out
    assert f"actual {DEFAULT_PCRS[0].hex()}: true" in result.out


def test_check_kms_deny_gives_the_reason(tmp_path: Path, doc_file: Path, trust: list[str], run: Any) -> None:
    key_policy = _write_key_policy(tmp_path, _key_policy(_pcr0_condition(OTHER)))
    result = run("policy", "check", "--policy", key_policy, *trust, doc_file)
    assert result.code == EXIT_REJECTED
    assert result.out.startswith(f"{doc_file}: KMS would DENY kms:Decrypt\n")
    assert "deciding statement  none (implicit deny)" in result.out
    assert f"kms:RecipientAttestation:ImageSha384 (PCR0): expected one of ['{OTHER}']" in result.out
    assert f"actual {DEFAULT_PCRS[0].hex()}: false" in result.out


def test_check_kms_other_action_is_denied(tmp_path: Path, doc_file: Path, trust: list[str], run: Any) -> None:
    key_policy = _write_key_policy(tmp_path, _key_policy(_pcr0_condition(DEFAULT_PCRS[0].hex())))
    result = run("policy", "check", "--policy", key_policy, "--action", "kms:Encrypt", *trust, doc_file)
    assert result.code == EXIT_REJECTED
    assert result.out.startswith(f"{doc_file}: KMS would DENY kms:Encrypt\n")
    assert "does not cover kms:Encrypt" in result.out


def test_check_kms_lists_unevaluated_conditions(tmp_path: Path, doc_file: Path, trust: list[str], run: Any) -> None:
    condition = {**_pcr0_condition(DEFAULT_PCRS[0].hex()), "StringEquals": {"aws:SourceVpc": "vpc-1"}}
    key_policy = _write_key_policy(tmp_path, _key_policy(condition))
    result = run("policy", "check", "--policy", key_policy, *trust, doc_file)
    # Unknown is never taken as allowing.
    assert result.code == EXIT_REJECTED
    assert "unevaluated         aws:SourceVpc" in result.out


def test_check_kms_wrong_principal(tmp_path: Path, doc_file: Path, trust: list[str], run: Any) -> None:
    key_policy = _write_key_policy(tmp_path, _key_policy(_pcr0_condition(DEFAULT_PCRS[0].hex())))
    other_role = "arn:aws:iam::123456789012:role/someone-else"
    assert run("policy", "check", "--policy", key_policy, "--principal", other_role, *trust, doc_file).code == 1


# --------------------------------------------------------------------------- policy check: usage errors


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ('{"nitro_attest_policy": 1, "pcrs": {"0": "00"}}', "policy.json: pcrs.0: expected 96 hex digits"),
        ('{"nitro_attest_policy": 1, "pcr": {}}', "policy.json: pcr: unknown key: did you mean 'pcrs'?"),
        ('{"nitro_attest_policy": 1,\n "any_enclave": tru}', "policy.json: line 2, column 17: not valid JSON"),
        ('{"pcrs": {}}', "policy.json: nitro_attest_policy: missing"),
        ("{}", "policy.json: nitro_attest_policy: missing"),
        (
            '{"Statement": [{"Effect": "Permit", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}]}',
            "policy.json: Statement[0]",
        ),
    ],
)
def test_check_malformed_policy_is_a_usage_error(
    tmp_path: Path, doc_file: Path, trust: list[str], run: Any, content: str, words: str
) -> None:
    path = tmp_path / "policy.json"
    path.write_text(content, encoding="utf-8")
    result = run("policy", "check", "--policy", path, *trust, doc_file)
    assert result.code == EXIT_USAGE
    assert result.err.splitlines()[-1].startswith("nitro-attest policy check: error: ")
    assert words in result.err
    assert result.out == ""


def test_check_usage_errors(tmp_path: Path, doc_file: Path, trust: list[str], run: Any) -> None:
    ours = _write(tmp_path / "policy.json", Policy({0: DEFAULT_PCRS[0]}))
    key_policy = _write_key_policy(tmp_path, _key_policy(_pcr0_condition(DEFAULT_PCRS[0].hex())))
    yaml = tmp_path / "policy.yaml"
    yaml.write_text("x: 1\n", encoding="utf-8")
    cases: list[tuple[list[Any], str]] = [
        (["--policy", tmp_path / "absent.json", doc_file], "cannot read --policy"),
        (["--policy", yaml, doc_file], ".json or .toml"),
        (["--policy", ours, "--action", "kms:Decrypt", doc_file], "--action only applies to AWS KMS key policies"),
        (["--policy", ours, "--principal", ROLE, doc_file], "--principal only applies"),
        (["--policy", key_policy, "--action", "Decrypt", doc_file], "not a KMS action"),
        (["--policy", key_policy, "--at", "yesterday", doc_file], "neither 'document' nor an ISO 8601 time"),
        (["--policy", ours, tmp_path / "absent.cbor"], "cannot read"),
        (["--policy", ours], "DOC"),
        ([doc_file], "--policy"),
    ]
    for arguments, words in cases:
        result = run("policy", "check", *trust, *arguments)
        assert result.code == EXIT_USAGE, arguments
        assert words in result.err, (arguments, result.err)
    assert run("policy").code == EXIT_USAGE


def test_unreadable_document_stops_before_any_verdict(
    tmp_path: Path, doc_file: Path, trust: list[str], run: Any
) -> None:
    ours = _write(tmp_path / "policy.json", Policy({0: DEFAULT_PCRS[0]}))
    junk = tmp_path / "junk.txt"
    junk.write_text("hello", encoding="utf-8")
    result = run("policy", "check", "--policy", ours, *trust, doc_file, junk)
    assert result.code == EXIT_USAGE
    assert result.out == ""


# --------------------------------------------------------------------------- policy from-document


@pytest.mark.parametrize("fmt", ["json", pytest.param("toml", marks=needs_tomllib)])
def test_from_document_loads_back_and_accepts(tmp_path: Path, doc_file: Path, run: Any, fmt: str) -> None:
    result = run("policy", "from-document", doc_file, "--format", fmt)
    assert result.code == EXIT_OK
    assert "NOT VERIFIED" in result.err
    assert "pinned: PCR0, PCR1, PCR2, PCR8" in result.err
    path = tmp_path / f"generated.{fmt}"
    path.write_text(result.out, encoding="utf-8")
    policy = load_policy(path)
    assert isinstance(policy, Policy)
    assert policy == Policy({index: DEFAULT_PCRS[index] for index in (0, 1, 2, 8)})
    assert policy.explain(parse(doc_file.read_bytes()), allow_unverified=True) == ()


def test_from_document_default_is_json(doc_file: Path, run: Any) -> None:
    out = json.loads(run("policy", "from-document", doc_file).out)
    assert out["nitro_attest_policy"] == 1
    assert sorted(out["pcrs"]) == ["0", "1", "2", "8"]


def test_from_document_skips_a_zero_pcr8(tmp_path: Path, pki: TestPKI, run: Any) -> None:
    unsigned = tmp_path / "unsigned.cbor"
    unsigned.write_bytes(pki.document(pcrs={**DEFAULT_PCRS, 8: bytes(48)}))
    result = run("policy", "from-document", unsigned)
    assert sorted(json.loads(result.out)["pcrs"]) == ["0", "1", "2"]


def test_from_document_chosen_pcrs(tmp_path: Path, pki: TestPKI, doc_file: Path, trust: list[str], run: Any) -> None:
    result = run("policy", "from-document", doc_file, "--pcr-index", "4", "--pcr-index", "0", "--pcr-index", "pcr3")
    assert result.code == EXIT_OK
    assert "pinned: PCR0, PCR3, PCR4" in result.err
    path = tmp_path / "instance.json"
    path.write_text(result.out, encoding="utf-8")
    assert sorted(json.loads(result.out)["pcrs"]) == ["0", "3", "4"]
    # The same image on another instance (PCR4) is no longer accepted.
    moved = tmp_path / "moved.cbor"
    moved.write_bytes(pki.document(pcrs={**DEFAULT_PCRS, 4: bytes.fromhex(OTHER)}))
    assert run("policy", "check", "--policy", path, *trust, doc_file).code == EXIT_OK
    assert run("policy", "check", "--policy", path, *trust, moved).code == EXIT_REJECTED


def test_from_document_warns_when_pcr0_is_not_pinned(doc_file: Path, run: Any) -> None:
    result = run("policy", "from-document", doc_file, "--pcr-index", "3")
    assert result.code == EXIT_OK
    assert "warning: PCR0 (the enclave image file) is not pinned" in result.err


def test_from_document_kms_condition_makes_kms_allow(tmp_path: Path, pki: TestPKI, doc_file: Path, run: Any) -> None:
    result = run("policy", "from-document", doc_file, "--kms")
    assert result.code == EXIT_OK
    condition = json.loads(result.out)
    assert condition == {
        "StringEqualsIgnoreCase": {
            "kms:RecipientAttestation:ImageSha384": DEFAULT_PCRS[0].hex(),
            "kms:RecipientAttestation:PCR1": DEFAULT_PCRS[1].hex(),
            "kms:RecipientAttestation:PCR2": DEFAULT_PCRS[2].hex(),
            "kms:RecipientAttestation:PCR8": DEFAULT_PCRS[8].hex(),
        }
    }
    key_policy = _key_policy(condition)
    assert kms.evaluate(key_policy, parse(doc_file.read_bytes()), principal=ROLE, allow_unverified=True).allowed
    other_app = parse(pki.document(pcrs={**DEFAULT_PCRS, 2: bytes.fromhex(OTHER)}))
    assert not kms.evaluate(key_policy, other_app, principal=ROLE, allow_unverified=True).allowed


def test_from_document_kms_with_chosen_pcrs(doc_file: Path, run: Any) -> None:
    condition = json.loads(run("policy", "from-document", doc_file, "--kms", "--pcr-index", "4").out)
    assert list(condition["StringEqualsIgnoreCase"]) == ["kms:RecipientAttestation:PCR4"]


def test_from_document_refuses_debug_documents(tmp_path: Path, debug_file: Path, run: Any) -> None:
    result = run("policy", "from-document", debug_file)
    assert result.code == EXIT_USAGE
    assert "debug-mode enclave" in result.err
    assert "every debug-mode enclave" in result.err
    assert "--allow-debug" in result.err
    assert result.out == ""


def test_from_document_allow_debug(tmp_path: Path, debug_file: Path, run: Any) -> None:
    result = run("policy", "from-document", debug_file, "--allow-debug")
    assert result.code == EXIT_OK
    path = tmp_path / "debug.json"
    path.write_text(result.out, encoding="utf-8")
    policy = load_policy(path)
    assert isinstance(policy, Policy)
    assert policy.allow_debug
    assert policy.explain(parse(debug_file.read_bytes()), allow_unverified=True) == ()
    kms_result = run("policy", "from-document", debug_file, "--allow-debug", "--kms")
    assert kms_result.code == EXIT_OK
    assert "KMS does not know debug mode" in kms_result.err


def test_from_document_usage_errors(tmp_path: Path, doc_file: Path, run: Any) -> None:
    cases: list[tuple[list[Any], str]] = [
        ([doc_file, "--kms", "--format", "toml"], "drop --format toml"),
        ([doc_file, "--pcr-index", "32"], "not a PCR index 0..31"),
        ([doc_file, "--pcr-index", "x"], "not a PCR index"),
        ([doc_file, "--pcr-index", "20"], "the document has no PCR20"),
        ([doc_file, "--format", "yaml"], "invalid choice"),
        ([tmp_path / "absent.cbor"], "cannot read"),
    ]
    for arguments, words in cases:
        result = run("policy", "from-document", *arguments)
        assert result.code == EXIT_USAGE, arguments
        assert words in result.err, (arguments, result.err)


def test_from_document_undecodable_document_is_exit_1(tmp_path: Path, pki: TestPKI, run: Any) -> None:
    broken = tmp_path / "broken.cbor"
    broken.write_bytes(pki.document(trailing=b"\x00"))
    result = run("policy", "from-document", broken)
    assert result.code == EXIT_REJECTED
    assert result.err.startswith("invalid [")


def test_from_document_help_explains_pcr3_and_pcr4(run: Any) -> None:
    result = run("policy", "from-document", "--help")
    assert result.code == EXIT_OK
    text = " ".join(result.out.split())
    assert "PCR3 (the parent instance's IAM role)" in text
    assert "PCR4 (its instance ID)" in text
    assert "one role or one instance" in text
    assert "NOT verified" in " ".join(run("policy", "--help").out.split())
