"""Imports go one way: from the CLI and servers down to the bytes, never back up.

Each module of the package has a layer; a module may import its own layer and
those below it. So the decoding and verifying code cannot come to depend on a
command line, a server or the test PKI, and ``import nitro_attest`` stays free
of optional services (Redis, HTTP servers).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nitro_attest"

# Lowest first. A module's layer is that of the longest prefix listed here.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("nitro_attest._native", "nitro_attest._cbor", "nitro_attest.errors", "nitro_attest.keys", "nitro_attest._backend"),
    ("nitro_attest.document", "nitro_attest._tpm_document"),
    ("nitro_attest._cose", "nitro_attest._chain", "nitro_attest.measurements"),
    ("nitro_attest.kms", "nitro_attest.policy", "nitro_attest.policy_file"),
    ("nitro_attest._verify", "nitro_attest._batch", "nitro_attest.challenge", "nitro_attest.nitrotpm"),
    ("nitro_attest.recipient", "nitro_attest.eif", "nitro_attest.nsm", "nitro_attest.boot_secrets"),
    ("nitro_attest",),  # the package's face re-exports the layers above
    ("nitro_attest.kms.server", "nitro_attest.kms._server_operations", "nitro_attest.kms._server_store"),
    ("nitro_attest.testing",),
    ("nitro_attest.cli", "nitro_attest.__main__"),
)


def _layer(module: str) -> int:
    best: tuple[int, int] | None = None
    for layer, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), layer)
    assert best is not None, f"{module} has no layer: add it to LAYERS in {__file__}"
    return best[1]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    relative = Path(*name.split("."))
    return (PACKAGE.parent / relative).is_dir() or (PACKAGE.parent / relative).with_suffix(".py").exists()


def _imports(path: Path) -> set[str]:
    """The nitro_attest modules ``path`` imports (relative imports resolved; ``from X import name`` is X)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            submodules = {alias.name for alias in node.names if _is_module(f"{target}.{alias.name}")}
            found.update(f"{target}.{name}" for name in submodules)
            if len(submodules) < len(node.names):  # some names are attributes of target itself
                found.add(target)
    return {name for name in found if name == "nitro_attest" or name.startswith("nitro_attest.")}


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=[str(path.relative_to(PACKAGE)) for path in SOURCES])
def test_imports_go_down_only(path: Path) -> None:
    module = _module_name(path)
    own = _layer(module)
    upward = sorted(name for name in _imports(path) if _layer(name) > own)
    assert not upward, f"{module} (layer {own}) imports higher layers: {upward}"


def test_the_layer_table_has_the_low_modules_low() -> None:
    assert _layer("nitro_attest.document") < _layer("nitro_attest.policy") < _layer("nitro_attest.cli")
    assert _layer("nitro_attest.kms._evaluation") == _layer("nitro_attest.kms")


def test_import_nitro_attest_loads_no_optional_service() -> None:
    code = (
        "import sys, nitro_attest, nitro_attest.kms, nitro_attest.challenge\n"
        "loaded = [name for name in ('redis', 'fastapi', 'werkzeug', 'http.server', 'boto3', 'botocore',"
        " 'nitro_attest.cli', 'nitro_attest.testing', 'nitro_attest.kms.server') if name in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


CLI_SOURCES = sorted((PACKAGE / "cli").glob("*.py"))


@pytest.mark.parametrize("path", CLI_SOURCES, ids=[path.name for path in CLI_SOURCES])
def test_the_cli_uses_only_the_public_api(path: Path) -> None:
    """The CLI is a client of the library like any other: private modules and names are the CLI's own only."""
    private = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom):
            continue
        outside_cli = node.level >= 2 or (node.level == 0 and (node.module or "").startswith("nitro_attest"))
        module = node.module or ""
        names = [alias.name for alias in node.names]
        hidden = [name for name in names if name.startswith("_") and not name.endswith("__")]
        if outside_cli and (any(part.startswith("_") for part in module.split(".")) or hidden):
            private.append(f"line {node.lineno}: from {'.' * node.level}{module} import {', '.join(names)}")
    assert not private, private
