"""nitro_attest.eif: PCRs of enclave image files, their rejections, their signatures and their cost.

The PCRs are computed three ways that must agree: :func:`nitro_attest.eif.describe`,
:func:`spec_pcrs` below (plain hashlib and int.from_bytes, written from the
format's description in aws-nitro-enclaves-image-format, not from our code), and,
where it runs, the independent reader fabienpe/aws-nitro-verify-pcr-signature.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import os
import subprocess
import sys
import zlib
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any, cast

import cbor2
import pytest
from conftest import require_shared
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nitro_attest import PCRValue
from nitro_attest._cose import sig_structure
from nitro_attest.eif import (
    CHUNK_SIZE,
    HEADER_SIZE,
    MAX_CMDLINE_SIZE,
    MAX_METADATA_SIZE,
    MAX_SIGNATURE_SIZE,
    EifArchitecture,
    EifError,
    EifSectionType,
    EifSignatureStatus,
    describe,
)
from nitro_attest.eif._build import build_eif
from nitro_attest.eif._crc import crc32_combine
from nitro_attest.testing import derive_key, issue_certificate

ZERO = bytes(48)
KERNEL, CMDLINE, RAMDISK, SIGNATURE, METADATA = 1, 2, 3, 4, 5
_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nitro_attest EIF signing TEST-ONLY")])
_START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def signer(curve: ec.EllipticCurve, label: str = "eif signer") -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed signing certificate and its key on ``curve``, as the User Guide's OpenSSL recipe makes."""
    scalar = int.from_bytes(hashlib.sha384(label.encode()).digest(), "big") % (1 << 250) + 1
    key = ec.derive_private_key(scalar, curve)
    certificate = issue_certificate(
        _NAME,
        key.public_key(),
        issuer=_NAME,
        signing_key=key,
        serial=1234,
        not_before=_START,
        not_after=_START + timedelta(days=365),
        extensions=[],
    )
    return certificate, key


# --- the format, from its description: what the three-way comparison holds describe() to ---


def spec_pcrs(data: bytes) -> dict[int, str]:
    """PCRs of an EIF read as nitro-cli's EifReader reads it: sections one after the other from byte 548."""
    image, bootstrap, application = hashlib.sha384(), hashlib.sha384(), hashlib.sha384()
    certificate = None
    position, ramdisks = 548, 0
    while position < len(data):
        kind = int.from_bytes(data[position : position + 2], "big")
        size = int.from_bytes(data[position + 4 : position + 12], "big")
        content = data[position + 12 : position + 12 + size]
        position += 12 + size
        if kind in (KERNEL, CMDLINE) or (kind == RAMDISK and ramdisks == 0):
            image.update(content)
            bootstrap.update(content)
        elif kind == RAMDISK:
            image.update(content)
            application.update(content)
        elif kind == SIGNATURE:
            pem = bytes(cbor2.loads(content)[0]["signing_certificate"])
            certificate = x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
        ramdisks += kind == RAMDISK

    def extend(digest: bytes) -> str:
        return hashlib.sha384(ZERO + digest).hexdigest()

    pcrs = {0: extend(image.digest()), 1: extend(bootstrap.digest()), 2: extend(application.digest())}
    if certificate is not None:
        pcrs[8] = extend(hashlib.sha384(certificate).digest())
    return pcrs


def spec_crc(data: bytes) -> int:
    return zlib.crc32(data[548:], zlib.crc32(data[:544]))


def raw_eif(
    sections: Sequence[tuple[int, bytes]],
    *,
    version: int = 4,
    flags: int = 0,
    section_flags: int = 0,
    count: int | None = None,
    offsets: Sequence[int] | None = None,
    sizes: Sequence[int] | None = None,
    crc: int | None = None,
) -> bytes:
    """An EIF with exactly these sections, header fields overridable one by one (for rejections)."""
    bodies = [
        kind.to_bytes(2, "big") + section_flags.to_bytes(2, "big") + len(content).to_bytes(8, "big") + content
        for kind, content in sections
    ]
    real_offsets, position = [], 548
    for body in bodies:
        real_offsets.append(position)
        position += len(body)
    table_offsets = list(real_offsets if offsets is None else offsets)
    table_sizes = list([len(content) for _, content in sections] if sizes is None else sizes)
    slots = 32
    table_offsets += [0] * (slots - len(table_offsets))
    table_sizes += [0] * (slots - len(table_sizes))
    header = (
        b".eif"
        + version.to_bytes(2, "big")
        + flags.to_bytes(2, "big")
        + (1 << 30).to_bytes(8, "big")
        + (2).to_bytes(8, "big")
        + bytes(2)
        + (len(sections) if count is None else count).to_bytes(2, "big")
        + b"".join(value.to_bytes(8, "big") for value in table_offsets[:slots])
        + b"".join(value.to_bytes(8, "big") for value in table_sizes[:slots])
        + bytes(4)
    )
    body = b"".join(bodies)
    checksum = zlib.crc32(body, zlib.crc32(header)) if crc is None else crc
    return header + checksum.to_bytes(4, "big") + body


