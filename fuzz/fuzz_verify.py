"""Fuzz nitro_attest.verify() and verify_batch() past the decoder: chain, signature, time and policy.

Each input is read as a list of choices (see :class:`_fuzz_common.ByteReader`):

- mode ``built``: a base document of the look-alike test PKI, then 0..4
  structured edits, each re-signed by the test PKI where it changes signed
  bytes (payload field values, PCRs, timestamp, cabundle order and length,
  certificate DER bytes, certificates re-issued with other validity,
  constraints, keys or signers, protected header, signature values, envelope
  shape, tag, trailing bytes), then 0..4 raw byte mutations that re-sign
  nothing;
- mode ``document``: the rest of the input is the document itself (the seeds
  put the recorded vectors and ../shared's real documents here), verified at
  its own timestamp against the test roots and the AWS root;

then a verification time, the trusted roots and a policy.

Oracles:

1. only NitroAttestError escapes verify() and verify_batch();
2. verify_batch() gives, for every document of the batch, exactly what
   verify() gives (the same document, or an error of the same class, code,
   message and policy failures), whatever the batch's shape, workers and
   link-cache state;
3. no silent accept: a document that was byte-mutated after signing and is
   accepted carries the signed content (protected header, payload bytes,
   signature or its (r, n - s) twin) of the document it was made from, or
   of the base document whose tail a splice copied in;
4. whatever is accepted passes an independent re-check: cbor2 reads it the
   same (envelope and every field), cabundle[0] is a trusted root byte for
   byte, pyca/cryptography verifies every link and the document's signature,
   CA flags, key curves and hash are right, every certificate and the
   timestamp are valid at the verification time, and the policy holds;
5. a PolicyViolation is only raised when that independent policy check fails.

Run: ``python fuzz/fuzz_verify.py [libFuzzer flags] [corpus dirs]`` or ``python fuzz/run.py verify``.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import cbor2
from _fuzz_common import (
    ByteReader,
    check_decoding,
    der_children,
    der_element,
    fuzz_main,
    generated_documents,
    iter_seeds,
    milliseconds,
    mutate_bytes,
    repo_vectors,
    require,
    shared_vectors,
    signature_twin,
)
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtensionOID

import nitro_attest
from nitro_attest import AttestationDocument, NitroAttestError, Policy, PolicyViolation
from nitro_attest._backend import P384_ORDER
from nitro_attest._chain import LINK_CACHE
from nitro_attest.testing import DEFAULT_MODULE_ID, DEFAULT_PCRS, OMIT, Level, Raw, TestPKI, derive_key

__all__ = ["main", "own_seeds", "shared_seeds", "test_one_input"]

_PKI = TestPKI.create()
_OTHER = TestPKI.create(seed="nitro_attest fuzz: another PKI", region="eu-west-1")
_P256_KEY = derive_key("nitro_attest fuzz: a P-256 key", curve="P-256")
_STRAY_KEY = derive_key("nitro_attest fuzz: a stray P-384 key")
_ALL_ROOTS = (_PKI.root, _OTHER.root, nitro_attest.AWS_NITRO_ROOT_G1)
_LEVELS: tuple[Level, ...] = ("root", "regional", "zonal", "instance", "leaf")
_P384_PRIME = 2**384 - 2**128 - 2**96 + 2**32 - 1
_SKEW = nitro_attest.CLOCK_SKEW
_ZERO_PCR = bytes(48)


def _digest(label: str) -> bytes:
    return hashlib.sha384(label.encode()).digest()


# -- base documents -------------------------------------------------------------------------------


@dataclass
class _Recipe:
    """A test-PKI document still to be made: the PKI (possibly re-issued) and TestPKI.document's keywords."""

    name: str
    pki: TestPKI
    options: dict[str, Any] = field(default_factory=dict)

    def copy(self) -> _Recipe:
        return _Recipe(self.name, self.pki, dict(self.options))

    def override(self, name: str, value: object) -> None:
        self.options["payload_overrides"] = {**self.options.get("payload_overrides", {}), name: value}

    def chain(self) -> list[x509.Certificate]:
        return list(self.options.get("chain") or self.pki.cabundle)

    def build(self) -> tuple[bytes, bytes, bytes, frozenset[bytes]]:
        """The document, and what its leaf key signed: protected header, payload, the valid signatures."""
        captured: dict[str, Any] = {}
        edit_signature: Callable[[bytes], bytes] | None = self.options.get("signature")
        edit_envelope: Callable[[list[object]], object] | None = self.options.get("envelope")

        def signature(signed: bytes) -> bytes:
            captured["signed"] = signed
            return signed if edit_signature is None else edit_signature(signed)

        def envelope(parts: list[object]) -> object:
            captured["parts"] = list(parts)
            return parts if edit_envelope is None else edit_envelope(list(parts))

        data = self.pki.document(**{**self.options, "signature": signature, "envelope": envelope})
        protected, _, payload, sent = captured["parts"]
        # As signed and as sent: a signature edit changed it, and a byte mutation could change it back.
        signatures = {captured["signed"], sent}
        signatures |= {signature_twin(value) for value in signatures if len(value) == 96}
        return data, protected, payload, frozenset(signatures)


