"""Resource bounds: every size, depth and count limit of DESIGN.md sections 1-2, at its exact boundary.

For each limit the largest value accepted is accepted (verified end to end,
with the test PKI, wherever an accepted value means something) and the
next one is rejected with the exact family and ``.code``. Then the inputs a
hostile sender would pick to make the verifier allocate or recurse without
bound: length headers claiming 2^63 bytes, thousands of nested indefinite
arrays, a 100 MB input. Those are checked by what they allocate
(``tracemalloc``) and by what they reach (the parser is not called), never
by how long they take.

The tests of dates at the ends of what X.509 and datetime hold, of a huge
buffer, and of the item cap and map keys are regressions of defects found
here (an OverflowError or ValueError escaping, a 100 MB copy, quadratic or
30 ms decoding of unsigned input).
"""

from __future__ import annotations

import dataclasses
import tracemalloc
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

import nitro_attest
from nitro_attest import (
    AttestationDocument,
    CertificateInvalid,
    DocumentTimeInvalid,
    MalformedDocument,
    NitroAttestError,
    Policy,
    PolicyViolation,
    SignatureInvalid,
    _cbor,
)
from nitro_attest import _chain as chain_module
from nitro_attest import _cose as cose_module
from nitro_attest import document as document_module
from nitro_attest._chain import LINK_CACHE, LinkCache
from nitro_attest.cli import EXIT_REJECTED, EXIT_USAGE, main
from nitro_attest.cli._common import MAX_INPUT_SIZE
from nitro_attest.testing import DEFAULT_PCRS, LongChain, Raw, TestPKI, long_chain, padded_to

# Every rule here holds for both CBOR scans, the C one and the Python reference.
pytestmark = pytest.mark.usefixtures("cbor_scan")

FAMILY: Mapping[str, type[NitroAttestError]] = {
    **dict.fromkeys(("size", "cbor", "cose", "schema"), MalformedDocument),
    "signature": SignatureInvalid,
    **dict.fromkeys(("certificate", "chain", "expired"), CertificateInvalid),
    "time": DocumentTimeInvalid,
    **dict.fromkeys(("pcr", "debug", "nonce", "user_data", "public_key", "stale"), PolicyViolation),
}
ANY = Policy.any_enclave(allow_debug=True)
SMALL_ALLOCATION = 256 * 1024  # far below any input these tests feed (32 KiB at most is parsed)
HUGE_INPUT = 100 * 1024 * 1024


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI.create()


@pytest.fixture(autouse=True)
def cold_cache() -> Iterator[None]:
    LINK_CACHE.clear()
    yield
    LINK_CACHE.clear()


def verify(pki: TestPKI, data: bytes, policy: Policy = ANY, **kwargs: Any) -> AttestationDocument:
    kwargs.setdefault("at", pki.document_time)
    kwargs.setdefault("roots", pki.roots)
    return nitro_attest.verify(data, policy, **kwargs)


def rejects(pki: TestPKI, data: bytes, code: str, policy: Policy = ANY, **kwargs: Any) -> NitroAttestError:
    """Asserts verify() rejects ``data`` with exactly ``code`` and its family, and verify_batch() agrees."""
    with pytest.raises(NitroAttestError) as raised:
        verify(pki, data, policy, **kwargs)
    error = raised.value
    assert (type(error), error.code) == (FAMILY[code], code), str(error)
    kwargs.setdefault("at", pki.document_time)
    kwargs.setdefault("roots", pki.roots)
    [batched] = nitro_attest.verify_batch([data], policy, workers=1, **kwargs)
    assert isinstance(batched, NitroAttestError)
    assert (type(batched), batched.code) == (type(error), code), str(batched)
    return error


def head(major: int, argument: int, size: int | None = None) -> bytes:
    """A CBOR head; ``size`` forces 1, 2, 4 or 8 argument bytes (else the shortest form)."""
    if size is None:
        if argument < 24:
            return bytes([major << 5 | argument])
        size = next(size for size in (1, 2, 4, 8) if argument < 1 << (8 * size))
    info = {1: 24, 2: 25, 4: 26, 8: 27}[size]
    return bytes([major << 5 | info]) + argument.to_bytes(size, "big")


def payload_of(data: bytes) -> bytes:
    payload: bytes = cbor2.loads(data)[2]
    return payload


