"""Strict, bounded CBOR decoding of untrusted attestation bytes.

cbor2 builds the values, but first :func:`_check_well_formed` walks the raw
bytes once (RFC 8949 appendix C) and enforces the profile of DESIGN.md
section 2: no tags (but one outer COSE tag 18), no floats, no simple values
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

from .errors import MalformedDocument

__all__ = ["MAX_DOCUMENT_SIZE", "MAX_PAYLOAD_DEPTH", "MAX_PAYLOAD_SIZE", "Sign1", "decode_envelope", "decode_item"]

MAX_DOCUMENT_SIZE = 32 * 1024
MAX_PAYLOAD_SIZE = 16 * 1024
# Nesting inside the payload: the payload map, then pcrs/cabundle, then room
# for unknown future fields; deeper is not a Nitro document.
MAX_PAYLOAD_DEPTH = 4

_COSE_SIGN1_TAG = 18

_FALSE, _TRUE, _NULL = 20, 21, 22
_BREAK = 0xFF


class _Scan:
    """Cursor over bytes being checked for well-formedness."""

    __slots__ = ("data", "max_depth", "pos", "what")

    def __init__(self, data: bytes, pos: int, max_depth: int, what: str) -> None:
        self.data = data
        self.pos = pos
        self.max_depth = max_depth
        self.what = what

    def fail(self, reason: str) -> MalformedDocument:
        return MalformedDocument("cbor", f"{self.what}: {reason} at byte {self.pos}")

    def take(self, n: int) -> int:
        """Advances past ``n`` bytes that must be present; returns the old position."""
        start = self.pos
        if n > len(self.data) - start:
            raise self.fail(f"{n} bytes declared but only {len(self.data) - start} remain")
        self.pos = start + n
        return start

    def head(self) -> tuple[int, int, int | None]:
        """Reads an initial byte and its argument: (major type, info, argument or None if indefinite)."""
        initial = self.data[self.take(1)]
        major, info = initial >> 5, initial & 0x1F
        if info < 24:
            return major, info, info
        if info <= 27:
            size = 1 << (info - 24)
            start = self.take(size)
            return major, info, int.from_bytes(self.data[start : start + size], "big")
        if info == 31:
            return major, info, None
        self.pos -= 1
        raise self.fail(f"reserved additional information {info}")

    def item(self, depth: int) -> None:
        """Checks one complete data item (and everything nested in it)."""
        start = self.pos
        major, info, arg = self.head()
        if major in (0, 1):
            if arg is None:
                self.pos = start
                raise self.fail("indefinite-length integer")
        elif major in (2, 3):
            if arg is None:
                self._chunks(major)
            else:
                self.take(arg)
        elif major in (4, 5):
            if depth >= self.max_depth:
                self.pos = start
                raise self.fail(f"nesting deeper than {self.max_depth}")
            per_entry = 1 if major == 4 else 2
            if arg is None:
                while not self._at_break():
                    for _ in range(per_entry):
                        self.item(depth + 1)
                self.pos += 1
            else:
                # Every item takes at least one byte: a count the input cannot
                # hold is rejected before anything is allocated for it.
                if arg * per_entry > len(self.data) - self.pos:
                    self.pos = start
                    raise self.fail(f"{'array' if major == 4 else 'map'} of {arg} entries exceeds the input")
                for _ in range(arg * per_entry):
                    self.item(depth + 1)
        elif major == 6:
            self.pos = start
            raise self.fail(f"CBOR tag {arg} is not allowed here")
        elif info not in (_FALSE, _TRUE, _NULL):
            self.pos = start
            if info in (25, 26, 27):
                raise self.fail("floating-point value")
            if info == 31:
                raise self.fail("unexpected 'break'")
            raise self.fail(f"simple value {arg} (only false, true and null are allowed)")

    def _at_break(self) -> bool:
        if self.pos >= len(self.data):
            raise self.fail("indefinite-length item not terminated")
        return self.data[self.pos] == _BREAK

    def _chunks(self, major: int) -> None:
        while not self._at_break():
            start = self.pos
            chunk_major, _, length = self.head()
            if chunk_major != major or length is None:
                self.pos = start
                raise self.fail("indefinite-length string chunk of the wrong type")
            self.take(length)
        self.pos += 1


def _check_well_formed(data: bytes, start: int, max_depth: int, what: str) -> None:
    scan = _Scan(data, start, max_depth, what)
    scan.item(0)
    if scan.pos != len(data):
        raise scan.fail(f"{len(data) - scan.pos} trailing bytes")


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

    tagged: bool
    protected: bytes
    payload: bytes
    signature: bytes


_ES384_SIGNATURE_SIZE = 96
_ENVELOPE_DEPTH = 1 + MAX_PAYLOAD_DEPTH


def decode_envelope(data: bytes) -> Sign1:
    """Decodes the outer COSE_Sign1 item and checks it is exactly Nitro's shape.

    The only tag accepted anywhere is a single COSE_Sign1 tag (18) around the
    whole document. The header rules are Nitro's, stricter than COSE's: the
    algorithm must be ES384 as the integer -35 in the protected header, with
    no other parameter (``crit`` included) and an empty unprotected header.
    """
    if len(data) > MAX_DOCUMENT_SIZE:
        raise MalformedDocument("size", f"document is {len(data)} bytes; the limit is {MAX_DOCUMENT_SIZE}")
    if not data:
        raise MalformedDocument("cbor", "document is empty")
    tagged = False
    start = 0
    if data[0] >> 5 == 6:
        scan = _Scan(data, 0, 0, "document")
        _, _, tag = scan.head()
        if tag != _COSE_SIGN1_TAG:
            raise MalformedDocument("cbor", f"document: CBOR tag {tag} is not allowed (only COSE_Sign1, 18)")
        tagged, start = True, scan.pos
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
    header = decode_item(protected, max_depth=2, what="protected header")
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
    return Sign1(tagged, protected, payload, signature)