def _root_only() -> TestPKI:
    """A leaf issued by the root itself, for a cabundle of [root]."""
    return _PKI.reissue("leaf", signing_key=_PKI.root_key, issuer_name=_PKI.root.subject)


_PLAIN = {"nonce": b"nonce-0001", "user_data": b"hello enclave", "public_key": b"\x04" + _digest("key") * 2}
_BASES: tuple[_Recipe, ...] = (
    _Recipe("plain", _PKI, dict(_PLAIN)),
    _Recipe("null-optional", _PKI),
    _Recipe("absent-optional", _PKI, {"payload_overrides": dict.fromkeys(("public_key", "user_data", "nonce"), OMIT)}),
    _Recipe("indefinite-tagged", _PKI, {"indefinite": True, "tag": True, "nonce": b"n" * 32}),
    _Recipe("debug", _PKI, {"pcrs": {**DEFAULT_PCRS, 0: _ZERO_PCR, 1: _ZERO_PCR, 2: _ZERO_PCR}}),
    _Recipe("32-pcrs", _PKI, {"pcrs": {index: _digest(f"PCR{index}") for index in range(32)}}),
    _Recipe("root-only", _root_only(), {"chain": [_PKI.root], "nonce": b"root only"}),
    _Recipe("1024-byte-fields", _PKI, {name: bytes([index]) * 1024 for index, name in enumerate(_PLAIN)}),
    _Recipe("high-s", _PKI, {"high_s": True, **_PLAIN}),
)
_BUILT_BASES = tuple(recipe.build() for recipe in _BASES)
_BASE_DOCUMENTS = tuple(data for data, _, _, _ in _BUILT_BASES)
#: What the bases' leaf key signed: a byte mutation may splice a base's tail in (mutate_bytes's donors).
_BASE_SIGNED: dict[tuple[bytes, bytes], frozenset[bytes]] = {
    (protected, payload): signatures for _, protected, payload, signatures in _BUILT_BASES
}


# -- values for payload fields --------------------------------------------------------------------

_LENGTHS = (0, 1, 47, 48, 49, 96, 97, 1023, 1024, 1025, 16385)
_INTEGERS = (
    0,
    1,
    -1,
    23,
    24,
    31,
    32,
    255,
    256,
    2**32,
    2**63,
    2**64 - 1,
    2**64,
    -(2**64),
    milliseconds(_PKI.document_time),
    milliseconds(_PKI.document_time) + 1,
    253402300799999,  # 9999-12-31T23:59:59.999Z
    253402300800000,
)
_TEXTS = ("", "SHA384", "sha384", "SHA-384", DEFAULT_MODULE_ID, "i-*", "\u00e9\u0000", "x" * 1024)
_TAGS = (0, 1, 2, 3, 18, 24, 55799, 2**32)
# Encodings a CBOR library writes only when told to: floats, undefined,
# simple values, bignums, chunked and invalid strings, non-shortest heads.
_RAW_ITEMS = (
    b"\xf9\x3c\x00",
    b"\xfb\x3f\xf0\x00\x00\x00\x00\x00\x00",
    b"\xf7",
    b"\xf0",
    b"\xf8\xff",
    b"\xc2\x41\x01",
    b"\xc3\x41\x01",
    b"\x5f\x41a\x41b\xff",
    b"\x7f\x61a\x61b\xff",
    b"\x62\xc3\x28",
    b"\x18\x05",
    b"\x1b\x00\x00\x00\x00\x00\x00\x00\x05",
    b"\x9f\x01\xff",
    b"\xbf\x61a\x01\xff",
    b"\x5f\xff",
    b"\xff",
)


def _bytes_value(reader: ByteReader) -> bytes:
    if reader.boolean():
        return reader.blob(64)
    return bytes([reader.integer(0, 255)]) * reader.pick(_LENGTHS)


def _value(reader: ByteReader, depth: int = 0) -> object:  # noqa: PLR0911  (one return per kind)
    """Any value TestPKI's encoder writes, chosen by the reader (containers at most 3 deep)."""
    kind = reader.integer(0, 11)
    if kind == 0:
        return None
    if kind == 1:
        return reader.boolean()
    if kind == 2:
        return reader.integer(0, 40)
    if kind == 3:
        return reader.pick(_INTEGERS)
    if kind == 4:
        return _bytes_value(reader)
    if kind == 5:
        return reader.pick(_TEXTS) if reader.boolean() else reader.blob(24).decode("utf-8", "replace")
    if kind == 6 and depth < 3:
        return [_value(reader, depth + 1) for _ in range(reader.integer(0, 4))]
    if kind == 7 and depth < 3:
        return {reader.pick((*_TEXTS[:4], 0, 1, -1)): _value(reader, depth + 1) for _ in range(reader.integer(0, 3))}
    if kind == 8 and depth < 3:
        return cbor2.CBORTag(reader.pick(_TAGS), _value(reader, depth + 1))
    if kind == 9:
        return Raw(reader.pick(_RAW_ITEMS))
    if kind == 10:
        return Raw(reader.blob(24))
    return 1.5


