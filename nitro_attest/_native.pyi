# Typed stub for the optional C extension (nitro_attest/_native.c), built when
# the nettle headers are present; nitro_attest._backend loads it when it exists.
from collections.abc import Sequence

#: The most threads verify_p384_many runs on.
MAX_WORKERS: int
#: The nettle version the extension was built against ("major.minor").
NETTLE_VERSION: str

def verify_p384_many(jobs: Sequence[tuple[bytes, bytes, bytes]], workers: int, /) -> bytes:
    """One byte per ``(public_key, message, signature)`` job: 1 when the ECDSA P-384/SHA-384 signature is valid.

    ``public_key`` is the 97-byte uncompressed SEC1 point, ``signature`` ``r || s`` (96 bytes); runs on
    ``workers`` threads with the GIL released.
    """

def check_cbor(data: bytes, start: int, max_depth: int, max_items: int, /) -> tuple[str, int] | None:
    """nitro_attest._cbor's strict CBOR well-formedness scan of ``data[start:]``, in C.

    None when it is one well-formed item under the decoding profile, else the reason and the byte offset.
    """

class _Pending:
    """A started :func:`start_p384_many` call (a capsule): pass it to :func:`finish_p384_many`, once."""

def start_p384_many(jobs: Sequence[tuple[bytes, bytes, bytes]], workers: int, /) -> _Pending:
    """:func:`verify_p384_many`'s jobs, copied and started on ``workers`` threads; returns at once."""

def finish_p384_many(pending: _Pending, /) -> bytes:
    """The verdicts of a :func:`start_p384_many` call (the caller helps, GIL released); ValueError when called twice."""
