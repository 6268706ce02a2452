"""describe(): one streaming pass over an enclave image file that measures it.

As nitro-cli's ``EifReader::from_eif`` (src/utils/eif_reader.rs) does, the
sections are read one after the other from offset 548, and:

- PCR0 hashes the kernel, the command line and every ramdisk, in file order;
- PCR1 the kernel, the command line and the first ramdisk;
- PCR2 every ramdisk after the first;
- PCR8 the DER of the signature section's certificate;

each PCR being ``SHA-384(48 zero bytes || SHA-384(what it hashes))``, and the
CRC32 covering the header without its CRC field, then every section header
and section. ``strict=True`` adds the checks of QEMU's EIF loader
(hw/core/eif.c): the offset table agrees with the sections, flags are zero,
version 4, the CRC matches, one kernel and one command line, at least one
ramdisk.

Every byte is read once, in chunks of :data:`CHUNK_SIZE` into one buffer, so
memory stays constant whatever the file's size. Each byte of a kernel,
command line or ramdisk feeds two SHA-384s (PCR0 and PCR1 or PCR2) and the
CRC: for large chunks a second thread hashes one while this one hashes the
other, each also checksumming half the chunk (hashlib and zlib release the
GIL on large buffers), so the pass costs about one SHA-384 pass.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import zlib
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import IO, Any, Protocol

from ..document import PCR_SIZE, PCRValue
from ._crc import crc32_combine
from ._model import (
    ARCH_ARM64_FLAG,
    CURRENT_VERSION,
    HEADER_SIZE,
    MAX_CMDLINE_SIZE,
    MAX_METADATA_DEPTH,
    MAX_METADATA_SIZE,
    MAX_SECTIONS,
    MAX_SIGNATURE_SIZE,
    SECTION_HEADER_SIZE,
    EifArchitecture,
    EifDescription,
    EifError,
    EifMetadata,
    EifSection,
    EifSectionType,
)
from ._signature import SignatureSection, check_signature, read_signature_section

__all__ = ["CHUNK_SIZE", "Progress", "describe"]

#: The read size: large enough that hashing dwarfs the handing over between threads.
CHUNK_SIZE = 4 * 1024 * 1024
# Below this a chunk is hashed by this thread alone: the other thread would cost more than it saves.
_PARALLEL_MIN = 256 * 1024

_MAGIC = b".eif"
_CRC_OFFSET = HEADER_SIZE - 4
_COUNT_OFFSET = 26  # magic 4, version 2, flags 2, memory 8, cpus 8, reserved 2
_OFFSETS_AT = 28
_SIZES_AT = _OFFSETS_AT + 8 * MAX_SECTIONS
_BUILD_INFO_KEYS = ("BuildTime", "BuildTool", "BuildToolVersion", "OperatingSystem", "KernelVersion")
_BOUNDED = {
    EifSectionType.CMDLINE: MAX_CMDLINE_SIZE,
    EifSectionType.METADATA: MAX_METADATA_SIZE,
    EifSectionType.SIGNATURE: MAX_SIGNATURE_SIZE,
}
_ONCE = (EifSectionType.SIGNATURE, EifSectionType.METADATA)
_ONCE_STRICT = (EifSectionType.KERNEL, EifSectionType.CMDLINE)

#: ``progress(bytes_read, total_bytes)``; total is None when the size is unknown (a pipe).
Progress = Callable[[int, "int | None"], None]


class _Readable(Protocol):
    def readinto(self, buffer: memoryview, /) -> int | None: ...


@dataclass(frozen=True)
class _Header:
    version: int
    flags: int
    default_memory: int
    default_cpus: int
    count: int
    offsets: tuple[int, ...]
    sizes: tuple[int, ...]
    crc: int


def _parse_header(data: bytes) -> _Header:
    if data[:4] != _MAGIC:
        raise EifError("magic", f"at offset 0: expected the magic '.eif' (2e 65 69 66), found {data[:4].hex(' ')}")
    return _Header(
        version=int.from_bytes(data[4:6], "big"),
        flags=int.from_bytes(data[6:8], "big"),
        default_memory=int.from_bytes(data[8:16], "big"),
        default_cpus=int.from_bytes(data[16:24], "big"),
        count=int.from_bytes(data[_COUNT_OFFSET:_OFFSETS_AT], "big"),
        offsets=tuple(int.from_bytes(data[at : at + 8], "big") for at in range(_OFFSETS_AT, _SIZES_AT, 8)),
        sizes=tuple(int.from_bytes(data[at : at + 8], "big") for at in range(_SIZES_AT, _SIZES_AT + 256, 8)),
        crc=int.from_bytes(data[_CRC_OFFSET:HEADER_SIZE], "big"),
    )


def _check_header_strictly(header: _Header) -> None:
    if header.version != CURRENT_VERSION:
        raise EifError("header", f"at offset 4: expected version {CURRENT_VERSION} (strict), found {header.version}")
    if header.flags & ~ARCH_ARM64_FLAG:
        raise EifError(
            "header", f"at offset 6: expected flags 0 or 1 (the architecture bit; strict), found {header.flags:#06x}"
        )
    if header.count > MAX_SECTIONS:
        raise EifError(
            "header", f"at offset {_COUNT_OFFSET}: expected at most {MAX_SECTIONS} sections, found {header.count}"
        )


def _table_error(header: _Header, sections: list[EifSection]) -> EifError | None:
    """Where the header's section count, offsets and sizes differ from the sections as read, or None."""
    if header.count != len(sections):
        return EifError(
            "header",
            f"at offset {_COUNT_OFFSET}: the header counts {header.count} sections, the file has {len(sections)}",
        )
    for section in sections:
        i = section.index
        if header.offsets[i] != section.offset:
            return EifError(
                "header",
                f"at offset {_OFFSETS_AT + 8 * i}: section_offsets[{i}] is {header.offsets[i]}, "
                f"but section {i} starts at {section.offset}",
            )
        if header.sizes[i] != section.size:
            return EifError(
                "header",
                f"at offset {_SIZES_AT + 8 * i}: section_sizes[{i}] is {header.sizes[i]}, "
                f"but section {i} (at {section.offset}) holds {section.size} bytes",
            )
    return None