# -- structured edits (each re-signed by the test PKI) --------------------------------------------

_FIELDS = ("timestamp", "module_id", "digest", "pcrs", "certificate", "cabundle", "public_key", "user_data", "nonce")


def _edit_field(reader: ByteReader, recipe: _Recipe) -> None:
    name = reader.pick((*_FIELDS, "unknown"))
    recipe.override(name, OMIT if reader.integer(0, 7) == 7 else _value(reader))


def _edit_pcrs(reader: ByteReader, recipe: _Recipe) -> None:
    pcrs: dict[int, bytes] = dict(recipe.options.get("pcrs") or DEFAULT_PCRS)
    operation = reader.integer(0, 4)
    if operation == 0:
        pcrs[reader.integer(-1, 33)] = bytes([reader.integer(0, 255)]) * reader.pick((48, 47, 49, 0, 96))
    elif operation == 1 and pcrs:
        del pcrs[reader.pick(sorted(pcrs))]
    elif operation == 2:
        pcrs.update({0: _ZERO_PCR, 1: _ZERO_PCR, 2: _ZERO_PCR})
    elif operation == 3:
        pcrs = {}
    else:
        pcrs = {index: _digest(f"PCR{index}") for index in range(reader.integer(30, 34))}
    recipe.options["pcrs"] = pcrs


# Around each bound the rules of DESIGN.md section 4 name: the leaf's notBefore
# (3 s before the document) and notAfter (3 hours after), the clock skew.
_TIME_SHIFTS = tuple(
    timedelta(seconds=seconds)
    for seconds in (-3, -4, -3 * 3600 - 1, -1e-3, 1e-3, 59, 60, 61, 3 * 3600, 3 * 3600 + 1e-3, 30 * 86400)
)


def _edit_time(reader: ByteReader, recipe: _Recipe) -> None:
    recipe.options["timestamp"] = recipe.pki.document_time + reader.pick(_TIME_SHIFTS)


def _edit_module_id(reader: ByteReader, recipe: _Recipe) -> None:
    choice = reader.integer(0, 3)
    if choice < 3:
        recipe.options["module_id"] = ("", "i-", "x" * 2000)[choice]
    else:
        recipe.options["module_id"] = reader.blob(40).decode("utf-8", "replace")


def _edit_optional(reader: ByteReader, recipe: _Recipe) -> None:
    name = reader.pick(("nonce", "user_data", "public_key"))
    choice = reader.integer(0, 3)
    if choice == 0:
        recipe.options[name] = _bytes_value(reader)
    elif choice == 1:
        recipe.options[name] = None
    elif choice == 2:
        recipe.override(name, OMIT)
    else:
        recipe.options[name] = reader.blob(64)


def _edit_extra(reader: ByteReader, recipe: _Recipe) -> None:
    key = reader.pick(("nonce", "pcrs", "module_id", "timestamp", "x", 1, -1, b"k", None, Raw(b"\x61x")))
    recipe.options["payload_extra"] = [*recipe.options.get("payload_extra", ()), (key, _value(reader))]


def _edit_indefinite(reader: ByteReader, recipe: _Recipe) -> None:
    recipe.options["indefinite"] = not recipe.options.get("indefinite", False)


def _edit_payload_bytes(reader: ByteReader, recipe: _Recipe) -> None:
    tail = reader.blob(8)
    keep = reader.integer(0, 4096)
    if reader.boolean():
        recipe.options["payload_bytes"] = lambda payload: payload + (tail or b"\x00")
    else:
        recipe.options["payload_bytes"] = lambda payload: payload[:keep]


def _pool(pki: TestPKI) -> list[x509.Certificate]:
    return [
        *pki.cabundle,
        pki.leaf,
        _OTHER.root,
        _OTHER.regional,
        _OTHER.zonal,
        _OTHER.instance,
        _OTHER.leaf,
        nitro_attest.AWS_NITRO_ROOT_G1,
    ]


def _edit_chain(reader: ByteReader, recipe: _Recipe) -> None:
    chain = recipe.chain()
    pool = _pool(recipe.pki)
    operation = reader.integer(0, 7)
    at = reader.integer(0, max(len(chain) - 1, 0))
    if operation == 0 and chain:
        del chain[at]
    elif operation == 1 and chain:
        other = reader.integer(0, len(chain) - 1)
        chain[at], chain[other] = chain[other], chain[at]
    elif operation == 2 and chain:
        chain.insert(at, chain[at])
    elif operation == 3:
        chain.insert(at, reader.pick(pool))
    elif operation == 4 and chain:
        chain[at] = reader.pick(pool)
    elif operation == 5:
        chain.reverse()
    elif operation == 6:
        chain = chain[: reader.integer(0, len(chain))]
    else:
        chain = [*chain, *chain][: reader.integer(5, 9)]
    recipe.options["chain"] = chain


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.DER)