METADATA_JSON = json.dumps(
    {
        "ImageName": "raw",
        "ImageVersion": "1",
        "BuildMetadata": {
            "BuildTime": "2026-01-01T00:00:00+00:00",
            "BuildTool": "test",
            "BuildToolVersion": "1",
            "OperatingSystem": "Linux",
            "KernelVersion": "6.1",
        },
        "DockerInfo": None,
        "CustomMetadata": None,
    }
).encode()
PLAIN = [(KERNEL, b"kernel"), (CMDLINE, b"console=ttyS0"), (METADATA, METADATA_JSON), (RAMDISK, b"init")]


def built(tmp_path: Path, name: str = "image.eif", **kwargs: Any) -> tuple[Path, dict[int, PCRValue]]:
    path = tmp_path / name
    pcrs = build_eif(path, **kwargs)
    return path, dict(pcrs)


def hexes(pcrs: object) -> dict[int, str]:
    return {index: value.hex() for index, value in dict(pcrs).items()}  # type: ignore[call-overload]


# --- three ways agree -----------------------------------------------------------------------------

_P384 = signer(ec.SECP384R1())
IMAGES = {
    "unsigned": {},
    "one ramdisk": {"ramdisks": [b"only the bootstrap ramdisk"]},
    "five ramdisks": {"ramdisks": [bytes([index]) * (1000 + index) for index in range(5)]},
    "empty cmdline": {"cmdline": ""},
    "aarch64": {"architecture": "aarch64"},
    "version 3 (no metadata)": {"version": 3},
    "signed ES256": dict(zip(("signing_certificate", "signing_key"), signer(ec.SECP256R1()), strict=True)),
    "signed ES384": dict(zip(("signing_certificate", "signing_key"), _P384, strict=True)),
    "signed ES512": dict(zip(("signing_certificate", "signing_key"), signer(ec.SECP521R1()), strict=True)),
    # Chunks of CHUNK_SIZE, hashed in two threads, the CRC combined from halves; and an odd tail.
    "large ramdisks": {"ramdisks": [os.urandom(CHUNK_SIZE + 12345), os.urandom(2 * CHUNK_SIZE + 7)]},
}


@pytest.mark.parametrize("options", IMAGES.values(), ids=IMAGES.keys())
def test_pcrs_agree_with_the_spec_and_the_builder(tmp_path: Path, options: dict[str, Any]) -> None:
    path, expected = built(tmp_path, **options)
    data = path.read_bytes()
    description = describe(path, strict=options.get("version") != 3)  # QEMU loads version 4 only
    assert hexes(description.pcrs) == spec_pcrs(data) == hexes(expected)
    assert description.crc == description.computed_crc == spec_crc(data)
    assert description.size == len(data)
    assert description.is_signed == ("signing_key" in options)
    if description.signature is not None:
        assert description.signature.status is EifSignatureStatus.VALID
        assert description.signature.signed_pcr0 == description.pcrs[0]


def _reference_reader() -> Path | None:
    """fabienpe/aws-nitro-verify-pcr-signature's main.py: $NITRO_ATTEST_EIF_READER, or a fetched mirror."""
    override = os.environ.get("NITRO_ATTEST_EIF_READER")
    if override:
        return Path(override)
    mirror = Path("/work/.mirror/fabienpe+aws-nitro-verify-pcr-signature/repo")
    return mirror if mirror.is_dir() else None


