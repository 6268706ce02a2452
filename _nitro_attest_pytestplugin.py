"""The pytest plugin of nitro_attest: attestation documents for testing a service that verifies them.

pytest loads it in every run where nitro_attest is installed (the ``pytest11``
entry point ``nitro_attest``; ``-p no:nitro_attest`` turns it off). That is why
it lives outside the package and imports only pytest and the standard library:
importing nitro_attest imports cryptography, a cost every test run of a project
that merely has us installed would pay at collection. The fixtures import
nitro_attest the first time a test asks for one.

Fixtures (all session-scoped; overriding ``nitro_test_pki`` in a conftest.py
changes the PKI the others use):

- ``nitro_test_pki``: the deterministic look-alike test PKI, a
  :class:`nitro_attest.testing.TestPKI` (never AWS: its documents never verify
  against the AWS root).
- ``nitro_enclave_key``: the enclave's RSA key, a
  :class:`nitro_attest.recipient.EnclaveKey` (2048 bits); its public key is in
  every ``nitro_document`` document, so what a service seals to a document
  (:func:`nitro_attest.recipient.seal`) opens with ``nitro_enclave_key.open``.
- ``nitro_document``: a :class:`nitro_attest.testing.DocumentFactory` on that
  PKI, ``nitro_document(nonce=..., pcrs=..., broken="signature")`` -> bytes.
- ``nitro_test_enclave``: a :class:`nitro_attest.testing.TestEnclave` whose
  documents verify *now* (``attest(public_key=...)``), under its own TEST root.
- ``nitro_kms``: a local KMS (:class:`nitro_attest.kms.server.LocalKms`) on a
  free loopback port, trusting ``nitro_test_enclave``'s root; ``.client()`` is
  a boto3 KMS client. Needs ``nitro_attest[kms-server]`` and boto3; skips without.
- ``nitro_roots``: what to pass as ``verify(..., roots=)`` for those documents.
- ``nitro_verification_time``: what to pass as ``verify(..., at=)`` for them.
- ``nitro_aws_documents``: real AWS documents, name -> bytes, from the directory
  given by ``--nitro-vectors=DIR`` or ``$NITRO_ATTEST_VECTORS``; skips without one.

Marker ``@pytest.mark.nitro_aws_vectors``: the test needs real AWS documents and
is skipped, with the reason, unless such a directory is given.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime

    from cryptography import x509

    from nitro_attest.kms.server import LocalKms
    from nitro_attest.recipient import EnclaveKey
    from nitro_attest.testing import DocumentFactory, TestEnclave, TestPKI

__all__ = ["AWS_VECTORS_ENV", "AWS_VECTORS_MARKER", "AWS_VECTORS_OPTION"]

#: The marker of tests that need real AWS attestation documents.
AWS_VECTORS_MARKER = "nitro_aws_vectors"
#: The command-line option naming the directory of real documents (``*.cbor``, searched recursively).
AWS_VECTORS_OPTION = "--nitro-vectors"
#: The environment variable naming it when the option is not given.
AWS_VECTORS_ENV = "NITRO_ATTEST_VECTORS"

_DOCUMENT_PATTERN = "*.cbor"


@dataclass(frozen=True)
class _AWSVectors:
    """What the run was told about real AWS documents: where, which files, or why there are none."""

    directory: Path | None
    files: tuple[Path, ...]
    #: Why the directory named in the environment is unusable (it is not a directory).
    problem: str | None = None

    @property
    def skip_reason(self) -> str | None:
        """Why tests needing real documents cannot run; None when they can."""
        if self.problem is not None:
            return self.problem
        if self.directory is None:
            return (
                f"needs real AWS Nitro attestation documents: pass {AWS_VECTORS_OPTION}=DIR "
                f"or set {AWS_VECTORS_ENV}=DIR (a directory of {_DOCUMENT_PATTERN} files)"
            )
        if not self.files:
            return f"no {_DOCUMENT_PATTERN} file in {self.directory} ({AWS_VECTORS_OPTION} or {AWS_VECTORS_ENV})"
        return None


_AWS_VECTORS = pytest.StashKey[_AWSVectors]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("nitro_attest", "nitro_attest attestation documents")
    group.addoption(
        AWS_VECTORS_OPTION,
        metavar="DIR",
        default=None,
        help=(
            f"directory of real AWS Nitro attestation documents ({_DOCUMENT_PATTERN}, recursively) for tests "
            f"marked {AWS_VECTORS_MARKER}; default ${AWS_VECTORS_ENV}. Without one those tests are skipped."
        ),
    )


def pytest_configure(config: pytest.Config) -> None:
    # Registered here, not only documented, so projects running --strict-markers can use it.
    config.addinivalue_line(
        "markers",
        f"{AWS_VECTORS_MARKER}: the test needs real AWS Nitro attestation documents "
        f"({AWS_VECTORS_OPTION}=DIR or ${AWS_VECTORS_ENV}); skipped without them.",
    )
    config.stash[_AWS_VECTORS] = _find_aws_vectors(config)


def _find_aws_vectors(config: pytest.Config) -> _AWSVectors:
    option: str | None = config.getoption(AWS_VECTORS_OPTION) or None
    given = option or os.environ.get(AWS_VECTORS_ENV) or None
    if given is None:
        return _AWSVectors(directory=None, files=())
    # A relative path is relative to where pytest was invoked, not to the rootdir.
    directory = config.invocation_params.dir / Path(given).expanduser()
    if not directory.is_dir():
        if option is not None:
            # Asked for on this command line and absent: a mistake to report, not a reason to skip quietly.
            raise pytest.UsageError(f"{AWS_VECTORS_OPTION}: {directory} is not a directory")
        # The environment reaches every pytest run, of projects that never use the marker too:
        # the marked tests skip, saying why, and nothing else is stopped.
        return _AWSVectors(directory=None, files=(), problem=f"${AWS_VECTORS_ENV}: {directory} is not a directory")
    files = tuple(sorted(path for path in directory.rglob(_DOCUMENT_PATTERN) if path.is_file()))
    return _AWSVectors(directory=directory, files=files)


def pytest_report_header(config: pytest.Config) -> str | None:
    vectors = config.stash[_AWS_VECTORS]
    if vectors.directory is None:
        return None
    return f"nitro_attest: {len(vectors.files)} real AWS documents in {vectors.directory}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = config.stash[_AWS_VECTORS].skip_reason
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if item.get_closest_marker(AWS_VECTORS_MARKER) is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def nitro_test_pki() -> TestPKI:
    """The deterministic look-alike of the AWS Nitro PKI (a test root, never AWS's)."""
    from nitro_attest.testing import TestPKI  # noqa: PLC0415 -- imported when used: see the module docstring

    return TestPKI.create()


@pytest.fixture(scope="session")
def nitro_enclave_key() -> EnclaveKey:
    """The enclave's key pair: its public key is in ``nitro_document``'s documents; ``.open`` reads sealed secrets."""
    from nitro_attest.recipient import EnclaveKey  # noqa: PLC0415 -- imported when used

    return EnclaveKey.generate()


@pytest.fixture(scope="session")
def nitro_document(nitro_test_pki: TestPKI, nitro_enclave_key: EnclaveKey) -> DocumentFactory:
    """Makes attestation documents from ``nitro_test_pki``: ``nitro_document(nonce=b"...", broken=...)``.

    They carry ``nitro_enclave_key``'s public key unless the call passes another ``public_key``.
    """
    from nitro_attest.testing import DocumentFactory  # noqa: PLC0415 -- imported when used

    return DocumentFactory(nitro_test_pki, public_key=nitro_enclave_key.public_key_der)


@pytest.fixture(scope="session")
def nitro_roots(nitro_test_pki: TestPKI) -> tuple[x509.Certificate, ...]:
    """The trust anchors of ``nitro_document``'s documents: pass as ``verify(..., roots=)``."""
    return nitro_test_pki.roots


@pytest.fixture(scope="session")
def nitro_verification_time(nitro_test_pki: TestPKI) -> datetime:
    """The time ``nitro_document``'s documents are valid at: pass as ``verify(..., at=)``.

    Fixed, not now: the test PKI's certificates live hours, like AWS's, but in 2026.
    """
    return nitro_test_pki.document_time


@pytest.fixture(scope="session")
def nitro_aws_documents(pytestconfig: pytest.Config) -> Mapping[str, bytes]:
    """Real AWS documents, by path relative to the ``--nitro-vectors`` directory; skips without them."""
    vectors = pytestconfig.stash[_AWS_VECTORS]
    reason = vectors.skip_reason
    if reason is not None:
        pytest.skip(reason)
    root = vectors.directory
    assert root is not None  # there is no skip reason only when there is a directory
    return MappingProxyType({path.relative_to(root).as_posix(): path.read_bytes() for path in vectors.files})


@pytest.fixture(scope="session")
def nitro_test_enclave() -> TestEnclave:
    """A TEST enclave whose documents verify now (``attest(public_key=...)``), under its own root."""
    from nitro_attest.testing import TestEnclave  # noqa: PLC0415 -- imported when used

    return TestEnclave.create()


@pytest.fixture
def nitro_kms(nitro_test_enclave: TestEnclave) -> Iterator[LocalKms]:
    """A local KMS on a free loopback port trusting ``nitro_test_enclave``'s root; ``.client()`` is boto3's."""
    pytest.importorskip("werkzeug", reason="nitro_kms needs nitro_attest[kms-server] (werkzeug, botocore)")
    pytest.importorskip("boto3", reason="nitro_kms's client is boto3's: pip install boto3")
    from nitro_attest.kms.server import LocalKms  # noqa: PLC0415 -- imported when used

    with LocalKms(roots=nitro_test_enclave.roots) as kms:
        yield kms