def _edit_certificate_bytes(reader: ByteReader, recipe: _Recipe) -> None:
    """Byte edits inside one certificate's DER; the document around it is re-signed."""
    bundle = [_der(certificate) for certificate in recipe.chain()]
    leaf = _der(recipe.pki.leaf)
    in_bundle = bool(bundle) and reader.boolean()
    position = reader.integer(0, len(bundle) - 1) if in_bundle else 0
    der = bundle[position] if in_bundle else leaf
    if reader.integer(0, 3) == 0:
        der = _der(reader.pick(_pool(recipe.pki)))
    for _ in range(reader.integer(1, 3)):
        der = mutate_bytes(reader, der)
    if in_bundle:
        bundle[position] = der
        recipe.override("cabundle", bundle)
    else:
        recipe.override("certificate", der)


# Validity times a certificate builder will not write: the first and last
# instants datetime holds, GeneralizedTime where DER wants UTCTime, UTCTime's
# own bounds (1950, 2049), year 0, and BER forms (no seconds, an offset).
_DER_TIMES = (
    b"\x18\x0f00010101000000Z",
    b"\x18\x0f99991231235959Z",
    b"\x17\x0d500101000000Z",
    b"\x17\x0d491231235959Z",
    b"\x18\x0f20260101040000Z",
    b"\x17\x0d260101040000Z",
    b"\x17\x0d260101035900Z",
    b"\x18\x0f00000101000000Z",
    b"\x17\x0b2601010400Z",
    b"\x17\x11260101040000+0000",
)
_VALIDITY = 4  # TBSCertificate: [0] version, serial, signature, issuer, validity, ...


def _edit_validity_der(reader: ByteReader, recipe: _Recipe) -> None:
    """Writes a validity time into one certificate's DER, re-signed by its issuer's key (mostly)."""
    position = reader.integer(0, len(_LEVELS) - 1)
    level = _LEVELS[position]
    original = _der(getattr(recipe.pki, level))
    tbs, algorithm, signature = der_children(original)
    fields = der_children(tbs)
    times = der_children(fields[_VALIDITY])
    which = reader.integer(0, 2)
    time = reader.pick(_DER_TIMES)
    times = [time if which in (index, 2) else value for index, value in enumerate(times)]
    fields[_VALIDITY] = der_element(0x30, b"".join(times))
    tbs = der_element(0x30, b"".join(fields))
    if reader.integer(0, 3):
        issuer: ec.EllipticCurvePrivateKey = getattr(recipe.pki, f"{_LEVELS[max(position - 1, 0)]}_key")
        signed = issuer.sign(tbs, ec.ECDSA(hashes.SHA384(), deterministic_signing=True))
        signature = der_element(0x03, b"\x00" + signed)
    der = der_element(0x30, tbs + algorithm + signature)
    if level == "leaf":
        recipe.override("certificate", der)
    else:
        recipe.override("cabundle", [der if item == original else item for item in map(_der, recipe.chain())])


def _validity_edit(reader: ByteReader, level: Level) -> dict[str, datetime]:
    """New (notBefore, notAfter) just around the document time; both given so they stay ordered."""
    original: x509.Certificate = getattr(_PKI, level)
    start, end, now = original.not_valid_before_utc, original.not_valid_after_utc, _PKI.document_time
    choice = reader.integer(0, 4)
    if choice == 0:
        return {"not_before": start, "not_after": now - timedelta(seconds=1)}
    if choice == 1:
        return {"not_before": start, "not_after": now}
    if choice == 2:
        return {"not_before": now + _SKEW + timedelta(seconds=1), "not_after": end}
    if choice == 3:
        return {"not_before": now + _SKEW, "not_after": end}
    return {"not_before": now - timedelta(seconds=reader.integer(0, 4000)), "not_after": end}


_UNKNOWN_EXTENSION = x509.ObjectIdentifier("1.3.6.1.4.1.55555.1")
_REMOVABLE = (
    ExtensionOID.BASIC_CONSTRAINTS,
    ExtensionOID.KEY_USAGE,
    ExtensionOID.SUBJECT_KEY_IDENTIFIER,
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
)


def _key_usage(reader: ByteReader) -> x509.KeyUsage:
    bits = reader.integer(0, 7)
    return x509.KeyUsage(
        digital_signature=bool(bits & 1),
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=bool(bits & 2),
        crl_sign=bool(bits & 4),
        encipher_only=False,
        decipher_only=False,
    )


