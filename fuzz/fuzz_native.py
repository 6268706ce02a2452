"""Fuzz the native P-384 backend (nitro_attest._native, GNU Nettle) against pyca/cryptography.

Each input is a batch of 1..64 jobs built from valid (key, message,
signature) triples and broken copies of them: points off the curve, with a
coordinate >= p, negated, compressed, of the wrong length or prefix; messages
changed, empty or long; r and s at 0, 1, n - 1, n, n + 1, p, 2^384 - 1,
swapped, twinned, of the wrong length; run on 1..4 workers.

Oracles:

1. ``verify_p384_many(jobs, backend="nettle")`` and ``backend="cryptography"``
   give identical verdicts, whatever the workers;
2. a job made valid (an untouched triple, or its (r, n - s) twin) is True;
3. the extension itself, called directly with the same jobs plus items of
   the wrong shape or type, returns one byte per job, 0 or 1, 0 for every
   malformed item, and never 1 where cryptography says False;
4. the extension's CBOR scan answers as nitro_attest._cbor's Python scan on the raw input (fuzz_parse
   compares them on document-shaped inputs);
5. no crash (run it under AddressSanitizer to see memory errors: fuzz/README.md).

Needs the native backend; without it, running this prints why and exits 0.
Run: ``python fuzz/fuzz_native.py [libFuzzer flags] [corpus dirs]`` or ``python fuzz/run.py native``.
"""

from __future__ import annotations

import importlib
import random
import sys
from collections.abc import Sequence

from _fuzz_common import ByteReader, fuzz_main, require
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from nitro_attest import _backend as backend
from nitro_attest import _cbor
from nitro_attest._backend import P384_ORDER, P384Job, verify_p384_many
from nitro_attest.testing import derive_key

__all__ = ["NATIVE_MISSING", "main", "native_available", "own_seeds", "shared_seeds", "test_one_input"]

_PRIME = 2**384 - 2**128 - 2**96 + 2**32 - 1
_SIZE = 48
_EDGES = (0, 1, 2, P384_ORDER - 1, P384_ORDER, P384_ORDER + 1, P384_ORDER // 2, _PRIME, 2**384 - 1)


def native_available() -> bool:
    return "nettle" in backend.available_backends()


#: Why this harness cannot run, for the skip messages.
NATIVE_MISSING = f"the native (nettle) backend is not available: {backend.NATIVE_IMPORT_ERROR}"


def _triple(label: str, message: bytes) -> tuple[bytes, bytes, bytes]:
    key = derive_key(f"nitro_attest fuzz native/{label}")
    point = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA384(), deterministic_signing=True)))
    return point, message, r.to_bytes(_SIZE, "big") + s.to_bytes(_SIZE, "big")


# Valid jobs the fuzzer starts from: four keys, two messages each.
_VALID = tuple(
    _triple(f"key {key}", message)
    for key in range(4)
    for message in (b"", f"nitro_attest fuzz message {key}".encode() * (key + 1))
)


def _flip(reader: ByteReader, value: bytes) -> bytes:
    if not value:
        return b"\x01"
    at = reader.integer(0, len(value) - 1)
    return value[:at] + bytes([value[at] ^ (1 << reader.integer(0, 7))]) + value[at + 1 :]


def _number(value: int) -> bytes:
    return (value % (1 << 384)).to_bytes(_SIZE, "big")


def _point(reader: ByteReader, point: bytes) -> bytes:  # noqa: PLR0911  (one return per kind)
    kind = reader.integer(0, 9)
    x, y = point[1 : 1 + _SIZE], point[1 + _SIZE :]
    if kind == 0:
        return point
    if kind == 1:
        return reader.pick(_VALID)[0]
    if kind == 2:
        return _flip(reader, point)
    if kind == 3:  # -Q: on the curve, but another key
        return b"\x04" + x + _number(_PRIME - int.from_bytes(y, "big"))
    if kind == 4:
        edge = _number(reader.pick((0, 1, _PRIME, _PRIME + 1, 2**384 - 1)))
        return b"\x04" + (edge + y if reader.boolean() else x + edge)
    if kind == 5:
        return b"\x04" + reader.take(2 * _SIZE).ljust(2 * _SIZE, b"\x00")
    if kind == 6:
        return bytes([reader.pick((0x00, 0x02, 0x03, 0x05, 0x06, 0x07))]) + point[1:]
    if kind == 7:
        return bytes([2 + (point[-1] & 1)]) + x
    if kind == 8:
        length = reader.integer(0, 120)
        return (point * 2)[:length]
    return reader.pick((b"\x00", b"\x04" + bytes(2 * _SIZE), b""))


def _message(reader: ByteReader, message: bytes) -> bytes:
    kind = reader.integer(0, 4)
    if kind == 0:
        return message
    if kind == 1:
        return _flip(reader, message)
    if kind == 2:
        return reader.blob(64)
    if kind == 3:
        return b""
    return (message or b"m") * 4096


def _signature(reader: ByteReader, signature: bytes) -> bytes:  # noqa: PLR0911  (one return per kind)
    kind = reader.integer(0, 9)
    r, s = signature[:_SIZE], signature[_SIZE:]
    if kind == 0:
        return signature
    if kind == 1:  # (r, n - s): valid too
        return r + _number(P384_ORDER - int.from_bytes(s, "big"))
    if kind == 2:
        return _number(reader.pick(_EDGES)) + s
    if kind == 3:
        return r + _number(reader.pick(_EDGES))
    if kind == 4:
        return _number(reader.pick(_EDGES)) + _number(reader.pick(_EDGES))
    if kind == 5:
        return _flip(reader, signature)
    if kind == 6:
        return reader.take(2 * _SIZE).ljust(2 * _SIZE, b"\x00")
    if kind == 7:
        return (signature * 2)[: reader.integer(0, 2 * 2 * _SIZE)]
    if kind == 8:
        return s + r
    # r + n and s + n: the same values modulo n, one of them out of range
    return _number(int.from_bytes(r, "big") + P384_ORDER) + _number(int.from_bytes(s, "big") + P384_ORDER)


