"""The public face: every documented name imports, and trust is a type.

The first half pins the import paths users have (the package's and its public
modules' ``__all__``, and every ``:::`` entry of the API reference), so that
moving code between modules never breaks an import. The second half shows the
functions that act on trust refusing a document that was only parsed.
"""

from __future__ import annotations

import ast
import datetime
import importlib
import inspect
from datetime import timedelta
from pathlib import Path

import pytest

import nitro_attest
from nitro_attest import Policy, kms, parse, verify
from nitro_attest.document import AttestationDocument, VerifiedDocument, require_verified
from nitro_attest.testing import DEFAULT_START, TestPKI

AT = DEFAULT_START + timedelta(hours=4)  # the test PKI's document time
DOCS = Path(__file__).resolve().parents[1] / "docs"

# The public import paths as of 0.1.0, which must keep working (module, names).
PUBLIC_PATHS: dict[str, tuple[str, ...]] = {
    "nitro_attest": (
        "AWS_NITRO_ROOT_G1",
        "AWS_NITRO_ROOT_G1_SHA256",
        "AttestationDocument",
        "BACKEND",
        "CLOCK_SKEW",
        "CertificateInvalid",
        "DocumentTimeInvalid",
        "KmsDecision",
        "KmsPolicyError",
        "MalformedDocument",
        "NitroAttestError",
        "PCRValue",
        "PCR_MEANINGS",
        "Policy",
        "PolicyFailure",
        "PolicyFileError",
        "PolicyViolation",
        "SignatureInvalid",
        "challenge",
        "dumps_policy",
        "kms",
        "load_policy",
        "loads_policy",
        "parse",
        "pcr3_for_role",
        "pcr4_for_instance",
        "pcr8_for_certificate",
        "verify",
        "verify_batch",
    ),
    "nitro_attest.kms": (
        "ATTESTED_ACTIONS",
        "Condition",
        "Effect",
        "IMAGE_SHA384_KEY",
        "KeyPolicy",
        "KmsDecision",
        "KmsPolicyError",
        "Qualifier",
        "Statement",
        "evaluate",
        "key_policy_pcr_constraints",
        "parse_key_policy",
        "pcr_constraints",
    ),
    "nitro_attest.challenge": (
        "Challenge",
        "ChallengeStore",
        "Challenger",
        "ConsumeResult",
        "MemoryChallengeStore",
        "RedisChallengeStore",
        "check_policy",
    ),
    "nitro_attest.testing": ("BREAKAGE_CODES", "DEFAULT_PCRS", "DocumentFactory", "TestPKI"),
    "nitro_attest.measurements": ("pcr3_for_role", "pcr4_for_instance", "pcr8_for_certificate"),
    "nitro_attest.policy_file": ("PolicyFileError", "dumps_policy", "load_policy", "loads_policy"),
    "nitro_attest.errors": ("NitroAttestError", "PolicyFailure", "PolicyViolation"),
    "nitro_attest.document": ("AttestationDocument", "PCRValue", "parse"),
    "nitro_attest.policy": ("Policy",),
    # Added since 0.1.0's first half: pinned too, so that they stay.
    "nitro_attest.nitrotpm": (
        "NITROTPM_PCR_MEANINGS",
        "NitroTPMDocument",
        "NitroTPMPolicy",
        "TPMPCRValue",
        "VerifiedNitroTPMDocument",
        "parse_nitrotpm",
        "verify_nitrotpm",
    ),
    "nitro_attest.recipient": ("EnclaveKey", "EnvelopeInfo", "RecipientError", "inspect", "seal"),
    "nitro_attest.eif": ("EifDescription", "EifError", "describe"),
    "nitro_attest.keys": ("certificate_summary", "load_certificate", "load_certificates", "load_rsa_public_key"),
    "nitro_attest.cli": ("main",),
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC_PATHS))
def test_public_import_paths_still_work(module_name: str) -> None:
    module = importlib.import_module(module_name)
    missing = [name for name in PUBLIC_PATHS[module_name] if not hasattr(module, name)]
    assert not missing, f"{module_name} lost {missing}"


def _public_modules() -> list[str]:
    return sorted(
        {name for name in PUBLIC_PATHS if name != "nitro_attest.cli"}
        | {f"nitro_attest.{name}" for name in nitro_attest.__all__ if inspect.ismodule(getattr(nitro_attest, name))}
    )


@pytest.mark.parametrize("module_name", _public_modules())
def test_every_name_in_all_imports_and_is_public(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = module.__all__
    assert all(hasattr(module, name) for name in exported)
    assert not [name for name in exported if name.startswith("_")], "a private name in __all__"


def test_every_reference_entry_imports() -> None:
    entries = sorted(
        {
            line.removeprefix(":::").strip()
            for page in (DOCS / "reference").glob("*.md")
            for line in page.read_text(encoding="utf-8").splitlines()
            if line.startswith(":::")
        }
    )
    assert entries
    for entry in entries:
        try:
            importlib.import_module(entry)
        except ModuleNotFoundError:
            module_name, _, attribute = entry.rpartition(".")
            assert hasattr(importlib.import_module(module_name), attribute), entry


# --------------------------------------------------------------------------- trust is a type


@pytest.fixture(scope="module")
def documents() -> tuple[AttestationDocument, VerifiedDocument]:
    pki = TestPKI.create()
    data = pki.document()
    parsed = parse(data)
    verified = verify(data, Policy.any_enclave(), at=parsed.timestamp, roots=pki.roots)
    assert parsed.timestamp == AT
    return parsed, verified


def test_verify_returns_a_verified_document_and_parse_does_not(
    documents: tuple[AttestationDocument, VerifiedDocument],
) -> None:
    parsed, verified = documents
    assert type(parsed) is AttestationDocument
    assert isinstance(verified, VerifiedDocument)
    assert verified.verified_at == parsed.timestamp
    assert verified.pcrs == parsed.pcrs


ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"}],
}
REFUSERS = {
    "Policy.explain": lambda document: Policy.any_enclave().explain(document),
    "Policy.check": lambda document: Policy.any_enclave().check(document, AT),
    "kms.evaluate": lambda document: kms.evaluate(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"}],
        },
        document,
    ),
}