def _edit_reissue(reader: ByteReader, recipe: _Recipe) -> None:
    """Re-issues one certificate of the chain with one change (names, constraints, keys, validity, hash)."""
    level = reader.pick(_LEVELS)
    change = reader.integer(0, 8)
    changes: dict[str, Any] = {}
    if change == 0:
        changes = dict(_validity_edit(reader, level))
    elif change == 1:
        ca = reader.boolean()
        path_length = reader.pick((None, 0, 1, 2, 3)) if ca else None
        constraints = x509.BasicConstraints(ca=ca, path_length=path_length)
        changes["extensions"] = [x509.Extension(ExtensionOID.BASIC_CONSTRAINTS, reader.boolean(), constraints)]
    elif change == 2:
        changes["extensions"] = [x509.Extension(ExtensionOID.KEY_USAGE, reader.boolean(), _key_usage(reader))]
    elif change == 3:
        unknown = x509.UnrecognizedExtension(_UNKNOWN_EXTENSION, b"\x05\x00")
        changes["extensions"] = [x509.Extension(_UNKNOWN_EXTENSION, reader.boolean(), unknown)]
    elif change == 4:
        changes["remove"] = [reader.pick(_REMOVABLE)]
    elif change == 5:
        changes["key"] = reader.pick((_P256_KEY, _STRAY_KEY))
    elif change == 6:
        changes["signing_key"] = reader.pick((_STRAY_KEY, _OTHER.root_key, _P256_KEY))
    elif change == 7:
        other: x509.Certificate = getattr(_OTHER, reader.pick(_LEVELS))
        changes["issuer_name"] = other.subject
    else:
        changes["hash_algorithm"] = reader.pick((hashes.SHA256(), hashes.SHA512()))
    recipe.pki = recipe.pki.reissue(level, **changes)


# Protected headers: the valid {1: -35} and its non-shortest form, then
# alg as text, another alg, extra parameters, crit, duplicate keys, empty.
_PROTECTED = (
    bytes.fromhex("a1013822"),
    bytes.fromhex("a101390022"),
    bytes.fromhex("bf013822ff"),
    bytes.fromhex("a1016545533338"),
    bytes.fromhex("a1013823"),
    bytes.fromhex("a1012e"),
    bytes.fromhex("a20138220441aa"),
    bytes.fromhex("a201382202810a"),
    bytes.fromhex("a20138220300"),
    bytes.fromhex("a2013822013822"),
    bytes.fromhex("a0"),
    b"",
    bytes.fromhex("a10138221818"),
)


def _edit_protected(reader: ByteReader, recipe: _Recipe) -> None:
    recipe.options["protected"] = reader.pick(_PROTECTED) if reader.integer(0, 3) else reader.blob(12)