def with_payload_size(pki: TestPKI, size: int, **kwargs: Any) -> bytes:
    """A document whose payload is exactly ``size`` bytes: an unknown ``padding`` field takes the rest."""
    extra = dict(kwargs.pop("payload_overrides", {}))
    filler = 0
    for _ in range(8):  # the padding's own head grows at 24, 256 and 65536 bytes
        data = pki.document(payload_overrides={**extra, "padding": bytes(filler)}, **kwargs)
        missing = size - len(payload_of(data))
        if missing == 0:
            return data
        filler += missing
        assert filler >= 0, "the document is already larger than the size asked for"
    raise AssertionError(f"cannot pad the payload to exactly {size} bytes")


def chunked_payload(filler_chunks: int) -> Callable[[list[object]], object]:
    """An envelope edit: the payload as an indefinite-length byte string, ``filler_chunks`` empty chunks first.

    The signed payload is the chunks joined, so the document grows by one byte
    per chunk while the payload stays the same: the way to a document at the
    32 KiB cap that still verifies.
    """

    def edit(parts: list[object]) -> object:
        payload = parts[2]
        assert isinstance(payload, bytes)
        parts[2] = Raw(b"\x5f" + b"\x40" * filler_chunks + cbor2.dumps(payload) + b"\xff")
        return parts

    return edit


def with_document_size(pki: TestPKI, size: int, **kwargs: Any) -> bytes:
    """A valid document of exactly ``size`` bytes, padded by empty chunks of its payload byte string."""
    base = len(pki.document(envelope=chunked_payload(0), **kwargs))
    data = pki.document(envelope=chunked_payload(size - base), **kwargs)
    assert len(data) == size
    return data


# ---------------------------------------------------------------------------
# Certificates of an exact DER size, and a cabundle of MAX_BUNDLE certificates
# ---------------------------------------------------------------------------


def der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.DER)


@pytest.fixture(scope="module")
def max_chain(pki: TestPKI) -> LongChain:
    """MAX_BUNDLE (8) cabundle certificates and a leaf, every one exactly MAX_CERTIFICATE_SIZE (1024) bytes."""
    chain = long_chain(pki, document_module.MAX_BUNDLE, size=document_module.MAX_CERTIFICATE_SIZE)
    assert [len(der(c)) for c in (*chain.bundle, chain.pki.leaf)] == [1024] * 9
    return chain


# ---------------------------------------------------------------------------
# Sizes: the document, the payload, the input
# ---------------------------------------------------------------------------


def test_the_limits_are_the_documented_ones() -> None:
    assert (_cbor.MAX_DOCUMENT_SIZE, _cbor.MAX_PAYLOAD_SIZE, _cbor.MAX_PAYLOAD_DEPTH) == (32 * 1024, 16 * 1024, 4)
    limits = document_module
    assert (limits.MAX_PCRS, limits.MAX_PCR_INDEX, limits.PCR_SIZE) == (32, 31, 48)
    assert (limits.MAX_BUNDLE, limits.MAX_CERTIFICATE_SIZE, limits.MAX_FIELD_SIZE) == (8, 1024, 1024)


def test_document_of_exactly_32_kib_is_judged_on_its_content(pki: TestPKI) -> None:
    """Not refused for its size. A valid document cannot be this large: past the 16 KiB payload only
    padding chunks could fill it, and the item cap stops them first."""
    error = rejects(pki, with_document_size(pki, 32 * 1024), "cbor")
    assert f"more than {_cbor.MAX_ITEMS} data items" in str(error)


def test_document_of_32_kib_plus_one_is_rejected_for_size(pki: TestPKI) -> None:
    rejects(pki, with_document_size(pki, 32 * 1024 + 1), "size")


def test_the_size_check_comes_before_any_decoding(pki: TestPKI) -> None:
    # 32 KiB of nesting is a cbor error; one byte more is a size error, whatever it contains.
    rejects(pki, b"\x9f" * (32 * 1024), "cbor")
    rejects(pki, b"\x9f" * (32 * 1024 + 1), "size")
    rejects(pki, b"\xff" * (32 * 1024 + 1), "size")


def test_payload_of_exactly_16_kib_is_accepted(pki: TestPKI) -> None:
    verify(pki, with_payload_size(pki, 16 * 1024))


def test_payload_of_16_kib_plus_one_is_rejected_for_size(pki: TestPKI) -> None:
    data = with_payload_size(pki, 16 * 1024 + 1)
    assert len(data) < 32 * 1024
    rejects(pki, data, "size")