_JOB_COUNTS = (1, 2, 3, 4, 5, 8, 16, 64)
# Items the extension must answer 0 for (never raise, never crash): wrong arity, types and lengths.
_MALFORMED: tuple[object, ...] = (
    None,
    (),
    (b"", b""),
    [b"\x04" + bytes(96), b"", bytes(96)],
    (bytearray(b"\x04" + bytes(96)), b"", bytes(96)),
    (b"\x04" + bytes(96), "message", bytes(96)),
    (b"\x04" + bytes(96), b"", memoryview(bytes(96))),
    (b"\x04" + bytes(96), b"", bytes(96), b""),
    (b"\x04" + bytes(95), b"", bytes(96)),
    (b"\x04" + bytes(96), b"", bytes(97)),
)


def _raw_native(jobs: Sequence[P384Job], reader: ByteReader, workers: int, reference: Sequence[bool]) -> None:
    """Oracle 3: the extension's own answers, on the jobs and on malformed items (whose answer is None)."""
    native = importlib.import_module("nitro_attest._native")
    entries: list[tuple[object, bool | None]] = [
        ((job.public_key, job.message, job.signature), answer) for job, answer in zip(jobs, reference, strict=True)
    ]
    for _ in range(reader.integer(0, 3)):
        entries.insert(reader.integer(0, len(entries)), (reader.pick(_MALFORMED), None))
    verdicts = native.verify_p384_many([item for item, _ in entries], workers)
    require(isinstance(verdicts, bytes) and len(verdicts) == len(entries), "the extension's result has the wrong shape")
    for index, ((item, answer), verdict) in enumerate(zip(entries, verdicts, strict=True)):
        require(verdict in (0, 1), f"item {index}: the extension returned verdict byte {verdict}")
        if answer is None:
            require(verdict == 0, f"item {index} is malformed ({item!r:.80}) yet the extension said 1")
        else:
            # nettle 3.8 also rejects one rare kind of valid signature (_backend.py asks OpenSSL
            # again about every rejection): only a nettle "valid" must agree with OpenSSL here.
            require(not verdict or answer, f"item {index}: nettle says valid, cryptography says not")


def test_one_input(data: bytes) -> None:
    if not native_available():
        raise RuntimeError(NATIVE_MISSING)
    for max_depth, max_items in ((_cbor.MAX_PAYLOAD_DEPTH, _cbor.MAX_ITEMS), (2, 8)):
        native = backend.NATIVE.check_cbor(data, 0, max_depth, max_items)  # type: ignore[union-attr]
        python = _cbor.scan_python(data, 0, max_depth, max_items)
        require(native == python, f"oracle 4: the C CBOR scan says {native}, the Python scan {python}")
    reader = ByteReader(data)
    workers = reader.integer(1, 4)
    jobs: list[P384Job] = []
    valid: list[bool] = []
    for _ in range(reader.pick(_JOB_COUNTS)):
        point, message, signature = reader.pick(_VALID)
        job = P384Job(_point(reader, point), _message(reader, message), _signature(reader, signature))
        jobs.append(job)
        twin = signature[:_SIZE] + _number(P384_ORDER - int.from_bytes(signature[_SIZE:], "big"))
        valid.append(job.public_key == point and job.message == message and job.signature in (signature, twin))

    nettle = verify_p384_many(jobs, workers=workers, backend="nettle")
    reference = verify_p384_many(jobs, workers=workers, backend="cryptography")
    for index, (fast, slow, made_valid) in enumerate(zip(nettle, reference, valid, strict=True)):
        require(fast == slow, f"job {index} {jobs[index]!r:.200}: nettle {fast}, cryptography {slow}")
        require(slow or not made_valid, f"job {index} is a valid signature, yet rejected")
    # Every verification runs again in the direct call: only a quarter of the inputs pay for it.
    if reader.integer(0, 3) == 3:
        _raw_native(jobs, reader, workers, reference)


def own_seeds() -> list[tuple[str, bytes]]:
    """Each point, message and signature kind alone on a valid job, then random mixes (deterministic)."""
    seeds: list[tuple[str, bytes]] = [("valid-one", b"\x00\x00\x00"), ("valid-64-on-4", bytes([3, 7]))]
    # Per job: which valid triple, then the point, message and signature kinds.
    for kind in range(10):
        seeds.append((f"point-{kind}", bytes([0, 0, 0, kind, 0, 0, 0, 0])))
        seeds.append((f"signature-{kind}", bytes([1, 0, 1, 0, 0, kind, 3, 1])))
    for kind in range(5):
        seeds.append((f"message-{kind}", bytes([0, 0, 2, 0, kind, 1, 7, 0])))
    generator = random.Random("nitro_attest fuzz native")  # noqa: S311  (reproducible seeds, not secrets)
    seeds += [(f"mix-{index}", generator.randbytes(generator.randint(8, 256))) for index in range(32)]
    return seeds


def shared_seeds() -> list[tuple[str, bytes]]:
    """None: the native harness's inputs are job lists, nothing in ../shared is one."""
    return []


def main() -> None:
    if not native_available():
        print(f"fuzz_native: SKIPPED: {NATIVE_MISSING}", file=sys.stderr)
        return
    fuzz_main(test_one_input)


if __name__ == "__main__":
    main()