_SCALARS = (0, 1, 2, P384_ORDER - 1, P384_ORDER, P384_ORDER + 1, P384_ORDER // 2, P384_ORDER // 2 + 1, _P384_PRIME)


def _edit_signature(reader: ByteReader, recipe: _Recipe) -> None:
    operation = reader.integer(0, 7)
    if operation <= 1:
        recipe.options["high_s"] = operation == 0
        return
    value = reader.pick((*_SCALARS, 2**384 - 1)).to_bytes(48, "big")
    at = reader.integer(0, 95)
    tail = reader.blob(8)

    def edit(signature: bytes) -> bytes:
        if operation == 2:
            return value + signature[48:]
        if operation == 3:
            return signature[:48] + value
        if operation == 4:
            return signature[:at] + bytes([signature[at] ^ 0x01]) + signature[at + 1 :]
        if operation == 5:
            return signature[:at]
        if operation == 6:
            return signature + (tail or b"\x00")
        return signature_twin(signature)

    recipe.options["signature"] = edit


_UNPROTECTED: tuple[object, ...] = ({1: -35}, {4: b"kid"}, [], None, {"": 0})


def _edit_envelope(reader: ByteReader, recipe: _Recipe) -> None:
    operation = reader.integer(0, 9)
    if operation == 0:
        recipe.options["tag"] = True
    elif operation == 1:
        recipe.options["tag"] = reader.pick(_TAGS)
    elif operation == 2:
        recipe.options["trailing"] = reader.blob(8) or b"\x00"
    else:
        unprotected = reader.pick(_UNPROTECTED)

        def edit(parts: list[object]) -> object:  # noqa: PLR0911  (one return per operation)
            if operation == 3:
                return [parts[0], unprotected, *parts[2:]]
            if operation == 4:
                return [*parts[:2], None, parts[3]]
            if operation == 5:
                return parts[:3]
            if operation == 6:
                return [*parts, b""]
            if operation == 7:
                return cbor2.CBORTag(18, parts)
            if operation == 8:
                return [{1: -35}, *parts[1:]]
            return dict(enumerate(parts))

        recipe.options["envelope"] = edit


def _edit_signer(reader: ByteReader, recipe: _Recipe) -> None:
    recipe.options["sign_with"] = reader.pick(
        (_OTHER.leaf_key, recipe.pki.instance_key, _PKI.root_key, _P256_KEY, _STRAY_KEY)
    )


_EDITS: tuple[Callable[[ByteReader, _Recipe], None], ...] = (
    _edit_field,
    _edit_pcrs,
    _edit_time,
    _edit_module_id,
    _edit_optional,
    _edit_extra,
    _edit_indefinite,
    _edit_payload_bytes,
    _edit_chain,
    _edit_certificate_bytes,
    _edit_validity_der,
    _edit_reissue,
    _edit_protected,
    _edit_signature,
    _edit_envelope,
    _edit_signer,
)


# -- verification time, roots, policy -------------------------------------------------------------

# Around the bounds of the test chain: the leaf starts 3 s before and ends
# 3 h after the document time, the skew is 60 s, the instance certificate
# starts an hour before it, the root 4 hours before.
_AT_SHIFTS = tuple(
    timedelta(seconds=seconds)
    for seconds in (0, 1, -1, -63, -64, 59, 60, 61, 3 * 3600, 3 * 3600 + 1e-6, -3600, -4 * 3600, 86400, 3e8)
)


def _policy(reader: ByteReader, fields: dict[str, Any]) -> Policy:  # noqa: PLR0911  (one return per kind)
    """A policy, often one the document can meet (it pins the recipe's own values)."""
    given = fields.get("pcrs")
    pcrs: dict[int, bytes] = dict(DEFAULT_PCRS)
    if isinstance(given, Mapping):  # an edit may have made it anything: pin only what a policy can hold
        pcrs = {
            i: v for i, v in given.items() if type(i) is int and 0 <= i < 32 and isinstance(v, bytes) and len(v) == 48
        }
    pcr0 = pcrs.get(0, DEFAULT_PCRS[0])
    own = {name: value for name in ("nonce", "user_data", "public_key") if isinstance(value := fields.get(name), bytes)}

    def pinned() -> Policy:
        return Policy(
            {0: pcr0}, nonce=own.get("nonce"), user_data=own.get("user_data"), public_key=own.get("public_key")
        )

    kind = reader.integer(0, 8)
    if kind == 0:
        return Policy.any_enclave(allow_debug=True)
    if kind == 1:
        return Policy.any_enclave()
    if kind == 2:
        return pinned()
    if kind == 3:
        index = reader.integer(0, 31)
        value = pcrs.get(index)
        pin = value if value is not None and reader.boolean() else reader.take(48)
        return Policy({index: pin.ljust(48, b"\x00")}, allow_debug=reader.boolean())
    if kind == 4:
        max_age = timedelta(seconds=reader.pick((0, 59, 60, 61, 3600, 10**6)))
        return Policy.any_enclave(max_age=max_age, allow_debug=True)
    if kind == 5:
        name = reader.pick(("nonce", "user_data", "public_key"))
        wanted = own.get(name, b"") if reader.boolean() else reader.blob(16)
        return Policy.any_enclave(
            allow_debug=True,
            nonce=wanted if name == "nonce" else None,
            user_data=wanted if name == "user_data" else None,
            public_key=wanted if name == "public_key" else None,
        )
    if kind == 6:
        return Policy.any_of(pinned(), Policy({1: reader.take(48).ljust(48, b"\x00")}))
    if kind == 7:
        pattern = reader.pick(("i-*", "*", "?", "i-0123456789abcdef0-enc*", "x*", "i-????????????????-*"))
        return Policy.any_enclave(module_id=pattern, allow_debug=True)
    return Policy(image_sha384=pcr0, allow_debug=reader.boolean())


# -- the independent re-check of an accepted document ---------------------------------------------


@functools.lru_cache(maxsize=4096)
def _link_holds(issuer_der: bytes, subject_der: bytes) -> bool:
    """pyca/cryptography's own answer: does the issuer's key sign the subject, with matching names?"""
    issuer = x509.load_der_x509_certificate(issuer_der)
    subject = x509.load_der_x509_certificate(subject_der)
    try:
        subject.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _is_p384(certificate: x509.Certificate) -> bool:
    key = certificate.public_key()
    return isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP384R1)


def _basic_constraints(certificate: x509.Certificate) -> x509.BasicConstraints | None:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return None


def _policy_holds(policy: Policy, document: AttestationDocument, at: datetime) -> bool:
    """The policy rules of DESIGN.md section 5, evaluated without nitro_attest.policy."""
    if policy.alternatives:
        return any(_policy_holds(alternative, document, at) for alternative in policy.alternatives)
    pcr0 = document.pcrs.get(0)
    if pcr0 is not None and not any(pcr0.value) and not policy.allow_debug:
        return False
    for index, allowed in policy.pcrs.items():
        value = document.pcrs.get(index)
        if value is None or value.value not in allowed:
            return False
    # The patterns _policy uses have no "[": fnmatch's "*" and "?" are then IAM's StringLike.
    if policy.module_id is not None and not fnmatch.fnmatchcase(document.module_id, policy.module_id):
        return False
    for name in ("nonce", "user_data", "public_key"):
        wanted = getattr(policy, name)
        if wanted is not None and getattr(document, name) != wanted:
            return False
    return policy.max_age is None or at - document.timestamp <= policy.max_age