# The reader imports pyOpenSSL, pycose and requests at module level for its attestation-document
# mode; reading an EIF (no --attestation_file_path) uses only cryptography, cbor2, click and zlib.
# Empty stand-ins let it run where those three are not installed.
_STUBS = {
    "OpenSSL/__init__.py": "from . import crypto\n",
    "OpenSSL/crypto.py": "X509 = object\n",
    "pycose/__init__.py": "",
    "pycose/keys/__init__.py": "",
    "pycose/keys/ec2.py": "EC2Key = None\n",
    "pycose/keys/curves.py": "P384 = None\n",
    "pycose/messages.py": "Sign1Message = None\n",
    "requests.py": "",
}


@pytest.mark.parametrize(
    "options",
    [IMAGES["unsigned"], IMAGES["five ramdisks"], IMAGES["signed ES384"], IMAGES["large ramdisks"]],
    ids=["unsigned", "five ramdisks", "signed", "large"],
)
def test_pcrs_agree_with_the_independent_reader(tmp_path: Path, options: dict[str, Any]) -> None:
    pytest.importorskip("click", reason="the independent reader's command line needs click")
    where = _reference_reader()
    if where is None:
        pytest.skip("fabienpe/aws-nitro-verify-pcr-signature is not here: set NITRO_ATTEST_EIF_READER to its main.py")
    if where.is_dir():  # a bare git mirror
        script = subprocess.run(
            ["git", f"--git-dir={where}", "show", "HEAD:main.py"], check=True, capture_output=True, text=True
        ).stdout
        (tmp_path / "main.py").write_text(script)
        where = tmp_path / "main.py"
    for relative, text in _STUBS.items():
        (tmp_path / "stubs" / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "stubs" / relative).write_text(text)
    path, _ = built(tmp_path, **options)
    result = subprocess.run(
        [sys.executable, str(where), str(path)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "stubs")},
    )
    theirs = dict(
        line.removeprefix("Expected ").split(": ", 1)
        for line in result.stdout.splitlines()
        if line.startswith("Expected ")
    )
    description = describe(path)
    assert int(theirs["CRC"]) == description.computed_crc
    for index, value in description.pcrs.items():
        assert theirs[f"PCR{index}"] == value.hex()


def test_the_aws_sample_has_the_shape_of_our_measurements(tmp_path: Path) -> None:
    """AWS's signed build-enclave sample: same keys and formats as ours; its PCR8 cannot be reproduced.

    The User Guide shows the sample's PCR8 but neither its certificate nor its image, so no
    PCR8 (or PCR0-2) of it can be recomputed; PCR8 from a certificate is checked against a
    known answer in tests/test_measurements.py instead.
    """
    text = require_shared("kms/pcr_vectors_aws_user_guide.txt").read_text()
    sample = json.loads(
        text.split("# build-enclave sample output (hello-world), signed:\n", 1)[1]
        .split("\n# Debug")[0]
        .replace("\n# ", "")
        .lstrip("# ")
    )
    assert "BEGIN CERTIFICATE" not in text  # nothing to compute the sample's PCR8 from
    path, _ = built(tmp_path, signing_certificate=_P384[0], signing_key=_P384[1])
    ours = {"Measurements": describe(path).measurements()}
    assert list(ours["Measurements"]) == list(sample["Measurements"])
    assert ours["Measurements"]["HashAlgorithm"] == sample["Measurements"]["HashAlgorithm"] == "Sha384 { ... }"
    for key in ("PCR0", "PCR1", "PCR2", "PCR8"):
        assert len(sample["Measurements"][key]) == len(ours["Measurements"][key]) == 96
        assert sample["Measurements"][key] == sample["Measurements"][key].lower()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.binary(max_size=300))
def test_crc32_combine_is_the_crc_of_the_concatenation(first: bytes, second: bytes) -> None:
    assert crc32_combine(zlib.crc32(first), zlib.crc32(second), len(second)) == zlib.crc32(first + second)


# --- what describe() reports ----------------------------------------------------------------------


