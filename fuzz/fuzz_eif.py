"""Fuzz nitro_attest.eif.describe(): mutated EIF headers and signature sections give a description or an EifError.

An input is a list of choices (``_fuzz_common.ByteReader``): one of the base
images (unsigned; signed ES256, ES384, ES512; signed over another PCR0 or with
another key; version 3; aarch64), whether to edit the header or the signature
section, then up to four byte mutations there (``mutate_bytes``), strict or not,
and whether the image is read from a stream of unknown size or a sized one.

Oracles:

- describe() raises only EifError (with one of its codes), in both modes;
- an accepted image's PCRs are those of the plain-hashlib reading of the bytes
  (a differential against the format's description), PCR8 only when signed;
- strict=True accepts nothing that strict=False refuses, and agrees on the PCRs.

Run: ``python fuzz/fuzz_eif.py [libFuzzer flags] [corpus dirs]``.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable

from _fuzz_common import ByteReader, fuzz_main, mutate_bytes, require
from cryptography.hazmat.primitives.asymmetric import ec

from nitro_attest.eif import HEADER_SIZE, EifDescription, EifError, EifSectionType, describe
from nitro_attest.eif._build import build_eif
from nitro_attest.testing import derive_key, issue_certificate

__all__ = ["BASES", "main", "own_seeds", "test_one_input"]

_ZERO = bytes(48)


def _signer(curve: ec.EllipticCurve) -> dict[str, object]:
    from datetime import datetime, timezone  # noqa: PLC0415

    from cryptography import x509  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    key = ec.derive_private_key(123456789 + curve.key_size, curve)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"fuzz {curve.name}")])
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    certificate = issue_certificate(
        name,
        key.public_key(),
        issuer=name,
        signing_key=key,
        serial=7,
        not_before=start,
        not_after=start.replace(year=2027),
        extensions=[],
    )
    return {"signing_certificate": certificate, "signing_key": key}


def _image(**options: object) -> bytes:
    out = io.BytesIO()
    build_eif(out, **options)  # type: ignore[arg-type]
    return out.getvalue()


def _bases() -> list[bytes]:
    p384 = _signer(ec.SECP384R1())
    return [
        _image(),
        _image(**_signer(ec.SECP256R1())),
        _image(**p384),
        _image(**_signer(ec.SECP521R1())),
        _image(**p384, signed_pcr0=bytes(range(48))),
        _image(signing_certificate=p384["signing_certificate"], signing_key=derive_key("fuzz other key")),
        _image(version=3, ramdisks=[b"a", b"", b"c"]),
        _image(architecture="aarch64", cmdline=""),
    ]


BASES = _bases()


def _spec_pcrs(data: bytes) -> dict[int, bytes]:
    """PCR0-2 of the sections as nitro-cli reads them (sections one after the other from byte 548)."""
    hashes = [hashlib.sha384(), hashlib.sha384(), hashlib.sha384()]
    position, ramdisks = HEADER_SIZE, 0
    while position < len(data):
        kind = int.from_bytes(data[position : position + 2], "big")
        size = int.from_bytes(data[position + 4 : position + 12], "big")
        content = data[position + 12 : position + 12 + size]
        position += 12 + size
        targets: tuple[int, ...] = ()
        if kind in (1, 2) or (kind == 3 and ramdisks == 0):
            targets = (0, 1)
        elif kind == 3:
            targets = (0, 2)
        for target in targets:
            hashes[target].update(content)
        ramdisks += kind == 3
    return {index: hashlib.sha384(_ZERO + digest.digest()).digest() for index, digest in enumerate(hashes)}


def _describe(data: bytes, *, strict: bool, sized: bool) -> EifDescription | EifError:
    source: io.BytesIO | io.BufferedReader = io.BytesIO(data)
    if sized:  # a file object with a size: the "section past the end" checks run before reading
        import tempfile  # noqa: PLC0415

        handle = tempfile.TemporaryFile()  # noqa: SIM115 (closed below)
        handle.write(data)
        handle.seek(0)
        source = handle  # type: ignore[assignment]
    try:
        return describe(source, strict=strict)
    except EifError as error:
        require(error.code in EifError.codes, f"unknown code {error.code!r}")
        return error
    finally:
        source.close()


def test_one_input(data: bytes) -> None:
    reader = ByteReader(data)
    image = reader.pick(BASES)
    edit_signature = reader.boolean()
    sized = reader.boolean()
    if edit_signature and image[HEADER_SIZE:].find(b"\x00\x04\x00\x00") >= 0:
        start = HEADER_SIZE + image[HEADER_SIZE:].rfind(b"\x00\x04\x00\x00")
        region: Callable[[bytes], tuple[int, int]] = lambda blob: (start, len(blob))  # noqa: E731
    else:
        region = lambda blob: (0, HEADER_SIZE + 24)  # noqa: E731 (the header and the kernel's section header)
    low, high = region(image)
    part = image[low:high]
    for _ in range(reader.integer(1, 4)):
        part = mutate_bytes(reader, part)
    mutated = image[:low] + part + image[high:]
    lenient = _describe(mutated, strict=False, sized=sized)
    strict = _describe(mutated, strict=True, sized=sized)
    if isinstance(lenient, EifError):
        require(isinstance(strict, EifError), f"strict accepts what lenient refuses ({lenient!r})")
        return
    expected = _spec_pcrs(mutated)
    for index in (0, 1, 2):
        require(lenient.pcrs[index] == expected[index], f"PCR{index} differs from the spec's reading")
    signed = any(section.type is EifSectionType.SIGNATURE for section in lenient.sections)
    require((8 in lenient.pcrs) == signed == lenient.is_signed, "PCR8 without a signature section, or the reverse")
    if isinstance(strict, EifDescription):
        require(strict.pcrs == lenient.pcrs, "strict and lenient disagree on the PCRs")
    lenient.describe_eif_json()


def own_seeds() -> list[tuple[str, bytes]]:
    """One input per base image, region (header or signature) and source (stream or sized file)."""
    return [
        (
            f"base{index}-{'signature' if part else 'header'}-{'sized' if sized else 'stream'}",
            bytes([index, part, sized, 0]),
        )
        for index in range(len(BASES))
        for part in (0, 1)
        for sized in (0, 1)
    ]


def main() -> None:
    fuzz_main(test_one_input)


if __name__ == "__main__":
    main()
