"""The little BER this package writes itself: indefinite-length wrappers and chunked OCTET STRINGs.

DER cannot express the layout of a KMS ``CiphertextForRecipient`` (the outer
structures have indefinite lengths, the encrypted content is a constructed
string of chunks), and asn1crypto writes DER only. So the definite parts
(OIDs, integers, AlgorithmIdentifiers, RecipientInfos, each chunk) are
encoded by asn1crypto, and this module only joins them: ``identifier 0x80
... 0x00 0x00`` around a body, and a body cut into OCTET STRINGs.
"""

from __future__ import annotations

from asn1crypto import core  # type: ignore[import-untyped]

__all__ = ["CHUNK_SIZE", "CONTEXT_0", "SEQUENCE", "chunked_octets", "indefinite"]

#: The largest OCTET STRING chunk KMS writes in an encryptedContent (and so the one we write).
CHUNK_SIZE = 1000

#: The identifier octet of a constructed SEQUENCE (universal 16).
SEQUENCE = 0x30
#: The identifier octet of ``[0]``, context-specific and constructed.
CONTEXT_0 = 0xA0

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
