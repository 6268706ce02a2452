"""The pytest plugin (``_nitro_attest_pytestplugin``) and the DocumentFactory behind its fixtures.

Runs of a fresh project go through ``pytester``: in a subprocess where the
point is the ``pytest11`` entry point or what gets imported, in process
(faster) where it is what the fixtures, marker and option do.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any, get_args

import pytest

import nitro_attest
from _nitro_attest_pytestplugin import AWS_VECTORS_ENV
from nitro_attest import Policy
from nitro_attest.testing import BREAKAGE_CODES, DEFAULT_MODULE_ID, DEFAULT_PCRS, Breakage, DocumentFactory, TestPKI

pytest_plugins = ["pytester"]

HEAVY_PACKAGES = ("nitro_attest", "cryptography", "cbor2")
PCR0 = "AB" * 48  # upper-case hex, as people paste it
POLICY = Policy({0: PCR0}, nonce=b"challenge", user_data=b"user", public_key=b"key")


@pytest.fixture(autouse=True)
def _no_vectors_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own $NITRO_ATTEST_VECTORS must not leak into the runs made here."""
    monkeypatch.delenv(AWS_VECTORS_ENV, raising=False)


@pytest.fixture(scope="module")
def factory() -> DocumentFactory:
    return DocumentFactory()


def make(factory: DocumentFactory, broken: Breakage | None = None) -> bytes:
    return factory(pcrs={0: PCR0}, nonce=b"challenge", user_data=b"user", public_key=b"key", broken=broken)


# DocumentFactory, without pytest's help


def test_the_valid_document_carries_every_field(factory: DocumentFactory) -> None:
    document = nitro_attest.verify(make(factory), POLICY, at=factory.verification_time, roots=factory.roots)
    assert document.pcrs[0].value == bytes.fromhex(PCR0)
    assert {index: pcr.value for index, pcr in document.pcrs.items() if index} == {
        index: value for index, value in DEFAULT_PCRS.items() if index
    }
    assert (document.nonce, document.user_data, document.public_key) == (b"challenge", b"user", b"key")
    assert document.module_id == DEFAULT_MODULE_ID
    assert document.timestamp == factory.verification_time


def test_timestamp_module_id_and_byte_pcrs(factory: DocumentFactory) -> None:
    earlier = factory.verification_time - timedelta(minutes=5)
    data = factory(timestamp=earlier, module_id="i-1-enc2", pcrs={16: bytes(range(48))})
    document = nitro_attest.parse(data)
    assert (document.timestamp, document.module_id) == (earlier, "i-1-enc2")
    assert document.pcrs[16].value == bytes(range(48))
    assert document.nonce is document.user_data is document.public_key is None


@pytest.mark.parametrize("broken", sorted(BREAKAGE_CODES))
def test_each_breakage_is_rejected_with_its_code(factory: DocumentFactory, broken: Breakage) -> None:
    with pytest.raises(nitro_attest.NitroAttestError) as raised:
        nitro_attest.verify(make(factory, broken), POLICY, at=factory.verification_time, roots=factory.roots)
    assert raised.value.code == BREAKAGE_CODES[broken]


@pytest.mark.parametrize("broken", sorted(set(BREAKAGE_CODES) - {"malformed"}))
def test_a_broken_document_keeps_the_fields_asked_for(factory: DocumentFactory, broken: Breakage) -> None:
    """So the rejection is for the breakage alone, never for a field the policy pins."""
    document = nitro_attest.parse(make(factory, broken))
    assert (document.nonce, document.user_data, document.public_key) == (b"challenge", b"user", b"key")
    assert document.pcrs[3].value == DEFAULT_PCRS[3]
    if broken != "debug":
        assert document.pcrs[0].value == bytes.fromhex(PCR0)


def test_breakages_cover_the_documented_set() -> None:
    assert sorted(BREAKAGE_CODES) == sorted(get_args(Breakage))


def test_the_factory_refuses_what_it_cannot_do(factory: DocumentFactory) -> None:
    with pytest.raises(ValueError, match="unknown breakage 'pcr'"):
        factory(broken="pcr")  # type: ignore[arg-type]
    for broken in ("expired", "future_timestamp"):
        with pytest.raises(ValueError, match="sets the timestamp itself"):
            factory(broken=broken, timestamp=factory.verification_time)