def test_sections_metadata_and_header_fields(tmp_path: Path) -> None:
    path, _ = built(
        tmp_path,
        architecture="aarch64",
        default_memory=512 << 20,
        default_cpus=4,
        docker_info={"RepoTags": ["hello:latest"]},
        custom_metadata={"team": "a"},
    )
    description = describe(path)
    assert description.version == 4
    assert description.architecture is EifArchitecture.AARCH64
    assert (description.flags, description.default_memory, description.default_cpus) == (1, 512 << 20, 4)
    kinds = [section.type for section in description.sections]
    assert kinds == [
        EifSectionType.KERNEL,
        EifSectionType.CMDLINE,
        EifSectionType.METADATA,
        EifSectionType.RAMDISK,
        EifSectionType.RAMDISK,
    ]
    assert description.sections[0].offset == HEADER_SIZE
    assert description.sections[0].data_offset == HEADER_SIZE + 12
    assert description.cmdline == b"console=ttyS0 reboot=k panic=30 pci=off nomodules"
    assert description.metadata is not None
    assert description.metadata.image_name == "nitro-attest-test"
    assert description.metadata.docker_info["RepoTags"] == ("hello:latest",)
    output = description.describe_eif_json()
    assert list(output) == [
        "EifVersion",
        "Measurements",
        "IsSigned",
        "CheckCRC",
        "ImageName",
        "ImageVersion",
        "Metadata",
    ]
    assert output["Metadata"]["team"] == "a"  # custom metadata is flattened, as nitro-cli does
    assert output["Metadata"]["DockerInfo"] == {"RepoTags": ["hello:latest"]}
    json.dumps(output)


def test_signed_json_names_the_certificate_and_the_check(tmp_path: Path) -> None:
    path, _ = built(tmp_path, signing_certificate=_P384[0], signing_key=_P384[1])
    output = describe(path).describe_eif_json()
    assert list(output)[:6] == [
        "EifVersion",
        "Measurements",
        "IsSigned",
        "SigningCertificate",
        "CheckCRC",
        "SignatureCheck",
    ]
    assert output["SignatureCheck"] is True
    assert output["SigningCertificate"]["IssuerName"] == {"commonName": "nitro_attest EIF signing TEST-ONLY"}
    assert output["SigningCertificate"]["Algorithm"] == "ecdsa-with-SHA384"
    assert output["SigningCertificate"]["NotBefore"] == "Jan  1 00:00:00 2026 GMT"


def test_reproducible_builds_build_time_changes_the_file_not_the_pcrs(tmp_path: Path) -> None:
    first, pcrs = built(tmp_path, "first.eif", build_time=datetime(2026, 1, 1, tzinfo=timezone.utc))
    again, _ = built(tmp_path, "again.eif", build_time=datetime(2026, 1, 1, tzinfo=timezone.utc))
    later, _ = built(tmp_path, "later.eif", build_time=datetime(2026, 6, 30, 12, tzinfo=timezone.utc))
    assert first.read_bytes() == again.read_bytes()
    assert first.read_bytes() != later.read_bytes()
    a, b = describe(first, strict=True), describe(later, strict=True)
    assert a.crc != b.crc
    assert a.pcrs == b.pcrs == pcrs
    assert a.metadata is not None and b.metadata is not None
    assert a.metadata.build_info["BuildTime"] != b.metadata.build_info["BuildTime"]


def test_file_objects_pipes_progress_and_one_read_of_each_byte(tmp_path: Path) -> None:
    path, pcrs = built(tmp_path, ramdisks=[b"a" * 1000, os.urandom(CHUNK_SIZE + 1)])
    data = path.read_bytes()

    class Counting(io.RawIOBase):
        def __init__(self) -> None:
            self.inner = io.BytesIO(data)
            self.read_bytes = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            count = self.inner.readinto(buffer)
            self.read_bytes += count
            return count

    source = Counting()
    calls: list[tuple[int, int | None]] = []
    assert describe(cast(IO[bytes], source), progress=lambda done, total: calls.append((done, total))).pcrs == pcrs
    assert source.read_bytes == len(data)
    assert calls[-1] == (len(data), None)  # no size for a stream that has no file
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    with path.open("rb") as file:
        sized: list[tuple[int, int | None]] = []
        assert describe(file, progress=lambda done, total: sized.append((done, total))).pcrs == pcrs
    assert sized[-1] == (len(data), len(data))


def test_a_source_that_cannot_be_read_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="binary file object"):
        describe(b"not a file")  # type: ignore[arg-type]


# --- rejections: one test per path, with the input -----------------------------------------------


def rejected(data: bytes, code: str, match: str, *, strict: bool = False, file: Path | None = None) -> EifError:
    """The error for ``data``, read from a stream of unknown size or, given ``file``, from a file of known size."""
    source: Path | io.BytesIO = io.BytesIO(data)
    if file is not None:
        file.write_bytes(data)
        source = file
    with pytest.raises(EifError, match=match) as caught:
        describe(source, strict=strict)
    assert caught.value.code == code
    assert isinstance(caught.value, ValueError)
    return caught.value


