"""Property tests: for any bytes, verify() and parse() return or raise a NitroAttestError, nothing else.

1. arbitrary bytes, and plausible envelopes around random payload maps;
2. mutations (bit flips, insertions, deletions, truncations, splices, cbor2
   re-encodings of a decoded and modified payload or envelope) of the real
   documents in ../shared and of a document made by the test PKI;
3. a mutation that verifies must carry a signed payload byte for byte: the
   original's (or, after a splice, the donor's). ECDSA malleability or a
   re-encoded envelope may change the other bytes; test_accepted_mutants_keep_the_payload
   shows such mutations exist, so the check is not vacuous.

Last, deterministic DER edits of the test PKI's certificates (malformed
extensions) that byte mutations almost never produce.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import cbor2
import pytest
from conftest import require_shared
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import event, given, settings
from hypothesis import strategies as st

import nitro_attest
from nitro_attest import CertificateInvalid, MalformedDocument, NitroAttestError, Policy
from nitro_attest._backend import P384_ORDER
from nitro_attest.testing import TestPKI

ANY_ENCLAVE = Policy.any_enclave(allow_debug=True)
# A time inside the AWS root's validity, for inputs that have no time of their own.
SOME_TIME = datetime(2025, 1, 1, tzinfo=timezone.utc)
NITRO_PROTECTED = bytes.fromhex("a1013822")  # {1: -35}


@dataclass(frozen=True)
class Original:
    """A document that verifies, with what it takes to verify it."""

    name: str
    data: bytes
    payload: bytes
    at: datetime
    roots: tuple[x509.Certificate, ...] | None  # None: the shipped AWS root


def original(name: str, data: bytes, at: datetime | None, roots: Sequence[x509.Certificate] | None) -> Original:
    document = nitro_attest.parse(data)
    at = document.timestamp if at is None else at
    roots = None if roots is None else tuple(roots)
    assert nitro_attest.verify(data, ANY_ENCLAVE, at=at, roots=roots).payload == document.payload
    return Original(name, data, document.payload, at, roots)


def check(data: bytes, source: Original | None, pool: Sequence[Original] = ()) -> None:
    """The properties: only NitroAttestError escapes; what verifies carries a payload that was signed.

    ``source`` is the document ``data`` was made from (None: made from nothing)
    and gives the verification time and roots; ``pool`` are the documents its
    bytes may have been spliced with. A document that verifies must carry the
    payload of one of them, byte for byte: no one signed anything else.
    """
    try:
        nitro_attest.parse(data)
    except NitroAttestError as exc:
        # parse() decodes and loads certificates; it checks no signature, chain or time.
        assert isinstance(exc, MalformedDocument) or (isinstance(exc, CertificateInvalid) and exc.code == "certificate")
    at = SOME_TIME if source is None else source.at
    roots = None if source is None else source.roots
    try:
        document = nitro_attest.verify(data, ANY_ENCLAVE, at=at, roots=roots)
    except NitroAttestError as exc:
        event(f"rejected: {exc.code}")  # shown by --hypothesis-show-statistics
        return
    event("verified")
    assert source is not None, "bytes that were never signed verified"
    signed = {source.payload} | {other.payload for other in pool}
    assert document.payload in signed, "a changed payload verified"


# -- strategies -----------------------------------------------------------------------------------

cbor_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)  # past 64 bits cbor2 writes a bignum tag
    | st.floats()
    | st.text(max_size=16)
    | st.binary(max_size=64)
)
cbor_values = st.recursive(
    cbor_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.integers(-2, 40), children, max_size=4)
        | st.builds(cbor2.CBORTag, st.sampled_from([0, 1, 2, 18, 24, 258, 55799]), children)
    ),
    max_leaves=8,
)


@st.composite
def plausible_payloads(draw: st.DrawFn) -> dict[Any, Any]:
    """Maps shaped like a payload, each field either well-typed or anything."""

    def field(good: st.SearchStrategy[Any]) -> Any:
        return draw(good | cbor_values)

    payload = {
        "module_id": field(st.text(min_size=1, max_size=40)),
        "digest": field(st.just("SHA384")),
        "timestamp": field(st.integers(min_value=0, max_value=2**64 - 1)),
        "pcrs": field(st.dictionaries(st.integers(-1, 33), st.binary(min_size=47, max_size=49), max_size=18)),
        "certificate": field(st.binary(min_size=0, max_size=64)),
        "cabundle": field(st.lists(st.binary(max_size=32), max_size=9)),
    }
    for key in ("public_key", "user_data", "nonce"):
        if draw(st.booleans()):
            payload[key] = field(st.none() | st.binary(max_size=1100))
    for key in draw(st.sets(st.sampled_from(sorted(payload)), max_size=2)):
        del payload[key]
    return payload


@st.composite
def plausible_envelopes(draw: st.DrawFn) -> bytes:
    payload = cbor2.dumps(draw(plausible_payloads()), canonical=draw(st.booleans()))
    protected = draw(st.just(NITRO_PROTECTED) | st.binary(max_size=8))
    signature = draw(st.binary(min_size=96, max_size=96) | st.binary(max_size=100))
    envelope: Any = [protected, {}, payload, signature]
    if draw(st.booleans()):
        envelope = cbor2.CBORTag(18, envelope)
    return cbor2.dumps(envelope)


# Byte-level mutations: (draw, bytes, donor documents) -> bytes.
Mutation = Callable[[st.DrawFn, bytes, Sequence[bytes]], bytes]


def position(draw: st.DrawFn, data: bytes, *, end: bool = False) -> int:
    return draw(st.integers(0, len(data) if end else len(data) - 1))


def flip_bit(draw: st.DrawFn, data: bytes, donors: Sequence[bytes]) -> bytes:
    at = position(draw, data)
    return data[:at] + bytes([data[at] ^ (1 << draw(st.integers(0, 7)))]) + data[at + 1 :]


def set_byte(draw: st.DrawFn, data: bytes, donors: Sequence[bytes]) -> bytes:
    at = position(draw, data)
    return data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]


def insert_bytes(draw: st.DrawFn, data: bytes, donors: Sequence[bytes]) -> bytes:
    at = position(draw, data, end=True)
    return data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]


def delete_bytes(draw: st.DrawFn, data: bytes, donors: Sequence[bytes]) -> bytes:
    at = position(draw, data)
    return data[:at] + data[at + draw(st.integers(1, 64)) :]


def truncate(draw: st.DrawFn, data: bytes, donors: Sequence[bytes]) -> bytes:
    return data[: position(draw, data)]


def splice(draw: st.DrawFn, data: bytes, donors: Sequence[bytes]) -> bytes:
    donor = draw(st.sampled_from(donors))
    return data[: position(draw, data, end=True)] + donor[position(draw, donor, end=True) :]


MUTATIONS: list[Mutation] = [flip_bit, set_byte, insert_bytes, delete_bytes, truncate, splice]


@st.composite
def byte_mutants(draw: st.DrawFn, sources: Sequence[Original]) -> tuple[Original, bytes]:
    source = draw(st.sampled_from(sources))
    data = source.data
    for _ in range(draw(st.integers(1, 3))):
        mutation = draw(st.sampled_from(MUTATIONS))
        data = mutation(draw, data, [other.data for other in sources]) if data else b"\x84"
    return source, data


def flip_one_byte(draw: st.DrawFn, value: bytes) -> bytes:
    if not value:
        return b"\x00"
    at = position(draw, value)
    return value[:at] + bytes([value[at] ^ 0xFF]) + value[at + 1 :]


def edit_payload(draw: st.DrawFn, payload: dict[Any, Any]) -> dict[Any, Any]:
    """One change to a decoded payload (or none: a pure re-encoding)."""
    payload = dict(payload)
    keys = sorted(payload, key=str)
    edit = draw(st.sampled_from(["none", "delete", "replace", "add", "timestamp", "flip", "pcr"]))
    if edit == "delete":
        del payload[draw(st.sampled_from(keys))]
    elif edit == "replace":
        payload[draw(st.sampled_from(keys))] = draw(cbor_values)
    elif edit == "add":
        payload[draw(st.text(max_size=12) | st.integers(0, 5))] = draw(cbor_values)
    elif edit == "timestamp":
        payload["timestamp"] += draw(st.sampled_from([-1, 1])) * draw(st.integers(1, 10**9))
    elif edit == "flip":
        key = draw(st.sampled_from([key for key in keys if isinstance(payload[key], (bytes, str))]))
        value = payload[key]
        payload[key] = flip_one_byte(draw, value) if isinstance(value, bytes) else value + "x"
    elif edit == "pcr":
        pcrs = dict(payload["pcrs"])
        index = draw(st.sampled_from(sorted(pcrs)))
        pcrs[index] = flip_one_byte(draw, pcrs[index])
        payload["pcrs"] = pcrs
    return payload


@st.composite
def reencoded_mutants(draw: st.DrawFn, sources: Sequence[Original]) -> tuple[Original, bytes]:
    """Decodes a document with cbor2, changes its payload or an envelope part, encodes it again."""
    source = draw(st.sampled_from(sources))
    item = cbor2.loads(source.data)  # the originals are trusted, well-formed documents
    parts = list(item.value if isinstance(item, cbor2.CBORTag) else item)
    if draw(st.booleans()):
        payload = edit_payload(draw, cbor2.loads(parts[2]))
        parts[2] = cbor2.dumps(payload, canonical=draw(st.booleans()))
    else:
        parts[draw(st.integers(0, 3))] = draw(cbor_values)
    envelope: Any = cbor2.CBORTag(18, parts) if draw(st.booleans()) else parts
    return source, cbor2.dumps(envelope)


# -- sources --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_documents() -> list[Original]:
    directory = require_shared("vectors/aws")
    return [original(path.name, path.read_bytes(), None, None) for path in sorted(directory.glob("*.cbor"))]


@pytest.fixture(scope="module")
def test_pki() -> TestPKI:
    return TestPKI.create()


@pytest.fixture(scope="module")
def pki_documents(test_pki: TestPKI) -> list[Original]:
    return [
        original("test-pki", test_pki.document(), test_pki.document_time, test_pki.roots),
        original(
            "test-pki-indefinite",
            test_pki.document(nonce=b"n" * 32, user_data=b"u", indefinite=True, tag=18),
            test_pki.document_time,
            test_pki.roots,
        ),
    ]


# -- properties -----------------------------------------------------------------------------------


@settings(max_examples=2000, deadline=None)
@given(
    st.binary(max_size=2048)
    | st.builds(
        bytes.__add__,
        st.sampled_from([b"\x84", b"\xd2\x84", b"\x84\x44" + NITRO_PROTECTED + b"\xa0", b"\x84\x44" + NITRO_PROTECTED]),
        st.binary(max_size=512),
    )
)
def test_arbitrary_bytes(data: bytes) -> None:
    check(data, None)


@settings(max_examples=600, deadline=None)
@given(plausible_envelopes())
def test_plausible_envelopes(data: bytes) -> None:
    check(data, None)


@settings(max_examples=2000, deadline=None)
@given(st.data())
def test_byte_mutations_of_real_documents(real_documents: list[Original], data: st.DataObject) -> None:
    source, mutant = data.draw(byte_mutants(real_documents), label="mutant")
    check(mutant, source, real_documents)


@settings(max_examples=1000, deadline=None)
@given(st.data())
def test_reencoded_real_documents(real_documents: list[Original], data: st.DataObject) -> None:
    source, mutant = data.draw(reencoded_mutants(real_documents), label="mutant")
    check(mutant, source)


@settings(max_examples=1000, deadline=None)
@given(st.data())
def test_byte_mutations_of_test_pki_document(pki_documents: list[Original], data: st.DataObject) -> None:
    source, mutant = data.draw(byte_mutants(pki_documents), label="mutant")
    check(mutant, source, pki_documents)


@settings(max_examples=500, deadline=None)
@given(st.data())
def test_reencoded_test_pki_document(pki_documents: list[Original], data: st.DataObject) -> None:
    source, mutant = data.draw(reencoded_mutants(pki_documents), label="mutant")
    check(mutant, source)


def equivalent_envelopes(source: Original) -> list[bytes]:
    """Other bytes for the same signed payload, all of which verify (DESIGN.md sections 1, 2 and 5)."""
    item = cbor2.loads(source.data)
    tagged = isinstance(item, cbor2.CBORTag)
    protected, _, payload, signature = item.value if tagged else item
    r, s = signature[:48], int.from_bytes(signature[48:], "big")
    malleated = r + (P384_ORDER - s).to_bytes(48, "big")  # (r, n - s) is valid too
    parts = [protected, {}, payload, malleated]
    body = cbor2.dumps(parts)
    return [
        cbor2.dumps(parts if tagged else cbor2.CBORTag(18, parts)),  # tag 18 toggled
        b"\x98\x04" + body[1:],  # the array header in a non-shortest form
    ]


@pytest.mark.parametrize("pool", ["real_documents", "pki_documents"])
def test_accepted_mutants_keep_the_payload(request: pytest.FixtureRequest, pool: str) -> None:
    """The oracle of property 3 is not vacuous: some changed bytes do verify, always with the same payload."""
    sources: list[Original] = request.getfixturevalue(pool)
    for source in sources[:4]:
        for mutant in equivalent_envelopes(source):
            assert mutant != source.data
            document = nitro_attest.verify(mutant, ANY_ENCLAVE, at=source.at, roots=source.roots)
            assert document.payload == source.payload


# -- certificate structure: DER edits the byte strategies almost never hit -----------------------
#
# Each edit rebuilds one certificate of the test chain and re-signs it with its
# issuer's key, so the document is genuine but for one malformed extension.
# parse() must reject it as CertificateInvalid("certificate"), as one.


def der_read(data: bytes, at: int = 0) -> tuple[int, int, int]:
    """(tag, header length, content length) of the DER element at ``at``."""
    length = data[at + 1]
    if length < 0x80:
        return data[at], 2, length
    size = length & 0x7F
    return data[at], 2 + size, int.from_bytes(data[at + 2 : at + 2 + size], "big")


def der_content(element: bytes) -> bytes:
    _, header, length = der_read(element)
    return element[header : header + length]


def der_children(content: bytes) -> list[bytes]:
    children, at = [], 0
    while at < len(content):
        _, header, length = der_read(content, at)
        children.append(content[at : at + header + length])
        at += header + length
    return children


def der(tag: int, content: bytes) -> bytes:
    if len(content) < 0x80:
        return bytes([tag, len(content)]) + content
    size = (len(content).bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + len(content).to_bytes(size, "big") + content


SAN_OID = bytes.fromhex("0603551d11")  # 2.5.29.17 subjectAltName


def san_extension(general_name: bytes) -> bytes:
    return der(0x30, SAN_OID + der(0x04, der(0x30, general_name)))


ExtensionEdit = Callable[[list[bytes]], list[bytes]]
EXTENSION_EDITS: dict[str, ExtensionEdit] = {
    "duplicate-extension": lambda extensions: [*extensions, extensions[0]],
    "san-x400Address": lambda extensions: [*extensions, san_extension(der(0xA3, b""))],
    "san-ediPartyName": lambda extensions: [*extensions, san_extension(der(0xA5, b""))],
    "san-unknown-choice": lambda extensions: [*extensions, san_extension(der(0x89, b"\x01"))],
    "basic-constraints-garbage": lambda extensions: [
        der(0x30, bytes.fromhex("0603551d13") + der(0x04, b"\x01\x02")),
        *extensions[1:],
    ],
}


def with_extensions(
    certificate: x509.Certificate, edit: ExtensionEdit, issuer_key: ec.EllipticCurvePrivateKey
) -> bytes:
    """The certificate with its extension list edited, re-signed (ecdsa-with-SHA384) by ``issuer_key``."""
    tbs_certificate, algorithm, _ = der_children(der_content(certificate.public_bytes(Encoding.DER)))
    fields = der_children(der_content(tbs_certificate))
    assert fields[-1][0] == 0xA3, "the last TBSCertificate field is [3] extensions"
    extensions = der_children(der_content(der_content(fields[-1])))
    fields[-1] = der(0xA3, der(0x30, b"".join(edit(extensions))))
    tbs = der(0x30, b"".join(fields))
    signature = issuer_key.sign(tbs, ec.ECDSA(hashes.SHA384()))
    return der(0x30, tbs + algorithm + der(0x03, b"\x00" + signature))


@pytest.mark.parametrize("level", ["leaf", "instance"])
# duplicate-extension and the two SAN edits make cryptography raise exceptions that are
# not ValueErrors (DuplicateExtension, UnsupportedGeneralNameType): they once escaped parse().
@pytest.mark.parametrize("edit", list(EXTENSION_EDITS))
def test_malformed_extensions_are_certificate_errors(test_pki: TestPKI, edit: str, level: str) -> None:
    if level == "leaf":
        leaf = with_extensions(test_pki.leaf, EXTENSION_EDITS[edit], test_pki.instance_key)
        data = test_pki.document(payload_overrides={"certificate": leaf})
    else:
        instance = with_extensions(test_pki.instance, EXTENSION_EDITS[edit], test_pki.zonal_key)
        bundle = [certificate.public_bytes(Encoding.DER) for certificate in test_pki.cabundle[:-1]]
        data = test_pki.document(payload_overrides={"cabundle": [*bundle, instance]})
    with pytest.raises(CertificateInvalid) as caught:
        nitro_attest.parse(data)
    assert caught.value.code == "certificate"
    with pytest.raises(CertificateInvalid) as caught:
        nitro_attest.verify(data, ANY_ENCLAVE, at=test_pki.document_time, roots=test_pki.roots)
    assert caught.value.code == "certificate"


@pytest.mark.parametrize("level", ["leaf", "instance"])
def test_reissued_certificate_without_edit_verifies(test_pki: TestPKI, level: str) -> None:
    """The control for the test above: rebuilding and re-signing alone breaks nothing."""
    if level == "leaf":
        leaf = with_extensions(test_pki.leaf, list, test_pki.instance_key)
        assert leaf != test_pki.leaf.public_bytes(Encoding.DER)  # re-signed: another ECDSA signature
        data = test_pki.document(payload_overrides={"certificate": leaf})
    else:
        instance = with_extensions(test_pki.instance, list, test_pki.zonal_key)
        bundle = [certificate.public_bytes(Encoding.DER) for certificate in test_pki.cabundle[:-1]]
        data = test_pki.document(payload_overrides={"cabundle": [*bundle, instance]})
    nitro_attest.verify(data, ANY_ENCLAVE, at=test_pki.document_time, roots=test_pki.roots)
