"""Fuzz nitro_attest.parse(): any bytes give a document or a MalformedDocument/CertificateInvalid, nothing else.

Oracles:

- parse() raises only MalformedDocument, or CertificateInvalid with code
  ``certificate`` (it checks no signature, chain or time, so no other code);
- a document it accepts means the same to plain cbor2: envelope parts,
  protected header ``{1: -35}``, every payload field (a parser differential);
- the accepted document's public surface (repr, PCR values, is_debug) works;
- the C CBOR scan (when the extension is loaded) answers as the Python one, at the envelope's and the
  payload's depth (tests/test_cbor_scan.py holds the same on its own inputs).

Run: ``python fuzz/fuzz_parse.py [libFuzzer flags] [corpus dirs]`` or ``python fuzz/run.py parse``.
"""

from __future__ import annotations

from _fuzz_common import check_decoding, fuzz_main, generated_documents, repo_vectors, require, shared_vectors

import nitro_attest
from nitro_attest import CertificateInvalid, MalformedDocument, _cbor
from nitro_attest import _backend as backend

__all__ = ["main", "own_seeds", "shared_seeds", "test_one_input"]


def _same_scans(data: bytes) -> None:
    if backend.NATIVE is None:
        return
    for max_depth in (_cbor.MAX_PAYLOAD_DEPTH, _cbor.MAX_PAYLOAD_DEPTH + 1):
        native = backend.NATIVE.check_cbor(data, 0, max_depth, _cbor.MAX_ITEMS)
        python = _cbor.scan_python(data, 0, max_depth, _cbor.MAX_ITEMS)
        require(native == python, f"the C scan says {native}, the Python scan {python} (depth {max_depth})")


def test_one_input(data: bytes) -> None:
    _same_scans(data)
    try:
        document = nitro_attest.parse(data)
    except MalformedDocument:
        return
    except CertificateInvalid as error:
        require(error.code == "certificate", f"parse() checked a chain or a time: {error!r}")
        return
    check_decoding(data, document)
    repr(document)
    for index, value in document.pcrs.items():
        require(value.index == index and len(value.hex()) == 96, f"PCR{index} is not a 48-byte value")
    require(document.is_debug == (0 in document.pcrs and document.pcrs[0].is_zero), "is_debug disagrees with PCR0")


def own_seeds() -> list[tuple[str, bytes]]:
    """Seeds from this repository: the recorded vectors and documents made now by the test PKI."""
    return [*repo_vectors(), *generated_documents()]


def shared_seeds() -> list[tuple[str, bytes]]:
    """Seeds from ../shared (real AWS documents among them); [] when it is absent."""
    return shared_vectors()


def main() -> None:
    fuzz_main(test_one_input)


if __name__ == "__main__":
    main()