def test_a_file_shorter_than_the_header() -> None:
    rejected(
        b".eif" + bytes(96), "truncated", r"at offset 0: expected the header of 548 bytes, the file ends after 100"
    )


def test_bad_magic() -> None:
    rejected(b"MZ\x90\x00" + raw_eif(PLAIN)[4:], "magic", r"at offset 0: expected the magic '.eif'")


def test_a_partial_section_header() -> None:
    rejected(raw_eif(PLAIN) + b"\x00\x03\x00", "truncated", r"expected a 12-byte section header, the file ends after 3")


@pytest.mark.parametrize("kind", [0, 6, 0xFFFF])
def test_an_unknown_section_type(kind: int) -> None:
    rejected(raw_eif([*PLAIN, (kind, b"x")]), "section", rf"at offset \d+: expected a section type 1..5.*found {kind}")


def test_a_section_past_the_end_of_the_file(tmp_path: Path) -> None:
    data = raw_eif(PLAIN)
    cut = data[:-2]  # the ramdisk declares 4 bytes; 2 remain
    message = r"the ramdisk section declares 4 bytes, but the file has 2 after its header"
    error = rejected(cut, "size", message, file=tmp_path / "cut.eif")
    assert f"at offset {len(data) - 4 - 12 + 4}" in error.message


def test_a_stream_that_ends_inside_a_section() -> None:
    rejected(raw_eif(PLAIN)[:-2], "truncated", r"expected 2 more bytes of ramdisk section 3")


def test_a_stream_that_ends_inside_a_bounded_section() -> None:
    data = raw_eif([(KERNEL, b"k"), (CMDLINE, b"console=ttyS0")])
    rejected(data[:-3], "truncated", r"expected cmdline section 1 of 13 bytes, the file ends after 10")


@pytest.mark.parametrize(
    ("kind", "limit"),
    [(CMDLINE, MAX_CMDLINE_SIZE), (METADATA, MAX_METADATA_SIZE), (SIGNATURE, MAX_SIGNATURE_SIZE)],
    ids=["cmdline", "metadata", "signature"],
)
def test_a_bounded_section_over_its_limit(kind: int, limit: int) -> None:
    header = kind.to_bytes(2, "big") + bytes(2) + (limit + 1).to_bytes(8, "big")
    data = raw_eif([(KERNEL, b"k")]) + header  # no content follows: the size alone is refused, nothing is read
    rejected(data, "size", rf"bytes; the limit is {limit}")


def test_more_than_32_sections() -> None:
    rejected(raw_eif([(RAMDISK, b"")] * 33, count=32), "section", r"expected the end of the file after 32 sections")


@pytest.mark.parametrize("kind", [SIGNATURE, METADATA], ids=["signature", "metadata"])
def test_a_second_signature_or_metadata_section(tmp_path: Path, kind: int) -> None:
    path, _ = built(tmp_path, signing_certificate=_P384[0], signing_key=_P384[1])
    data = path.read_bytes()
    description = describe(path)
    section = next(section for section in description.sections if section.type.value == kind)
    copy = data[section.offset : section.data_offset + section.size]
    rejected(
        data + copy,
        "section",
        rf"a second {EifSectionType(kind).name.lower()} section \(the first is at {section.offset}\)",
    )


def test_a_crc_mismatch_is_reported_and_refused_when_strict() -> None:
    data = raw_eif(PLAIN, crc=0x12345678)
    description = describe(io.BytesIO(data))
    assert not description.crc_valid
    assert description.crc == 0x12345678
    rejected(data, "crc", r"at offset 544: the header's CRC32 is 0x12345678, the file's is 0x", strict=True)