@dataclass
class _State:
    """What one pass accumulates."""

    source: _Readable
    total: int | None
    progress: Progress | None
    buffer: memoryview
    position: int = 0
    crc: int = 0
    pcr0: Any = field(default_factory=hashlib.sha384)
    pcr1: Any = field(default_factory=hashlib.sha384)
    pcr2: Any = field(default_factory=hashlib.sha384)
    executor: ThreadPoolExecutor | None = None

    def read_into(self, view: memoryview) -> int:
        """Fills ``view`` from the source; fewer bytes only at the end of the file."""
        filled = 0
        while filled < len(view):
            count = self.source.readinto(view[filled:])
            if not count:
                break
            filled += count
        self.position += filled
        return filled

    def read_exactly(self, size: int, what: str) -> bytes:
        """``size`` bytes (size is bounded by the caller), or ``truncated``."""
        data = bytearray(size)
        start = self.position
        got = self.read_into(memoryview(data))
        if got != size:
            raise EifError(
                "truncated", f"at offset {start}: expected {what} of {size} bytes, the file ends after {got}"
            )
        return bytes(data)

    def report(self) -> None:
        if self.progress is not None:
            self.progress(self.position, self.total)

    def hash_stream(self, size: int, first: Any, second: Any, what: str) -> None:
        """Reads ``size`` bytes in chunks into ``first``, ``second`` and the CRC."""
        start = self.position
        left = size
        while left:
            chunk = self.buffer[: min(left, len(self.buffer))]
            got = self.read_into(chunk)
            if got != len(chunk):
                raise EifError(
                    "truncated",
                    f"at offset {self.position}: expected {size - (self.position - start)} more bytes of {what} "
                    f"(which starts at {start}); the file ends",
                )
            self._hash(chunk, first, second)
            left -= got
            self.report()

    def _hash(self, chunk: memoryview, first: Any, second: Any) -> None:
        if len(chunk) < _PARALLEL_MIN or (os.cpu_count() or 1) < 2:
            first.update(chunk)
            second.update(chunk)
            self.crc = zlib.crc32(chunk, self.crc)
            return
        if self.executor is None:
            self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nitro_attest-eif")
        half = len(chunk) // 2
        tail = self.executor.submit(_update_and_crc, second, chunk, chunk[half:])
        first.update(chunk)
        head_crc = zlib.crc32(chunk[:half], self.crc)
        self.crc = crc32_combine(head_crc, tail.result(), len(chunk) - half)

    def checksum(self, data: bytes) -> None:
        self.crc = zlib.crc32(data, self.crc)


def _update_and_crc(hasher: Any, chunk: memoryview, tail: memoryview) -> int:
    hasher.update(chunk)
    return zlib.crc32(tail)


def _extend(hasher: Any, index: int) -> PCRValue:
    return PCRValue(index, hashlib.sha384(bytes(PCR_SIZE) + hasher.digest()).digest())


