"""setup.py's switches for the native build, without compiling anything.

``NITRO_ATTEST_SANITIZE=1`` (.ci/sanitize) adds the ASan + UBSan flags and, like
``NITRO_ATTEST_REQUIRE_NATIVE=1``, turns a failed build into a failed install
instead of the quiet fallback to cryptography. setup.py is run with
``setuptools.setup`` replaced, so each test sees the arguments it would pass.
That the flags really produce a sanitized module is checked by .ci/sanitize
(the module must need libasan and libubsan).
"""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pytest

setuptools = pytest.importorskip("setuptools")
from setuptools.dist import Distribution  # noqa: E402
from setuptools.errors import CCompilerError  # noqa: E402

SETUP = Path(__file__).resolve().parents[1] / "setup.py"
SWITCHES = ("NITRO_ATTEST_SANITIZE", "NITRO_ATTEST_REQUIRE_NATIVE", "NITRO_ATTEST_NO_NATIVE_BUILD")
SANITIZER_FLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]

pytestmark = pytest.mark.skipif(not SETUP.exists(), reason=f"{SETUP} is absent (not a source checkout)")


def run_setup(monkeypatch: pytest.MonkeyPatch, **environment: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """setup.py's setup() arguments and module namespace under ``environment`` (the other switches unset)."""
    for name in SWITCHES:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    arguments: dict[str, Any] = {}
    monkeypatch.setattr(setuptools, "setup", lambda **kwargs: arguments.update(kwargs))
    namespace = runpy.run_path(str(SETUP), run_name="setup")
    return arguments, namespace


def test_normal_build_has_no_sanitizer(monkeypatch: pytest.MonkeyPatch) -> None:
    arguments, _ = run_setup(monkeypatch)
    (extension,) = arguments["ext_modules"]
    assert extension.name == "nitro_attest._native"
    assert extension.libraries == ["hogweed", "nettle", "gmp"]
    assert extension.py_limited_api
    assert not any("sanitize" in flag for flag in extension.extra_compile_args + extension.extra_link_args)
    assert arguments["options"]["bdist_wheel"] == {"py_limited_api": "cp310"}


@pytest.mark.parametrize("value", ["1", "yes"])
def test_sanitize_adds_the_flags_and_keeps_the_rest(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    arguments, _ = run_setup(monkeypatch, NITRO_ATTEST_SANITIZE=value)
    (extension,) = arguments["ext_modules"]
    compile_args, link_args = extension.extra_compile_args, extension.extra_link_args
    for flag in [*SANITIZER_FLAGS, "-fno-wrapv", "-g", "-O1"]:
        assert flag in compile_args
    # After the usual flags, so that -O1 and -fno-wrapv win over Python's -O3 and -fwrapv.
    assert compile_args[:4] == ["-std=c11", "-pthread", "-Wall", "-Wextra"]
    assert "-fsanitize=address,undefined" in link_args
    assert extension.libraries == ["hogweed", "nettle", "gmp"]
    assert extension.py_limited_api


def test_sanitize_zero_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    arguments, _ = run_setup(monkeypatch, NITRO_ATTEST_SANITIZE="0")
    (extension,) = arguments["ext_modules"]
    assert not any("sanitize" in flag for flag in extension.extra_compile_args)


def test_sanitize_without_a_native_build_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit, match="NITRO_ATTEST_SANITIZE and NITRO_ATTEST_NO_NATIVE_BUILD"):
        run_setup(monkeypatch, NITRO_ATTEST_SANITIZE="1", NITRO_ATTEST_NO_NATIVE_BUILD="1")


@pytest.mark.parametrize("switch", ["NITRO_ATTEST_SANITIZE", "NITRO_ATTEST_REQUIRE_NATIVE"])
def test_a_failed_build_fails_when_required(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], switch: str
) -> None:
    _, namespace = run_setup(monkeypatch, **{switch: "1"})
    command = namespace["OptionalBuildExt"](Distribution())
    failure = CCompilerError("no nettle headers")
    with pytest.raises(CCompilerError) as raised:
        command._give_up(failure)
    assert raised.value is failure
    assert f"{switch} is set and the native build failed" in capsys.readouterr().err


def test_a_failed_build_falls_back_otherwise(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, namespace = run_setup(monkeypatch)
    command = namespace["OptionalBuildExt"](Distribution())
    command._give_up(CCompilerError("no nettle headers"))  # no exception: the warning only
    assert "native backend not built" in capsys.readouterr().err


def test_the_module_is_always_rebuilt(monkeypatch: pytest.MonkeyPatch) -> None:
    """setuptools' up-to-date check looks at file times only: it would keep a sanitized module for a normal build."""
    _, namespace = run_setup(monkeypatch)
    command = namespace["OptionalBuildExt"](Distribution())
    command.finalize_options()
    assert command.force
