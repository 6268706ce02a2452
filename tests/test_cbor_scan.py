"""The strict CBOR scan in C (``nitro_attest._native.check_cbor``) against its Python reference.

parse() runs the C scan when the extension is loaded and the Python one
otherwise: they must give the same answer, to the byte, on every input.
Every failure the scan can report is listed below with the input that causes
it and run through both (the ``cbor_scan`` fixture); hypothesis then compares
the two on arbitrary bytes and on mutated real-shaped documents. The rules
themselves, through parse() and verify(), are in test_rules.py and
test_limits.py, which run under both scans too.
"""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nitro_attest import _backend as backend
from nitro_attest import _cbor
from nitro_attest.testing import TestPKI

DEPTH, ITEMS = 4, 1024

# (input, max_depth, max_items) -> (reason, position), or None when well-formed.
CASES: dict[str, tuple[bytes, int, int, tuple[str, int] | None]] = {
    "empty": (b"", DEPTH, ITEMS, ("1 bytes declared but only 0 remain", 0)),
    "argument byte missing": (b"\x18", DEPTH, ITEMS, ("1 bytes declared but only 0 remain", 1)),
    "8 argument bytes, 1 present": (b"\x1b\x00", DEPTH, ITEMS, ("8 bytes declared but only 1 remain", 1)),
    "reserved info 28": (b"\x1c", DEPTH, ITEMS, ("reserved additional information 28", 0)),
    "reserved info 30 in a chunk": (b"\x5f\x5e", DEPTH, ITEMS, ("reserved additional information 30", 1)),
    "indefinite integer": (b"\x1f", DEPTH, ITEMS, ("indefinite-length integer", 0)),
    "indefinite negative integer": (b"\x3f", DEPTH, ITEMS, ("indefinite-length integer", 0)),
    "string longer than the input": (b"\x42\x00", DEPTH, ITEMS, ("2 bytes declared but only 1 remain", 1)),
    "string of 2**64 - 1 bytes": (
        b"\x5b" + b"\xff" * 8,
        DEPTH,
        ITEMS,
        (f"{2**64 - 1} bytes declared but only 0 remain", 9),
    ),
    "indefinite string unterminated": (b"\x5f", DEPTH, ITEMS, ("indefinite-length item not terminated", 1)),
    "text chunk in a byte string": (
        b"\x5f\x60\xff",
        DEPTH,
        ITEMS,
        ("indefinite-length string chunk of the wrong type", 1),
    ),
    "indefinite chunk": (b"\x7f\x7f\xff\xff", DEPTH, ITEMS, ("indefinite-length string chunk of the wrong type", 1)),
    "chunk longer than the input": (b"\x5f\x42\x00", DEPTH, ITEMS, ("2 bytes declared but only 1 remain", 2)),
    "chunked string": (b"\x5f\x41\x00\x40\xff", DEPTH, ITEMS, None),
    "indefinite array": (b"\x9f\x00\xff", DEPTH, ITEMS, None),
    "indefinite array unterminated": (b"\x9f\x00", DEPTH, ITEMS, ("indefinite-length item not terminated", 2)),
    "indefinite map missing a value": (b"\xbf\x00", DEPTH, ITEMS, ("1 bytes declared but only 0 remain", 2)),
    "too deep": (b"\x81\x81\x00", 1, ITEMS, ("nesting deeper than 1", 1)),
    "depth 0 allows no array": (b"\x80", 0, ITEMS, ("nesting deeper than 0", 0)),
    "array count over the input": (
        b"\x9a\xff\xff\xff\xff",
        DEPTH,
        ITEMS,
        ("array of 4294967295 entries exceeds the input", 0),
    ),
    "map count 2**64 - 1": (
        b"\xbb" + b"\xff" * 8,
        DEPTH,
        ITEMS,
        (f"map of {2**64 - 1} entries exceeds the input", 0),
    ),
    "map of 2 entries in 3 bytes": (b"\xa2\x00\x00\x00", DEPTH, ITEMS, ("map of 2 entries exceeds the input", 0)),
    "array as a map key": (b"\xa1\x80\x00", DEPTH, ITEMS, ("map key that is an array", 1)),
    "map as an indefinite map's key": (b"\xbf\xa0\x00\xff", DEPTH, ITEMS, ("map key that is an map", 1)),
    "tag": (b"\xc1\x00", DEPTH, ITEMS, ("CBOR tag 1 is not allowed here", 0)),
    "tag with a 8-byte number": (
        b"\xdb" + b"\x00" * 7 + b"\x12\x00",
        DEPTH,
        ITEMS,
        ("CBOR tag 18 is not allowed here", 0),
    ),
    "tag without a number": (b"\xdf", DEPTH, ITEMS, ("CBOR tag None is not allowed here", 0)),
    "false, true, null": (b"\x83\xf4\xf5\xf6", DEPTH, ITEMS, None),
    "half float": (b"\xf9\x00\x00", DEPTH, ITEMS, ("floating-point value", 0)),
    "double float": (b"\xfb" + b"\x00" * 8, DEPTH, ITEMS, ("floating-point value", 0)),
    "lone break": (b"\xff", DEPTH, ITEMS, ("unexpected 'break'", 0)),
    "undefined": (b"\xf7", DEPTH, ITEMS, ("simple value 23 (only false, true and null are allowed)", 0)),
    "simple value 16": (b"\xf0", DEPTH, ITEMS, ("simple value 16 (only false, true and null are allowed)", 0)),
    "simple value 32": (b"\xf8\x20", DEPTH, ITEMS, ("simple value 32 (only false, true and null are allowed)", 0)),
    "trailing byte": (b"\x00\x00", DEPTH, ITEMS, ("1 trailing bytes", 1)),
    "more items than allowed": (b"\x83\x00\x00\x00", DEPTH, 3, ("more than 3 data items", 0)),
    "exactly the items allowed": (b"\x83\x00\x00\x00", DEPTH, 4, None),
    "indefinite array over the items": (b"\x9f\x00\x00\xff", DEPTH, 2, ("more than 2 data items", 2)),
    "chunks over the items": (b"\x5f\x40\x40\xff", DEPTH, 2, ("more than 2 data items", 2)),
}


