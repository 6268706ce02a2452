"""What the harnesses share: seed sources, a byte reader, byte mutations, the atheris entry point, oracles.

Nothing here imports atheris: the harnesses' ``test_one_input`` functions run
under plain pytest too (tests/test_fuzz_harnesses.py), and only
:func:`fuzz_main` loads atheris, when a harness runs as a fuzzer.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TypeVar

import cbor2
from cryptography.hazmat.primitives.serialization import Encoding

import nitro_attest
from nitro_attest import AttestationDocument
from nitro_attest._backend import P384_ORDER
from nitro_attest.testing import TestPKI

__all__ = [
    "REPO_ROOT",
    "SHARED_ENV",
    "ByteReader",
    "Finding",
    "check_decoding",
    "fuzz_main",
    "generated_documents",
    "iter_seeds",
    "milliseconds",
    "mutate_bytes",
    "repo_vectors",
    "require",
    "shared_root",
    "shared_vectors",
    "signature_twin",
]

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Where ../shared is when it is not next to the repository (as in tests/conftest.py).
SHARED_ENV = "NITRO_ATTEST_SHARED"

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_FIELD_SIZE = 48


class Finding(Exception):
    """An oracle failed: the library did something no input may make it do.

    Deliberately not an AssertionError: ``python -O`` cannot strip it, and it
    cannot be confused with an ``assert`` inside the library.
    """


def require(condition: bool, message: str) -> None:
    """Raises :class:`Finding` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise Finding(message)


# -- seeds ----------------------------------------------------------------------------------------


def shared_root() -> Path:
    """``$NITRO_ATTEST_SHARED``, else ``../shared`` next to the repository (it may not exist)."""
    override = os.environ.get(SHARED_ENV)
    if override:
        return Path(override)
    return REPO_ROOT.parent / "shared"


def _cbor_files(directory: Path, pattern: str) -> list[tuple[str, bytes]]:
    if not directory.is_dir():
        return []
    return [
        (path.relative_to(directory).as_posix(), path.read_bytes())
        for path in sorted(directory.glob(pattern))
        if path.is_file()
    ]


def repo_vectors() -> list[tuple[str, bytes]]:
    """The recorded test-PKI documents of ``vectors/`` (accepted and rejected ones), by file name."""
    return _cbor_files(REPO_ROOT / "vectors", "*.cbor")


def shared_vectors() -> list[tuple[str, bytes]]:
    """Every ``../shared/vectors/**/*.cbor`` (real AWS documents among them); [] when ../shared is absent.

    Read where they are, every time: they must never be copied into the repository.
    """
    return _cbor_files(shared_root() / "vectors", "**/*.cbor")


def generated_documents() -> list[tuple[str, bytes]]:
    """Documents made now by the test PKI: the shapes real documents take, none of them on disk."""
    pki = TestPKI.create()
    return [
        ("generated-plain", pki.document(nonce=b"nonce", user_data=b"user data", public_key=b"key")),
        ("generated-null-optional", pki.document()),
        ("generated-indefinite-tagged", pki.document(indefinite=True, tag=True, nonce=bytes(1024))),
        ("generated-high-s", pki.document(high_s=True)),
        ("generated-low-s", pki.document(high_s=False)),
    ]


# -- the fuzzer's bytes as choices ----------------------------------------------------------------


