"""Access to ``../shared``, the reference material that is never copied into the repository.

``../shared`` (next to the repository root, or wherever ``NITRO_ATTEST_SHARED``
points) exists on developer machines and in CI only. Tests that read it skip,
with a reason, when it is absent.

- ``shared_dir``: session fixture, the directory (skips the test when absent).
- :func:`require_shared`: a file or directory inside it (skips when absent).
- :func:`shared_path`: the same, or None; for collection time (never skips).
- :func:`manifest_entries` / :func:`manifest_params`: ``vectors/MANIFEST.json``
  entries for ``pytest.mark.parametrize``, with one skipped placeholder when absent.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from nitro_attest import _backend as backend
from nitro_attest import _cbor
from nitro_attest.testing import TestPKI

SHARED_ENV = "NITRO_ATTEST_SHARED"

T = TypeVar("T")


def shared_root() -> Path:
    """Where ``../shared`` is expected: ``$NITRO_ATTEST_SHARED``, else next to the repository root."""
    override = os.environ.get(SHARED_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[1].parent / "shared"


def absent_reason(relative: str = "") -> str:
    where = shared_root() / relative if relative else shared_root()
    return f"{where} is absent: reference material in ../shared (set {SHARED_ENV} to its location)"


def shared_path(relative: str) -> Path | None:
    """``relative`` inside ``../shared``, or None when it does not exist. Never skips."""
    path = shared_root() / relative
    return path if path.exists() else None


def require_shared(relative: str) -> Path:
    """``relative`` inside ``../shared``; skips the calling test when it does not exist."""
    path = shared_path(relative)
    if path is None:
        pytest.skip(absent_reason(relative))
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ``../shared`` directory; tests using it skip when it is absent."""
    root = shared_root()
    if not root.is_dir():
        pytest.skip(absent_reason())
    return root


def manifest_entries(*classes: str) -> list[dict[str, Any]]:
    """The entries of ``vectors/MANIFEST.json`` (only those of ``classes``, if given), or [] when absent."""
    path = shared_path("vectors/MANIFEST.json")
    if path is None:
        return []
    entries: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["entries"]
    return [entry for entry in entries if not classes or entry["class"] in classes]


def as_params(items: Sequence[T], ids: Callable[[T], str], missing: str) -> list[Any]:
    """``items`` as parameters named by ``ids``; when there are none, one skipped placeholder.

    ``missing`` is the skip reason (e.g. :func:`absent_reason`): a parametrize
    over nothing would silently collect no test at all.
    """
    if not items:
        return [pytest.param(None, id="shared-absent", marks=pytest.mark.skip(reason=missing))]
    return [pytest.param(item, id=ids(item)) for item in items]


def manifest_params(*classes: str) -> list[Any]:
    """Manifest entries of ``classes`` as parameters with the file name as id (e.g. ``eternis-7.cbor``)."""
    return as_params(
        manifest_entries(*classes),
        ids=lambda entry: Path(entry["file"]).name,
        missing=absent_reason("vectors/MANIFEST.json"),
    )


def read_vector(entry: dict[str, Any]) -> bytes:
    """The bytes of a manifest entry's file; skips when absent."""
    return require_shared(f"vectors/{entry['file']}").read_bytes()


@pytest.fixture(params=["cryptography", "nettle"])
def signature_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each P-384 backend in turn, as the one verify() and verify_batch() use (skips one not built)."""
    name: str = request.param
    if name not in backend.available_backends():
        pytest.skip(f"the {name} backend is not available in this build")
    monkeypatch.setattr(backend, "BACKEND", name)
    return name


@pytest.fixture(params=["native", "python"])
def cbor_scan(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each CBOR well-formedness scan in turn, as the one parse() runs (skips the C one when not built)."""
    name: str = request.param
    if name == "native":
        if backend.NATIVE is None:
            pytest.skip(f"the C scan is not available: native extension {backend.NATIVE_IMPORT_ERROR}")
        monkeypatch.setattr(_cbor, "scan", backend.NATIVE.check_cbor)
    else:
        monkeypatch.setattr(_cbor, "scan", _cbor.scan_python)
    return name


@pytest.fixture
def root_pem(tmp_path: Path) -> Path:
    """The (deterministic) test PKI's root as a PEM file, for the CLI's --root."""
    path = tmp_path / "test-root.pem"
    path.write_bytes(b"".join(root.public_bytes(Encoding.PEM) for root in TestPKI.create().roots))
    return path


def redis_unreachable(reason: str) -> NoReturn:
    """Skips the calling test for want of a Redis server; fails it where CI promised one.

    ``.ci/run`` starts a server and sets ``NITRO_ATTEST_REQUIRE_REDIS=1``, so
    that the Redis tests cannot silently stop running there.
    """
    if os.environ.get("NITRO_ATTEST_REQUIRE_REDIS", "") not in ("", "0"):
        pytest.fail(f"NITRO_ATTEST_REQUIRE_REDIS is set but {reason}")
    pytest.skip(reason)