def test_the_payload_limit_counts_the_joined_chunks(pki: TestPKI) -> None:
    # An indefinite-length payload is measured as signed (chunks joined), not as encoded.
    def in_chunks(parts: list[object]) -> object:
        payload = parts[2]
        assert isinstance(payload, bytes)
        chunks = b"".join(cbor2.dumps(payload[start : start + 1000]) for start in range(0, len(payload), 1000))
        parts[2] = Raw(b"\x5f" + chunks + b"\xff")
        return parts

    verify(pki, with_payload_size(pki, 16 * 1024, envelope=in_chunks))
    rejects(pki, with_payload_size(pki, 16 * 1024 + 1, envelope=in_chunks), "size")


def test_the_largest_document_every_limit_at_once_is_accepted(pki: TestPKI, max_chain: LongChain) -> None:
    """8 bundle certificates and a leaf of 1024 bytes, 32 PCRs, 1024-byte fields, a 16 KiB payload."""
    fields: dict[str, Any] = {"nonce": b"n" * 1024, "user_data": b"u" * 1024, "public_key": b"k" * 1024}
    pcrs = {index: bytes([index + 1]) * 48 for index in range(32)}
    kwargs: dict[str, Any] = {"pcrs": pcrs, "chain": max_chain.bundle, **fields}
    data = with_payload_size(max_chain.pki, 16 * 1024, **kwargs)
    assert len(payload_of(data)) == 16 * 1024
    document = verify(pki, data, Policy({31: pcrs[31]}, **fields), roots=max_chain.pki.roots)
    assert (len(document.cabundle), len(document.pcrs)) == (8, 32)