@pytest.mark.parametrize(
    ("pcrs", "error", "message"),
    [
        ({0: 48}, TypeError, "PCR0 must be bytes or a hex string, not int"),
        ({0: b"\x01" * 47}, ValueError, "PCR0 must be 48 bytes"),
        ({0: "zz" * 48}, ValueError, "PCR0: not hex"),
        ({32: b"\x01" * 48}, ValueError, "PCR index must be an integer 0..31"),
        ({True: b"\x01" * 48}, ValueError, "PCR index must be an integer 0..31"),
    ],
    ids=["int-value", "47-bytes", "bad-hex", "index-32", "index-true"],
)
def test_the_factory_refuses_pcrs_no_enclave_reports(
    factory: DocumentFactory, pcrs: dict[Any, Any], error: type, message: str
) -> None:
    # A test that asks for an impossible PCR is wrong; a silently odd document would hide that.
    with pytest.raises(error, match=message):
        factory(pcrs=pcrs)


def test_the_factory_is_deterministic_and_never_aws(factory: DocumentFactory) -> None:
    assert make(DocumentFactory(TestPKI.create())) == make(DocumentFactory()) == make(factory)
    assert make(factory, "untrusted_root") == make(factory, "untrusted_root")
    with pytest.raises(nitro_attest.CertificateInvalid) as raised:
        nitro_attest.verify(make(factory), POLICY, at=factory.verification_time)
    assert raised.value.code == "chain"


# A real run: the entry point, the fixtures and the marker


SERVICE_TESTS = """
import pytest

import nitro_attest
from nitro_attest.testing import BREAKAGE_CODES

POLICY = nitro_attest.Policy({0: "ab" * 48}, nonce=b"n")


def test_a_valid_document(nitro_document, nitro_roots, nitro_verification_time):
    data = nitro_document(pcrs={0: "ab" * 48}, nonce=b"n")
    document = nitro_attest.verify(data, POLICY, at=nitro_verification_time, roots=nitro_roots)
    assert document.nonce == b"n"


@pytest.mark.parametrize("broken", sorted(BREAKAGE_CODES))
def test_a_broken_document(nitro_document, nitro_roots, nitro_verification_time, broken):
    data = nitro_document(pcrs={0: "ab" * 48}, nonce=b"n", broken=broken)
    with pytest.raises(nitro_attest.NitroAttestError) as raised:
        nitro_attest.verify(data, POLICY, at=nitro_verification_time, roots=nitro_roots)
    assert raised.value.code == BREAKAGE_CODES[broken]


def test_one_pki_behind_every_fixture(nitro_test_pki, nitro_document, nitro_roots, nitro_verification_time):
    assert nitro_document.pki is nitro_test_pki
    assert nitro_roots == nitro_test_pki.roots == nitro_document.roots
    assert nitro_verification_time == nitro_test_pki.document_time == nitro_document.verification_time


def test_a_secret_sealed_to_a_document_opens_with_the_enclave_key(
    nitro_document, nitro_enclave_key, nitro_roots, nitro_verification_time
):
    from nitro_attest.recipient import seal

    data = nitro_document(pcrs={0: "ab" * 48}, nonce=b"n")
    document = nitro_attest.verify(data, POLICY, at=nitro_verification_time, roots=nitro_roots)
    assert document.public_key == nitro_enclave_key.public_key_der
    assert nitro_enclave_key.open(seal(b"db password", document)) == b"db password"


@pytest.mark.nitro_aws_vectors
def test_real_documents(nitro_aws_documents):
    raise AssertionError("skipped without --nitro-vectors")
"""


