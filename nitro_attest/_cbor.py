"""Strict, bounded CBOR decoding of untrusted attestation bytes.

cbor2 builds the values, but first :func:`_check_well_formed` walks the raw
bytes once (RFC 8949 appendix C) and enforces the decoding profile
(docs/concepts.md, "What verify() checks, in order"): no tags (but one outer COSE tag 18), no floats, no simple values
other than false/true/null, bounded nesting, no trailing bytes, and every
declared length backed by input. Only then does cbor2 see the bytes, so none
of its semantic tag decoders (dates, MIME, regexes, shared references) can
ever run on attacker input, and no length can make it allocate more than the
input's size. cbor2 itself rejects duplicate map keys and invalid UTF-8.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cbor2

from . import _backend
from .errors import MalformedDocument

__all__ = [
    "MAX_DOCUMENT_SIZE",
    "MAX_ITEMS",
    "MAX_PAYLOAD_DEPTH",
    "MAX_PAYLOAD_SIZE",
    "Sign1",
    "decode_envelope",
    "decode_item",
    "size_error",
]

MAX_DOCUMENT_SIZE = 32 * 1024
MAX_PAYLOAD_SIZE = 16 * 1024
# Nesting inside the payload: the payload map, then pcrs/cabundle, then room
# for unknown future fields; deeper is not a Nitro document.
MAX_PAYLOAD_DEPTH = 4
# Data items (string chunks included) in one decoded item: the envelope, the
# payload or the protected header. The scan costs ~1 us per item in Python, so
# 32 KiB of one-byte items would cost ~30 ms before any signature is checked;
# a payload with every field at its limit (32 PCRs, 8 bundle certificates) has
# ~100, the 64 real AWS documents we test against at most 57 (and 5 in the envelope).
MAX_ITEMS = 1024

_COSE_SIGN1_TAG = 18

_FALSE, _TRUE, _NULL = 20, 21, 22
_BREAK = 0xFF


class _Malformed(Exception):
    """A well-formedness failure: its reason and byte offset (MalformedDocument adds where)."""

    def __init__(self, reason: str, position: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.position = position


def _head(data: bytes, pos: int) -> tuple[int, int, int | None, int]:
    """The initial byte at ``pos``: (major type, info, argument or None if indefinite, next position)."""
    if pos >= len(data):
        raise _Malformed("1 bytes declared but only 0 remain", pos)
    initial = data[pos]
    major, info = initial >> 5, initial & 0x1F
    if info < 24:
        return major, info, info, pos + 1
    if info <= 27:
        size = 1 << (info - 24)
        if pos + 1 + size > len(data):
            raise _Malformed(f"{size} bytes declared but only {len(data) - pos - 1} remain", pos + 1)
        return major, info, int.from_bytes(data[pos + 1 : pos + 1 + size], "big"), pos + 1 + size
    if info == 31:
        return major, info, None, pos + 1
    raise _Malformed(f"reserved additional information {info}", pos)


def _leaf_end(data: bytes, pos: int) -> int:
    """Where a small integer or a definite string at ``pos`` ends; -1 for anything else.

    The fast path for the leaves that make up nearly all of a document: it
    accepts only what _item accepts too, and leaves everything else (errors
    included) to _item.
    """
    if pos >= len(data):
        return -1
    initial = data[pos]
    kind, info = initial >> 5, initial & 0x1F
    if kind > 3 or info > 25:
        return -1
    if info < 24:
        size, length = 0, info
    else:
        size = info - 23  # 1 or 2 argument bytes
        length = int.from_bytes(data[pos + 1 : pos + 1 + size], "big")
    end = pos + 1 + size + (length if kind >= 2 else 0)
    return end if pos + 1 + size <= len(data) and end <= len(data) else -1


class _Budget:
    """How many more data items a scan may visit (see MAX_ITEMS)."""

    __slots__ = ("items", "left")

    def __init__(self, items: int) -> None:
        self.items = self.left = items

    def spend(self, items: int, pos: int) -> None:
        self.left -= items
        if self.left < 0:
            raise _Malformed(f"more than {self.items} data items", pos)


# Arrays and maps as map keys are refused in the scan, before cbor2 hashes
# them: cbor2 turns them into tuples and frozendicts, whose hashes can be made
# to collide on demand, so a map of such keys takes quadratic time to build.
# Nitro's maps use integer and text keys; other scalar keys hash cheaply and
# are left to the schema (an unknown field may hold them).
_COLLIDING_KEY_TYPES = frozenset({4, 5})


def _item(data: bytes, pos: int, depth: int, max_depth: int, budget: _Budget) -> int:
    """Checks one complete data item (and everything nested in it) at ``pos``; returns the position after it.

    ``budget`` is charged for the items inside this one (the caller paid for this one).
    """
    major, info, arg, after = _head(data, pos)
    if major <= 1:  # unsigned and negative integers
        if arg is None:
            raise _Malformed("indefinite-length integer", pos)
        return after
    if major <= 3:  # byte and text strings
        if arg is not None:
            if arg > len(data) - after:
                raise _Malformed(f"{arg} bytes declared but only {len(data) - after} remain", after)
            return after + arg
        while True:  # indefinite length: definite chunks of the same type, then a break
            if after >= len(data):
                raise _Malformed("indefinite-length item not terminated", after)
            if data[after] == _BREAK:
                return after + 1
            budget.spend(1, after)
            chunk_major, _, length, chunk_after = _head(data, after)
            if chunk_major != major or length is None:
                raise _Malformed("indefinite-length string chunk of the wrong type", after)
            if length > len(data) - chunk_after:
                raise _Malformed(f"{length} bytes declared but only {len(data) - chunk_after} remain", chunk_after)
            after = chunk_after + length
    if major <= 5:  # arrays and maps
        if depth >= max_depth:
            raise _Malformed(f"nesting deeper than {max_depth}", pos)
        per_entry = 1 if major == 4 else 2
        if arg is None:
            while True:
                if after >= len(data):
                    raise _Malformed("indefinite-length item not terminated", after)
                if data[after] == _BREAK:
                    return after + 1
                budget.spend(per_entry, after)
                if major == 5 and data[after] >> 5 in _COLLIDING_KEY_TYPES:
                    raise _colliding_key(data, after)
                for _ in range(per_entry):
                    after = _item(data, after, depth + 1, max_depth, budget)
        # Every item takes at least one byte: a count the input cannot hold
        # is rejected before anything is allocated for it.
        if arg * per_entry > len(data) - after:
            raise _Malformed(f"{'array' if major == 4 else 'map'} of {arg} entries exceeds the input", pos)
        budget.spend(arg * per_entry, pos)
        for index in range(arg * per_entry):
            if major == 5 and not index & 1 and after < len(data) and data[after] >> 5 in _COLLIDING_KEY_TYPES:
                raise _colliding_key(data, after)
            following = _leaf_end(data, after)
            after = following if following >= 0 else _item(data, after, depth + 1, max_depth, budget)
        return after
    if major == 6:
        raise _Malformed(f"CBOR tag {arg} is not allowed here", pos)
    if info in (_FALSE, _TRUE, _NULL):
        return after
    if info in (25, 26, 27):
        raise _Malformed("floating-point value", pos)
    if info == 31:
        raise _Malformed("unexpected 'break'", pos)
    raise _Malformed(f"simple value {arg} (only false, true and null are allowed)", pos)


def _colliding_key(data: bytes, pos: int) -> _Malformed:
    return _Malformed(f"map key that is an {'array' if data[pos] >> 5 == 4 else 'map'}", pos)


def scan_python(data: bytes, start: int, max_depth: int, max_items: int) -> tuple[str, int] | None:
    """The well-formedness scan of ``data[start:]``: None, or why not and at which byte.

    The reference: ``check_cbor`` of :mod:`nitro_attest._native` is this
    function in C (the same checks in the same order, the same messages), used
    when the extension is loaded; tests/test_cbor_scan.py holds them equal.
    """
    try:
        budget = _Budget(max_items)
        budget.spend(1, start)
        end = _item(data, start, 0, max_depth, budget)
        if end != len(data):
            raise _Malformed(f"{len(data) - end} trailing bytes", end)
    except _Malformed as failure:
        return failure.reason, failure.position
    return None


#: The scan :func:`_check_well_formed` runs: the C one when the extension is loaded (a payload's scan
#: is most of parse() in Python, ~80 us, and ~2 us in C), else :func:`scan_python`.
scan = scan_python if _backend.NATIVE is None else _backend.NATIVE.check_cbor


def _check_well_formed(data: bytes, start: int, max_depth: int, what: str) -> None:
    failure = scan(data, start, max_depth, MAX_ITEMS)
    if failure is not None:
        reason, position = failure
        raise MalformedDocument("cbor", f"{what}: {reason} at byte {position}")


def _loads(data: bytes, max_depth: int, what: str) -> Any:
    try:
        return cbor2.loads(data, allow_duplicate_keys=False, max_depth=max_depth + 1)
    except cbor2.CBORDecodeError as exc:
        # The scan has already ruled out tags, floats and bad lengths; what is
        # left for cbor2 to find is a duplicate map key or invalid UTF-8.
        raise MalformedDocument("cbor", f"{what}: {exc}") from None


def decode_item(data: bytes, *, max_depth: int, what: str) -> Any:
    """Decodes one tag-free CBOR item that must span all of ``data``."""
    _check_well_formed(data, 0, max_depth, what)
    return _loads(data, max_depth, what)


@dataclass(frozen=True)
class Sign1:
    """The four parts of a COSE_Sign1 envelope, as received (RFC 9052 section 4.2)."""

    protected: bytes
    payload: bytes
    signature: bytes


_ES384_SIGNATURE_SIZE = 96
_NITRO_PROTECTED = bytes.fromhex("a1013822")  # {1: -35}
_ENVELOPE_DEPTH = 1 + MAX_PAYLOAD_DEPTH


def size_error(size: int) -> MalformedDocument:
    """The error for a document of ``size`` bytes, over :data:`MAX_DOCUMENT_SIZE`."""
    return MalformedDocument("size", f"document is {size} bytes; the limit is {MAX_DOCUMENT_SIZE}")


def decode_envelope(data: bytes) -> Sign1:
    """Decodes the outer COSE_Sign1 item and checks it is exactly Nitro's shape.

    The only tag accepted anywhere is a single COSE_Sign1 tag (18) around the
    whole document. The header rules are Nitro's, stricter than COSE's: the
    algorithm must be ES384 as the integer -35 in the protected header, with
    no other parameter (``crit`` included) and an empty unprotected header.
    """
    if len(data) > MAX_DOCUMENT_SIZE:
        raise size_error(len(data))
    if not data:
        raise MalformedDocument("cbor", "document is empty")
    start = 0
    if data[0] >> 5 == 6:
        try:
            _, _, tag, start = _head(data, 0)
        except _Malformed as failure:
            raise MalformedDocument("cbor", f"document: {failure.reason} at byte {failure.position}") from None
        if tag != _COSE_SIGN1_TAG:
            raise MalformedDocument("cbor", f"document: CBOR tag {tag} is not allowed (only COSE_Sign1, 18)")
    # Room for the envelope array plus a payload map wrongly placed inline,
    # so that mistake is named as a cose error; deeper is only cost.
    _check_well_formed(data, start, _ENVELOPE_DEPTH, "document")
    envelope = _loads(data[start:], _ENVELOPE_DEPTH, "document")

    if not isinstance(envelope, list) or len(envelope) != 4:
        raise MalformedDocument("cose", "document is not a COSE_Sign1 array of 4 elements")
    protected, unprotected, payload, signature = envelope
    if not isinstance(protected, bytes):
        raise MalformedDocument("cose", "protected header is not a byte string")
    if not protected:
        # COSE's encoding of "no protected parameters": no algorithm is bound to the signature.
        raise MalformedDocument("cose", "protected header is empty: it must be {1: -35} (alg ES384)")
    # Depth 2 lets a nested parameter (crit: [...]) be named in a cose error rather than a cbor one.
    # Every Nitro document carries exactly these 4 bytes; anything else is decoded and judged.
    header = {1: -35} if protected == _NITRO_PROTECTED else decode_item(protected, max_depth=2, what="protected header")
    # type() rather than isinstance(): CBOR true would pass as the integer 1.
    if (
        not isinstance(header, dict)
        or [type(k) for k in header] != [int]
        or 1 not in header
        or type(header[1]) is not int
    ):
        raise MalformedDocument("cose", f"protected header must be exactly {{1: -35}} (alg ES384), got {header!r}")
    if header[1] != -35:
        raise MalformedDocument("cose", f"algorithm {header[1]} is not ES384 (-35)")
    if unprotected != {}:
        raise MalformedDocument("cose", f"unprotected header must be an empty map, got {unprotected!r}")
    if not isinstance(payload, bytes):
        raise MalformedDocument("cose", "payload is not a byte string (detached or null payloads are not Nitro's)")
    if len(payload) > MAX_PAYLOAD_SIZE:
        raise MalformedDocument("size", f"payload is {len(payload)} bytes; the limit is {MAX_PAYLOAD_SIZE}")
    if not isinstance(signature, bytes) or len(signature) != _ES384_SIGNATURE_SIZE:
        got = f"{len(signature)} bytes" if isinstance(signature, bytes) else type(signature).__name__
        raise MalformedDocument("cose", f"signature must be {_ES384_SIGNATURE_SIZE} bytes (ES384 r || s), got {got}")
    return Sign1(protected, payload, signature)