def test_a_huge_bytes_input_is_rejected_for_size_before_any_parsing(
    pki: TestPKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    huge = b"\x84" + bytes(HUGE_INPUT - 1)

    def never(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a 100 MB input reached the CBOR decoder")

    monkeypatch.setattr(_cbor, "_check_well_formed", never)
    monkeypatch.setattr(_cbor, "_loads", never)
    tracemalloc.start()
    try:
        rejects(pki, huge, "size")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < SMALL_ALLOCATION, f"rejecting a 100 MB input allocated {peak} bytes"


@pytest.mark.parametrize("kind", [bytearray, memoryview], ids=["bytearray", "memoryview"])
def test_a_huge_buffer_input_is_rejected_for_size_without_a_copy(pki: TestPKI, kind: type) -> None:
    huge = kind(bytes(HUGE_INPUT))
    tracemalloc.start()
    try:
        with pytest.raises(MalformedDocument) as raised:
            verify(pki, huge)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert raised.value.code == "size"
    assert peak < SMALL_ALLOCATION, f"rejecting a 100 MB {kind.__name__} allocated {peak} bytes"


def test_a_bytes_subclass_is_copied_to_plain_bytes(pki: TestPKI) -> None:
    class Sneaky(bytes):
        def __len__(self) -> int:  # would lie to a size check that trusted it
            return 1

    document = nitro_attest.parse(Sneaky(pki.document()))
    assert type(document.raw) is bytes
    with pytest.raises(MalformedDocument) as raised:
        nitro_attest.parse(Sneaky(bytes(_cbor.MAX_DOCUMENT_SIZE + 1)))
    assert raised.value.code == "size"


def test_a_verification_time_utc_cannot_hold_is_a_value_error(pki: TestPKI) -> None:
    # Aware and valid in its own zone, but year 10000 in UTC: a caller's mistake, not an OverflowError.
    at = datetime(9999, 12, 31, 23, 30, tzinfo=timezone(timedelta(hours=-2)))
    with pytest.raises(ValueError, match="not representable in UTC"):
        nitro_attest.verify(pki.document(), ANY, at=at, roots=pki.roots)


def test_cli_input_of_exactly_max_input_size_is_judged_and_one_more_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    at_limit, over = tmp_path / "at-limit.cbor", tmp_path / "over.cbor"
    at_limit.write_bytes(b"\x84" * MAX_INPUT_SIZE)
    over.write_bytes(b"\x84" * (MAX_INPUT_SIZE + 1))
    assert main(["verify", str(at_limit), "--any-enclave"]) == EXIT_REJECTED
    captured = capsys.readouterr()
    assert "[size]" in captured.out + captured.err
    assert main(["verify", str(over), "--any-enclave"]) == EXIT_USAGE


# ---------------------------------------------------------------------------
# Depth
# ---------------------------------------------------------------------------

NESTINGS = {
    "arrays": (b"\x81", b"\x80"),
    "indefinite-arrays": (b"\x9f", b"\x9f\xff"),
    "maps": (b"\xa1\x00", b"\xa0"),
    "indefinite-maps": (b"\xbf\x00", b"\xbf\xff"),
}


def nested(kind: str, levels: int) -> Raw:
    """``levels`` containers of ``kind``, each inside the previous one."""
    opener, innermost = NESTINGS[kind]
    closer = b"\xff" if kind.startswith("indefinite") else b""
    return Raw(opener * (levels - 1) + innermost + closer * (levels - 1))


@pytest.mark.parametrize("kind", list(NESTINGS))
def test_payload_nesting_of_4_is_accepted_and_5_rejected(pki: TestPKI, kind: str) -> None:
    # The payload map is level 1: a field holding 3 nested containers reaches 4.
    verify(pki, pki.document(payload_overrides={"future": nested(kind, 3)}))
    rejects(pki, pki.document(payload_overrides={"future": nested(kind, 4)}), "cbor")


@pytest.mark.parametrize("kind", list(NESTINGS))
def test_envelope_nesting_of_5_is_decoded_and_6_rejected(pki: TestPKI, kind: str) -> None:
    # The envelope is level 1; 4 levels in the unprotected header reach 5: decoded, then refused by shape (cose).
    def unprotected(levels: int) -> Callable[[list[object]], object]:
        def edit(parts: list[object]) -> object:
            parts[1] = nested(kind, levels)
            return parts

        return edit

    rejects(pki, pki.document(envelope=unprotected(4)), "cose")
    rejects(pki, pki.document(envelope=unprotected(5)), "cbor")


def test_protected_header_nesting_of_2_is_decoded_and_3_rejected(pki: TestPKI) -> None:
    rejects(pki, pki.document(protected=b"\xa2\x01\x38\x22\x02\x80"), "cose")
    rejects(pki, pki.document(protected=b"\xa2\x01\x38\x22\x02\x81\x80"), "cbor")


@pytest.mark.parametrize("opener", [b"\x9f", b"\xbf\x00", b"\x81", b"\x5f"], ids=["array", "map", "definite", "bstr"])
def test_deep_nesting_fills_the_input_without_recursing(pki: TestPKI, opener: bytes) -> None:
    """As deep as the size caps allow, as the document, the payload and the protected header."""
    deep = opener * (32 * 1024 // len(opener))
    rejects(pki, deep, "cbor")
    rejects(pki, b"\x84" + deep[:-1], "cbor")
    room = 16 * 1024 - len(payload_of(pki.document())) - 16
    rejects(pki, pki.document(payload_overrides={"future": Raw(opener * (room // len(opener)))}), "cbor")
    rejects(pki, pki.document(protected=opener * 8000), "cbor")


# ---------------------------------------------------------------------------
# Length headers claiming more than the input holds
# ---------------------------------------------------------------------------

HUGE_CLAIMS = {
    "bstr-2^63": head(2, 1 << 63),
    "tstr-2^63": head(3, 1 << 63),
    "bstr-2^64-1": head(2, (1 << 64) - 1),
    "array-2^64-1": head(4, (1 << 64) - 1),
    "map-2^64-1": head(5, (1 << 64) - 1),
    "array-2^32-1": head(4, (1 << 32) - 1),
    "chunk-2^63": b"\x5f" + head(2, 1 << 63),
    "text-chunk-2^63": b"\x7f" + head(3, 1 << 63),
}


def allocation_of(action: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("claim", list(HUGE_CLAIMS.values()), ids=list(HUGE_CLAIMS))
def test_huge_length_headers_are_rejected_without_allocating(pki: TestPKI, claim: bytes) -> None:
    def as_part(index: int) -> Callable[[list[object]], object]:
        def edit(parts: list[object]) -> object:
            parts[index] = Raw(claim + b"\x00" * 16)
            return parts

        return edit

    cases = {
        "document": claim + b"\x00" * 16,
        "envelope payload": pki.document(envelope=as_part(2)),
        "envelope signature": pki.document(envelope=as_part(3)),
        "signed payload field": pki.document(payload_overrides={"future": Raw(claim)}),
        "protected header": pki.document(protected=claim + b"\x00"),
    }
    for where, data in cases.items():

        def reject(data: bytes = data) -> None:
            rejects(pki, data, "cbor")

        peak = allocation_of(reject)
        assert peak < SMALL_ALLOCATION, f"{where}: rejecting a header claiming huge sizes allocated {peak} bytes"


def test_a_length_that_fits_the_input_exactly_is_accepted(pki: TestPKI) -> None:
    # 8-byte length arguments are valid CBOR (not shortest, accepted): only the claim beyond the input is refused.
    nonce = b"n" * 100
    verify(pki, pki.document(payload_overrides={"nonce": Raw(head(2, len(nonce), size=8) + nonce)}))
    rejects(pki, pki.document(payload_overrides={"nonce": Raw(head(2, len(nonce) + 10**6, size=8) + nonce)}), "cbor")


# ---------------------------------------------------------------------------
# Counts and sizes of the payload schema
# ---------------------------------------------------------------------------


def test_pcr_count_1_and_32_are_accepted_0_and_33_rejected(pki: TestPKI) -> None:
    verify(pki, pki.document(pcrs={0: DEFAULT_PCRS[0]}))
    assert len(verify(pki, pki.document(pcrs=dict.fromkeys(range(32), DEFAULT_PCRS[0]))).pcrs) == 32
    rejects(pki, pki.document(pcrs={}), "schema")
    rejects(pki, pki.document(pcrs=dict.fromkeys(range(33), DEFAULT_PCRS[0])), "schema")


@pytest.mark.parametrize("index", [32, 255, 2**64 - 1, -1, -(2**64)])
def test_pcr_index_31_is_accepted_and_outside_0_to_31_rejected(pki: TestPKI, index: int) -> None:
    assert 31 in verify(pki, pki.document(pcrs={**DEFAULT_PCRS, 31: DEFAULT_PCRS[0]})).pcrs
    assert 0 in verify(pki, pki.document(pcrs={0: DEFAULT_PCRS[0]})).pcrs
    rejects(pki, pki.document(pcrs={**DEFAULT_PCRS, index: DEFAULT_PCRS[0]}), "schema")


@pytest.mark.parametrize("size", [0, 47, 49, 1024])
def test_pcr_value_of_48_bytes_is_accepted_and_any_other_size_rejected(pki: TestPKI, size: int) -> None:
    verify(pki, pki.document(pcrs={**DEFAULT_PCRS, 5: bytes(48)}))
    rejects(pki, pki.document(pcrs={**DEFAULT_PCRS, 5: bytes(size)}), "schema")


def test_cabundle_of_1_certificate_is_accepted(pki: TestPKI) -> None:
    one = long_chain(pki, 1)
    assert len(verify(pki, one.document(), roots=one.pki.roots).cabundle) == 1


def test_cabundle_of_8_certificates_is_accepted_and_9_rejected(pki: TestPKI) -> None:
    eight, nine = long_chain(pki, 8), long_chain(pki, 9)
    assert len(verify(pki, eight.document(), roots=eight.pki.roots).cabundle) == 8
    rejects(pki, nine.document(), "schema", roots=nine.pki.roots)
    rejects(pki, pki.document(chain=[]), "schema")


def test_certificates_of_exactly_1024_bytes_are_accepted(pki: TestPKI, max_chain: LongChain) -> None:
    verify(pki, max_chain.document(), roots=max_chain.pki.roots)


@pytest.mark.parametrize("level", ["leaf", "instance", "root"])
def test_a_certificate_of_1025_bytes_is_rejected(pki: TestPKI, level: Any) -> None:
    def padded(extra: Sequence[x509.Extension[x509.ExtensionType]]) -> x509.Certificate:
        certificate: x509.Certificate = getattr(pki.reissue(level, extensions=extra), level)
        return certificate

    at_limit, over = padded_to(1024, padded), padded_to(1025, padded)
    for certificate, outcome in ((at_limit, None), (over, "schema")):
        # Same key and names: the certificates around it still chain to it.
        replacement: dict[str, Any] = {level: certificate}
        changed = dataclasses.replace(pki, **replacement)
        data = changed.document()
        if outcome is None:
            verify(pki, data, roots=changed.roots)
        else:
            rejects(pki, data, outcome, roots=changed.roots)


def test_an_empty_certificate_is_rejected(pki: TestPKI) -> None:
    rejects(pki, pki.document(payload_overrides={"certificate": b""}), "schema")
    rejects(pki, pki.document(payload_overrides={"cabundle": [der(pki.root), b""]}), "schema")


@pytest.mark.parametrize("field", ["nonce", "user_data", "public_key"])
def test_optional_fields_of_0_and_1024_bytes_are_accepted_and_1025_rejected(pki: TestPKI, field: str) -> None:
    for size in (0, 1024):
        bound: dict[str, Any] = {field: bytes([size % 251]) * size}
        document = verify(pki, pki.document(**bound), Policy.any_enclave(**bound))
        assert getattr(document, field) == bound[field]
    over: dict[str, Any] = {field: bytes(1025)}
    rejects(pki, pki.document(**over), "schema")


def test_module_id_has_no_cap_of_its_own_but_the_payload_cap(pki: TestPKI) -> None:
    room = 16 * 1024 - len(payload_of(pki.document(module_id="")))
    longest = "i" * (room - 2)  # its text head takes 3 bytes where the empty text's took 1
    assert len(payload_of(pki.document(module_id=longest))) == 16 * 1024
    assert verify(pki, pki.document(module_id=longest)).module_id == longest
    rejects(pki, pki.document(module_id=longest + "i"), "size")


MAX_TIMESTAMP = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)
MAX_TIMESTAMP_MS = (MAX_TIMESTAMP - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(milliseconds=1)


def test_timestamp_range_is_1_ms_to_the_end_of_year_9999(pki: TestPKI) -> None:
    first = pki.document(payload_overrides={"timestamp": 1})
    last = pki.document(payload_overrides={"timestamp": MAX_TIMESTAMP_MS})
    assert nitro_attest.parse(first).timestamp == datetime(1970, 1, 1, 0, 0, 0, 1000, tzinfo=timezone.utc)
    assert nitro_attest.parse(last).timestamp == MAX_TIMESTAMP
    rejects(pki, first, "time")  # decoded, then outside the leaf's validity
    rejects(pki, last, "time")
    for beyond in (0, MAX_TIMESTAMP_MS + 1, 2**64 - 1, -1, -(2**64)):
        rejects(pki, pki.document(payload_overrides={"timestamp": beyond}), "schema")


def _valid_until_the_end_of_time(pki: TestPKI) -> TestPKI:
    levels: tuple[Any, ...] = ("root", "regional", "zonal", "instance", "leaf")
    for level in levels:
        pki = pki.reissue(level, not_after=MAX_TIMESTAMP)
    return pki


def test_the_latest_timestamp_verifies_just_before_the_end_of_time(pki: TestPKI) -> None:
    forever = _valid_until_the_end_of_time(pki)
    data = forever.document(timestamp=MAX_TIMESTAMP)
    verify(forever, data, at=MAX_TIMESTAMP - timedelta(minutes=1))


def test_verification_at_the_latest_representable_instant(pki: TestPKI) -> None:
    forever = _valid_until_the_end_of_time(pki)
    data = forever.document(timestamp=MAX_TIMESTAMP)
    verify(forever, data, at=MAX_TIMESTAMP)  # at=document.timestamp, as the README suggests for archives


# ---------------------------------------------------------------------------
# Certificate validity dates at the ends of what X.509 and datetime hold
# ---------------------------------------------------------------------------


def with_not_before(certificate: x509.Certificate, generalized_time: bytes) -> bytes:
    """The certificate's DER with notBefore replaced by a GeneralizedTime (its signature no longer matches)."""
    data = der(certificate)
    utc_time = b"\x17\x0d" + certificate.not_valid_before_utc.strftime("%y%m%d%H%M%SZ").encode()
    position = data.index(utc_time)
    replacement = b"\x18" + bytes([len(generalized_time)]) + generalized_time
    grown = len(replacement) - len(utc_time)
    out = bytearray(data[:position] + replacement + data[position + len(utc_time) :])
    assert out[position - 2] == 0x30 and out[position - 1] < 0x80  # Validity: a short SEQUENCE
    out[position - 1] += grown
    for offset in (0, 4):  # Certificate and TBSCertificate: SEQUENCEs with 2 length bytes
        assert out[offset : offset + 2] == b"\x30\x82"
        out[offset + 2 : offset + 4] = (int.from_bytes(out[offset + 2 : offset + 4], "big") + grown).to_bytes(2, "big")
    return bytes(out)


def resigned(certificate_der: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    """``certificate_der`` with its TBSCertificate signed again by ``key`` (ecdsa-with-SHA384)."""
    tbs_end = 8 + int.from_bytes(certificate_der[6:8], "big")
    tbs, rest = certificate_der[4:tbs_end], certificate_der[tbs_end:]
    algorithm = rest[: 2 + rest[1]]
    signature = key.sign(tbs, ec.ECDSA(hashes.SHA384(), deterministic_signing=True))
    body = tbs + algorithm + b"\x03" + bytes([len(signature) + 1]) + b"\x00" + signature
    return b"\x30\x82" + len(body).to_bytes(2, "big") + body


YEAR_1 = b"00010101000000Z"  # 0001-01-01: datetime's first day; notBefore - 60 s does not exist
YEAR_0 = b"00000101000000Z"  # valid GeneralizedTime, not a Python datetime


def test_an_unsigned_leaf_from_year_1_is_a_chain_error_for_verify(pki: TestPKI) -> None:
    data = pki.document(payload_overrides={"certificate": with_not_before(pki.leaf, YEAR_1)})
    with pytest.raises(CertificateInvalid) as raised:
        verify(pki, data)
    assert raised.value.code == "chain"


def test_an_unsigned_leaf_from_year_1_is_a_chain_error_for_verify_batch(pki: TestPKI) -> None:
    data = pki.document(payload_overrides={"certificate": with_not_before(pki.leaf, YEAR_1)})
    [result] = nitro_attest.verify_batch([data], ANY, at=pki.document_time, roots=pki.roots)
    assert isinstance(result, CertificateInvalid)
    assert result.code == "chain"


def test_a_leaf_from_year_0_is_rejected_by_verify_batch(pki: TestPKI) -> None:
    data = pki.document(payload_overrides={"certificate": with_not_before(pki.leaf, YEAR_0)})
    [result] = nitro_attest.verify_batch([data], ANY, at=pki.document_time, roots=pki.roots)
    assert isinstance(result, CertificateInvalid)


def test_a_signed_leaf_valid_since_year_1_verifies(pki: TestPKI) -> None:
    leaf = resigned(with_not_before(pki.leaf, YEAR_1), pki.instance_key)
    assert x509.load_der_x509_certificate(leaf).not_valid_before_utc.year == 1
    verify(pki, pki.document(payload_overrides={"certificate": leaf}))


def test_cli_inspect_of_a_leaf_from_year_0_is_not_a_crash(pki: TestPKI, tmp_path: Path) -> None:
    path = tmp_path / "year0.cbor"
    path.write_bytes(pki.document(payload_overrides={"certificate": with_not_before(pki.leaf, YEAR_0)}))
    assert main(["inspect", str(path)]) in (0, EXIT_REJECTED)


# ---------------------------------------------------------------------------
# Envelope counts and sizes
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 95, 97, 192])
def test_signature_of_96_bytes_is_accepted_and_any_other_size_rejected(pki: TestPKI, size: int) -> None:
    verify(pki, pki.document())
    rejects(pki, pki.document(signature=lambda signature: (signature * 2)[:size]), "cose")


@pytest.mark.parametrize("count", [0, 1, 3, 5, 1000])
def test_envelope_of_4_elements_is_accepted_and_any_other_count_rejected(pki: TestPKI, count: int) -> None:
    def resize(parts: list[object]) -> object:
        return (parts + [None] * count)[:count]

    verify(pki, pki.document())
    rejects(pki, pki.document(envelope=resize), "cose")


# ---------------------------------------------------------------------------
# What a stream of hostile documents can make the package keep: every cache is bounded
# ---------------------------------------------------------------------------


def test_the_link_cache_keeps_at_most_maxsize_links_and_paths() -> None:
    assert LINK_CACHE.maxsize == 4096
    cache = LinkCache(maxsize=3)
    for number in range(10):
        cache.add((b"issuer", number.to_bytes(2, "big")))
        cache.add_path((b"root", number.to_bytes(2, "big")))
    assert len(cache) == 3
    assert [cache.has_path((b"root", number.to_bytes(2, "big"))) for number in range(10)] == [False] * 7 + [True] * 3


def test_the_certificate_parse_cache_is_bounded(pki: TestPKI) -> None:
    limit = document_module._parse_certificate.cache_info().maxsize
    assert limit == 1024
    for number in range(limit + 50):
        garbage = b"\x30\x03\x02\x01" + bytes([number % 256]) + number.to_bytes(2, "big")
        with pytest.raises(CertificateInvalid):
            nitro_attest.parse(pki.document(payload_overrides={"certificate": garbage}))
    assert document_module._parse_certificate.cache_info().currsize <= limit


def test_the_remembered_roots_are_bounded(pki: TestPKI) -> None:
    document = nitro_attest.parse(pki.document())
    root_der = der(pki.root)
    # Distinct objects for the same root: the cache is keyed by identity, so each would be a new entry.
    roots = [x509.load_der_x509_certificate(root_der) for _ in range(chain_module._MAX_ROOTS_REMEMBERED * 2)]
    for root in roots:
        assert chain_module.is_trusted_anchor(document, [root])
    assert len(chain_module._ROOT_DER) <= chain_module._MAX_ROOTS_REMEMBERED


def test_the_leaf_point_cache_is_bounded(pki: TestPKI) -> None:
    limit = cose_module._MAX_LEAF_POINTS
    assert limit == 1024
    document = nitro_attest.parse(pki.document())
    *bundle, leaf = document.chain_der
    try:
        for number in range(limit + 50):  # as many distinct leaves (by DER, the key) as a long stream brings
            cose_module._leaf_point(
                dataclasses.replace(document, chain_der=(*bundle, leaf + number.to_bytes(2, "big")))
            )
        assert len(cose_module._LEAF_POINTS) <= limit
    finally:
        cose_module._LEAF_POINTS.clear()


# ---------------------------------------------------------------------------
# Data items per decoded item, and map keys
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("opener", [b"\x99", b"\x9f"], ids=["definite", "indefinite"])
def test_an_item_of_max_items_is_decoded_and_one_more_rejected(opener: bytes) -> None:
    def array(count: int) -> bytes:
        head = opener + count.to_bytes(2, "big") if opener == b"\x99" else opener
        return head + b"\x00" * count + (b"\xff" if opener == b"\x9f" else b"")

    # The array itself is one item: MAX_ITEMS - 1 elements fill the budget.
    assert len(_cbor.decode_item(array(_cbor.MAX_ITEMS - 1), max_depth=1, what="payload")) == _cbor.MAX_ITEMS - 1
    with pytest.raises(MalformedDocument) as raised:
        _cbor.decode_item(array(_cbor.MAX_ITEMS), max_depth=1, what="payload")
    assert raised.value.code == "cbor"
    assert f"more than {_cbor.MAX_ITEMS} data items" in str(raised.value)


def test_string_chunks_count_as_items(pki: TestPKI) -> None:
    verify(pki, pki.document(envelope=chunked_payload(_cbor.MAX_ITEMS - 10)))
    error = rejects(pki, pki.document(envelope=chunked_payload(_cbor.MAX_ITEMS)), "cbor")
    assert "data items" in str(error)


@pytest.mark.parametrize("key", [b"\x81\x00", b"\xa0", b"\x9f\xff"], ids=["array", "map", "indefinite-array"])
@pytest.mark.parametrize("where", ["unprotected", "payload"])
def test_array_and_map_keys_are_refused_before_decoding(pki: TestPKI, key: bytes, where: str) -> None:
    """cbor2 makes array and map keys tuples and frozendicts, whose hashes collide on demand: a map of
    thousands of them took quadratic time to build before any signature was checked (benchmarks/worst_case.py)."""
    if where == "unprotected":

        def unprotected(parts: list[object]) -> object:
            parts[1] = Raw(b"\xa1" + key + b"\x00")
            return parts

        data = pki.document(envelope=unprotected)
    else:
        data = pki.document(payload_overrides={"x": Raw(b"\xa1" + key + b"\x00")})
    error = rejects(pki, data, "cbor")
    assert "map key that is an" in str(error)


@pytest.mark.parametrize("key", [b"\x41\x00", b"\x5f\xff", b"\xf4", b"\xf6"], ids=["bytes", "chunked", "false", "null"])
def test_other_scalar_keys_in_an_unknown_field_are_ignored_with_it(pki: TestPKI, key: bytes) -> None:
    # They hash cheaply; an unknown payload field is ignored, whatever its keys (a field AWS might add).
    verify(pki, pki.document(payload_overrides={"x": Raw(b"\xa1" + key + b"\x00")}))


def test_integer_and_text_map_keys_of_every_form_are_accepted() -> None:
    # Negative and non-shortest integers, indefinite-length text: all hash safely and appear in the wild.
    decoded = _cbor.decode_item(b"\xa4\x20\x00\x18\x01\x00\x61a\x00\x7f\x61b\xff\x00", max_depth=1, what="x")
    assert decoded == {-1: 0, 1: 0, "a": 0, "b": 0}
