"""CRC-32 (zlib's, the EIF's checksum) of two halves computed apart, joined.

zlib has ``crc32_combine`` but Python does not expose it. It is what lets two
threads each checksum half of a chunk while they hash it, instead of one
thread checksumming all of it after its hash (about 15% of a SHA-384 pass).
The CRC is linear over GF(2): the CRC of ``A || B`` is the CRC of ``A``
multiplied by ``x^(8 * len(B))`` modulo the CRC polynomial, plus the CRC of
``B``. Polynomials here are 32-bit words in the CRC's reflected bit order
(bit 31 is x^0).
"""

from __future__ import annotations

import functools

__all__ = ["crc32_combine"]

_POLYNOMIAL = 0xEDB88320  # x^32 + x^26 + ... + 1, reflected, without x^32
_ONE = 1 << 31  # x^0


def _multiply(a: int, b: int) -> int:
    """a(x) * b(x) modulo the CRC polynomial."""
    product = 0
    bit = _ONE
    while a:
        if a & bit:
            product ^= b
            a ^= bit
        bit >>= 1
        b = (b >> 1) ^ _POLYNOMIAL if b & 1 else b >> 1
    return product


def _powers() -> tuple[int, ...]:
    """x^(2^k) modulo the polynomial, for k = 0..63."""
    power = _ONE >> 1  # x^1
    table = []
    for _ in range(64):
        table.append(power)
        power = _multiply(power, power)
    return tuple(table)


_X_TO_2_TO_K = _powers()


@functools.lru_cache(maxsize=8)  # a stream asks for the same few chunk sizes, over and over
def _shift(length: int) -> int:
    """x^(8 * length) modulo the polynomial: appending ``length`` zero bytes."""
    result = _ONE
    bits = length * 8
    k = 0
    while bits:
        if bits & 1:
            result = _multiply(_X_TO_2_TO_K[k], result)
        bits >>= 1
        k += 1
    return result


def crc32_combine(crc_a: int, crc_b: int, length_b: int) -> int:
    """``zlib.crc32(a + b)`` from ``zlib.crc32(a)``, ``zlib.crc32(b)`` and ``len(b)``."""
    return _multiply(_shift(length_b), crc_a) ^ crc_b
