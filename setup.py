"""The optional native backend; all metadata is in pyproject.toml.

``nitro_attest._native`` (C, CPython limited API, one abi3 build for 3.10+)
links GNU Nettle: Debian/Ubuntu ``apt-get install nettle-dev libgmp-dev``.
Without them the build fails, a warning is printed, and the package installs
without it (``nitro_attest.BACKEND == "cryptography"``). Environment:

- ``NITRO_ATTEST_REQUIRE_NATIVE=1``: a failed native build fails the install.
- ``NITRO_ATTEST_NO_NATIVE_BUILD=1``: do not even try to build it.
- ``NITRO_ATTEST_SANITIZE=1``: build it with AddressSanitizer and UBSan
  (``.ci/sanitize``); implies NITRO_ATTEST_REQUIRE_NATIVE. Such a module loads
  only into a process that has gcc's libasan first in its library list
  (``LD_PRELOAD="$(gcc -print-file-name=libasan.so)"``).
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, ExecError, PlatformError

NATIVE = "nitro_attest._native"
WARNING = "nitro_attest: native backend not built (nettle-dev missing?): falling back to cryptography"


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


# After Python's own CFLAGS on the command line, so these win: -O1 over -O3,
# and -fno-wrapv over -fwrapv (with -fwrapv, gcc's UBSan does not check signed
# overflow at all; our code must not rely on it). -fno-sanitize-recover=all:
# every UBSan report aborts (ASan's always do), so no finding can scroll by.
SANITIZE_COMPILE_ARGS = [
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=all",
    "-fno-omit-frame-pointer",
    "-fno-wrapv",
    "-g",
    "-O1",
]
SANITIZE_LINK_ARGS = ["-fsanitize=address,undefined"]


def _required() -> str | None:
    """The variable that forbids falling back to cryptography, or None."""
    for name in ("NITRO_ATTEST_SANITIZE", "NITRO_ATTEST_REQUIRE_NATIVE"):
        if _flag(name):
            return name
    return None


BUILD_ERRORS = (CCompilerError, ExecError, PlatformError, OSError)


class OptionalBuildExt(build_ext):
    """build_ext where the native backend may fail to build, unless NITRO_ATTEST_REQUIRE_NATIVE
    (or NITRO_ATTEST_SANITIZE) is set.

    A failed extension is dropped from ``self.extensions``, so that nothing
    after the build (the in-place copy of ``pip install -e``, the wheel's file
    list) looks for its missing file.
    """

    _failure: Exception | None = None

    def finalize_options(self) -> None:
        super().finalize_options()
        # Always compile: setuptools' up-to-date check compares file times only,
        # so it would keep a sanitized module for a normal build (or the reverse).
        self.force = True

    def run(self) -> None:
        try:
            super().run()
        except BUILD_ERRORS as exc:  # before any extension was built, e.g. no usable compiler
            if exc is self._failure:  # already reported by build_extensions, and required
                raise
            self._give_up(exc)
            self.extensions = []

    def build_extensions(self) -> None:
        self.check_extensions_list(self.extensions)
        built: list[Extension] = []
        for ext in self.extensions:
            try:
                self.build_extension(ext)
            except BUILD_ERRORS as exc:  # no nettle headers or libraries
                self._give_up(exc)
            else:
                built.append(ext)
        self.extensions = built

    def _give_up(self, exc: Exception) -> None:
        self._failure = exc
        required = _required()
        if required is not None:
            sys.stderr.write(f"nitro_attest: {required} is set and the native build failed: {exc}\n")
            raise exc
        line = "*" * len(WARNING)
        sys.stderr.write(f"\n{line}\n{WARNING}\n({type(exc).__name__}: {exc})\n{line}\n\n")


ext_modules: list[Extension] = []
options: dict[str, dict[str, str]] = {}
if not _flag("NITRO_ATTEST_NO_NATIVE_BUILD"):
    sanitize = _flag("NITRO_ATTEST_SANITIZE")
    if sanitize:
        sys.stderr.write("nitro_attest: NITRO_ATTEST_SANITIZE is set: building the native backend with ASan + UBSan\n")
    ext_modules.append(
        Extension(
            NATIVE,
            sources=["nitro_attest/_native.c"],
            libraries=["hogweed", "nettle", "gmp"],
            extra_compile_args=[
                "-std=c11",
                "-pthread",
                "-Wall",
                "-Wextra",
                *(SANITIZE_COMPILE_ARGS if sanitize else []),
            ],
            extra_link_args=["-pthread", *(SANITIZE_LINK_ARGS if sanitize else [])],
            py_limited_api=True,  # Py_LIMITED_API is defined in the C file (3.10)
        )
    )
    options["bdist_wheel"] = {"py_limited_api": "cp310"}
elif _required() is not None:
    sys.exit(f"nitro_attest: {_required()} and NITRO_ATTEST_NO_NATIVE_BUILD are both set")

setup(ext_modules=ext_modules, cmdclass={"build_ext": OptionalBuildExt}, options=options)
