"""``nitro-attest eif describe``, ``eif pcr`` and ``policy from-eif``, on images from the builder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nitro_attest import Policy, kms, load_policy
from nitro_attest.cli import EXIT_OK, EXIT_REJECTED, EXIT_USAGE, main
from nitro_attest.eif._build import build_eif
from nitro_attest.measurements import pcr3_for_role, pcr4_for_instance
from nitro_attest.testing import DEFAULT_PCRS, DEFAULT_ROLE_ARN, TestPKI, derive_key

INSTANCE = "i-0123456789abcdef0"


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
def image(tmp_path: Path) -> Path:
    path = tmp_path / "image.eif"
    build_eif(path)
    return path


@pytest.fixture
def signed(tmp_path: Path, pki: TestPKI) -> Path:
    path = tmp_path / "signed.eif"
    build_eif(path, signing_certificate=pki.leaf, signing_key=pki.leaf_key)
    return path


def test_describe_json_has_nitro_clis_keys(signed: Path, run: Any) -> None:
    result = run("eif", "describe", "--json", signed)
    assert result.code == EXIT_OK, result.err
    output = json.loads(result.out)
    assert list(output) == [
        "EifVersion",
        "Measurements",
        "IsSigned",
        "SigningCertificate",
        "CheckCRC",
        "SignatureCheck",
        "ImageName",
        "ImageVersion",
        "Metadata",
    ]
    assert output["Measurements"]["HashAlgorithm"] == "Sha384 { ... }"
    assert set(output["Measurements"]) == {"HashAlgorithm", "PCR0", "PCR1", "PCR2", "PCR8"}
    assert output["IsSigned"] is output["CheckCRC"] is output["SignatureCheck"] is True


def test_describe_text_is_for_people(image: Path, run: Any) -> None:
    result = run("eif", "describe", "--strict", image)
    assert result.code == EXIT_OK
    assert "PCR0" in result.out and "kernel at 548" in result.out
    assert "unsigned image" in result.out


def test_pcr_prints_build_enclaves_measurements_exactly(signed: Path, run: Any) -> None:
    result = run("eif", "pcr", signed)
    assert result.code == EXIT_OK
    measurements = json.loads(result.out)["Measurements"]
    assert list(measurements) == ["HashAlgorithm", "PCR0", "PCR1", "PCR2", "PCR8"]
    # serde_json's pretty printer: two-space indent, "key": value.
    assert result.out.startswith('{\n  "Measurements": {\n    "HashAlgorithm": "Sha384 { ... }",\n    "PCR0": "')


def test_an_invalid_image_is_exit_1_with_one_line(tmp_path: Path, run: Any) -> None:
    path = tmp_path / "bad.eif"
    path.write_bytes(b"MZ" + bytes(600))
    for command in (("eif", "describe"), ("eif", "pcr"), ("policy", "from-eif")):
        result = run(*command, path)
        assert result.code == EXIT_REJECTED
        assert result.err.count("\n") == 1
        assert result.err.startswith("invalid [magic]: at offset 0")
        assert result.out == ""


def test_a_crc_mismatch_warns_then_strict_refuses(image: Path, run: Any) -> None:
    data = bytearray(image.read_bytes())
    data[-1] ^= 1
    image.write_bytes(bytes(data))
    lenient = run("eif", "describe", "--json", image)
    assert lenient.code == EXIT_OK
    assert json.loads(lenient.out)["CheckCRC"] is False
    assert lenient.err.startswith("warning: CRC mismatch")
    strict = run("eif", "describe", "--strict", image)
    assert strict.code == EXIT_REJECTED
    assert strict.err.startswith("invalid [crc]")


@pytest.mark.parametrize("strict", [False, True])
def test_a_signature_that_fails_is_exit_1_in_both_modes(tmp_path: Path, pki: TestPKI, run: Any, strict: bool) -> None:
    path = tmp_path / "forged.eif"
    build_eif(path, signing_certificate=pki.leaf, signing_key=derive_key("another key"))
    result = run("eif", "describe", *(["--strict"] if strict else []), path)
    assert result.code == EXIT_REJECTED
    assert result.err.startswith("invalid [signature]: bad-signature")


def test_a_missing_file_is_a_usage_error(tmp_path: Path, run: Any) -> None:
    result = run("eif", "describe", tmp_path / "absent.eif")
    assert result.code == EXIT_USAGE
    assert "cannot read" in result.err


# --- policy from-eif ------------------------------------------------------------------------------


def _document(tmp_path: Path, pki: TestPKI, pcrs: dict[int, bytes]) -> Path:
    path = tmp_path / "document.cbor"
    path.write_bytes(pki.document(pcrs={**DEFAULT_PCRS, **pcrs}))
    return path


def test_policy_from_eif_accepts_the_images_enclave_and_rejects_another(
    tmp_path: Path, signed: Path, pki: TestPKI, root_pem: Path, run: Any
) -> None:
    made = run("policy", "from-eif", signed, "--role", DEFAULT_ROLE_ARN, "--instance", INSTANCE)
    assert made.code == EXIT_OK, made.err
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(made.out)
    policy = load_policy(policy_file)
    assert isinstance(policy, Policy)
    assert sorted(policy.pcrs) == [0, 1, 2, 3, 4, 8]
    measured = json.loads(run("eif", "pcr", signed).out)["Measurements"]
    image_pcrs = {index: bytes.fromhex(measured[f"PCR{index}"]) for index in (0, 1, 2, 8)}
    image_pcrs[3] = pcr3_for_role(DEFAULT_ROLE_ARN).value
    image_pcrs[4] = pcr4_for_instance(INSTANCE).value
    trust = ["--root", root_pem, "--at", "document"]

    genuine = _document(tmp_path, pki, image_pcrs)
    accepted = run("policy", "check", "--policy", policy_file, *trust, genuine)
    assert accepted.code == EXIT_OK, accepted.err
    verified = run("verify", genuine, "--policy", policy_file, *trust)
    assert verified.code == EXIT_OK, verified.err

    other = _document(tmp_path, pki, {**image_pcrs, 2: bytes(range(48))})
    refused = run("policy", "check", "--policy", policy_file, *trust, other)
    assert refused.code == EXIT_REJECTED
    assert "[pcr]" in refused.out + refused.err

    # The same file drives verify itself.
    rejected = run("verify", other, "--policy", policy_file, *trust)
    assert rejected.code == EXIT_REJECTED
    assert rejected.err.startswith("rejected [pcr]: PCR2 is ")


def test_policy_from_eif_kms_key_policy_statement(signed: Path, run: Any) -> None:
    result = run("policy", "from-eif", signed, "--kms-key-policy", "--role", DEFAULT_ROLE_ARN)
    assert result.code == EXIT_OK, result.err
    statement = json.loads(result.out)
    assert statement["Principal"] == {"AWS": DEFAULT_ROLE_ARN}
    assert statement["Action"] == "kms:Decrypt"
    keys = statement["Condition"]["StringEqualsIgnoreCase"]
    assert set(keys) == {f"kms:RecipientAttestation:{name}" for name in ("ImageSha384", "PCR1", "PCR2", "PCR3", "PCR8")}
    policy = kms.parse_key_policy({"Version": "2012-10-17", "Statement": [statement]})
    assert policy is not None


def test_policy_from_eif_pcr_overrides_and_usage_errors(signed: Path, run: Any) -> None:
    pinned = "cd" * 48
    result = run("policy", "from-eif", signed, "--pcr", f"7={pinned}")
    assert result.code == EXIT_OK
    assert pinned in result.out
    assert run("policy", "from-eif", signed, "--kms-key-policy").code == EXIT_USAGE  # no principal
    assert run("policy", "from-eif", signed, "--principal", DEFAULT_ROLE_ARN).code == EXIT_USAGE
    assert run("policy", "from-eif", signed, "--role", "arn:aws:iam::1:role/x").code == EXIT_USAGE
    assert (
        run("policy", "from-eif", signed, "--kms-key-policy", "--role", DEFAULT_ROLE_ARN, "--format", "toml").code
        == EXIT_USAGE
    )