@pytest.mark.parametrize("name", sorted(REFUSERS))
def test_a_parsed_document_is_refused_by_name(
    name: str, documents: tuple[AttestationDocument, VerifiedDocument]
) -> None:
    parsed, verified = documents
    with pytest.raises(
        TypeError, match=r"must be a VerifiedDocument \(from nitro_attest\.verify\).*parse\(\) verifies"
    ):
        REFUSERS[name](parsed)
    REFUSERS[name](verified)  # the verified one is judged


@pytest.mark.parametrize("name", sorted(REFUSERS))
def test_the_raw_bytes_are_refused_too(name: str) -> None:
    with pytest.raises(TypeError, match=r"must be a VerifiedDocument .*not bytes"):
        REFUSERS[name](b"\x84")


def test_allow_unverified_says_so_by_name(documents: tuple[AttestationDocument, VerifiedDocument]) -> None:
    parsed, _ = documents
    assert Policy.any_enclave().explain(parsed, allow_unverified=True) == ()
    assert require_verified(parsed, "x", allow_unverified=True) is parsed


def test_every_error_has_the_one_root() -> None:
    assert issubclass(nitro_attest.NitroAttestError, nitro_attest.Error)
    assert issubclass(nitro_attest.ConfigurationError, nitro_attest.Error)
    assert issubclass(nitro_attest.ConfigurationError, ValueError)
    for error in (nitro_attest.KmsPolicyError, nitro_attest.PolicyFileError):
        assert issubclass(error, nitro_attest.ConfigurationError)
    for family in (nitro_attest.MalformedDocument, nitro_attest.PolicyViolation, nitro_attest.SignatureInvalid):
        assert issubclass(family, nitro_attest.NitroAttestError)


def test_the_native_stub_names_what_the_extension_defines() -> None:
    stub = Path(nitro_attest.__file__).with_name("_native.pyi")
    declared = {
        node.name if isinstance(node, ast.FunctionDef) else ast.unparse(node.target)
        for node in ast.parse(stub.read_text(encoding="utf-8")).body
        if isinstance(node, (ast.FunctionDef, ast.AnnAssign))
    }
    try:
        native = importlib.import_module("nitro_attest._native")
    except ImportError as exc:
        pytest.skip(f"the C extension is not built here: {exc}")
    defined = {name for name in dir(native) if not name.startswith("_")}
    assert declared == defined


def test_no_docstring_points_outside_the_repository() -> None:
    """Installed users have no ../shared and no DESIGN.md: docstrings name what ships."""
    package = Path(nitro_attest.__file__).parent
    outside = [
        f"{path.relative_to(package)}:{getattr(node, 'lineno', 1)}"
        for path in sorted(package.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and (docstring := ast.get_docstring(node))
        and ("DESIGN.md" in docstring or "../shared" in docstring)
    ]
    assert not outside, outside


# --------------------------------------------------------------------------- what people see


def test_a_pcr_value_prints_in_hex() -> None:
    value = nitro_attest.PCRValue(0, bytes.fromhex("ab" * 48))
    assert repr(value) == f"PCRValue(0, '{'ab' * 48}')"
    assert str(value) == "ab" * 48


def test_a_policy_prints_as_it_is_written_and_reads_back() -> None:
    policy = Policy({0: "AB" * 48, 1: ["cd" * 48, "ef" * 48]}, nonce=b"n", max_age=timedelta(minutes=5))
    text = repr(policy)
    assert text == (
        f"Policy({{0: '{'ab' * 48}', 1: ['{'cd' * 48}', '{'ef' * 48}']}}, nonce=b'n', "
        "max_age=datetime.timedelta(seconds=300))"
    )
    assert eval(text, {"Policy": Policy, "datetime": datetime}) == policy
    assert repr(Policy.any_enclave(allow_debug=True)) == "Policy.any_enclave(allow_debug=True)"
    assert repr(Policy.any_of(Policy({0: "ab" * 48}), Policy({0: "cd" * 48}))).startswith("Policy.any_of(Policy({0: ")


def test_a_policy_with_string_indices_says_what_it_wants() -> None:
    with pytest.raises(TypeError, match=r"PCR indices are integers 0\.\.31: write \{0: \.\.\.\}, not \{'0': \.\.\.\}"):
        Policy({"0": "ab" * 48})  # type: ignore[dict-item]


def test_help_shows_real_annotations() -> None:
    """help() on the main entry points shows the types, not their names in quotes."""
    from nitro_attest import recipient  # noqa: PLC0415

    assert inspect.signature(nitro_attest.verify).parameters["policy"].annotation is Policy
    assert inspect.signature(nitro_attest.verify).return_annotation is VerifiedDocument
    assert inspect.signature(nitro_attest.parse).return_annotation is AttestationDocument
    assert inspect.signature(nitro_attest.document_bytes).return_annotation is bytes
    assert inspect.signature(Policy).parameters["nonce"].annotation == bytes | None
    assert inspect.signature(recipient.seal).return_annotation is bytes
    assert inspect.signature(nitro_attest.pcr8_for_certificate).return_annotation is nitro_attest.PCRValue