STRICT_REJECTIONS = {
    "version 3": (raw_eif(PLAIN, version=3), "header", r"at offset 4: expected version 4 \(strict\), found 3"),
    "unknown flag": (raw_eif(PLAIN, flags=2), "header", r"at offset 6: expected flags 0 or 1"),
    "33 in the count": (raw_eif(PLAIN, count=33), "header", r"at offset 26: expected at most 32 sections, found 33"),
    "count": (raw_eif(PLAIN, count=5), "header", r"at offset 26: the header counts 5 sections, the file has 4"),
    "offset": (raw_eif(PLAIN, offsets=[548, 566, 0, 0]), "header", r"at offset 44: section_offsets\[2\] is 0"),
    "size": (raw_eif(PLAIN, sizes=[6, 13, 0, 4]), "header", r"at offset 300: section_sizes\[2\] is 0"),
    "section flags": (raw_eif(PLAIN, section_flags=1), "section", r"at offset 550: expected section flags 0"),
    "two kernels": (raw_eif([*PLAIN, (KERNEL, b"k2")]), "section", r"a second kernel section \(the first is at 548\)"),
    "two cmdlines": (raw_eif([*PLAIN, (CMDLINE, b"x")]), "section", r"a second cmdline section"),
    "no kernel": (raw_eif(PLAIN[1:]), "section", r"no kernel section \(strict\)"),
    "no cmdline": (raw_eif([PLAIN[0], *PLAIN[2:]]), "section", r"no cmdline section \(strict\)"),
    "no ramdisk": (raw_eif(PLAIN[:3]), "section", r"no ramdisk section \(strict\)"),
}


@pytest.mark.parametrize(("data", "code", "match"), STRICT_REJECTIONS.values(), ids=STRICT_REJECTIONS.keys())
def test_strict_adds_qemus_checks(data: bytes, code: str, match: str) -> None:
    describe(io.BytesIO(data))  # nitro-cli reads every one of these
    rejected(data, code, match, strict=True)


METADATA_REJECTIONS = {
    "not JSON": (b"{", r"expected UTF-8 JSON"),
    "not UTF-8": (b'{"ImageName": "\xff"}', r"expected UTF-8 JSON"),
    "nested too deep": (b"[" * 100_000 + b"]" * 100_000, r"expected UTF-8 JSON"),
    "not an object": (b"[]", r"expected a JSON object, found list"),
    "no ImageName": (b'{"ImageVersion": "1"}', r"expected ImageName and ImageVersion strings"),
    "no BuildMetadata": (b'{"ImageName": "a", "ImageVersion": "1"}', r"expected BuildMetadata with the strings"),
}


@pytest.mark.parametrize(("content", "match"), METADATA_REJECTIONS.values(), ids=METADATA_REJECTIONS.keys())
def test_metadata_that_is_not_nitro_clis(content: bytes, match: str) -> None:
    error = rejected(raw_eif([*PLAIN[:2], (METADATA, content), PLAIN[3]]), "metadata", match)
    assert error.message.startswith("at offset 603: metadata")


# --- the signature section ------------------------------------------------------------------------


def _pcr_signature(pem: bytes, cose: bytes) -> bytes:
    return cbor2.dumps([{"signing_certificate": list(pem), "signature": list(cose)}])


def _cose(protected: bytes = b"\xa1\x01\x38\x22", payload: bytes = b"", signature: bytes = bytes(96)) -> bytes:
    return cbor2.dumps([protected, {}, payload, signature])


PEM = _P384[0].public_bytes(Encoding.PEM)
_DER = _P384[0].public_bytes(Encoding.DER)


def _pem_of(der: bytes) -> bytes:
    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = [body[at : at + 64] for at in range(0, len(body), 64)]
    return b"-----BEGIN CERTIFICATE-----\n" + b"\n".join(lines) + b"\n-----END CERTIFICATE-----\n"


