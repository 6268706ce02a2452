"""The recorded vectors of ``vectors/``: each gets exactly the verdict its manifest entry states.

The vectors are made by ``vectors/generate.py`` with the deterministic test PKI
of :mod:`nitro_attest.testing`; regenerating them must give the same bytes.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import nitro_attest
from nitro_attest import NitroAttestError, Policy
from nitro_attest.testing import TestPKI

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
MANIFEST: list[dict[str, Any]] = json.loads((VECTORS / "manifest.json").read_text(encoding="utf-8"))


def _params() -> list[Any]:
    params = []
    for entry in MANIFEST:
        params.append(pytest.param(entry, id=entry["file"]))
    return params


def _bytes(value: str | None) -> bytes | None:
    return None if value is None else bytes.fromhex(value)


def policy_from(spec: dict[str, Any]) -> Policy:
    """The manifest's JSON policy as a :class:`Policy`."""
    max_age = spec["max_age_seconds"]
    options: dict[str, Any] = {
        "nonce": _bytes(spec["nonce"]),
        "user_data": _bytes(spec["user_data"]),
        "public_key": _bytes(spec["public_key"]),
        "max_age": None if max_age is None else timedelta(seconds=max_age),
        "allow_debug": spec["allow_debug"],
    }
    if spec["pcrs"] == "any":
        return Policy.any_enclave(**options)
    return Policy({int(index): pins for index, pins in spec["pcrs"].items()}, **options)


@pytest.fixture(scope="module")
def roots() -> tuple[Any, ...]:
    return TestPKI.create().roots


@pytest.mark.parametrize("entry", _params())
def test_vector(entry: dict[str, Any], roots: tuple[Any, ...]) -> None:
    data = (VECTORS / entry["file"]).read_bytes()
    policy = policy_from(entry["policy"])
    at = datetime.fromisoformat(entry["at"])
    if entry["expected"] == "accept":
        document = nitro_attest.verify(data, policy, at=at, roots=roots)
        assert document.raw == data
        return
    with pytest.raises(NitroAttestError) as raised:
        nitro_attest.verify(data, policy, at=at, roots=roots)
    assert (type(raised.value).__name__, raised.value.code) == (entry["exception"], entry["code"]), str(raised.value)


def test_manifest_lists_exactly_the_files() -> None:
    files = [entry["file"] for entry in MANIFEST]
    assert len(files) == len(set(files))
    assert sorted(files) == sorted(path.name for path in VECTORS.glob("*.cbor"))


def test_manifest_entries_are_complete() -> None:
    for entry in MANIFEST:
        assert set(entry) == {"file", "expected", "code", "exception", "at", "policy", "rule", "description"}
        assert entry["expected"] in ("accept", "reject")
        assert (entry["code"] is None) == (entry["expected"] == "accept") == (entry["exception"] is None)
        assert datetime.fromisoformat(entry["at"]).tzinfo is not None
        assert entry["rule"] and entry["description"]


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nitro_attest_vectors_generate", VECTORS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class is built.
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_regenerating_gives_identical_files(tmp_path: Path) -> None:
    _load_generator().generate(tmp_path)
    written = sorted(path.name for path in tmp_path.iterdir())
    recorded = sorted(path.name for path in VECTORS.iterdir() if path.suffix in (".cbor", ".json", ".md"))
    assert written == recorded
    for name in written:
        assert (tmp_path / name).read_bytes() == (VECTORS / name).read_bytes(), f"{name} differs when regenerated"


def _parsable() -> list[Any]:
    """The vectors that decode and schema-check, i.e. that reach the certificate chain."""
    params = []
    for entry in MANIFEST:
        try:
            nitro_attest.parse((VECTORS / entry["file"]).read_bytes())
        except NitroAttestError:
            continue
        params.append(pytest.param(entry, id=entry["file"]))
    return params


@pytest.mark.parametrize("entry", _parsable())
def test_no_test_pki_document_verifies_against_the_aws_root(entry: dict[str, Any]) -> None:
    data = (VECTORS / entry["file"]).read_bytes()
    with pytest.raises(NitroAttestError) as raised:
        nitro_attest.verify(data, Policy.any_enclave(allow_debug=True), at=datetime.fromisoformat(entry["at"]))
    assert raised.value.code == "chain", str(raised.value)
