"""What run.py and the peer subprocess share: import path, cache clearing, the real documents, machine facts."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import cryptography

BENCHMARKS = Path(__file__).resolve().parent
REPO = BENCHMARKS.parent
#: The reference material beside the repository (not shipped, read at run time only).
DEFAULT_VECTORS = REPO.parent / "shared" / "vectors" / "aws"

# This checkout's nitro_attest (with its native extension when built), whether or not one is installed.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import nitro_attest  # noqa: E402


def _package_modules() -> list[tuple[str, Any]]:
    return [
        (name, module)
        for name, module in sorted(sys.modules.items())
        if module is not None and (name == "nitro_attest" or name.startswith("nitro_attest."))
    ]


def _module_dicts() -> dict[str, dict[Any, Any]]:
    """Every module-level dict (OrderedDict included) of the package, by ``module.name``."""
    return {
        f"{module_name}.{name}": value
        for module_name, module in _package_modules()
        for name, value in vars(module).items()
        if isinstance(value, dict) and not name.startswith("__")
    }


_FOUND: list[tuple[str, Any]] | None = None


def cache_clearers(probe: Callable[[], object] | None = None) -> list[tuple[str, Any]]:
    """Every cache of nitro_attest that makes a later verify() cheaper, as (name, its clear).

    Found by looking, so the script keeps working while the library changes:
    the verified-link cache (any module-level ``*CACHE*`` object with
    ``clear()``), every ``functools.lru_cache`` of the package, and every
    module-level dict that grows while ``probe`` runs (``probe`` verifies a
    few documents the process has not seen; lookup tables do not grow, caches
    do). The first call with a probe decides; later calls return the same list.
    """
    global _FOUND  # noqa: PLW0603 (found once per process)
    if _FOUND is not None:
        return _FOUND
    found: dict[int, tuple[str, Any]] = {}
    for _module_name, module in _package_modules():
        for name, value in vars(module).items():
            if callable(getattr(value, "cache_clear", None)) and callable(getattr(value, "cache_info", None)):
                label = f"{value.__module__}.{value.__qualname__}.cache_clear()"
                found.setdefault(id(value), (label, value.cache_clear))
            elif name.isupper() and "CACHE" in name and callable(getattr(value, "clear", None)):
                found.setdefault(id(value), (f"{type(value).__module__}.{name}.clear()", value.clear))
    if probe is not None:
        before = {name: len(value) for name, value in _module_dicts().items()}
        probe()
        for name, value in _module_dicts().items():
            if len(value) > before.get(name, 0):
                found.setdefault(id(value), (f"{name}.clear()", value.clear))
        _FOUND = sorted(found.values())
    return sorted(found.values())


def clear_all(clearers: list[tuple[str, Any]]) -> None:
    for _name, clear in clearers:
        clear()


@dataclass(frozen=True)
class RealDocument:
    name: str
    data: bytes
    at: datetime  # its own timestamp: the only time at which it verifies
    leaf_not_after: datetime
    user_data: bytes | None


def load_real_documents(directory: Path) -> list[RealDocument]:
    documents = []
    for path in sorted(directory.glob("*.cbor")):
        data = path.read_bytes()
        parsed = nitro_attest.parse(data)
        documents.append(
            RealDocument(
                name=path.stem,
                data=data,
                at=parsed.timestamp,
                leaf_not_after=parsed.certificate.not_valid_after_utc,
                user_data=parsed.user_data,
            )
        )
    return documents


def leaf_valid_for(document: RealDocument) -> timedelta:
    return document.leaf_not_after - document.at


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        cbor2_version = version("cbor2")
    except PackageNotFoundError:
        cbor2_version = "?"
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
        "cryptography": cryptography.__version__,
        "openssl": _openssl_version(),
        "cbor2": cbor2_version,
    }


def machine_line(facts: dict[str, str]) -> str:
    """The one line of a report that says what it ran on."""
    return (
        f"machine: {facts['nproc']} CPUs ({facts['cpu']}); Python {facts['python']}; cryptography "
        f"{facts['cryptography']} ({facts['openssl']}); cbor2 {facts['cbor2']}"
    )


def _openssl_version() -> str:
    try:
        from cryptography.hazmat.backends.openssl.backend import backend  # noqa: PLC0415 (private module)

        return str(backend.openssl_version_text())
    except (ImportError, AttributeError):
        return "?"
