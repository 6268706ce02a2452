"""The little BER this package handles itself: the wrappers and chunks it writes, one check before reading.

DER cannot express the layout of a KMS ``CiphertextForRecipient`` (the outer
structures have indefinite lengths, the encrypted content is a constructed
string of chunks), and asn1crypto writes DER only. So the definite parts
(OIDs, integers, AlgorithmIdentifiers, RecipientInfos, each chunk) are
encoded by asn1crypto, and this module only joins them: ``identifier 0x80
... 0x00 0x00`` around a body, and a body cut into OCTET STRINGs.

:func:`check_identifiers` is the one thing read here, and only to protect
asn1crypto: its parser builds a tag number octet by octet, in time quadratic
in the number of octets (``0x1f`` and 70 KB of ``0xff`` take seconds), and
it reads every identifier inside an indefinite-length value before anything
can refuse it. So before asn1crypto sees an envelope, a walk over identifier
and length octets alone (no contents are decoded, nothing else is judged)
refuses tag numbers of more than :data:`MAX_TAG_OCTETS` octets.
"""

from __future__ import annotations

from asn1crypto import core  # type: ignore[import-untyped]

__all__ = ["CHUNK_SIZE", "CONTEXT_0", "MAX_TAG_OCTETS", "SEQUENCE", "check_identifiers", "chunked_octets", "indefinite"]

#: The largest OCTET STRING chunk KMS writes in an encryptedContent (and so the one we write).
CHUNK_SIZE = 1000

#: The identifier octet of a constructed SEQUENCE (universal 16).
SEQUENCE = 0x30
#: The identifier octet of ``[0]``, context-specific and constructed.
CONTEXT_0 = 0xA0

#: The most octets a high tag number may take (tags below 2**28); CMS uses no high tag numbers at all.
MAX_TAG_OCTETS = 4

_INDEFINITE_LENGTH = b"\x80"
_END_OF_CONTENTS = b"\x00\x00"


def indefinite(identifier: int, *parts: bytes) -> bytes:
    """A constructed value of ``identifier`` holding ``parts``, with an indefinite length (BER)."""
    return b"".join((bytes((identifier,)), _INDEFINITE_LENGTH, *parts, _END_OF_CONTENTS))


def chunked_octets(data: bytes) -> bytes:
    """``data`` (not empty) as consecutive DER OCTET STRINGs of at most :data:`CHUNK_SIZE` bytes."""
    return b"".join(
        core.OctetString(data[start : start + CHUNK_SIZE]).dump() for start in range(0, len(data), CHUNK_SIZE)
    )


def check_identifiers(data: bytes) -> None:
    """Raise ValueError when the first value in ``data`` has an identifier with a tag number over 4 octets.

    Walks the value's identifier and length octets in linear time: the contents
    of constructed values (and of indefinite-length ones, as asn1crypto scans
    them) are walked, primitive contents skipped. A header that is cut short or
    runs past its enclosing value is refused too (ValueError), since the walk
    cannot say where asn1crypto would read next; asn1crypto refuses those as well.
    """
    # The enclosing values, innermost last: (where the contents must end, whether the length is indefinite).
    enclosing: list[tuple[int, bool]] = []
    pointer = 0
    while True:
        limit = enclosing[-1][0] if enclosing else len(data)
        if enclosing and not enclosing[-1][1] and pointer == limit:
            enclosing.pop()
            if not enclosing:
                return
            continue
        start = pointer
        if pointer >= limit:
            raise ValueError(f"the value at offset {start} is cut short")
        identifier = data[pointer]
        pointer += 1
        if identifier & 0x1F == 0x1F:
            octets = 0
            more = True
            while more:
                if pointer >= limit:
                    raise ValueError(f"the identifier at offset {start} is cut short")
                octets += 1
                if octets > MAX_TAG_OCTETS:
                    raise ValueError(
                        f"the identifier at offset {start} has a tag number of over {MAX_TAG_OCTETS} octets"
                    )
                more = bool(data[pointer] & 0x80)
                pointer += 1
        if pointer >= limit:
            raise ValueError(f"the value at offset {start} has no length")
        length = data[pointer]
        pointer += 1
        if length == _INDEFINITE_LENGTH[0]:
            enclosing.append((limit, True))
            continue
        if length & 0x80:
            count = length & 0x7F
            if pointer + count > limit:
                raise ValueError(f"the length of the value at offset {start} is cut short")
            length = int.from_bytes(data[pointer : pointer + count], "big")
            pointer += count
        if pointer + length > limit:
            raise ValueError(f"the value at offset {start} runs past the end of what holds it")
        if identifier == 0 and length == 0 and enclosing and enclosing[-1][1]:
            enclosing.pop()  # the end-of-contents octets of the innermost indefinite-length value
        elif identifier & 0x20 and length:
            enclosing.append((pointer + length, False))
            continue
        else:
            pointer += length
        if not enclosing:
            return