def _freeze(value: Any, where: str, depth: int = 0) -> Any:
    # Bounded so that neither this nor thaw() can recurse far: nitro-cli's metadata nests a few levels.
    if isinstance(value, (dict, list)) and depth >= MAX_METADATA_DEPTH:
        raise EifError("metadata", f"{where}: nested deeper than {MAX_METADATA_DEPTH} levels")
    if isinstance(value, dict):
        return MappingProxyType({key: _freeze(item, where, depth + 1) for key, item in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(item, where, depth + 1) for item in value)
    return value


def _metadata(data: bytes, offset: int) -> EifMetadata:
    where = f"at offset {offset}: metadata"
    try:
        value = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise EifError("metadata", f"{where}: expected UTF-8 JSON (nitro-cli's EifIdentityInfo): {exc}") from None
    if not isinstance(value, dict):
        raise EifError("metadata", f"{where}: expected a JSON object, found {type(value).__name__}")
    name, version, build = value.get("ImageName"), value.get("ImageVersion"), value.get("BuildMetadata")
    if not isinstance(name, str) or not isinstance(version, str):
        raise EifError("metadata", f"{where}: expected ImageName and ImageVersion strings")
    if not isinstance(build, dict) or not all(isinstance(build.get(key), str) for key in _BUILD_INFO_KEYS):
        raise EifError("metadata", f"{where}: expected BuildMetadata with the strings {', '.join(_BUILD_INFO_KEYS)}")
    return EifMetadata(
        image_name=name,
        image_version=version,
        build_info=MappingProxyType({key: build[key] for key in _BUILD_INFO_KEYS}),
        docker_info=_freeze(value.get("DockerInfo"), f"{where}: DockerInfo"),
        custom_metadata=_freeze(value.get("CustomMetadata"), f"{where}: CustomMetadata"),
    )


def _section_type(code: int, offset: int) -> EifSectionType:
    try:
        return EifSectionType(code)
    except ValueError:
        raise EifError(
            "section", f"at offset {offset}: expected a section type 1..5 (kernel..metadata), found {code}"
        ) from None


def _size_of(source: IO[bytes] | _Readable) -> int | None:
    """What is left of a regular file from its current position; None for a pipe or an unknown object."""
    try:
        fileno = source.fileno()  # type: ignore[union-attr]
        status = os.fstat(fileno)
        start = source.tell()  # type: ignore[union-attr]
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None
    return status.st_size - start if stat.S_ISREG(status.st_mode) else None


def describe(
    source: str | os.PathLike[str] | IO[bytes],
    *,
    strict: bool = False,
    progress: Progress | None = None,
) -> EifDescription:
    """Measures an enclave image file: PCR0, PCR1, PCR2 (and PCR8 when signed), its sections, CRC and signature.

    ``source`` is a path or a binary file object open for reading, read from
    its current position to its end, once. The result is what
    ``nitro-cli describe-eif`` reports, computed the same way.

    Without ``strict``, an image nitro-cli reads is accepted and a CRC that
    does not match is reported (:attr:`EifDescription.crc_valid` False), as
    nitro-cli reports ``"CheckCRC": false``. A signature is checked, never
    trusted: :attr:`EifDescription.signature` says whether it verifies with
    its certificate's key (ES256, ES384 or ES512) over this image's PCR0.
    With ``strict=True`` the file must also pass the checks of QEMU's EIF
    loader: version 4, no header flags but the architecture bit, zero section
    flags, an offset table that matches the sections, one kernel, one command
    line, at least one ramdisk, and the right CRC.

    ``progress(bytes_read, total_bytes)`` is called as the file is read
    (``total_bytes`` None when unknown).

    Raises :class:`EifError` for a file that is not a measurable image (the
    message gives the offset and what was expected) and :class:`OSError` when
    it cannot be read.
    """
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb", buffering=0) as file:
            return _describe(file, strict=strict, progress=progress)
    if not callable(getattr(source, "readinto", None)):
        raise TypeError(f"source must be a path or a binary file object, not {type(source).__name__}")
    return _describe(source, strict=strict, progress=progress)


def _describe(source: IO[bytes] | _Readable, *, strict: bool, progress: Progress | None) -> EifDescription:
    total = _size_of(source)
    state = _State(source, total, progress, memoryview(bytearray(CHUNK_SIZE)))  # type: ignore[arg-type]
    try:
        return _read(state, strict=strict)
    finally:
        if state.executor is not None:
            state.executor.shutdown()


def _read(state: _State, *, strict: bool) -> EifDescription:
    raw_header = state.read_exactly(HEADER_SIZE, "the header")
    header = _parse_header(raw_header)
    if strict:
        _check_header_strictly(header)
    state.checksum(raw_header[:_CRC_OFFSET])
    state.report()

    found = _Sections()
    while _read_section(state, found, strict=strict):
        pass
    sections, seen, signature = found.sections, found.seen, found.signature
    table_error = _table_error(header, sections)
    if strict:
        if table_error is not None:
            raise table_error
        for required in (EifSectionType.KERNEL, EifSectionType.CMDLINE, EifSectionType.RAMDISK):
            if required not in seen:
                raise EifError("section", f"at offset {state.position}: no {required.name.lower()} section (strict)")
    crc = state.crc
    if strict and crc != header.crc:
        raise EifError(
            "crc", f"at offset {_CRC_OFFSET}: the header's CRC32 is {header.crc:#010x}, the file's is {crc:#010x}"
        )
    pcrs = {0: _extend(state.pcr0, 0), 1: _extend(state.pcr1, 1), 2: _extend(state.pcr2, 2)}
    if signature is not None:
        pcrs[8] = signature.pcr8
    return EifDescription(
        version=header.version,
        architecture=EifArchitecture.AARCH64 if header.flags & ARCH_ARM64_FLAG else EifArchitecture.X86_64,
        flags=header.flags,
        default_memory=header.default_memory,
        default_cpus=header.default_cpus,
        sections=tuple(sections),
        pcrs=MappingProxyType(pcrs),
        crc=header.crc,
        computed_crc=crc,
        cmdline=found.cmdline or b"",
        metadata=found.metadata,
        signing_certificate=None if signature is None else signature.certificate,
        signature=None if signature is None else check_signature(signature, pcrs[0]),
        size=state.position,
        table_matches=table_error is None,
    )


@dataclass
class _Sections:
    """The sections read so far, and what the bounded ones held."""

    sections: list[EifSection] = field(default_factory=list)
    seen: dict[EifSectionType, EifSection] = field(default_factory=dict)  # the first of each kind
    cmdline: bytes | None = None
    metadata: EifMetadata | None = None
    signature: SignatureSection | None = None


def _read_section(state: _State, found: _Sections, *, strict: bool) -> bool:
    """Reads the next section into ``found``; False at the end of the file."""
    offset = state.position
    buffer = bytearray(SECTION_HEADER_SIZE)
    got = state.read_into(memoryview(buffer))
    if got == 0:
        return False
    if got != SECTION_HEADER_SIZE:
        raise EifError(
            "truncated", f"at offset {offset}: expected a 12-byte section header, the file ends after {got} bytes"
        )
    if len(found.sections) == MAX_SECTIONS:
        raise EifError("section", f"at offset {offset}: expected the end of the file after {MAX_SECTIONS} sections")
    state.checksum(bytes(buffer))
    kind = _section_type(int.from_bytes(buffer[0:2], "big"), offset)
    section = EifSection(
        index=len(found.sections),
        type=kind,
        offset=offset,
        size=int.from_bytes(buffer[4:12], "big"),
        flags=int.from_bytes(buffer[2:4], "big"),
    )
    _check_section(section, found.seen, state.total, strict=strict)
    first = found.seen.setdefault(kind, section)
    found.sections.append(section)
    name = f"{kind.name.lower()} section {section.index}"
    if kind not in _BOUNDED:
        # The kernel and the first ramdisk are PCR1's; the other ramdisks PCR2's.
        other = state.pcr2 if kind is EifSectionType.RAMDISK and first is not section else state.pcr1
        state.hash_stream(section.size, state.pcr0, other, name)
        return True
    content = state.read_exactly(section.size, name)
    state.checksum(content)
    state.report()
    if kind is EifSectionType.CMDLINE:
        state.pcr0.update(content)
        state.pcr1.update(content)
        found.cmdline = content if found.cmdline is None else found.cmdline
    elif kind is EifSectionType.METADATA:
        found.metadata = _metadata(content, section.data_offset)
    else:
        found.signature = read_signature_section(content, section.data_offset)
    return True


def _check_section(
    section: EifSection, seen: Mapping[EifSectionType, EifSection], total: int | None, *, strict: bool
) -> None:
    """The checks a section header must pass before its content is read."""
    kind, offset = section.type, section.offset
    name = kind.name.lower()
    if section.size > _BOUNDED.get(kind, section.size):
        raise EifError(
            "size", f"at offset {offset + 4}: a {name} section of {section.size} bytes; the limit is {_BOUNDED[kind]}"
        )
    if total is not None and section.size > total - section.data_offset:
        raise EifError(
            "size",
            f"at offset {offset + 4}: the {name} section declares {section.size} bytes, "
            f"but the file has {max(total - section.data_offset, 0)} after its header",
        )
    duplicate = seen.get(kind)
    if duplicate is not None and (kind in _ONCE or (strict and kind in _ONCE_STRICT)):
        raise EifError("section", f"at offset {offset}: a second {name} section (the first is at {duplicate.offset})")
    if strict and section.flags:
        raise EifError(
            "section", f"at offset {offset + 2}: expected section flags 0 (strict), found {section.flags:#06x}"
        )
