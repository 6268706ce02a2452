"""Writes the recorded test vectors: documents made by ``nitro_attest.testing``, one per rule.

Usage: ``python vectors/generate.py [OUTDIR]`` (default: the folder of this script),
with ``nitro_attest`` importable (``pip install -e .`` or ``PYTHONPATH=.``).

Every vector is made by the deterministic test PKI (``TestPKI.create()``), so
running this again gives byte-identical files. It writes one ``.cbor`` file per
vector, ``manifest.json`` (what ``verify`` must decide for each, and why) and
``README.md`` (the same as a table). Each rejection vector breaks exactly one
rule of DESIGN.md sections 2-5, and its expected code is the one DESIGN.md
section 6 gives that kind of failure, whatever the verifier currently does.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtensionOID, ObjectIdentifier

from nitro_attest import AWS_NITRO_ROOT_G1, CLOCK_SKEW, errors
from nitro_attest._backend import P384_ORDER
from nitro_attest.testing import DEFAULT_PCRS, OMIT, Raw, TestPKI, derive_key, encode_map

__all__ = ["PolicySpec", "Vector", "build_vectors", "generate"]

_FAMILIES = (
    errors.MalformedDocument,
    errors.SignatureInvalid,
    errors.CertificateInvalid,
    errors.DocumentTimeInvalid,
    errors.PolicyViolation,
)
# An OID in the arc RFC 7229 reserves for tests and examples: no verifier understands it.
_UNKNOWN_EXTENSION = ObjectIdentifier("1.3.6.1.5.5.7.13.99")
_PCR0 = DEFAULT_PCRS[0].hex()
_ENCLAVE_PUBLIC_KEY = (
    derive_key("nitro_attest test enclave key")
    .public_key()
    .public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
)


@dataclass(frozen=True)
class PolicySpec:
    """The policy a vector is verified with, in a form JSON can hold.

    ``pcrs`` maps an index to its allowed values (hex); None means ``Policy.any_enclave``.
    The default pins PCR0 (KMS's ImageSha384) to the test image.
    """

    pcrs: Mapping[int, Sequence[str]] | None = field(default_factory=lambda: {0: [_PCR0]})
    nonce: bytes | None = None
    user_data: bytes | None = None
    public_key: bytes | None = None
    max_age_seconds: int | None = None
    allow_debug: bool = False

    def to_json(self) -> dict[str, Any]:
        """The manifest's ``policy`` object."""

        def hex_or_none(value: bytes | None) -> str | None:
            return None if value is None else value.hex()

        return {
            "pcrs": "any" if self.pcrs is None else {str(index): list(pins) for index, pins in self.pcrs.items()},
            "nonce": hex_or_none(self.nonce),
            "user_data": hex_or_none(self.user_data),
            "public_key": hex_or_none(self.public_key),
            "max_age_seconds": self.max_age_seconds,
            "allow_debug": self.allow_debug,
        }


@dataclass(frozen=True)
class Vector:
    """One recorded document and the verdict DESIGN.md requires for it."""

    name: str
    rule: str
    description: str
    data: bytes
    at: datetime
    code: str | None = None  # None: the document must be accepted
    policy: PolicySpec = field(default_factory=PolicySpec)

    def manifest_entry(self) -> dict[str, Any]:
        """The vector's entry in ``manifest.json``."""
        return {
            "file": f"{self.name}.cbor",
            "expected": "accept" if self.code is None else "reject",
            "code": self.code,
            "exception": None if self.code is None else _family(self.code),
            "at": self.at.isoformat(),
            "policy": self.policy.to_json(),
            "rule": self.rule,
            "description": self.description,
        }


def _family(code: str) -> str:
    (family,) = (family.__name__ for family in _FAMILIES if code in family.codes)
    return family


def _der(*certificates: x509.Certificate) -> list[bytes]:
    return [certificate.public_bytes(Encoding.DER) for certificate in certificates]


def _payload_size(data: bytes) -> int:
    """The payload length of one of our own (trusted, well-formed, untagged) documents."""
    return len(cbor2.loads(data)[2])


def _padded(pki: TestPKI, payload_size: int) -> bytes:
    """A document whose payload is exactly ``payload_size`` bytes, padded by an unknown key."""
    # "padding" encodes in 8 bytes; a byte string of 256..65535 bytes has a 3-byte head.
    padding = payload_size - _payload_size(pki.document()) - 8 - 3
    data = pki.document(payload_overrides={"padding": bytes(padding)})
    if _payload_size(data) != payload_size:
        raise AssertionError(f"padding arithmetic is off: {_payload_size(data)} != {payload_size}")
    return data


def _uint64(value: int) -> Raw:
    """``value`` with an 8-byte argument: legal CBOR, not the shortest form (cbor2 always writes that)."""
    return Raw(b"\x1b" + value.to_bytes(8, "big"))


def _chunked(major_initial: int, *chunks: bytes | str) -> Raw:
    # cbor2 never writes indefinite-length strings: only the 0x5f/0x7f ... 0xff frame is by hand.
    return Raw(bytes([major_initial]) + b"".join(cbor2.dumps(chunk) for chunk in chunks) + b"\xff")


def _big_extension(size: int) -> x509.Extension[x509.ExtensionType]:
    """A non-critical unknown extension of ``size`` bytes, to grow a certificate past 1024 bytes."""
    return x509.Extension(_UNKNOWN_EXTENSION, False, x509.UnrecognizedExtension(_UNKNOWN_EXTENSION, bytes(size)))


def _basic_constraints(*, ca: bool, path_length: int | None, critical: bool = True) -> x509.Extension[Any]:
    return x509.Extension(ExtensionOID.BASIC_CONSTRAINTS, critical, x509.BasicConstraints(ca, path_length))


def _key_usage(*, digital_signature: bool, cert_sign: bool) -> x509.Extension[Any]:
    usage = x509.KeyUsage(digital_signature, False, False, False, False, cert_sign, cert_sign, False, False)
    return x509.Extension(ExtensionOID.KEY_USAGE, True, usage)


def _set(index: int, value: object) -> Callable[[list[object]], object]:
    """An ``envelope`` hook that replaces element ``index`` of the COSE_Sign1 array."""

    def edit(parts: list[object]) -> object:
        parts[index] = value
        return parts

    return edit


def _embed_payload(parts: list[object]) -> object:
    """An ``envelope`` hook that puts the payload map itself where its byte string belongs."""
    payload = parts[2]
    if not isinstance(payload, bytes):
        raise TypeError("the payload of a document made by TestPKI is a byte string")
    return [*parts[:2], cbor2.loads(payload), parts[3]]


def _with_r(r: int) -> Callable[[bytes], bytes]:
    return lambda signature: r.to_bytes(48, "big") + signature[48:]


def _with_s(s: int) -> Callable[[bytes], bytes]:
    return lambda signature: signature[:48] + s.to_bytes(48, "big")


def _accept(pki: TestPKI) -> list[Vector]:
    t = pki.document_time
    accept = "2. accept"
    debug_pcrs = {**DEFAULT_PCRS, 0: bytes(48), 1: bytes(48), 2: bytes(48)}
    pcr16 = bytes([0x16]) * 48
    short = pki.reissue("leaf", signing_key=pki.root_key, issuer_name=pki.root.subject)
    return [
        Vector(
            "accept-plain",
            "1. the document",
            "a complete document: nonce, user_data and a public key; PCR0 pinned and all three fields checked",
            pki.document(nonce=b"nonce-0001", user_data=b"hello enclave", public_key=_ENCLAVE_PUBLIC_KEY),
            t,
            policy=PolicySpec(nonce=b"nonce-0001", user_data=b"hello enclave", public_key=_ENCLAVE_PUBLIC_KEY),
        ),
        Vector(
            "accept-null-optional-fields",
            accept,
            "public_key, user_data and nonce are CBOR null (41 of 64 real documents)",
            pki.document(),
            t,
        ),
        Vector(
            "accept-absent-optional-fields",
            accept,
            "public_key, user_data and nonce are absent from the payload",
            pki.document(payload_overrides={"public_key": OMIT, "user_data": OMIT, "nonce": OMIT}),
            t,
        ),
        Vector("accept-tag-18", accept, "the envelope carries the COSE_Sign1 tag 18", pki.document(tag=18), t),
        Vector(
            "accept-indefinite-payload-map",
            accept,
            "the payload is an indefinite-length map (3 of 64 real documents)",
            pki.document(indefinite=True),
            t,
        ),
        Vector(
            "accept-indefinite-strings",
            accept,
            "module_id and user_data are indefinite-length (chunked) strings",
            pki.document(
                payload_overrides={
                    "module_id": _chunked(0x7F, "i-0123456789abcdef0", "-enc0123456789abcdef0"),
                    "user_data": _chunked(0x5F, b"hello ", b"enclave"),
                }
            ),
            t,
            policy=PolicySpec(user_data=b"hello enclave"),
        ),
        Vector(
            "accept-1024-byte-fields",
            accept,
            "user_data, nonce and public_key of 1024 bytes each (real documents reach 1024)",
            pki.document(user_data=b"u" * 1024, nonce=b"n" * 1024, public_key=b"k" * 1024),
            t,
            policy=PolicySpec(user_data=b"u" * 1024, nonce=b"n" * 1024, public_key=b"k" * 1024),
        ),
        Vector(
            "accept-empty-public-key",
            accept,
            "a 0-byte public_key (one real document has one)",
            pki.document(public_key=b""),
            t,
            policy=PolicySpec(public_key=b""),
        ),
        Vector(
            "accept-high-s",
            accept,
            "the signature's s is in the upper half (30 of 64 real documents): low-S is never enforced",
            pki.document(high_s=True),
            t,
        ),
        Vector("accept-low-s", accept, "the signature's s is in the lower half", pki.document(high_s=False), t),
        Vector(
            "accept-unknown-payload-key",
            accept,
            "an unknown payload key (holding a map) is ignored",
            pki.document(payload_overrides={"future_field": {"version": 2, "flags": [1, 2]}}),
            t,
        ),
        Vector(
            "accept-payload-depth-4",
            "2. payload nesting <= 4",
            "an unknown key nests 4 levels deep, counting the payload map (the limit)",
            pki.document(payload_overrides={"future_field": [[[]]]}),
            t,
        ),
        Vector(
            "accept-payload-16k",
            "2. payload <= 16 KiB",
            "a payload of exactly 16384 bytes (the limit), padded by an unknown key",
            _padded(pki, 16 * 1024),
            t,
        ),
        Vector(
            "accept-non-shortest-integers",
            accept,
            "PCR indexes and the timestamp have 8-byte integer arguments: unambiguous, so accepted",
            pki.document(
                payload_overrides={
                    "timestamp": _uint64((t - datetime(1970, 1, 1, tzinfo=t.tzinfo)) // timedelta(milliseconds=1)),
                    "pcrs": Raw(encode_map([(_uint64(index), value) for index, value in DEFAULT_PCRS.items()])),
                }
            ),
            t,
        ),
        Vector(
            "accept-protected-non-shortest-alg",
            accept,
            "the protected header is {1: -35} with -35 in a 2-byte argument (39 0022): it decodes to exactly {1: -35}",
            pki.document(protected=bytes.fromhex("a101390022")),
            t,
        ),
        Vector(
            "accept-debug-allowed",
            "5. debug mode allowed by the policy",
            "a debug-mode enclave (PCR0-2 all zero), accepted because the policy sets allow_debug",
            pki.document(pcrs=debug_pcrs),
            t,
            policy=PolicySpec(pcrs={0: [bytes(48).hex()]}, allow_debug=True),
        ),
        Vector(
            "accept-pcr16",
            accept,
            "17 PCRs, PCR16 non-zero (enclave-extended), pinned by the policy",
            pki.document(pcrs={**DEFAULT_PCRS, 16: pcr16}),
            t,
            policy=PolicySpec(pcrs={0: [_PCR0], 16: [pcr16.hex()]}),
        ),
        Vector(
            "accept-32-pcrs",
            "1. pcrs: 1..32 entries, index 0..31",
            "32 PCRs, indexes 0..31 (the limit)",
            pki.document(pcrs={**DEFAULT_PCRS, **{index: bytes(48) for index in range(16, 32)}}),
            t,
        ),
        Vector(
            "accept-pcr-pin-uppercase-hex",
            "5. allowed values are case-insensitive hex",
            "the policy pins PCR0 in upper-case hex, as one of two allowed values",
            pki.document(),
            t,
            policy=PolicySpec(pcrs={0: [bytes(48).hex(), _PCR0.upper()]}),
        ),
        Vector(
            "accept-cabundle-root-only",
            "3. path cabundle[0] -> ... -> certificate",
            "cabundle is [root] and the leaf is issued by the root directly: a valid path of two certificates",
            short.document(chain=[short.root]),
            t,
        ),
        Vector(
            "accept-timestamp-skew-60s",
            "4. timestamp not after at + skew (60 s)",
            "the timestamp is exactly 60 s after the verification time",
            pki.document(timestamp=t + timedelta(seconds=60)),
            t,
        ),
        Vector(
            "accept-timestamp-at-leaf-not-before",
            "4. timestamp within the leaf's validity",
            "the timestamp equals the leaf's notBefore (inclusive)",
            pki.document(timestamp=pki.leaf.not_valid_before_utc),
            t,
        ),
        Vector(
            "accept-at-leaf-not-after",
            "3. every certificate valid at the verification time (inclusive)",
            "verified exactly at the leaf's notAfter",
            pki.document(),
            pki.leaf.not_valid_after_utc,
        ),
        Vector(
            "accept-clock-skew-leaf-not-yet-valid",
            "4. clock skew (60 s) on certificate validity",
            "verified 5 s before the leaf's notBefore, as a verifier whose clock lags the host's would",
            pki.document(),
            pki.leaf.not_valid_before_utc - timedelta(seconds=5),
        ),
        Vector(
            "accept-max-age-boundary",
            "5. max_age",
            "verified exactly max_age (60 s) after the timestamp: not yet stale",
            pki.document(),
            t + timedelta(seconds=60),
            policy=PolicySpec(max_age_seconds=60),
        ),
    ]


def _reject_cbor(pki: TestPKI) -> list[Vector]:
    t = pki.document_time
    pcr_pairs = list(DEFAULT_PCRS.items())
    return [
        Vector(
            "reject-size-document-over-32k",
            "2. document <= 32 KiB",
            "a 33 KiB document (an unknown payload field holds the bulk)",
            pki.document(payload_overrides={"padding": bytes(33 * 1024)}),
            t,
            "size",
        ),
        Vector(
            "reject-size-payload-over-16k",
            "2. payload <= 16 KiB",
            "a payload of 16385 bytes in a document well under 32 KiB",
            _padded(pki, 16 * 1024 + 1),
            t,
            "size",
        ),
        Vector(
            "reject-cbor-payload-depth-5",
            "2. payload nesting <= 4",
            "an unknown key nests 5 levels deep, counting the payload map",
            pki.document(payload_overrides={"future_field": [[[[]]]]}),
            t,
            "cbor",
        ),
        Vector(
            "reject-cbor-trailing-bytes",
            "2. no trailing bytes",
            "one 0x00 byte after the envelope",
            pki.document(trailing=b"\x00"),
            t,
            "cbor",
        ),
        Vector(
            "reject-cbor-payload-trailing-bytes",
            "2. no trailing bytes",
            "the signed payload byte string holds the map and then one more byte",
            pki.document(payload_bytes=lambda payload: payload + b"\x00"),
            t,
            "cbor",
        ),
        Vector("reject-cbor-empty", "2. strict CBOR", "zero bytes", b"", t, "cbor"),
        Vector(
            "reject-cbor-truncated",
            "2. strict CBOR",
            "the last byte of a valid document is missing (lengths still count it)",
            pki.document()[:-1],
            t,
            "cbor",
        ),
        Vector(
            "reject-cbor-duplicate-payload-key",
            "2. no duplicate map keys",
            "the payload map has 'nonce' twice (null, then bytes)",
            pki.document(payload_extra=[("nonce", b"second nonce")]),
            t,
            "cbor",
        ),
        Vector(
            "reject-cbor-duplicate-pcr-index",
            "2. no duplicate map keys",
            "the pcrs map has index 0 twice (the second a zero PCR)",
            pki.document(payload_overrides={"pcrs": Raw(encode_map([*pcr_pairs, (0, bytes(48))]))}),
            t,
            "cbor",
        ),
        Vector(
            "reject-cbor-duplicate-protected-key",
            "2. no duplicate map keys",
            "the protected header is {1: -35, 1: -35}",
            pki.document(protected=encode_map([(1, -35), (1, -35)])),
            t,
            "cbor",
        ),
        Vector(
            "reject-cbor-duplicate-unprotected-key",
            "2. no duplicate map keys",
            "the unprotected header is {4: h'6b', 4: h'6b'}",
            pki.document(envelope=_set(1, Raw(encode_map([(4, b"k"), (4, b"k")])))),
            t,
            "cbor",
        ),
        Vector(
            "reject-cbor-outer-tag-98",
            "2. no tag but an outer 18",
            "the envelope is tagged 98 (COSE_Sign)",
            pki.document(tag=98),
            t,
            "cbor",
        ),
        Vector(
            "reject-cbor-tag-18-twice",
            "2. no tag but an outer 18",
            "the envelope is tagged 18(18([...]))",
            pki.document(tag=18, envelope=lambda parts: cbor2.CBORTag(18, parts)),
            t,
            "cbor",
        ),
        Vector(
            "reject-cbor-tag-on-payload-bstr",
            "2. no tag but an outer 18",
            "the payload byte string is tagged 24 (encoded CBOR data item)",
            pki.document(envelope=lambda parts: [*parts[:2], cbor2.CBORTag(24, parts[2]), parts[3]]),
            t,
            "cbor",
        ),
        Vector(
            "reject-cbor-self-described-payload",
            "2. no tag but an outer 18",
            "the signed payload starts with the self-described CBOR tag 55799",
            pki.document(payload_bytes=lambda payload: b"\xd9\xd9\xf7" + payload),
            t,
            "cbor",
        ),
        Vector(
            "reject-cbor-tag-on-timestamp",
            "2. no tag but an outer 18",
            "the timestamp is tagged 1 (epoch date-time): no tag decoder may run",
            pki.document(payload_overrides={"timestamp": cbor2.CBORTag(1, int(t.timestamp() * 1000))}),
            t,
            "cbor",
        ),
        Vector(
            "reject-cbor-invalid-utf8-module-id",
            "2. valid UTF-8",
            "module_id is a text string holding the bytes c3 28 (not UTF-8)",
            # cbor2 refuses to write invalid UTF-8: the text string is by hand.
            pki.document(payload_overrides={"module_id": Raw(b"\x62\xc3\x28")}),
            t,
            "cbor",
        ),
        Vector(
            "reject-cbor-invalid-utf8-key",
            "2. valid UTF-8",
            "an extra payload key is a text string holding the byte ff (not UTF-8)",
            pki.document(payload_extra=[(Raw(b"\x61\xff"), 1)]),
            t,
            "cbor",
        ),
        Vector(
            "reject-schema-non-text-payload-key",
            "2. payload keys are text",
            "an extra payload key is the integer 1",
            pki.document(payload_extra=[(1, b"x")]),
            t,
            "schema",
        ),
        Vector(
            "reject-schema-bytes-payload-key",
            "2. payload keys are text",
            "an extra payload key is the byte string 'nonce' (not the text key)",
            pki.document(payload_extra=[(b"nonce", b"x")]),
            t,
            "schema",
        ),
        Vector(
            "reject-schema-timestamp-true",
            "2. no bool where an integer is required",
            "timestamp is CBOR true (== 1 in Python)",
            pki.document(payload_overrides={"timestamp": True}),
            t,
            "schema",
        ),
        Vector(
            "reject-schema-pcr-index-true",
            "2. no bool where an integer is required",
            "PCR index 1 is written as CBOR true",
            pki.document(pcrs={(True if index == 1 else index): value for index, value in DEFAULT_PCRS.items()}),
            t,
            "schema",
        ),
        Vector(
            "reject-cose-alg-true",
            "2. no bool where an integer is required",
            "the protected header is {1: true}",
            pki.document(protected=cbor2.dumps({1: True})),
            t,
            "cose",
        ),
        Vector(
            "reject-cbor-float-timestamp",
            "2. no floats",
            "timestamp is a float holding an integral number of milliseconds",
            pki.document(payload_overrides={"timestamp": float(int(t.timestamp() * 1000))}),
            t,
            "cbor",
        ),
        Vector(
            "reject-cbor-float-pcr-index",
            "2. no floats",
            "PCR index 0 is the float 0.0",
            pki.document(payload_overrides={"pcrs": Raw(encode_map([(0.0, pcr_pairs[0][1]), *pcr_pairs[1:]]))}),
            t,
            "cbor",
        ),
        Vector(
            "reject-cbor-bignum-timestamp",
            "2. no bignums",
            "timestamp is a tag-2 bignum of the right value",
            pki.document(
                payload_overrides={"timestamp": cbor2.CBORTag(2, int(t.timestamp() * 1000).to_bytes(6, "big"))}
            ),
            t,
            "cbor",
        ),
        Vector(
            "reject-cbor-bignum-huge-timestamp",
            "2. no bignums",
            "timestamp is 2**64, which cbor2 writes as a tag-2 bignum",
            pki.document(payload_overrides={"timestamp": 2**64}),
            t,
            "cbor",
        ),
    ]


def _reject_cose(pki: TestPKI) -> list[Vector]:
    t = pki.document_time
    envelope = "2. envelope"
    protected = "2. protected header exactly {1: -35}"
    return [
        Vector(
            "reject-cose-3-elements",
            envelope,
            "the COSE_Sign1 array lacks the signature",
            pki.document(envelope=lambda parts: parts[:3]),
            t,
            "cose",
        ),
        Vector(
            "reject-cose-5-elements",
            envelope,
            "the COSE_Sign1 array has a fifth element",
            pki.document(envelope=lambda parts: [*parts, b""]),
            t,
            "cose",
        ),
        Vector(
            "reject-cose-not-array",
            envelope,
            "the envelope is a map of the four parts",
            pki.document(envelope=lambda parts: dict(enumerate(parts))),
            t,
            "cose",
        ),
        Vector(
            "reject-cose-alg-text",
            protected,
            "the protected header is {1: 'ES384'}",
            pki.document(protected=cbor2.dumps({1: "ES384"})),
            t,
            "cose",
        ),
        Vector(
            "reject-cose-alg-es256",
            protected,
            "the protected header is {1: -7} (ES256)",
            pki.document(protected=cbor2.dumps({1: -7})),
            t,
            "cose",
        ),
        Vector(
            "reject-cose-extra-param",
            protected,
            "the protected header is {1: -35, 4: h'6b6964'} (a kid)",
            pki.document(protected=cbor2.dumps({1: -35, 4: b"kid"})),
            t,
            "cose",
        ),
        Vector(
            "reject-cose-crit",
            protected,
            "the protected header is {1: -35, 2: [4]} (crit)",
            pki.document(protected=cbor2.dumps({1: -35, 2: [4]})),
            t,
            "cose",
        ),
        Vector(
            "reject-cose-protected-empty-bstr",
            protected,
            "the protected header is a zero-length byte string (COSE's empty header)",
            pki.document(protected=b""),
            t,
            "cose",
        ),
        Vector(
            "reject-cose-protected-empty-map",
            protected,
            "the protected header is {}",
            pki.document(protected=cbor2.dumps({})),
            t,
            "cose",
        ),
        Vector(
            "reject-cose-alg-only-unprotected",
            protected,
            "the protected header is {} and the unprotected header is {1: -35}",
            pki.document(protected=cbor2.dumps({}), envelope=_set(1, {1: -35})),
            t,
            "cose",
        ),
        Vector(
            "reject-cose-protected-not-bstr",
            protected,
            "the protected header is a map, not a byte string",
            pki.document(envelope=_set(0, {1: -35})),
            t,
            "cose",
        ),
        Vector(
            "reject-cose-unprotected-not-empty",
            "2. unprotected header an empty map",
            "the unprotected header is {4: h'6b6964'}",
            pki.document(envelope=_set(1, {4: b"kid"})),
            t,
            "cose",
        ),
        Vector(
            "reject-cose-unprotected-null",
            "2. unprotected header an empty map",
            "the unprotected header is null",
            pki.document(envelope=_set(1, None)),
            t,
            "cose",
        ),
        Vector(
            "reject-cose-payload-null",
            "2. payload a byte string",
            "the payload is null (detached)",
            pki.document(envelope=_set(2, None)),
            t,
            "cose",
        ),
        Vector(
            "reject-cose-payload-map",
            "2. payload a byte string",
            "the payload map is embedded directly, not wrapped in a byte string",
            pki.document(envelope=_embed_payload),
            t,
            "cose",
        ),
        Vector(
            "reject-cose-signature-95-bytes",
            "2. signature exactly 96 bytes",
            "the last byte of r || s is cut",
            pki.document(signature=lambda signature: signature[:95]),
            t,
            "cose",
        ),
        Vector(
            "reject-cose-signature-97-bytes",
            "2. signature exactly 96 bytes",
            "a 0x00 byte is appended to r || s",
            pki.document(signature=lambda signature: signature + b"\x00"),
            t,
            "cose",
        ),
    ]


def _reject_schema(pki: TestPKI) -> list[Vector]:
    t = pki.document_time
    big_leaf = pki.reissue("leaf", extensions=[_big_extension(500)]).leaf
    big_instance = pki.reissue("instance", extensions=[_big_extension(500)]).instance
    vectors = [
        Vector(
            f"reject-schema-missing-{key.replace('_', '-')}",
            f"1. {key} required",
            f"the payload has no {key}",
            pki.document(payload_overrides={key: OMIT}),
            t,
            "schema",
        )
        for key in ("module_id", "digest", "timestamp", "pcrs", "certificate", "cabundle")
    ]
    cases: list[tuple[str, str, str, Mapping[str, object]]] = [
        ("module-id-empty", "module_id", "module_id is ''", {"module_id": ""}),
        ("module-id-bytes", "module_id", "module_id is a byte string", {"module_id": b"i-0123456789abcdef0"}),
        ("digest-sha256", "digest", "digest is 'SHA256'", {"digest": "SHA256"}),
        ("digest-lowercase", "digest", "digest is 'sha384'", {"digest": "sha384"}),
        ("timestamp-zero", "timestamp", "timestamp is 0", {"timestamp": 0}),
        ("timestamp-negative", "timestamp", "timestamp is -1", {"timestamp": -1}),
        ("timestamp-text", "timestamp", "timestamp is an ISO-8601 text string", {"timestamp": t.isoformat()}),
        (
            "timestamp-past-year-9999",
            "timestamp",
            "timestamp is 2**64 - 1 ms (beyond year 9999)",
            {"timestamp": 2**64 - 1},
        ),
        ("pcrs-empty", "pcrs", "pcrs is an empty map", {"pcrs": {}}),
        ("pcrs-33-entries", "pcrs", "pcrs has 33 entries (0..32)", {"pcrs": {index: bytes(48) for index in range(33)}}),
        ("pcrs-index-32", "pcrs", "PCR index 32 among the usual 16", {"pcrs": {**DEFAULT_PCRS, 32: bytes(48)}}),
        ("pcrs-index-negative", "pcrs", "PCR index -1 among the usual 16", {"pcrs": {**DEFAULT_PCRS, -1: bytes(48)}}),
        ("pcr-value-32-bytes", "pcrs", "PCR0 is 32 bytes (a SHA-256 size)", {"pcrs": {**DEFAULT_PCRS, 0: bytes(32)}}),
        ("pcr-value-text", "pcrs", "PCR0 is its hex as text", {"pcrs": {**DEFAULT_PCRS, 0: _PCR0}}),
        ("pcrs-array", "pcrs", "pcrs is an array of the 16 values", {"pcrs": list(DEFAULT_PCRS.values())}),
        ("certificate-empty", "certificate", "certificate is 0 bytes", {"certificate": b""}),
        (
            "certificate-over-1024",
            "certificate",
            "certificate is a real leaf of more than 1024 bytes",
            {"certificate": _der(big_leaf)[0]},
        ),
        ("certificate-text", "certificate", "certificate is a text string", {"certificate": "MIIC..."}),
        ("cabundle-empty", "cabundle", "cabundle is []", {"cabundle": []}),
        (
            "cabundle-9-entries",
            "cabundle",
            "cabundle has 9 certificates",
            {"cabundle": _der(*pki.cabundle, *[pki.instance] * 5)},
        ),
        (
            "cabundle-entry-over-1024",
            "cabundle",
            "cabundle[3] is an instance certificate of more than 1024 bytes",
            {"cabundle": _der(pki.root, pki.regional, pki.zonal, big_instance)},
        ),
        ("cabundle-entry-empty", "cabundle", "cabundle[1] is 0 bytes", {"cabundle": [_der(pki.root)[0], b""]}),
        ("cabundle-not-array", "cabundle", "cabundle is one byte string", {"cabundle": _der(pki.root)[0]}),
        ("user-data-1025", "user_data", "user_data is 1025 bytes", {"user_data": bytes(1025)}),
        ("nonce-1025", "nonce", "nonce is 1025 bytes", {"nonce": bytes(1025)}),
        ("public-key-1025", "public_key", "public_key is 1025 bytes", {"public_key": bytes(1025)}),
        ("nonce-text", "nonce", "nonce is a text string", {"nonce": "nonce-0001"}),
    ]
    vectors += [
        Vector(
            f"reject-schema-{name}", f"1. {key}", description, pki.document(payload_overrides=overrides), t, "schema"
        )
        for name, key, description, overrides in cases
    ]
    vectors += [
        Vector(
            "reject-schema-payload-not-map",
            "1. the payload is a map",
            "the signed payload is the array [1, 2, 3]",
            pki.document(payload_bytes=lambda _payload: cbor2.dumps([1, 2, 3])),
            t,
            "schema",
        ),
        Vector(
            "reject-certificate-leaf-not-der",
            "1. certificate is DER",
            "certificate is 17 bytes of text, not a certificate",
            pki.document(payload_overrides={"certificate": b"not a certificate"}),
            t,
            "certificate",
        ),
        Vector(
            "reject-certificate-cabundle-entry-not-der",
            "1. cabundle entries are DER",
            "cabundle[2] is 17 bytes of text, not a certificate",
            pki.document(
                payload_overrides={
                    "cabundle": [*_der(pki.root, pki.regional), b"not a certificate", *_der(pki.instance)]
                }
            ),
            t,
            "certificate",
        ),
    ]
    return vectors


def _reject_chain(pki: TestPKI) -> list[Vector]:
    t = pki.document_time
    attacker = TestPKI.create(seed="attacker", root_name=AWS_NITRO_ROOT_G1.subject)
    unknown_critical = x509.Extension(
        _UNKNOWN_EXTENSION, True, x509.UnrecognizedExtension(_UNKNOWN_EXTENSION, b"\x05\x00")
    )
    p256_leaf = pki.reissue("leaf", key=derive_key("nitro_attest test P-256 leaf", curve="P-256"))
    p256_instance = pki.reissue("instance", key=derive_key("nitro_attest test P-256 instance", curve="P-256"))
    path = "3. path validation"
    ca = "3. CA constraints"
    leaf = "3. leaf constraints"

    def broken(level: Any, **changes: Any) -> bytes:
        return pki.reissue(level, **changes).document()

    return [
        Vector(
            "reject-chain-root-not-pinned",
            "3. cabundle[0] byte-identical to a trusted root",
            "a self-consistent attacker PKI whose root has AWS's exact name (CN=aws.nitro-enclaves, O=Amazon)",
            attacker.document(),
            t,
            "chain",
        ),
        Vector(
            "reject-chain-root-reissued",
            "3. cabundle[0] byte-identical to a trusted root",
            "the test root re-issued with the same name and key but another validity: not byte-identical",
            pki.reissue("root", not_after=pki.root.not_valid_after_utc - timedelta(days=1)).document(),
            t,
            "chain",
        ),
        Vector(
            "reject-chain-cabundle-reversed",
            path,
            "cabundle is [instance, zonal, regional, root]",
            pki.document(chain=pki.cabundle[::-1]),
            t,
            "chain",
        ),
        Vector(
            "reject-chain-missing-link",
            path,
            "cabundle is [root, regional, instance]: the zonal is missing",
            pki.document(chain=[pki.root, pki.regional, pki.instance]),
            t,
            "chain",
        ),
        Vector(
            "reject-chain-wrong-issuer-name",
            path,
            "the zonal certificate is signed by the regional key but names the root as its issuer",
            broken("zonal", issuer_name=pki.root.subject),
            t,
            "chain",
        ),
        Vector(
            "reject-chain-link-signature",
            path,
            "the zonal certificate names the regional as issuer but is signed by the root key",
            broken("zonal", signing_key=pki.root_key),
            t,
            "chain",
        ),
        Vector(
            "reject-chain-leaf-signature",
            path,
            "the leaf is signed by the zonal key instead of the instance key",
            broken("leaf", signing_key=pki.zonal_key),
            t,
            "chain",
        ),
        Vector(
            "reject-chain-ca-without-basic-constraints",
            ca,
            "the zonal certificate has no basicConstraints",
            broken("zonal", remove=[ExtensionOID.BASIC_CONSTRAINTS]),
            t,
            "chain",
        ),
        Vector(
            "reject-chain-ca-basic-constraints-not-critical",
            ca,
            "the zonal certificate's basicConstraints (CA:true, pathLen 1) is not critical",
            broken("zonal", extensions=[_basic_constraints(ca=True, path_length=1, critical=False)]),
            t,
            "chain",
        ),
        Vector(
            "reject-chain-ca-false-intermediate",
            ca,
            "the instance certificate has CA:false",
            broken("instance", extensions=[_basic_constraints(ca=False, path_length=None)]),
            t,
            "chain",
        ),
        Vector(
            "reject-chain-pathlen-violation",
            ca,
            "the zonal certificate has pathLen 0 but the instance CA follows it",
            broken("zonal", extensions=[_basic_constraints(ca=True, path_length=0)]),
            t,
            "chain",
        ),
        Vector(
            "reject-chain-ca-missing-keycertsign",
            ca,
            "the instance certificate's keyUsage is digitalSignature only",
            broken("instance", extensions=[_key_usage(digital_signature=True, cert_sign=False)]),
            t,
            "chain",
        ),
        Vector(
            "reject-chain-ca-missing-key-usage",
            ca,
            "the instance certificate has no keyUsage",
            broken("instance", remove=[ExtensionOID.KEY_USAGE]),
            t,
            "chain",
        ),
        Vector(
            "reject-chain-leaf-is-ca",
            leaf,
            "the leaf has basicConstraints CA:true",
            broken("leaf", extensions=[_basic_constraints(ca=True, path_length=None)]),
            t,
            "chain",
        ),
        Vector(
            "reject-chain-leaf-lacks-digital-signature",
            leaf,
            "the leaf's keyUsage is nonRepudiation only",
            broken(
                "leaf",
                extensions=[
                    x509.Extension(
                        ExtensionOID.KEY_USAGE,
                        False,
                        x509.KeyUsage(False, True, False, False, False, False, False, False, False),
                    )
                ],
            ),
            t,
            "chain",
        ),
        Vector(
            "reject-chain-leaf-has-keycertsign",
            leaf,
            "the leaf's keyUsage adds keyCertSign",
            broken("leaf", extensions=[_key_usage(digital_signature=True, cert_sign=True)]),
            t,
            "chain",
        ),
        Vector(
            "reject-chain-leaf-no-key-usage",
            leaf,
            "the leaf has no keyUsage",
            broken("leaf", remove=[ExtensionOID.KEY_USAGE]),
            t,
            "chain",
        ),
        Vector(
            "reject-chain-unknown-critical-extension-leaf",
            "3. unknown critical extension",
            "the leaf carries a critical extension nobody understands",
            broken("leaf", extensions=[unknown_critical]),
            t,
            "chain",
        ),
        Vector(
            "reject-chain-unknown-critical-extension-ca",
            "3. unknown critical extension",
            "the zonal certificate carries a critical extension nobody understands",
            broken("zonal", extensions=[unknown_critical]),
            t,
            "chain",
        ),
        Vector(
            "reject-certificate-sha256-link",
            "3. every signature ecdsa-with-SHA384",
            "the instance certificate is signed with ecdsa-with-SHA256",
            broken("instance", hash_algorithm=hashes.SHA256()),
            t,
            "certificate",
        ),
        Vector(
            "reject-certificate-p256-leaf",
            "3. the leaf key must be P-384",
            "the leaf has a P-256 key and signs the document with it (r and s padded to 48 bytes)",
            p256_leaf.document(),
            t,
            "certificate",
        ),
        Vector(
            "reject-certificate-p256-intermediate",
            "3. every signature by a P-384 key",
            "the instance certificate has a P-256 key (and re-signs the leaf with it)",
            p256_instance.reissue("leaf").document(),
            t,
            "certificate",
        ),
        Vector(
            "reject-expired-leaf",
            "3. valid at the verification time",
            "verified one second after the leaf's notAfter",
            pki.document(),
            pki.leaf.not_valid_after_utc + timedelta(seconds=1),
            "expired",
        ),
        Vector(
            "reject-expired-leaf-not-yet-valid",
            "3. valid at the verification time",
            "verified one second more than the clock skew (60 s) before the leaf's notBefore",
            pki.document(),
            pki.leaf.not_valid_before_utc - CLOCK_SKEW - timedelta(seconds=1),
            "expired",
        ),
        Vector(
            "reject-expired-intermediate",
            "3. valid at the verification time",
            "the instance certificate expired a minute before the document and the verification time",
            broken("instance", not_after=t - timedelta(minutes=1)),
            t,
            "expired",
        ),
        Vector(
            "reject-expired-root-not-yet-valid",
            "3. valid at the verification time (root included)",
            "verified one second before the root's notBefore",
            pki.document(),
            pki.root.not_valid_before_utc - timedelta(seconds=1),
            "expired",
        ),
    ]


def _reject_signature(pki: TestPKI) -> list[Vector]:
    t = pki.document_time
    rule = "2. ES384 signature over the Sig_structure"
    other = pki.document(nonce=b"another payload")
    return [
        Vector(
            "reject-signature-bit-flip",
            rule,
            "the last bit of s is flipped",
            pki.document(signature=lambda s: s[:-1] + bytes([s[-1] ^ 1])),
            t,
            "signature",
        ),
        Vector("reject-signature-r-zero", rule, "r = 0", pki.document(signature=_with_r(0)), t, "signature"),
        Vector("reject-signature-s-zero", rule, "s = 0", pki.document(signature=_with_s(0)), t, "signature"),
        Vector(
            "reject-signature-r-order",
            rule,
            "r = n (the P-384 group order)",
            pki.document(signature=_with_r(P384_ORDER)),
            t,
            "signature",
        ),
        Vector(
            "reject-signature-s-order",
            rule,
            "s = n (the P-384 group order)",
            pki.document(signature=_with_s(P384_ORDER)),
            t,
            "signature",
        ),
        Vector(
            "reject-signature-wrong-key",
            rule,
            "signed by another P-384 key than the leaf's",
            pki.document(sign_with=derive_key("nitro_attest test stranger")),
            t,
            "signature",
        ),
        Vector(
            "reject-signature-payload-swapped",
            rule,
            "the payload is replaced after signing by another genuine payload of the same leaf",
            pki.document(envelope=_set(2, cbor2.loads(other)[2])),
            t,
            "signature",
        ),
        Vector(
            "reject-signature-protected-swapped",
            rule,
            "the protected header is re-encoded after signing (a1 01 39 0022, still {1: -35})",
            pki.document(envelope=_set(0, bytes.fromhex("a101390022"))),
            t,
            "signature",
        ),
    ]


def _reject_time(pki: TestPKI) -> list[Vector]:
    t = pki.document_time
    leaf = pki.leaf
    return [
        Vector(
            "reject-time-before-leaf",
            "4. timestamp within the leaf's validity",
            "the timestamp is one second before the leaf's notBefore",
            pki.document(timestamp=leaf.not_valid_before_utc - timedelta(seconds=1)),
            t,
            "time",
        ),
        Vector(
            "reject-time-after-leaf",
            "4. timestamp within the leaf's validity",
            "the timestamp is 1 ms after the leaf's notAfter, verified at that notAfter",
            pki.document(timestamp=leaf.not_valid_after_utc + timedelta(milliseconds=1)),
            leaf.not_valid_after_utc,
            "time",
        ),
        Vector(
            "reject-time-future",
            "4. timestamp not after at + skew (60 s)",
            "the timestamp is 61 s after the verification time",
            pki.document(timestamp=t + timedelta(seconds=61)),
            t,
            "time",
        ),
        Vector(
            "reject-time-seconds-not-milliseconds",
            "1. timestamp in milliseconds",
            "the timestamp counts seconds (reads as January 1970, outside the leaf's validity)",
            pki.document(payload_overrides={"timestamp": int(t.timestamp())}),
            t,
            "time",
        ),
    ]


def _reject_policy(pki: TestPKI) -> list[Vector]:
    t = pki.document_time
    debug_pcrs = {**DEFAULT_PCRS, 0: bytes(48), 1: bytes(48), 2: bytes(48)}
    return [
        Vector(
            "reject-pcr-mismatch",
            "5. every constrained PCR equals an allowed value",
            "PCR0 differs from the only allowed value",
            pki.document(),
            t,
            "pcr",
            PolicySpec(pcrs={0: [(b"\x01" * 48).hex()]}),
        ),
        Vector(
            "reject-pcr-one-of-several-mismatch",
            "5. every constrained PCR equals an allowed value",
            "PCR0 matches but PCR8 does not",
            pki.document(),
            t,
            "pcr",
            PolicySpec(pcrs={0: [_PCR0], 8: [bytes(48).hex()]}),
        ),
        Vector(
            "reject-pcr-absent",
            "5. a constraint on an absent PCR fails",
            "the policy pins PCR16, which the document (16 PCRs) lacks",
            pki.document(),
            t,
            "pcr",
            PolicySpec(pcrs={0: [_PCR0], 16: [bytes(48).hex()]}),
        ),
        Vector(
            "reject-debug",
            "5. debug mode rejected unless allowed",
            "a debug-mode enclave (PCR0-2 zero) whose zero PCR0 the policy even pins, without allow_debug",
            pki.document(pcrs=debug_pcrs),
            t,
            "debug",
            PolicySpec(pcrs={0: [bytes(48).hex()]}),
        ),
        Vector(
            "reject-nonce-mismatch",
            "5. nonce",
            "the nonce differs from the expected one",
            pki.document(nonce=b"nonce-0001"),
            t,
            "nonce",
            PolicySpec(nonce=b"nonce-0002"),
        ),
        Vector(
            "reject-nonce-absent",
            "5. nonce",
            "the policy expects a nonce and the document's is null",
            pki.document(),
            t,
            "nonce",
            PolicySpec(nonce=b"nonce-0001"),
        ),
        Vector(
            "reject-user-data-mismatch",
            "5. user_data",
            "user_data differs from the expected value",
            pki.document(user_data=b"hello enclave"),
            t,
            "user_data",
            PolicySpec(user_data=b"hello enclavE"),
        ),
        Vector(
            "reject-public-key-mismatch",
            "5. public_key",
            "public_key differs from the expected key",
            pki.document(public_key=_ENCLAVE_PUBLIC_KEY),
            t,
            "public_key",
            PolicySpec(public_key=_ENCLAVE_PUBLIC_KEY[:-1] + b"\x00"),
        ),
        Vector(
            "reject-stale",
            "5. max_age",
            "verified 61 s after the timestamp with max_age 60 s",
            pki.document(),
            t + timedelta(seconds=61),
            "stale",
            PolicySpec(max_age_seconds=60),
        ),
    ]


def build_vectors() -> list[Vector]:
    """Every vector, made by ``TestPKI.create()`` (verify them with its ``roots``)."""
    pki = TestPKI.create()
    vectors = [
        *_accept(pki),
        *_reject_cbor(pki),
        *_reject_cose(pki),
        *_reject_schema(pki),
        *_reject_chain(pki),
        *_reject_signature(pki),
        *_reject_time(pki),
        *_reject_policy(pki),
    ]
    names = [vector.name for vector in vectors]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise AssertionError(f"duplicate vector names: {duplicates}")
    return vectors


_README_HEAD = """\
# Recorded test vectors

Attestation documents made by the look-alike test PKI of `nitro_attest.testing`
(`TestPKI.create()`, root `CN=aws.nitro-enclaves.TEST-ONLY`, `O=nitro_attest test PKI`).
None of them is from AWS and none verifies against the AWS root: verify them with
`roots=TestPKI.create().roots`, at the `at` time and with the `policy` the manifest gives.

Each `reject-*` file breaks exactly one rule of DESIGN.md sections 2-5 and must be
rejected with the given code; each `accept-*` file exercises something a strict
verifier might wrongly refuse. Everything is deterministic (keys and serials derived
from labels, RFC 6979 signatures), so regenerating gives byte-identical files:

    PYTHONPATH=. python vectors/generate.py [OUTDIR]

This file and `manifest.json` are written by `generate.py`: edit the script, not them.
`manifest.json` is a list of entries `{file, expected: "accept"|"reject", code,
exception, at (ISO-8601 verification time), policy, rule, description}`; `policy` is
`{pcrs: {index: [allowed hex, ...]} or "any", nonce, user_data, public_key (hex or null),
max_age_seconds, allow_debug}`.

| file | expected | code | rule | description |
|---|---|---|---|---|
"""


def _readme(vectors: Sequence[Vector]) -> str:
    rows = [
        f"| {vector.name}.cbor | {'accept' if vector.code is None else 'reject'} | {vector.code or ''} "
        f"| {vector.rule} | {vector.description.replace('|', '/')} |"
        for vector in vectors
    ]
    return _README_HEAD + "\n".join(rows) + "\n"


def generate(outdir: Path) -> list[Vector]:
    """Writes every vector, ``manifest.json`` and ``README.md`` into ``outdir``; returns the vectors."""
    vectors = build_vectors()
    outdir.mkdir(parents=True, exist_ok=True)
    for vector in vectors:
        (outdir / f"{vector.name}.cbor").write_bytes(vector.data)
    manifest = [vector.manifest_entry() for vector in vectors]
    (outdir / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    (outdir / "README.md").write_text(_readme(vectors), encoding="utf-8")
    return vectors


if __name__ == "__main__":
    if len(sys.argv) > 2:
        sys.exit("usage: python vectors/generate.py [OUTDIR]")
    target = Path(sys.argv[1]) if len(sys.argv) == 2 else Path(__file__).resolve().parent
    print(f"wrote {len(generate(target))} vectors to {target}")