def _check_accepted(
    data: bytes, document: AttestationDocument, at: datetime, roots: Sequence[x509.Certificate], policy: Policy
) -> None:
    check_decoding(data, document)
    path = (*document.cabundle, document.certificate)
    require(document.chain_der[0] in {_der(root) for root in roots}, "accepted a cabundle[0] that is no trusted root")
    for position, certificate in enumerate(path):
        require(_is_p384(certificate), f"accepted path[{position}] whose key is not P-384")
        require(isinstance(certificate.signature_hash_algorithm, hashes.SHA384), f"path[{position}] is not SHA-384")
        basic = _basic_constraints(certificate)
        is_ca = basic is not None and basic.ca
        require(is_ca == (position < len(path) - 1), f"accepted path[{position}] with the wrong CA flag")
        start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
        # Differences, not sums: a notBefore of year 1 minus the skew leaves datetime's range.
        require(start - at <= _SKEW and at <= end, f"accepted path[{position}], not valid at {at.isoformat()}")
        if position:
            require(
                _link_holds(document.chain_der[position - 1], document.chain_der[position]),
                f"accepted path[{position}], which path[{position - 1}] did not sign",
            )
    leaf = document.certificate
    require(leaf.not_valid_before_utc <= document.timestamp <= leaf.not_valid_after_utc, "timestamp outside the leaf")
    require(document.timestamp - at <= _SKEW, "accepted a timestamp after the verification time")
    r = int.from_bytes(document.signature[:48], "big")
    s = int.from_bytes(document.signature[48:], "big")
    require(0 < r < P384_ORDER and 0 < s < P384_ORDER, "accepted r or s outside 1..n-1")
    key = leaf.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)  # _is_p384 above
    message = cbor2.dumps(["Signature1", document.protected_header, b"", document.payload])
    try:
        key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA384()))
    except InvalidSignature:
        require(False, "accepted a signature pyca/cryptography rejects")
    require(_policy_holds(policy, document, at), "accepted a document the policy does not allow")


# -- one input ------------------------------------------------------------------------------------

_Outcome = tuple[object, ...]


def _outcome(result: AttestationDocument | NitroAttestError) -> _Outcome:
    if isinstance(result, AttestationDocument):
        return ("accepted", result)
    return ("rejected", type(result), result.code, result.message, getattr(result, "failures", None))


def _verify(data: bytes, policy: Policy, at: datetime, roots: Sequence[x509.Certificate]) -> _Outcome:
    try:
        return _outcome(nitro_attest.verify(data, policy, at=at, roots=roots))
    except NitroAttestError as error:
        return _outcome(error)


@dataclass(frozen=True)
class _Case:
    """A document to verify and how; ``signed`` is set when it was byte-mutated after signing."""

    data: bytes
    at: datetime
    roots: tuple[x509.Certificate, ...]
    policy: Policy
    companions: tuple[bytes, ...]
    signed: dict[tuple[bytes, bytes], frozenset[bytes]] | None  # (protected, payload) -> valid signatures


@dataclass(frozen=True)
class _RunChoices:
    """How to call verify() and verify_batch(): the batch's shape, its workers, the link cache's state."""

    shape: int
    workers: int
    flags: int

    @classmethod
    def read(cls, reader: ByteReader) -> _RunChoices:
        return cls(reader.integer(0, 3), reader.integer(1, 2), reader.integer(0, 7))


def _run(choices: _RunChoices, case: _Case) -> None:
    batch = {
        0: [case.data],
        1: [case.data, *case.companions],
        2: [*case.companions, case.data],
        3: [case.data, case.data],
    }[choices.shape]

    def single() -> dict[bytes, _Outcome]:
        if choices.flags & 1:
            LINK_CACHE.clear()
        return {data: _verify(data, case.policy, case.at, case.roots) for data in batch}

    def batched() -> list[_Outcome]:
        if choices.flags & 2:
            LINK_CACHE.clear()
        results = nitro_attest.verify_batch(batch, case.policy, at=case.at, roots=case.roots, workers=choices.workers)
        return [_outcome(result) for result in results]

    # Either call may run first: the second then meets a link cache the first filled.
    if choices.flags & 4:
        batch_outcomes, outcomes = batched(), single()
    else:
        outcomes, batch_outcomes = single(), batched()
    require(len(batch_outcomes) == len(batch), "verify_batch() returned the wrong number of results")
    for position, (data, batch_outcome) in enumerate(zip(batch, batch_outcomes, strict=True)):
        require(
            batch_outcome == outcomes[data],
            f"batch[{position}]: verify_batch {batch_outcome} != verify {outcomes[data]}",
        )

    outcome = outcomes[case.data]
    if outcome[0] == "accepted":
        document = outcome[1]
        assert isinstance(document, AttestationDocument)
        _check_accepted(case.data, document, case.at, case.roots, case.policy)
        if case.signed is not None:
            signatures = case.signed.get((document.protected_header, document.payload))
            require(signatures is not None, "a byte mutation changed the signed header or payload and was accepted")
            require(document.signature in (signatures or ()), "a byte mutation changed the signature and was accepted")
    elif outcome[1] is PolicyViolation:
        require(
            not _policy_holds(case.policy, nitro_attest.parse(case.data), case.at),
            f"rejected by the policy although it holds: {outcome[3]}",
        )