# The issuer's common name as an INTEGER: the certificate loads, its issuer does not (found by fuzz_eif).
_CN = b"nitro_attest EIF signing TEST-ONLY"
_BAD_ISSUER = _DER[: _DER.index(_CN) - 2] + b"\x02" + _DER[_DER.index(_CN) - 1 :]
_VERSION = b"\xa0\x03\x02\x01\x02"
_BAD_VERSION = _DER.replace(_VERSION, b"\xa0\x03\x02\x01\x07", 1)
GOOD_COSE = _cose()
SIGNATURE_REJECTIONS = {
    "not an array": (cbor2.dumps({}), r"expected an array of one PcrSignature"),
    "two entries": (cbor2.dumps([{}, {}]), r"expected an array of exactly one PcrSignature"),
    "indefinite array": (b"\x9f\xff", r"of definite length"),
    "map of 3": (cbor2.dumps([{"a": 1, "b": 2, "c": 3}]), r"a PcrSignature map of 2 entries"),
    "keys swapped": (
        cbor2.dumps([{"signature": [], "signing_certificate": []}]),
        r'the text key "signing_certificate"',
    ),
    "byte strings": (cbor2.dumps([{"signing_certificate": PEM, "signature": GOOD_COSE}]), r"an array of integers"),
    "integer over 255": (
        cbor2.dumps([{"signing_certificate": [256], "signature": []}]),
        r"element 0 of signing_certificate",
    ),
    "array longer than the input": (
        b"\x81\xa2\x73signing_certificate\x9a\xff\xff\xff\xff",
        r"4294967295 array elements",
    ),
    "cut in a length": (b"\x81\xa2\x73signing_certificate\x9a\xff", r"4 more bytes of the length"),
    "cut in an element": (b"\x81\xa2\x73signing_certificate\x82\x01\x18", r"element 1 of signing_certificate"),
    "trailing bytes": (_pcr_signature(PEM, GOOD_COSE) + b"\x00", r"1 bytes follow the PcrSignature"),
    "not PEM": (_pcr_signature(_P384[0].public_bytes(Encoding.DER), GOOD_COSE), r"expected a PEM certificate"),
    "damaged PEM": (_pcr_signature(PEM.replace(b"M", b"!", 3), GOOD_COSE), r"expected a PEM X.509 certificate"),
    "two certificates": (_pcr_signature(PEM + PEM, GOOD_COSE), r"expected one certificate, found 2"),
    "unparsable issuer": (_pcr_signature(_pem_of(_BAD_ISSUER), GOOD_COSE), r"error parsing asn1 value.*issuer"),
    "X.509 version 8": (_pcr_signature(_pem_of(_BAD_VERSION), GOOD_COSE), r"7 is not a valid X509 version"),
    "COSE not CBOR": (_pcr_signature(PEM, b"\xff"), r"signature: COSE_Sign1"),
    "COSE tagged": (_pcr_signature(PEM, b"\xd2" + GOOD_COSE), r"CBOR tag 18 is not allowed"),
    "COSE of 3": (_pcr_signature(PEM, cbor2.dumps([b"", {}, b""])), r"an untagged COSE_Sign1 array of 4"),
    "COSE payload null": (_pcr_signature(PEM, cbor2.dumps([b"\xa0", {}, None, b""])), r"expected byte strings"),
    "unprotected not a map": (_pcr_signature(PEM, cbor2.dumps([b"\xa0", [], b"", b""])), r"a map for the unprotected"),
    "protected empty map": (_pcr_signature(PEM, _cose(protected=b"\xa0")), r"expected the protected header \{1: alg\}"),
    "algorithm ES256K": (_pcr_signature(PEM, _cose(protected=cbor2.dumps({1: -47}))), r"algorithm -47 is not ES256"),
    "algorithm true": (_pcr_signature(PEM, _cose(protected=b"\xa1\x01\xf5")), r"algorithm True is not ES256"),
}


@pytest.mark.parametrize(("content", "match"), SIGNATURE_REJECTIONS.values(), ids=SIGNATURE_REJECTIONS.keys())
def test_a_signature_section_that_is_not_what_nitro_cli_writes(content: bytes, match: str) -> None:
    error = rejected(raw_eif([*PLAIN, (SIGNATURE, content)]), "signature", match)
    assert error.message.startswith("at offset ")


def test_signed_with_another_key(tmp_path: Path) -> None:
    path, _ = built(tmp_path, signing_certificate=_P384[0], signing_key=derive_key("not the certificate's key"))
    description = describe(path, strict=True)
    assert description.signature is not None
    assert description.signature.status is EifSignatureStatus.BAD_SIGNATURE
    assert "does not verify with the signing certificate's key" in description.signature.message
    assert description.signature.signed_pcr0 == description.pcrs[0]  # it names the right PCR0, but forged
    assert (
        description.pcrs[8] == hexes(built(tmp_path, "x.eif", signing_certificate=_P384[0], signing_key=_P384[1])[1])[8]
    )


def test_signed_with_a_key_of_another_curve(tmp_path: Path) -> None:
    path, _ = built(tmp_path, signing_certificate=_P384[0], signing_key=derive_key("p256", curve="P-256"))
    description = describe(path)
    assert description.signature is not None
    assert description.signature.status is EifSignatureStatus.BAD_SIGNATURE
    assert description.signature.algorithm == "ES256"
    assert "ES256 needs a secp256r1 key; the signing certificate's key is secp384r1" in description.signature.message