@pytest.mark.parametrize("name", CASES)
def test_each_failure_of_the_scan(name: str, cbor_scan: str) -> None:
    data, max_depth, max_items, expected = CASES[name]
    assert _cbor.scan(data, 0, max_depth, max_items) == expected


def test_the_scan_starts_where_it_is_told(cbor_scan: str) -> None:
    assert _cbor.scan(b"\xd2\x80", 1, DEPTH, ITEMS) is None
    assert _cbor.scan(b"\xd2\x80\x00", 1, DEPTH, ITEMS) == ("1 trailing bytes", 2)


def test_a_real_shaped_document_is_well_formed(cbor_scan: str) -> None:
    document = TestPKI.create(seed="scan").document()
    assert _cbor.scan(document, 0, 5, ITEMS) is None
    assert _cbor.scan(cbor2.loads(document)[2], 0, DEPTH, ITEMS) is None


def _native() -> object:
    if backend.NATIVE is None:
        pytest.skip(f"the C scan is not available: native extension {backend.NATIVE_IMPORT_ERROR}")
    return backend.NATIVE.check_cbor


@pytest.mark.parametrize(
    ("start", "max_depth", "max_items"), [(-1, DEPTH, ITEMS), (2, DEPTH, ITEMS), (0, -1, ITEMS), (0, DEPTH, 0)]
)
def test_the_c_scan_refuses_arguments_out_of_range(start: int, max_depth: int, max_items: int) -> None:
    check = _native()
    with pytest.raises(ValueError, match="out of range"):
        check(b"\x00", start, max_depth, max_items)  # type: ignore[operator]


_DOCUMENT = TestPKI.create(seed="scan").document()
_PAYLOAD = cbor2.loads(_DOCUMENT)[2]
# Bytes that decide the scan's branches: heads of every major type and info, breaks, tags.
_INTERESTING = [bytes([b]) for b in (0x00, 0x18, 0x1B, 0x1C, 0x1F, 0x40, 0x5F, 0x7F, 0x80, 0x9F, 0xA1, 0xBF)]
_INTERESTING += [bytes([b]) for b in (0xC1, 0xD2, 0xDF, 0xF4, 0xF7, 0xF8, 0xF9, 0xFB, 0xFF)]


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from([_DOCUMENT, _PAYLOAD, b"\x9f\xbf\x5f\xff\xff\xff"])))
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["set", "insert", "delete", "truncate"]))
        if action == "truncate":
            del data[position:]
        elif action == "delete":
            del data[position : position + draw(st.integers(1, 4))]
        else:
            piece = draw(st.one_of(st.sampled_from(_INTERESTING), st.binary(min_size=1, max_size=9)))
            if action == "set":
                data[position : position + len(piece)] = piece
            else:
                data[position:position] = piece
    return bytes(data)


_INPUTS = st.one_of(
    st.binary(max_size=64), st.lists(st.sampled_from(_INTERESTING), max_size=40).map(b"".join), _mutated()
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_INPUTS, max_depth=st.integers(0, 6), max_items=st.integers(1, 1100), start=st.integers(0, 3))
def test_the_c_scan_answers_as_the_python_one(data: bytes, max_depth: int, max_items: int, start: int) -> None:
    check = _native()
    start = min(start, len(data))
    assert check(data, start, max_depth, max_items) == _cbor.scan_python(data, start, max_depth, max_items)  # type: ignore[operator]