def _shifted(moment: datetime, shift: timedelta) -> datetime:
    """``moment + shift``, or ``moment`` where that leaves datetime's range (years 1..9999)."""
    try:
        return moment + shift
    except OverflowError:
        return moment


def _signed_contents(
    protected: bytes, payload: bytes, signatures: frozenset[bytes]
) -> dict[tuple[bytes, bytes], frozenset[bytes]]:
    """What a byte mutation of the built document may carry and verify: its content, or a base's spliced in."""
    contents = dict(_BASE_SIGNED)
    contents[protected, payload] = contents.get((protected, payload), frozenset()) | signatures
    return contents


def _built_case(reader: ByteReader) -> _Case:
    base = reader.integer(0, len(_BASES) - 1)
    recipe = _BASES[base].copy()
    for _ in range(reader.integer(0, 4)):
        reader.pick(_EDITS)(reader, recipe)
    data, protected, payload, signatures = recipe.build()
    mutations = reader.integer(0, 4)
    for _ in range(mutations):
        data = mutate_bytes(reader, data, _BASE_DOCUMENTS)
    anchor = recipe.options.get("timestamp") if reader.boolean() else None
    at = _shifted(anchor if isinstance(anchor, datetime) else recipe.pki.document_time, reader.pick(_AT_SHIFTS))
    roots = reader.pick(((_PKI.root,), (recipe.pki.root,), (_PKI.root, recipe.pki.root), _ALL_ROOTS))
    fields = {**recipe.options, **recipe.options.get("payload_overrides", {})}
    return _Case(
        data,
        at,
        roots,
        _policy(reader, fields),
        (_BASE_DOCUMENTS[base],),
        _signed_contents(protected, payload, signatures) if mutations else None,
    )


def _document_case(reader: ByteReader) -> _Case:
    shift = reader.pick(_AT_SHIFTS)
    policy = _policy(reader, dict(_PLAIN))
    data = reader.rest()
    try:
        at = nitro_attest.parse(data).timestamp
    except NitroAttestError:
        at = _PKI.document_time
    return _Case(data, _shifted(at, shift), _ALL_ROOTS, policy, _BASE_DOCUMENTS[:1], None)


def test_one_input(data: bytes) -> None:
    reader = ByteReader(data)
    built = reader.integer(0, 1) == 0
    choices = _RunChoices.read(reader)
    _run(choices, _built_case(reader) if built else _document_case(reader))


# -- seeds ----------------------------------------------------------------------------------------

# A "document" input: mode 1, the run's choices (a batch of one, one worker,
# the cache as it is), no time shift, policy 0 (any enclave, debug allowed), the document.
_DOCUMENT_PREFIX = bytes([1, 0, 0, 0, 0, 0])


def _built_seeds() -> list[tuple[str, bytes]]:
    """For each base and each edit, a few inputs that make that edit first (deterministic)."""
    run = bytes(3)  # a batch of one, one worker, the cache as it is
    seeds = [(f"built-{recipe.name}", bytes([0, *run, base])) for base, recipe in enumerate(_BASES)]
    for base, recipe in enumerate(_BASES):
        for edit, function in enumerate(_EDITS):
            generator = random.Random(f"{recipe.name}/{function.__name__}")  # noqa: S311  (reproducible seeds)
            for variant in range(2):
                tail = generator.randbytes(48)
                name = f"built-{recipe.name}-{function.__name__}-{variant}"
                seeds.append((name, bytes([0, *run, base, 1, edit]) + tail))
        generator = random.Random(f"{recipe.name}/raw")  # noqa: S311  (reproducible seeds)
        seeds.append((f"built-{recipe.name}-raw", bytes([0, *run, base, 0, 1]) + generator.randbytes(16)))
    return seeds


def own_seeds() -> list[tuple[str, bytes]]:
    """Built inputs for every base and edit, and the recorded and generated documents as "document" inputs."""
    return [*_built_seeds(), *iter_seeds([*repo_vectors(), *generated_documents()], _DOCUMENT_PREFIX)]


def shared_seeds() -> list[tuple[str, bytes]]:
    """../shared's documents as "document" inputs; [] when it is absent."""
    return list(iter_seeds(shared_vectors(), _DOCUMENT_PREFIX))


def main() -> None:
    fuzz_main(test_one_input)


if __name__ == "__main__":
    main()
