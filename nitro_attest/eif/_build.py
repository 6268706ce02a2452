"""Synthetic enclave image files, written as nitro-cli's ``EifBuilder::write_to`` writes them.

For tests and examples: images whose PCRs are known without Docker or
nitro-cli. The layout follows github.com/aws/aws-nitro-enclaves-image-format
(src/utils/mod.rs): the header, then the kernel, command line, metadata (V4),
ramdisks and signature sections in that order, each behind its 12-byte
section header; the offset table lists them in the same order; the CRC32
covers the header without its CRC field, then every section header and
section. The signature is the COSE_Sign1 aws-nitro-enclaves-cose makes
(protected ``{1: alg}``, empty unprotected header, untagged) over
``PcrInfo{register_index: 0, register_value: PCR0}``, stored with the
certificate's PEM as nitro-cli's serde_cbor writes them (arrays of integers).
Signatures are deterministic ECDSA (RFC 6979), so one input gives one file.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from types import MappingProxyType
from typing import IO, Any, Literal

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding

from .._cose import sig_structure
from ..document import PCR_SIZE, PCRValue
from ._model import ARCH_ARM64_FLAG, HEADER_SIZE, MAX_SECTIONS, SECTION_HEADER_SIZE, EifSectionType
from ._signature import ALGORITHMS, pcr_info

__all__ = ["DEFAULT_BUILD_TIME", "build_eif"]

#: The BuildTime of images built without one: fixed, so the same inputs give the same file.
DEFAULT_BUILD_TIME = datetime(2026, 1, 1, tzinfo=timezone.utc)
# nitro-cli's EifBuilder::new: 1 GiB and 2 vCPUs unless told otherwise.
_DEFAULT_MEMORY = 1024 * 1024 * 1024
_DEFAULT_CPUS = 2
_ALGORITHM_BY_CURVE = {algorithm.curve: (identifier, algorithm) for identifier, algorithm in ALGORITHMS.items()}


def _section(kind: EifSectionType, content: bytes) -> bytes:
    return kind.value.to_bytes(2, "big") + bytes(2) + len(content).to_bytes(8, "big") + content


def _extend(parts: Sequence[bytes], index: int) -> PCRValue:
    content = hashlib.sha384()
    for part in parts:
        content.update(part)
    return PCRValue(index, hashlib.sha384(bytes(PCR_SIZE) + content.digest()).digest())


def _metadata(
    image_name: str, image_version: str, build_time: datetime, docker_info: Any, custom_metadata: Any
) -> bytes:
    # serde_json::to_vec of EifIdentityInfo: compact, fields in declaration order.
    identity = {
        "ImageName": image_name,
        "ImageVersion": image_version,
        "BuildMetadata": {
            "BuildTime": build_time.isoformat(),
            "BuildTool": "nitro_attest.testing",
            "BuildToolVersion": "1",
            "OperatingSystem": "Linux",
            "KernelVersion": "6.1",
        },
        "DockerInfo": docker_info,
        "CustomMetadata": custom_metadata,
    }
    return json.dumps(identity, separators=(",", ":")).encode("utf-8")


def _signature(certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey, signed_pcr0: bytes) -> bytes:
    """serde_cbor of ``vec![PcrSignature { signing_certificate: PEM, signature: COSE_Sign1 }]``."""
    if key.curve.name not in _ALGORITHM_BY_CURVE:
        raise ValueError(f"signing_key is on {key.curve.name}; EIF signatures are ES256, ES384 or ES512")
    identifier, algorithm = _ALGORITHM_BY_CURVE[key.curve.name]
    protected = cbor2.dumps({1: identifier})
    payload = pcr_info(signed_pcr0)
    der = key.sign(sig_structure(protected, payload), ec.ECDSA(algorithm.hash(), deterministic_signing=True))
    r, s = decode_dss_signature(der)
    size = algorithm.coordinate_size
    cose = cbor2.dumps([protected, {}, payload, r.to_bytes(size, "big") + s.to_bytes(size, "big")])
    pem = certificate.public_bytes(Encoding.PEM)
    return cbor2.dumps([{"signing_certificate": list(pem), "signature": list(cose)}])


def build_eif(
    destination: str | os.PathLike[str] | IO[bytes],
    *,
    kernel: bytes = b"nitro_attest test kernel",
    cmdline: str = "console=ttyS0 reboot=k panic=30 pci=off nomodules",
    ramdisks: Sequence[bytes] = (b"nitro_attest test bootstrap ramdisk", b"nitro_attest test application ramdisk"),
    image_name: str = "nitro-attest-test",
    image_version: str = "1.0",
    build_time: datetime = DEFAULT_BUILD_TIME,
    docker_info: Any = None,
    custom_metadata: Any = None,
    signing_certificate: x509.Certificate | None = None,
    signing_key: ec.EllipticCurvePrivateKey | None = None,
    signed_pcr0: bytes | None = None,
    version: Literal[3, 4] = 4,
    architecture: Literal["x86_64", "aarch64"] = "x86_64",
    default_memory: int = _DEFAULT_MEMORY,
    default_cpus: int = _DEFAULT_CPUS,
) -> Mapping[int, PCRValue]:
    """Writes an enclave image file and returns its PCRs (0, 1, 2, and 8 when signed).

    ``destination`` is a path (created or replaced) or a binary file open for
    writing. The kernel, command line and ramdisks (at least one: the first is
    the bootstrap ramdisk of PCR1, the others the application of PCR2) are the
    measured content; the metadata (``image_name``, ``image_version``,
    ``build_time``, ``docker_info``, ``custom_metadata``: JSON values) is not,
    so it changes the file and its CRC but no PCR. Version 3 images have no
    metadata section.

    With ``signing_certificate`` and ``signing_key`` (an EC key on P-256,
    P-384 or P-521: ES256, ES384, ES512) the image is signed as
    ``nitro-cli build-enclave --signing-certificate --private-key`` signs it.
    The key is not checked against the certificate, so a test can sign with the
    wrong one; ``signed_pcr0`` signs another PCR0 than the image's (a signature
    made for another image).
    """
    if not ramdisks:
        raise ValueError("an EIF needs at least one ramdisk (nitro-cli's EifBuilder requires one)")
    if "\0" in cmdline:
        raise ValueError("cmdline must not contain NUL (nitro-cli stores it as a C string)")
    if (signing_certificate is None) != (signing_key is None):
        raise ValueError("signing needs both signing_certificate and signing_key")
    if version not in (3, 4):
        raise ValueError(f"version must be 3 or 4, not {version!r}")
    command_line = cmdline.encode("utf-8")
    pcrs = {
        0: _extend([kernel, command_line, *ramdisks], 0),
        1: _extend([kernel, command_line, ramdisks[0]], 1),
        2: _extend(ramdisks[1:], 2),
    }
    sections = [_section(EifSectionType.KERNEL, kernel), _section(EifSectionType.CMDLINE, command_line)]
    if version == 4:
        metadata = _metadata(image_name, image_version, build_time, docker_info, custom_metadata)
        sections.append(_section(EifSectionType.METADATA, metadata))
    sections += [_section(EifSectionType.RAMDISK, ramdisk) for ramdisk in ramdisks]
    if signing_certificate is not None and signing_key is not None:
        pcr0 = pcrs[0].value if signed_pcr0 is None else signed_pcr0
        sections.append(_section(EifSectionType.SIGNATURE, _signature(signing_certificate, signing_key, pcr0)))
        pcrs[8] = _extend([signing_certificate.public_bytes(Encoding.DER)], 8)
    if len(sections) > MAX_SECTIONS:
        raise ValueError(f"{len(sections)} sections; an EIF holds at most {MAX_SECTIONS}")

    offsets, position = [], HEADER_SIZE
    for section in sections:
        offsets.append(position)
        position += len(section)
    padding = [0] * (MAX_SECTIONS - len(sections))
    sizes = [len(section) - SECTION_HEADER_SIZE for section in sections]
    flags = ARCH_ARM64_FLAG if architecture == "aarch64" else 0
    header = (
        b".eif"
        + version.to_bytes(2, "big")
        + flags.to_bytes(2, "big")
        + default_memory.to_bytes(8, "big")
        + default_cpus.to_bytes(8, "big")
        + bytes(2)  # reserved
        + len(sections).to_bytes(2, "big")
        + b"".join(offset.to_bytes(8, "big") for offset in offsets + padding)
        + b"".join(size.to_bytes(8, "big") for size in sizes + padding)
        + bytes(4)  # unused
    )
    crc = zlib.crc32(header)
    for section in sections:
        crc = zlib.crc32(section, crc)
    if isinstance(destination, (str, os.PathLike)):
        with open(destination, "wb") as file:
            _write(file, header + crc.to_bytes(4, "big"), sections)
    else:
        _write(destination, header + crc.to_bytes(4, "big"), sections)
    return MappingProxyType(pcrs)


def _write(file: IO[bytes], header: bytes, sections: Sequence[bytes]) -> None:
    file.write(header)
    for section in sections:
        file.write(section)
