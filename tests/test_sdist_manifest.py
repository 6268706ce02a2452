"""The sdist carries every file the test suite reads: MANIFEST.in names each tracked file's kind.

.ci/package runs the suite from the unpacked sdist; a data file the manifest
forgets (a key in vectors/, say) fails there, late. This finds it at once.
Needs a git checkout (the tracked files); an unpacked sdist has none and skips.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _recursive_includes() -> dict[str, list[str]]:
    patterns: dict[str, list[str]] = {}
    for line in (ROOT / "MANIFEST.in").read_text(encoding="utf-8").splitlines():
        words = line.split()
        if words[:1] == ["recursive-include"]:
            patterns[words[1]] = words[2:]
    return patterns


def _tracked() -> list[PurePosixPath]:
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout (an unpacked sdist): no list of tracked files")
    listed = subprocess.run([git, "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [PurePosixPath(name) for name in listed.splitlines()]


def test_every_tracked_file_of_an_included_directory_is_in_the_sdist() -> None:
    patterns = _recursive_includes()
    assert patterns, "MANIFEST.in has no recursive-include lines"
    missing = [
        str(path)
        for path in _tracked()
        if path.parts[0] in patterns and not any(path.match(pattern) for pattern in patterns[path.parts[0]])
    ]
    assert not missing, f"tracked files MANIFEST.in leaves out of the sdist: {missing}"