def test_a_signature_of_another_pcr0(tmp_path: Path) -> None:
    other = bytes(range(48))
    path, pcrs = built(tmp_path, signing_certificate=_P384[0], signing_key=_P384[1], signed_pcr0=other)
    description = describe(path, strict=True)
    assert description.signature is not None
    assert description.signature.status is EifSignatureStatus.PCR0_MISMATCH
    assert not description.signature.valid
    assert description.signature.signed_pcr0 == other
    assert description.pcrs[0] == pcrs[0] != other
    assert description.describe_eif_json()["SignatureCheck"] is False


def test_a_genuine_signature_over_something_else(tmp_path: Path) -> None:
    certificate, key = _P384
    good, _ = built(tmp_path, signing_certificate=certificate, signing_key=key)
    data = good.read_bytes()
    protected, payload = b"\xa1\x01\x38\x22", b"not a PcrInfo"
    r, s = decode_dss_signature(key.sign(sig_structure(protected, payload), ec.ECDSA(hashes.SHA384())))
    cose = _cose(protected, payload, r.to_bytes(48, "big") + s.to_bytes(48, "big"))
    section = describe(good).sections[-1]
    image = raw_eif([*PLAIN, (SIGNATURE, _pcr_signature(PEM, cose))])
    check = describe(io.BytesIO(image)).signature
    assert check is not None and check.status is EifSignatureStatus.PCR0_MISMATCH
    assert check.signed_pcr0 is None
    assert "signs no PcrInfo for PCR0" in check.message
    assert section.type is EifSectionType.SIGNATURE and len(data) > section.offset


# --- mutated headers: EifError or a description, nothing else -------------------------------------

_SEED = raw_eif([*PLAIN, (RAMDISK, b"app")])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, HEADER_SIZE + 200), st.integers(0, 255)), min_size=1, max_size=8))
def test_mutated_headers_raise_only_eif_errors(edits: list[tuple[int, int]]) -> None:
    data = bytearray(_SEED)
    for position, value in edits:
        if position < len(data):
            data[position] = value
    for strict in (False, True):
        try:
            description = describe(io.BytesIO(bytes(data)), strict=strict)
        except EifError as error:
            assert error.code in EifError.codes
        else:
            assert set(description.pcrs) <= {0, 1, 2, 8}
            dataclasses.asdict(description.sections[0]) if description.sections else None


# --- 2 GiB in constant memory ---------------------------------------------------------------------

# Linux carries a process's peak RSS across exec, so a child forked from pytest (100+ MiB)
# would report pytest's peak: a small launcher forks the measured child instead, and
# reports that child's ru_maxrss (RUSAGE_CHILDREN: the peak of its waited-for children).
_MEASURE = """
import sys
from nitro_attest.eif import describe
description = describe(sys.argv[1])
print(description.size, description.sections[-1].size)
"""
_LAUNCH = """
import resource, subprocess, sys
sizes = subprocess.run([sys.executable, "-c", sys.argv[1], sys.argv[2]], check=True, capture_output=True, text=True)
print(sizes.stdout.strip(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def test_a_2_gib_image_is_described_in_under_64_mib(tmp_path: Path) -> None:
    path, _ = built(tmp_path, ramdisks=[b"bootstrap", b""])
    description = describe(path)
    last = description.sections[-1]
    size = 2 * 1024**3
    with path.open("r+b") as file:
        # The application ramdisk grows to 2 GiB of zeros: a sparse file, no disk written.
        file.seek(28 + 8 * 32 + 8 * last.index)
        file.write(size.to_bytes(8, "big"))
        file.seek(last.offset + 4)
        file.write(size.to_bytes(8, "big"))
        file.truncate(last.data_offset + size)
    result = subprocess.run(
        [sys.executable, "-c", _LAUNCH, _MEASURE, str(path)], capture_output=True, text=True, check=True
    )
    total, ramdisk, peak_kib = map(int, result.stdout.split())
    assert (total, ramdisk) == (last.data_offset + size, size)
    print(f"peak RSS describing a 2 GiB EIF: {peak_kib / 1024:.1f} MiB")
    assert peak_kib < 64 * 1024


def test_the_fuzz_harness_runs_on_its_seeds() -> None:
    """fuzz/fuzz_eif.py's oracles hold on its own seeds (the harness itself runs under atheris)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fuzz"))
    try:
        import fuzz_eif  # noqa: PLC0415 (a script directory, not a package)
    finally:
        sys.path.pop(0)
    for _name, seed in fuzz_eif.own_seeds():
        fuzz_eif.test_one_input(seed)