class ByteReader:
    """Turns the fuzzer's bytes into choices, front to back.

    Every choice is deterministic in the bytes, and once they run out every
    choice is 0 (the first option): the harnesses list the harmless option
    first, so a short input means "change little".
    """

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._position = 0

    def remaining(self) -> int:
        return len(self._data) - self._position

    def take(self, count: int) -> bytes:
        """Up to ``count`` bytes (fewer when the input runs out)."""
        chunk = self._data[self._position : self._position + max(count, 0)]
        self._position += len(chunk)
        return chunk

    def integer(self, low: int, high: int) -> int:
        """An integer in ``low..high`` (inclusive), from as few bytes as that range needs."""
        span = high - low + 1
        if span <= 1:
            return low
        raw = self.take(((span - 1).bit_length() + 7) // 8)
        return low + int.from_bytes(raw, "big") % span

    def boolean(self) -> bool:
        return self.integer(0, 1) == 1

    def pick(self, options: Sequence[T]) -> T:
        return options[self.integer(0, len(options) - 1)]

    def blob(self, max_size: int) -> bytes:
        """A length in ``0..max_size``, then that many bytes (or what is left)."""
        return self.take(self.integer(0, max_size))

    def rest(self) -> bytes:
        return self.take(self.remaining())


# Bytes that change the meaning of CBOR around them: indefinite starts and
# break, tag 18, null/undefined, the 1..8-byte argument forms, simple values.
_INTERESTING_BYTES = bytes.fromhex("000117181b1f405f7f809fa0bfd2f6f7ff")


def mutate_bytes(  # noqa: PLR0911  (one return per operation)
    reader: ByteReader, data: bytes, donors: Sequence[bytes] = ()
) -> bytes:
    """One byte-level edit of ``data`` chosen by ``reader``; never re-signs anything."""
    operation = reader.integer(0, 8)
    if not data:
        return reader.blob(16) or b"\x84"
    at = reader.integer(0, len(data) - 1)
    if operation == 0:  # flip one bit
        return data[:at] + bytes([data[at] ^ (1 << reader.integer(0, 7))]) + data[at + 1 :]
    if operation == 1:  # set one byte to a CBOR-significant value
        return data[:at] + bytes([reader.pick(_INTERESTING_BYTES)]) + data[at + 1 :]
    if operation == 2:  # set one byte to any value
        return data[:at] + reader.take(1).ljust(1, b"\x00") + data[at + 1 :]
    if operation == 3:  # insert
        return data[:at] + (reader.blob(8) or b"\x00") + data[at:]
    if operation == 4:  # delete a run
        return data[:at] + data[at + reader.integer(1, 64) :]
    if operation == 5:  # truncate
        return data[:at]
    if operation == 6:  # duplicate a run in place
        run = data[at : at + reader.integer(1, 64)]
        return data[:at] + run + data[at:]
    if operation == 7 and donors:  # splice another document's tail
        donor = reader.pick(donors)
        return data[:at] + donor[reader.integer(0, len(donor)) :]
    # add or subtract a small number from a byte (a length, an argument, a key)
    return data[:at] + bytes([(data[at] + reader.integer(-8, 8)) % 256]) + data[at + 1 :]


# -- oracles shared by the harnesses --------------------------------------------------------------


def milliseconds(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def signature_twin(signature: bytes) -> bytes:
    """``(r, n - s)``: the other valid encoding of an ECDSA signature (DESIGN.md section 5)."""
    s = int.from_bytes(signature[_FIELD_SIZE:], "big")
    return signature[:_FIELD_SIZE] + ((P384_ORDER - s) % (1 << 384)).to_bytes(_FIELD_SIZE, "big")


def check_decoding(data: bytes, document: AttestationDocument) -> None:
    """A document the strict decoder accepted must mean the same to plain cbor2 (a parser differential).

    Only called after the strict decoder accepted ``data``: by then there is
    no tag but an outer 18, so none of cbor2's semantic tag decoders can run.
    """
    item = cbor2.loads(data)
    if isinstance(item, cbor2.CBORTag):
        require(item.tag == 18, f"accepted an envelope under tag {item.tag}")
        item = item.value
    # cbor2 gives a tagged array as a tuple and its maps as frozendicts.
    require(isinstance(item, (list, tuple)) and len(item) == 4, "accepted an envelope that is not a 4-element array")
    protected, unprotected, payload, signature = item
    require(protected == document.protected_header, "protected header differs from cbor2's reading")
    require(cbor2.loads(protected) == {1: -35}, f"accepted protected header {protected.hex()}")
    require(isinstance(unprotected, Mapping) and not unprotected, f"accepted unprotected header {unprotected!r}")
    require(payload == document.payload, "payload bytes differ from cbor2's reading")
    require(signature == document.signature, "signature differs from cbor2's reading")

    fields = cbor2.loads(payload)
    require(isinstance(fields, dict), "accepted a payload that is not a map")
    require(fields["module_id"] == document.module_id, "module_id differs from cbor2's reading")
    require(fields["digest"] == "SHA384" == document.digest, "digest differs from cbor2's reading")
    require(fields["timestamp"] == milliseconds(document.timestamp), "timestamp differs from cbor2's reading")
    require(
        fields["pcrs"] == {index: value.value for index, value in document.pcrs.items()},
        "pcrs differ from cbor2's reading",
    )
    require(fields["certificate"] == document.chain_der[-1], "certificate differs from cbor2's reading")
    require(tuple(fields["cabundle"]) == document.chain_der[:-1], "cabundle differs from cbor2's reading")
    for name in ("public_key", "user_data", "nonce"):
        require(fields.get(name) == getattr(document, name), f"{name} differs from cbor2's reading")
    certificates = (*document.cabundle, document.certificate)
    require(
        tuple(certificate.public_bytes(Encoding.DER) for certificate in certificates) == document.chain_der,
        "the parsed certificates are not the received DER",
    )


# -- running under atheris ------------------------------------------------------------------------


def _instrument_package(atheris: types.ModuleType, package: str) -> int:
    """Adds atheris's coverage instrumentation to every function of ``package`` already loaded.

    The harness modules import nitro_attest at import time (pytest replays
    them without atheris), so atheris.instrument_imports() would come too
    late; this is what atheris.instrument_all() does, restricted to the
    package so that libFuzzer's coverage is the library's, not the stdlib's.
    Functions are patched in place, so every reference to them sees it.
    """
    prefix = package + "."
    count = 0
    for candidate in gc.get_objects():
        if not isinstance(candidate, types.FunctionType):
            continue
        module = getattr(candidate, "__module__", None)
        if isinstance(module, str) and (module == package or module.startswith(prefix)):
            atheris.instrument_func(candidate)
            count += 1
    return count


def fuzz_main(test_one_input: Callable[[bytes], None]) -> None:
    """Runs ``test_one_input`` under atheris/libFuzzer, with the command line's libFuzzer flags and corpus dirs."""
    atheris = importlib.import_module("atheris")  # only a fuzzing run needs it
    count = _instrument_package(atheris, nitro_attest.__name__)
    print(f"INFO: instrumented {count} functions of {nitro_attest.__name__}", file=sys.stderr, flush=True)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


def iter_seeds(sources: Sequence[tuple[str, bytes]], prefix: bytes = b"") -> Iterator[tuple[str, bytes]]:
    """``sources`` as seed inputs: each document behind ``prefix`` (a harness's mode bytes)."""
    for name, data in sources:
        yield name, prefix + data


# --- DER building blocks: certificates edited on purpose (inputs to the harnesses and their tests) ---


def der_element(tag: int, content: bytes) -> bytes:
    """A DER element with a definite length: for building test inputs, never for reading ours."""
    if len(content) < 0x80:
        return bytes([tag, len(content)]) + content
    size = (len(content).bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + len(content).to_bytes(size, "big") + content


def der_children(element: bytes) -> list[bytes]:
    """The elements inside a DER constructed element (only ever one of our own, well-formed certificates)."""

    def header(at: int) -> tuple[int, int]:
        first = element[at + 1]
        if first < 0x80:
            return 2, first
        size = first & 0x7F
        return 2 + size, int.from_bytes(element[at + 2 : at + 2 + size], "big")

    start, length = header(0)
    children, at = [], start
    while at < start + length:
        size, content = header(at)
        children.append(element[at : at + size + content])
        at += size + content
    return children