def test_a_real_run_loads_the_plugin_through_its_entry_point(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_service=SERVICE_TESTS)
    result = pytester.runpytest_subprocess("-ra", "--strict-markers")
    result.assert_outcomes(passed=3 + len(BREAKAGE_CODES), skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED * needs real AWS Nitro attestation documents: pass --nitro-vectors=DIR *"])


KMS_TESTS = """
import json

import nitro_attest


def test_the_test_enclave_attests_now(nitro_test_enclave, nitro_enclave_key):
    document = nitro_attest.verify(
        nitro_test_enclave.attest(public_key=nitro_enclave_key.public_key_der),
        nitro_attest.Policy({0: nitro_test_enclave.pcrs[0]}),
        roots=nitro_test_enclave.roots,
    )
    assert document.public_key == nitro_enclave_key.public_key_der


def test_the_local_kms_releases_to_the_enclave(nitro_kms, nitro_test_enclave, nitro_enclave_key):
    client = nitro_kms.client()
    key_id = client.create_key()["KeyMetadata"]["KeyId"]
    blob = client.encrypt(KeyId=key_id, Plaintext=b"secret")["CiphertextBlob"]
    document = nitro_test_enclave.attest(public_key=nitro_enclave_key.public_key_der)
    answer = client.decrypt(CiphertextBlob=blob, Recipient={"AttestationDocument": document})
    assert "Plaintext" not in answer
    assert nitro_enclave_key.open(answer["CiphertextForRecipient"]) == b"secret"
"""


def test_the_kms_and_test_enclave_fixtures(pytester: pytest.Pytester) -> None:
    pytest.importorskip("werkzeug", reason="the local KMS needs nitro_attest[kms-server]")
    pytest.importorskip("boto3", reason="the local KMS's client is boto3")
    pytester.makepyfile(test_kms=KMS_TESTS)
    pytester.runpytest_subprocess("-ra").assert_outcomes(passed=2)


def test_the_plugin_can_be_turned_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_it(nitro_document): pass")
    result = pytester.runpytest("-p", "no:nitro_attest")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'nitro_document' not found*"])


CHECK_IMPORTS = f"""
import json, sys
import _nitro_attest_pytestplugin
print(json.dumps(sorted(name for name in sys.modules if name.partition(".")[0] in {HEAVY_PACKAGES!r})))
"""

RECORD_IMPORTS_CONFTEST = f"""
import json, sys

def pytest_collection_finish(session):
    heavy = sorted(name for name in sys.modules if name.partition(".")[0] in {HEAVY_PACKAGES!r})
    loaded = session.config.pluginmanager.has_plugin("nitro_attest")
    (session.config.rootpath / "imports.json").write_text(json.dumps({{"heavy": heavy, "plugin": loaded}}))
"""


def test_importing_the_plugin_imports_nothing_heavy(pytester: pytest.Pytester) -> None:
    result = pytester.run(sys.executable, "-c", CHECK_IMPORTS)
    assert result.ret == 0, result.stderr.str()
    assert json.loads(result.stdout.lines[-1]) == []


def test_collecting_a_project_that_does_not_use_it_imports_nothing_heavy(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only this plugin, loaded by its entry point's name: other installed plugins' imports are not ours to judge.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeconftest(RECORD_IMPORTS_CONFTEST)
    pytester.makepyfile(test_plain="import pytest\n\n@pytest.mark.nitro_aws_vectors\ndef test_it(): pass\n")
    result = pytester.runpytest_subprocess("-p", "nitro_attest", "--collect-only", "--strict-markers")
    assert result.ret == 0, result.stdout.str()
    assert json.loads((pytester.path / "imports.json").read_text()) == {"heavy": [], "plugin": True}


# The marker, the option and the environment variable (in process)


MARKED_TESTS = """
import pytest

import nitro_attest


@pytest.mark.nitro_aws_vectors
def test_every_document_verifies_at_its_own_time(nitro_aws_documents, nitro_roots):
    assert sorted(nitro_aws_documents) == ["a.cbor", "sub/b.cbor"]
    for data in nitro_aws_documents.values():
        document = nitro_attest.parse(data)
        nitro_attest.verify(data, nitro_attest.Policy.any_enclave(), at=document.timestamp, roots=nitro_roots)


@pytest.mark.nitro_aws_vectors
def test_marker_alone():
    pass


def test_fixture_alone(nitro_aws_documents):
    assert nitro_aws_documents
"""


def write_documents(directory: Path) -> Path:
    """Two documents from the test PKI (stand-ins for real ones) and a file that is not one."""
    make = DocumentFactory()
    (directory / "sub").mkdir(parents=True)
    (directory / "a.cbor").write_bytes(make(nonce=b"a"))
    (directory / "sub" / "b.cbor").write_bytes(make(timestamp=make.verification_time + timedelta(hours=1)))
    (directory / "notes.txt").write_text("not a document")
    return directory


def test_the_marker_skips_without_documents(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MARKED_TESTS)
    result = pytester.runpytest("-ra", "--strict-markers")
    result.assert_outcomes(skipped=3)
    assert "real AWS documents" not in result.stdout.str()  # no report header line without a directory


def test_the_option_gives_the_documents(pytester: pytest.Pytester) -> None:
    write_documents(pytester.path / "real")
    pytester.makepyfile(MARKED_TESTS)
    result = pytester.runpytest("--nitro-vectors=real", "--strict-markers")  # relative to the invocation directory
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([f"nitro_attest: 2 real AWS documents in {pytester.path / 'real'}"])


def test_the_environment_variable_gives_the_documents(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(AWS_VECTORS_ENV, str(write_documents(pytester.path / "real")))
    pytester.makepyfile(MARKED_TESTS)
    pytester.runpytest().assert_outcomes(passed=3)


def test_a_directory_without_documents_skips_saying_so(pytester: pytest.Pytester) -> None:
    (pytester.path / "empty").mkdir()
    pytester.makepyfile(MARKED_TESTS)
    result = pytester.runpytest("-ra", "--nitro-vectors", "empty")
    result.assert_outcomes(skipped=3)
    result.stdout.fnmatch_lines(["SKIPPED * no [*].cbor file in *empty (--nitro-vectors or NITRO_ATTEST_VECTORS)"])


def test_a_missing_directory_on_the_command_line_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MARKED_TESTS)
    result = pytester.runpytest("--nitro-vectors=nowhere")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --nitro-vectors: *nowhere is not a directory"])


def test_a_missing_directory_in_the_environment_only_skips_the_marked_tests(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The variable reaches every pytest run in the environment, also of projects that never use the marker.
    monkeypatch.setenv("NITRO_ATTEST_VECTORS", "nowhere")
    pytester.makepyfile(MARKED_TESTS + "\n\ndef test_unmarked():\n    pass\n")
    result = pytester.runpytest("-ra")
    result.assert_outcomes(passed=1, skipped=3)
    result.stdout.fnmatch_lines(["SKIPPED * $NITRO_ATTEST_VECTORS: *nowhere is not a directory"])


def test_a_relative_directory_in_the_environment_is_taken_from_where_pytest_runs(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    (pytester.path / "documents").mkdir()
    monkeypatch.setenv("NITRO_ATTEST_VECTORS", "documents")
    pytester.makepyfile(MARKED_TESTS)
    result = pytester.runpytest("-ra")
    result.stdout.fnmatch_lines(["SKIPPED * no [*].cbor file in *documents (--nitro-vectors or NITRO_ATTEST_VECTORS)"])


def test_the_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.nitro_aws_vectors: the test needs real AWS Nitro attestation *"])
    pytester.runpytest("--help").stdout.fnmatch_lines(["*--nitro-vectors=DIR*"])


def test_a_conftest_can_replace_the_pki(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        from datetime import datetime, timezone

        import pytest
        from nitro_attest.testing import TestPKI

        @pytest.fixture(scope="session")
        def nitro_test_pki():
            return TestPKI.create(start=datetime(2030, 1, 1, tzinfo=timezone.utc), seed="my project")
        """
    )
    pytester.makepyfile(
        """
        from datetime import datetime, timezone

        import nitro_attest

        def test_it(nitro_document, nitro_roots, nitro_verification_time):
            assert nitro_verification_time == datetime(2030, 1, 1, 4, tzinfo=timezone.utc)
            policy = nitro_attest.Policy.any_enclave()
            nitro_attest.verify(nitro_document(), policy, at=nitro_verification_time, roots=nitro_roots)
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


# docs/testing.md: its example project passes as written


DOCS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "testing.md"
FENCED_FILE = re.compile(r"^```(?:python|py)\n# (?P<name>\w+\.py)\n(?P<code>.*?)^```$", re.MULTILINE | re.DOTALL)


def test_the_documented_project_passes(pytester: pytest.Pytester) -> None:
    files = {match["name"]: match["code"] for match in FENCED_FILE.finditer(DOCS_PAGE.read_text(encoding="utf-8"))}
    assert sorted(files) == ["conftest.py", "service.py", "test_service.py"]
    for name, code in files.items():
        (pytester.path / name).write_text(code, encoding="utf-8")
    pytester.syspathinsert()  # test_service.py imports service
    result = pytester.runpytest("-ra", "--strict-markers")
    result.assert_outcomes(passed=4 + len(BREAKAGE_CODES), skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED * needs real AWS Nitro attestation documents*"])
