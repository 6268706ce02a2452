"""A look-alike of the AWS Nitro PKI and a factory of attestation documents, for tests.

:class:`TestPKI` issues a root -> regional -> zonal -> instance -> enclave-leaf
chain with the names, extensions, criticality, serial sizes and lifetimes of
the real AWS chain, but under a root that is obviously a test root
(``CN=aws.nitro-enclaves.TEST-ONLY``, ``O=nitro_attest test PKI``): its
documents verify only when the caller passes ``roots=pki.roots``, never
against the AWS root shipped with the package.

Everything is deterministic: keys are derived from labels, serials from
labels, and every signature (certificates and documents) is RFC 6979
deterministic ECDSA, so the same inputs give the same bytes. That is what
lets ``vectors/`` be regenerated and compared byte for byte.

:meth:`TestPKI.document` makes a valid document by default; each of its
breakage keywords breaks one thing, so every decoding, chain and time rule
(docs/concepts.md) can be broken alone. :meth:`TestPKI.reissue` replaces one certificate of the
chain by a broken one.

:class:`DocumentFactory` is the short way for testing a service: documents
with the fields a relying party checks, valid or broken in one named way
(:data:`BREAKAGE_CODES`). The pytest plugin (``_nitro_attest_pytestplugin``)
hands one out as the ``nitro_document`` fixture; see docs/testing.md.

>>> pki = TestPKI.create()
>>> data = pki.document(nonce=b"n")
>>> nitro_attest.verify(data, policy, at=pki.document_time, roots=pki.roots)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Literal, TypeAlias

import cbor2
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, load_pem_private_key
from cryptography.x509.oid import NameOID, ObjectIdentifier

from ._backend import P384_ORDER
from .document import MAX_FIELD_SIZE
from .eif._build import build_eif
from .errors import ConfigurationError
from .measurements import pcr3_for_role, pcr4_for_instance

__all__ = [
    "BREAKAGE_CODES",
    "DEFAULT_MODULE_ID",
    "DEFAULT_PCRS",
    "DEFAULT_ROLE_ARN",
    "DEFAULT_START",
    "ES384_PROTECTED_HEADER",
    "OMIT",
    "Breakage",
    "CertificateHash",
    "DocumentFactory",
    "Level",
    "LongChain",
    "Raw",
    "TestEnclave",
    "TestPKI",
    "build_eif",
    "derive_key",
    "encode",
    "encode_map",
    "issue_certificate",
    "long_chain",
    "padded_to",
]

#: The instant every validity window of a default :class:`TestPKI` derives from.
DEFAULT_START = datetime(2026, 1, 1, tzinfo=timezone.utc)

#: ``module_id`` of the default documents: ``<instance id>-<enclave id>``, as Nitro names them.
DEFAULT_MODULE_ID = "i-0123456789abcdef0-enc0123456789abcdef0"
_INSTANCE_ID, _, _ENCLAVE_ID = DEFAULT_MODULE_ID.partition("-enc")

#: The IAM role of the (imaginary) parent instance, measured into PCR3.
DEFAULT_ROLE_ARN = "arn:aws:iam::123456789012:role/nitro-attest-test"

#: The protected header every Nitro document carries: ``{1: -35}`` (alg: ES384).
ES384_PROTECTED_HEADER = bytes.fromhex("a1013822")

_COSE_SIGN1_TAG = 18
_DEFAULT_SEED = "nitro_attest test PKI"
_TEST_ORGANIZATION = "nitro_attest test PKI"
_TEST_ROOT_CN = "aws.nitro-enclaves.TEST-ONLY"

_P256_ORDER = int("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551", 16)
_CURVES: Mapping[str, ec.EllipticCurve] = MappingProxyType({"P-384": ec.SECP384R1(), "P-256": ec.SECP256R1()})
# Group orders by cryptography's curve name: scalars and signature twins need them.
_ORDERS: Mapping[str, int] = MappingProxyType({"secp384r1": P384_ORDER, "secp256r1": _P256_ORDER})
# ES384 fixes the signature at 2 x 48 bytes whatever key signs: a P-256 signer
# (the attack on the leaf's curve) must still produce a well-formed envelope.
_COORDINATE_SIZE = 48
_SHA384 = hashes.SHA384()
#: The hashes a test certificate may be signed with (all but SHA-384 are attacks on the chain).
CertificateHash: TypeAlias = "hashes.SHA256 | hashes.SHA384 | hashes.SHA512"

# Lifetimes and offsets from ``start``, as AWS issues them: a 30-year root, then
# regional (~20 days), zonal (~6 days), instance (1 day) and enclave leaf (3 hours).
# Each window starts a little later than its issuer's, so all of them contain
# the document time, and each can be made to miss it separately.
_ROOT_LIFETIME = timedelta(days=10958, hours=1)
_REGIONAL_OFFSET, _REGIONAL_LIFETIME = timedelta(hours=1), timedelta(days=20, hours=1)
_ZONAL_OFFSET, _ZONAL_LIFETIME = timedelta(hours=2), timedelta(days=5, hours=20)
_INSTANCE_OFFSET, _INSTANCE_LIFETIME = timedelta(hours=3), timedelta(days=1)
_DOCUMENT_OFFSET = timedelta(hours=4)
# Nitro's leaf starts 3 s before the first document it signs and lives 3 hours after it.
_LEAF_LEAD, _LEAF_LIFETIME = timedelta(seconds=3), timedelta(hours=3, seconds=3)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _sha384(text: str) -> bytes:
    return hashlib.sha384(text.encode()).digest()


#: The 16 PCRs of a default document, shaped like a real production enclave's.
DEFAULT_PCRS: Mapping[int, bytes] = MappingProxyType(
    {
        **{index: bytes(48) for index in range(16)},
        0: _sha384("nitro_attest test PCR0: enclave image"),
        1: _sha384("nitro_attest test PCR1: kernel and bootstrap"),
        2: _sha384("nitro_attest test PCR2: application"),
        3: pcr3_for_role(DEFAULT_ROLE_ARN).value,
        4: pcr4_for_instance(_INSTANCE_ID).value,
        8: _sha384("nitro_attest test PCR8: signing certificate"),
    }
)


class _Omit(enum.Enum):
    OMIT = "OMIT"


#: In ``payload_overrides``, removes the field from the payload.
OMIT = _Omit.OMIT

#: A certificate of the test chain, by its place in AWS's hierarchy.
Level = Literal["root", "regional", "zonal", "instance", "leaf"]
_LEVELS: tuple[Level, ...] = ("root", "regional", "zonal", "instance", "leaf")


@dataclass(frozen=True)
class Raw:
    """Already-encoded CBOR, written verbatim wherever :func:`encode` meets it.

    For what cbor2 will not write: duplicate keys, non-shortest integers,
    indefinite-length strings, invalid UTF-8.
    """

    data: bytes


def _head(major: int, argument: int) -> bytes:
    """A CBOR initial byte and shortest argument (RFC 8949 3.1).

    Written by hand because cbor2 encodes whole values only, and a container
    must be able to hold :class:`Raw` items it cannot see inside.
    """
    if argument < 24:
        return bytes([major << 5 | argument])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if argument < 1 << (8 * size):
            return bytes([major << 5 | info]) + argument.to_bytes(size, "big")
    raise ValueError(f"CBOR argument {argument} does not fit in 8 bytes")


def encode(value: object) -> bytes:
    """CBOR-encodes ``value`` like cbor2, except that :class:`Raw` items are written verbatim.

    Maps keep their insertion order; lists, tuples, maps and ``cbor2.CBORTag``
    are walked so a :class:`Raw` may sit anywhere inside them.
    """
    if isinstance(value, Raw):
        return value.data
    if isinstance(value, Mapping):
        return encode_map(list(value.items()))
    if isinstance(value, (list, tuple)):
        return _head(4, len(value)) + b"".join(encode(item) for item in value)
    if isinstance(value, cbor2.CBORTag):
        return _head(6, value.tag) + encode(value.value)
    return cbor2.dumps(value)


def encode_map(pairs: Sequence[tuple[object, object]], *, indefinite: bool = False) -> bytes:
    """A CBOR map of ``pairs`` in order; duplicate keys are kept (a dict cannot hold them).

    ``indefinite`` writes an indefinite-length map (``0xbf ... 0xff``), as 3 of
    64 real documents do.
    """
    body = b"".join(encode(key) + encode(value) for key, value in pairs)
    if indefinite:
        return b"\xbf" + body + b"\xff"
    return _head(5, len(pairs)) + body


def derive_key(label: str, *, curve: Literal["P-384", "P-256"] = "P-384") -> ec.EllipticCurvePrivateKey:
    """A fixed test key: the scalar is SHA-384 of ``label`` reduced into 1..n-1.

    Never use one outside tests: anyone can derive it from the label.
    """
    group = _CURVES[curve]
    scalar = int.from_bytes(_sha384(label), "big") % (_ORDERS[group.name] - 1) + 1
    return ec.derive_private_key(scalar, group)


def _serial(seed: str, label: str, size: int) -> int:
    """A ``size``-byte positive serial derived from a label (RFC 5280 allows up to 20 bytes)."""
    # Reduced below 2**159: a 20-byte serial must stay positive in DER (cryptography enforces it).
    return int.from_bytes(_sha384(f"{seed}/serial/{label}")[:size], "big") % (1 << 159)


def _hex_id(seed: str, label: str) -> str:
    """A 16-hex-digit identifier like those in AWS's regional and zonal names."""
    return _sha384(f"{seed}/id/{label}").hex()[:16]


def _name(*attributes: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])


def _extension(value: x509.ExtensionType, *, critical: bool) -> x509.Extension[x509.ExtensionType]:
    return x509.Extension(value.oid, critical, value)


def _key_usage(*, digital_signature: bool, non_repudiation: bool, cert_sign: bool, crl_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=non_repudiation,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _ca_extensions(
    *,
    path_length: int | None,
    key: ec.EllipticCurvePrivateKey,
    issuer_key: ec.EllipticCurvePrivateKey | None,
    crl_url: str | None,
) -> list[x509.Extension[x509.ExtensionType]]:
    """The extensions of AWS's root, regional and zonal certificates, in AWS's order."""
    extensions = [_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)]
    if issuer_key is not None:
        identifier = x509.SubjectKeyIdentifier.from_public_key(issuer_key.public_key())
        extensions.append(
            _extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(identifier), critical=False)
        )
    extensions += [
        _extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False),
        _extension(
            _key_usage(digital_signature=True, non_repudiation=False, cert_sign=True, crl_sign=True), critical=True
        ),
    ]
    if crl_url is not None:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)
        extensions.append(_extension(x509.CRLDistributionPoints([point]), critical=False))
    return extensions


def issue_certificate(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    *,
    issuer: x509.Name,
    signing_key: ec.EllipticCurvePrivateKey,
    serial: int,
    not_before: datetime,
    not_after: datetime,
    extensions: Sequence[x509.Extension[x509.ExtensionType]],
    hash_algorithm: CertificateHash = _SHA384,
) -> x509.Certificate:
    """Issues an X.509 v3 certificate with exactly ``extensions``, in their order.

    ``issuer`` is the name written into the certificate and ``signing_key``
    the key that signs it: they are independent so a test can make them
    disagree. Signatures are deterministic ECDSA (RFC 6979).
    """
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    for extension in extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    return builder.sign(signing_key, hash_algorithm, ecdsa_deterministic=True)


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.DER)


def _milliseconds(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _sign(key: ec.EllipticCurvePrivateKey, protected: bytes, payload: bytes, high_s: bool | None) -> bytes:
    # The Sig_structure is spelled out here rather than taken from
    # nitro_attest._cose, so a mistake there cannot hide in the documents made here.
    message = cbor2.dumps(["Signature1", protected, b"", payload])
    r, s = decode_dss_signature(key.sign(message, ec.ECDSA(_SHA384, deterministic_signing=True)))
    order = _ORDERS[key.curve.name]
    # (r, n - s) is the same signature's twin: force whichever half was asked for.
    if high_s is not None and (s > order // 2) != high_s:
        s = order - s
    return r.to_bytes(_COORDINATE_SIZE, "big") + s.to_bytes(_COORDINATE_SIZE, "big")


def _names(seed: str, region: str, root_name: x509.Name | None) -> dict[Level, x509.Name]:
    """The subjects of the chain, laid out as AWS lays them out (attribute order differs per level)."""
    organization = (NameOID.ORGANIZATION_NAME, _TEST_ORGANIZATION)
    aws = (NameOID.ORGANIZATIONAL_UNIT_NAME, "AWS")
    country = (NameOID.COUNTRY_NAME, "US")
    seattle = ((NameOID.STATE_OR_PROVINCE_NAME, "Washington"), (NameOID.LOCALITY_NAME, "Seattle"))
    regional_id, zonal_id = _hex_id(seed, f"regional/{region}"), _hex_id(seed, f"zonal/{region}")
    return {
        "root": root_name or _name(country, organization, aws, (NameOID.COMMON_NAME, _TEST_ROOT_CN)),
        "regional": _name(
            country, organization, aws, (NameOID.COMMON_NAME, f"{regional_id}.{region}.aws.nitro-enclaves")
        ),
        "zonal": _name(
            (NameOID.COMMON_NAME, f"{zonal_id}.zonal.{region}.aws.nitro-enclaves"),
            aws,
            organization,
            country,
            (NameOID.STATE_OR_PROVINCE_NAME, "WA"),
            (NameOID.LOCALITY_NAME, "Seattle"),
        ),
        "instance": _name(
            country,
            *seattle,
            organization,
            aws,
            (NameOID.COMMON_NAME, f"{_INSTANCE_ID}.{region}.aws.nitro-enclaves"),
        ),
        "leaf": _name(country, *seattle, organization, aws, (NameOID.COMMON_NAME, f"{DEFAULT_MODULE_ID}.{region}.aws")),
    }


def _profiles(
    seed: str, region: str, start: datetime, keys: Mapping[Level, ec.EllipticCurvePrivateKey]
) -> dict[Level, tuple[int, datetime, datetime, list[x509.Extension[x509.ExtensionType]]]]:
    """Serial, validity and extensions of each certificate, as AWS issues them."""
    crl = f"http://crl-{region}.nitro-attest-test-only.invalid/crl"
    document_time = start + _DOCUMENT_OFFSET
    return {
        "root": (
            _serial(seed, "root", 16),
            start,
            start + _ROOT_LIFETIME,
            _ca_extensions(path_length=None, key=keys["root"], issuer_key=None, crl_url=None),
        ),
        "regional": (
            _serial(seed, "regional", 16),
            start + _REGIONAL_OFFSET,
            start + _REGIONAL_OFFSET + _REGIONAL_LIFETIME,
            _ca_extensions(
                path_length=2,
                key=keys["regional"],
                issuer_key=keys["root"],
                crl_url=f"{crl}/{_hex_id(seed, 'crl/regional')}.crl",
            ),
        ),
        "zonal": (
            _serial(seed, "zonal", 16),
            start + _ZONAL_OFFSET,
            start + _ZONAL_OFFSET + _ZONAL_LIFETIME,
            _ca_extensions(
                path_length=1,
                key=keys["zonal"],
                issuer_key=keys["regional"],
                crl_url=f"{crl}/{_hex_id(seed, 'crl/zonal')}.crl",
            ),
        ),
        "instance": (
            _serial(seed, "instance", 20),
            start + _INSTANCE_OFFSET,
            start + _INSTANCE_OFFSET + _INSTANCE_LIFETIME,
            # The instance certificate has its own order, and signs certificates only.
            [
                _extension(x509.BasicConstraints(ca=True, path_length=0), critical=True),
                _extension(
                    _key_usage(digital_signature=False, non_repudiation=False, cert_sign=True, crl_sign=False),
                    critical=True,
                ),
                _extension(x509.SubjectKeyIdentifier.from_public_key(keys["instance"].public_key()), critical=False),
                _extension(
                    x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                        x509.SubjectKeyIdentifier.from_public_key(keys["zonal"].public_key())
                    ),
                    critical=False,
                ),
            ],
        ),
        "leaf": (
            # Nitro's leaf serial is the enclave id followed by the Unix time it was made.
            int(_ENCLAVE_ID, 16) << 64 | int(document_time.timestamp()),
            document_time - _LEAF_LEAD,
            document_time - _LEAF_LEAD + _LEAF_LIFETIME,
            [
                _extension(x509.BasicConstraints(ca=False, path_length=None), critical=True),
                _extension(
                    _key_usage(digital_signature=True, non_repudiation=True, cert_sign=False, crl_sign=False),
                    critical=False,
                ),
            ],
        ),
    }


@dataclass(frozen=True)
class TestPKI:
    """A deterministic look-alike of the AWS Nitro PKI: root -> regional -> zonal -> instance -> leaf.

    Shapes follow real AWS chains: P-384 keys, ecdsa-with-SHA384, basicConstraints
    critical with pathLen 2/1/0 on regional/zonal/instance, keyUsage critical on
    CAs (keyCertSign), a leaf with critical CA:false and a non-critical
    digitalSignature + nonRepudiation keyUsage, 16-byte serials (20 for the
    instance, enclave id + time for the leaf), and AWS's subject layouts.
    ``start`` is the instant the validity windows derive from.
    """

    __test__: ClassVar[bool] = False  # not a test class, whatever its name says to pytest

    root: x509.Certificate
    root_key: ec.EllipticCurvePrivateKey
    regional: x509.Certificate
    regional_key: ec.EllipticCurvePrivateKey
    zonal: x509.Certificate
    zonal_key: ec.EllipticCurvePrivateKey
    instance: x509.Certificate
    instance_key: ec.EllipticCurvePrivateKey
    leaf: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey
    start: datetime

    @classmethod
    def create(
        cls,
        *,
        start: datetime = DEFAULT_START,
        region: str = "us-east-1",
        seed: str = _DEFAULT_SEED,
        root_name: x509.Name | None = None,
    ) -> TestPKI:
        """Issues the chain. The same arguments always give the same certificates and keys.

        ``seed`` names a different PKI (other keys and serials); ``root_name``
        replaces the root's test name, e.g. by AWS's own to play an attacker
        whose look-alike root must not be trusted.
        """
        if start.tzinfo is None:
            raise TypeError("start must be timezone-aware")
        keys: dict[Level, ec.EllipticCurvePrivateKey] = {level: derive_key(f"{seed}/key/{level}") for level in _LEVELS}
        return cls._issue(keys, start=start, region=region, seed=seed, root_name=root_name)

    @classmethod
    def _issue(
        cls,
        keys: Mapping[Level, ec.EllipticCurvePrivateKey],
        *,
        start: datetime,
        region: str,
        seed: str,
        root_name: x509.Name | None,
        root: x509.Certificate | None = None,
    ) -> TestPKI:
        """The chain of ``keys`` from ``start``; under ``root`` (whose key is ``keys["root"]``) when given."""
        names = _names(seed, region, root_name)
        profiles = _profiles(seed, region, start, keys)
        certificates: dict[Level, x509.Certificate] = {} if root is None else {"root": root}
        for position, level in enumerate(_LEVELS):
            if level in certificates:
                continue
            issuer = _LEVELS[max(position - 1, 0)]  # the root signs itself
            serial, not_before, not_after, extensions = profiles[level]
            certificates[level] = issue_certificate(
                names[level],
                keys[level].public_key(),
                issuer=names[issuer],
                signing_key=keys[issuer],
                serial=serial,
                not_before=not_before,
                not_after=not_after,
                extensions=extensions,
            )
        return cls(
            root=certificates["root"],
            root_key=keys["root"],
            regional=certificates["regional"],
            regional_key=keys["regional"],
            zonal=certificates["zonal"],
            zonal_key=keys["zonal"],
            instance=certificates["instance"],
            instance_key=keys["instance"],
            leaf=certificates["leaf"],
            leaf_key=keys["leaf"],
            start=start,
        )

    @property
    def roots(self) -> tuple[x509.Certificate, ...]:
        """The trust anchors for this PKI: pass as ``verify(..., roots=pki.roots)``."""
        return (self.root,)

    @property
    def cabundle(self) -> tuple[x509.Certificate, ...]:
        """The default ``cabundle`` of documents: ``(root, regional, zonal, instance)``."""
        return (self.root, self.regional, self.zonal, self.instance)

    @property
    def document_time(self) -> datetime:
        """The default document timestamp, inside every validity window: pass it as ``at=``."""
        return self.start + _DOCUMENT_OFFSET

    def reissue(
        self,
        level: Level,
        *,
        extensions: Sequence[x509.Extension[x509.ExtensionType]] = (),
        remove: Sequence[x509.ObjectIdentifier] = (),
        key: ec.EllipticCurvePrivateKey | None = None,
        signing_key: ec.EllipticCurvePrivateKey | None = None,
        issuer_name: x509.Name | None = None,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        hash_algorithm: CertificateHash = _SHA384,
    ) -> TestPKI:
        """A copy of this PKI whose ``level`` certificate is re-issued with the given changes.

        The new certificate keeps the old subject, issuer name, serial, validity
        and extensions except that: each of ``extensions`` replaces the one
        with its OID in place (or is appended); OIDs in ``remove`` are dropped;
        ``key`` is its new key pair (the key identifiers are not recomputed);
        ``signing_key`` signs it instead of its issuer's key (the root's own
        key for the root); ``issuer_name`` replaces the issuer name;
        ``not_before``/``not_after`` its validity; ``hash_algorithm`` the
        signature's hash. The other certificates are unchanged, so their links
        to this one still hold unless its name or key changed.

        For example, a pathLen violation:
        ``pki.reissue("zonal", extensions=[x509.Extension(BASIC_CONSTRAINTS, True, BasicConstraints(True, 0))])``.
        """
        old: x509.Certificate = getattr(self, level)
        new_key = key or getattr(self, f"{level}_key")
        position = _LEVELS.index(level)
        if signing_key is None:
            signing_key = new_key if level == "root" else getattr(self, f"{_LEVELS[position - 1]}_key")
        replacements = {extension.oid: extension for extension in extensions}
        kept = [replacements.pop(ext.oid, ext) for ext in old.extensions if ext.oid not in remove]
        certificate = issue_certificate(
            old.subject,
            new_key.public_key(),
            issuer=issuer_name or old.issuer,
            signing_key=signing_key,
            serial=old.serial_number,
            not_before=not_before or old.not_valid_before_utc,
            not_after=not_after or old.not_valid_after_utc,
            extensions=[*kept, *replacements.values()],
            hash_algorithm=hash_algorithm,
        )
        changes: dict[str, Any] = {level: certificate, f"{level}_key": new_key}
        return dataclasses.replace(self, **changes)

    def document(
        self,
        *,
        pcrs: Mapping[int, bytes] | None = None,
        user_data: bytes | None = None,
        nonce: bytes | None = None,
        public_key: bytes | None = None,
        timestamp: datetime | None = None,
        module_id: str | None = None,
        payload_overrides: Mapping[str, object] | None = None,
        payload_extra: Sequence[tuple[object, object]] = (),
        indefinite: bool = False,
        payload_bytes: Callable[[bytes], bytes] | None = None,
        chain: Sequence[x509.Certificate] | None = None,
        protected: bytes = ES384_PROTECTED_HEADER,
        sign_with: ec.EllipticCurvePrivateKey | None = None,
        high_s: bool | None = None,
        signature: Callable[[bytes], bytes] | None = None,
        envelope: Callable[[list[object]], object] | None = None,
        tag: bool | int | None = None,
        trailing: bytes = b"",
    ) -> bytes:
        """An attestation document signed by this PKI's leaf; valid unless a breakage keyword is used.

        The payload is a map in AWS's key order: module_id, digest ("SHA384"),
        timestamp (milliseconds; default :attr:`document_time`), pcrs (default
        :data:`DEFAULT_PCRS`), certificate (the leaf), cabundle (root, regional,
        zonal, instance), public_key, user_data, nonce. The optional fields are
        CBOR null when not given, as most real documents send them.

        Breakage keywords, each breaking one thing (the document is signed
        after every payload and header change, so only the intended rule fails):

        - ``payload_overrides``: replaces or adds payload fields (any value
          :func:`encode` takes, :class:`Raw` included); :data:`OMIT` removes one.
        - ``payload_extra``: key/value pairs appended to the payload map as they
          are: duplicate keys, non-text keys.
        - ``indefinite``: an indefinite-length payload map (valid; real documents do it).
        - ``payload_bytes``: edits the encoded payload (e.g. trailing bytes, another
          item entirely) before it is signed.
        - ``chain``: the certificates of ``cabundle`` (order, missing links, another root).
        - ``protected``: the protected header's bytes (default ``{1: -35}``).
        - ``sign_with``: another P-384 or P-256 signing key (r and s are 48 bytes each
          either way, as the ES384 header promises).
        - ``high_s``: True or False forces the high or low twin of the signature
          (both valid); None keeps what deterministic ECDSA gave.
        - ``signature``: edits the 96-byte ``r || s`` after signing.
        - ``envelope``: edits the ``[protected, unprotected, payload, signature]``
          list after signing and returns what to encode instead (element count,
          unprotected header, payload null, a nested tag...).
        - ``tag``: True (or 18) wraps the document in the COSE_Sign1 tag (valid);
          another integer wraps it in that tag.
        - ``trailing``: bytes appended after the document.

        Certificate-level breakage (names, constraints, keys, validity) is made
        with :meth:`reissue`; ``timestamp`` and the PCR and data fields break
        the time and policy rules.
        """
        fields: dict[str, object] = {
            "module_id": DEFAULT_MODULE_ID if module_id is None else module_id,
            "digest": "SHA384",
            "timestamp": _milliseconds(self.document_time if timestamp is None else timestamp),
            "pcrs": dict(DEFAULT_PCRS if pcrs is None else pcrs),
            "certificate": _der(self.leaf),
            "cabundle": [_der(certificate) for certificate in (self.cabundle if chain is None else chain)],
            "public_key": public_key,
            "user_data": user_data,
            "nonce": nonce,
        }
        for name, value in (payload_overrides or {}).items():
            if value is OMIT:
                fields.pop(name, None)
            else:
                fields[name] = value
        payload = encode_map([*fields.items(), *payload_extra], indefinite=indefinite)
        if payload_bytes is not None:
            payload = payload_bytes(payload)
        signed = _sign(sign_with or self.leaf_key, protected, payload, high_s)
        if signature is not None:
            signed = signature(signed)
        parts: list[object] = [protected, {}, payload, signed]
        outer = parts if envelope is None else envelope(parts)
        if tag is not None and tag is not False:
            outer = cbor2.CBORTag(_COSE_SIGN1_TAG if tag is True else tag, outer)
        return encode(outer) + trailing


#: A way to break a :class:`DocumentFactory` document on purpose; :data:`BREAKAGE_CODES` lists them.
Breakage: TypeAlias = Literal[
    "signature", "chain", "untrusted_root", "expired", "future_timestamp", "debug", "malformed"
]

#: The ``.code`` of the error ``verify()`` raises for each :data:`Breakage`, when the document
#: is verified as the valid one would pass: ``roots=factory.roots``,
#: ``at=factory.verification_time``, and a policy the valid document satisfies without
#: ``allow_debug``.
BREAKAGE_CODES: Mapping[Breakage, str] = MappingProxyType(
    {
        "signature": "signature",
        "chain": "chain",
        "untrusted_root": "chain",
        "expired": "expired",
        "future_timestamp": "time",
        "debug": "debug",
        "malformed": "cbor",
    }
)

# Names the look-alike of the test PKI that "untrusted_root" documents come from.
_UNTRUSTED_SEED = "nitro_attest untrusted look-alike of the test PKI"
# How far past the verification time "expired" and "future_timestamp" go: beyond the 60 s clock skew.
_PAST_THE_SKEW = timedelta(minutes=2)


@dataclass(frozen=True)
class DocumentFactory:
    """Attestation documents from one :class:`TestPKI`, valid or broken in one named way.

    The friendly face of :meth:`TestPKI.document` for testing a service that
    verifies documents; the ``nitro_document`` pytest fixture is one of these.
    Verify what it makes with ``roots=factory.roots`` and
    ``at=factory.verification_time``: the documents carry a fixed time, so a
    test written this way passes today and in ten years.

    >>> make = DocumentFactory()
    >>> data = make(nonce=b"challenge", pcrs={0: "ab" * 48})
    >>> nitro_attest.verify(data, policy, at=make.verification_time, roots=make.roots)  # doctest: +SKIP
    """

    pki: TestPKI = dataclasses.field(default_factory=TestPKI.create)
    #: The enclave's public key (SubjectPublicKeyInfo DER) every document carries unless the call gives
    #: another; the pytest plugin's ``nitro_document`` uses ``nitro_enclave_key``'s, so that secrets
    #: sealed to its documents open with that key. None: documents carry no key unless asked.
    public_key: bytes | None = None

    @property
    def roots(self) -> tuple[x509.Certificate, ...]:
        """What to pass as ``verify(..., roots=)`` for these documents (never the AWS root)."""
        return self.pki.roots

    @property
    def verification_time(self) -> datetime:
        """What to pass as ``verify(..., at=)``: the documents' own time, inside every validity window."""
        return self.pki.document_time

    def __call__(
        self,
        *,
        pcrs: Mapping[int, bytes | str] | None = None,
        nonce: bytes | None = None,
        user_data: bytes | None = None,
        public_key: bytes | None = None,
        timestamp: datetime | None = None,
        module_id: str | None = None,
        broken: Breakage | None = None,
    ) -> bytes:
        """The bytes of a document with these fields, valid unless ``broken`` names a breakage.

        ``pcrs`` sets PCR values (bytes, or hex in any case) over
        :data:`DEFAULT_PCRS`: the other PCRs keep their defaults, as a real
        enclave always reports 16. ``nonce`` and ``user_data`` are null when
        not given, ``public_key`` is the factory's :attr:`public_key`; ``timestamp`` defaults to
        :attr:`verification_time` and ``module_id`` to :data:`DEFAULT_MODULE_ID`.

        ``broken`` breaks one thing and keeps every other field asked for, so
        the rejection is for that breakage alone (its code is in
        :data:`BREAKAGE_CODES`; ``"debug"`` sets PCR0-2 and the timestamp
        breakages set ``timestamp`` themselves):

        - ``"signature"``: one bit of the signature flipped.
        - ``"chain"``: the zonal certificate missing from ``cabundle``.
        - ``"untrusted_root"``: signed by a look-alike PKI whose root has the
          trusted test root's name but another key.
        - ``"expired"``: made hours ago; its leaf certificate expired before
          :attr:`verification_time` (a replayed old document).
        - ``"future_timestamp"``: a timestamp after :attr:`verification_time` plus the clock skew.
        - ``"debug"``: a debug-mode enclave (PCR0, PCR1 and PCR2 all zeros).
        - ``"malformed"``: the last byte cut off (truncated CBOR).
        """
        if broken is not None and broken not in BREAKAGE_CODES:
            raise ValueError(f"unknown breakage {broken!r}: one of {', '.join(BREAKAGE_CODES)}")
        if timestamp is not None and broken in ("expired", "future_timestamp"):
            raise ValueError(f"broken={broken!r} sets the timestamp itself: do not pass timestamp=")
        merged = {**DEFAULT_PCRS, **{index: _pcr_bytes(index, value) for index, value in (pcrs or {}).items()}}
        if broken == "debug":
            merged.update({0: bytes(48), 1: bytes(48), 2: bytes(48)})
        pki = self.pki
        chain: Sequence[x509.Certificate] | None = None
        signature: Callable[[bytes], bytes] | None = None
        if broken == "untrusted_root":
            pki = TestPKI.create(start=pki.start, seed=_UNTRUSTED_SEED, root_name=pki.root.subject)
        elif broken == "chain":
            chain = (pki.root, pki.regional, pki.instance)
        elif broken == "signature":
            signature = _flip_last_bit
        elif broken == "expired":
            # The whole 3-hour life of the leaf moved to end before the verification
            # time, with the document signed at its start, as Nitro does.
            lifetime = pki.leaf.not_valid_after_utc - pki.leaf.not_valid_before_utc
            not_after = self.verification_time - _PAST_THE_SKEW
            pki = pki.reissue("leaf", not_before=not_after - lifetime, not_after=not_after)
            timestamp = not_after - lifetime + _LEAF_LEAD
        elif broken == "future_timestamp":
            timestamp = self.verification_time + _PAST_THE_SKEW
        data = pki.document(
            pcrs=merged,
            nonce=nonce,
            user_data=user_data,
            public_key=self.public_key if public_key is None else public_key,
            timestamp=timestamp,
            module_id=module_id,
            chain=chain,
            signature=signature,
        )
        return data[:-1] if broken == "malformed" else data


def _pcr_bytes(index: object, value: object) -> bytes:
    """A PCR value for the factory: 48 bytes, or 96 hex digits; anything else is a mistake in the test."""
    if type(index) is not int or not 0 <= index <= 31:
        raise ValueError(f"PCR index must be an integer 0..31, got {index!r}")
    if isinstance(value, str):
        try:
            value = bytes.fromhex(value)
        except ValueError:
            raise ValueError(f"PCR{index}: not hex: {value!r}") from None
    if not isinstance(value, bytes):
        raise TypeError(f"PCR{index} must be bytes or a hex string, not {type(value).__name__}")
    if len(value) != 48:
        raise ValueError(f"PCR{index} must be 48 bytes (SHA-384), got {len(value)}")
    return value


def _flip_last_bit(signature: bytes) -> bytes:
    return signature[:-1] + bytes([signature[-1] ^ 1])


# --- Certificates and paths at the size limits --------------------------------------------------

# A private arc, for padding only: non-critical, so verifiers ignore it.
_PADDING_OID = ObjectIdentifier("1.3.6.1.4.1.55555.1")


def _padding(size: int, fill: int) -> x509.Extension[x509.ExtensionType]:
    body = bytes([fill]) * size
    length = bytes([size]) if size < 0x80 else bytes([0x82]) + size.to_bytes(2, "big")
    return x509.Extension(_PADDING_OID, False, x509.UnrecognizedExtension(_PADDING_OID, b"\x04" + length + body))


def padded_to(
    size: int, make: Callable[[Sequence[x509.Extension[x509.ExtensionType]]], x509.Certificate]
) -> x509.Certificate:
    """``make(extensions)`` given a non-critical padding extension that makes its DER exactly ``size`` bytes.

    For certificates at (or just over) the 1024-byte limit. A deterministic
    ECDSA signature is 102 to 104 bytes of DER depending on what it signs, so
    some lengths are missed by the padding alone: the fill byte then moves
    the signature, not the length. ``ValueError`` if no padding fits.
    """
    padding = max(0, size - len(_der(make([_padding(0, 0)]))))
    for _ in range(3):
        padding = max(0, padding + size - len(_der(make([_padding(padding, 0)]))))
    for fill in range(64):
        for candidate in (padding, padding - 1, padding + 1, padding - 2, padding + 2):
            certificate = make([_padding(max(0, candidate), fill)])
            if len(_der(certificate)) == size:
                return certificate
    raise ValueError(f"no padding gives a {size}-byte certificate")


@dataclass(frozen=True)
class LongChain:
    """A test PKI whose documents carry ``root, ca1, ..., ca{n-1}`` as their cabundle (see :func:`long_chain`)."""

    #: The PKI whose root and leaf are this chain's (documents are signed by its leaf key).
    pki: TestPKI
    #: The cabundle, root first.
    bundle: tuple[x509.Certificate, ...]
    #: The key of the last CA, which signs the leaf.
    last_key: ec.EllipticCurvePrivateKey

    def document(self, **kwargs: Any) -> bytes:
        """``pki.document(chain=bundle, ...)``."""
        return self.pki.document(chain=self.bundle, **kwargs)


def long_chain(base: TestPKI, length: int, *, size: int | None = None) -> LongChain:
    """``base`` with a path of ``length`` bundle certificates: its root, then ``length - 1`` CAs, then its leaf.

    Every CA is critical CA=true without pathLen and may sign certificates;
    with ``size``, every certificate (root and leaf included) is padded to
    exactly ``size`` bytes of DER. For documents at the bundle and size limits.
    """

    def sized(make: Callable[[Sequence[x509.Extension[x509.ExtensionType]]], x509.Certificate]) -> x509.Certificate:
        return make([]) if size is None else padded_to(size, make)

    root = sized(lambda extra: base.reissue("root", extensions=extra).root)
    bundle, issuer, issuer_key = [root], root, base.root_key
    for position in range(1, length):
        key = derive_key(f"long chain CA {position}")
        name = _name(
            (NameOID.ORGANIZATION_NAME, "nitro_attest test PKI"),
            (NameOID.COMMON_NAME, f"ca{position}.long-chain.TEST-ONLY"),
        )

        def make(
            extra: Sequence[x509.Extension[x509.ExtensionType]],
            *,
            position: int = position,
            name: x509.Name = name,
            key: ec.EllipticCurvePrivateKey = key,
            issuer: x509.Certificate = issuer,
            issuer_key: ec.EllipticCurvePrivateKey = issuer_key,
        ) -> x509.Certificate:
            cert_sign = _key_usage(digital_signature=False, non_repudiation=False, cert_sign=True, crl_sign=False)
            return issue_certificate(
                name,
                key.public_key(),
                issuer=issuer.subject,
                signing_key=issuer_key,
                serial=1000 + position,
                not_before=base.start,
                not_after=base.start + timedelta(days=30),
                extensions=[
                    _extension(x509.BasicConstraints(ca=True, path_length=None), critical=True),
                    _extension(cert_sign, critical=True),
                    *extra,
                ],
            )

        issuer, issuer_key = sized(make), key
        bundle.append(issuer)
    last, last_key = issuer, issuer_key
    leaf = sized(
        lambda extra: base.reissue("leaf", issuer_name=last.subject, signing_key=last_key, extensions=extra).leaf
    )
    return LongChain(dataclasses.replace(base, root=root, leaf=leaf), tuple(bundle), last_key)


# --- A test enclave that attests now -------------------------------------------------------------

# The leaf, and the chain under the root with it, roll every _ROLL: a document made in a window stays
# verifiable for at least the leaf's 3-hour life minus _ROLL. AWS rolls its leaf every few hours too.
_ROLL = timedelta(hours=2)
# The live root was valid a day before its enclave was created, so that a verifier whose clock is
# somewhat behind still accepts it, and lives 30 years like AWS's.
_LIVE_ROOT_LEAD = timedelta(days=1)
_ENCLAVE_SEED = "nitro_attest test enclave"
_ENCLAVE_FORMAT = "nitro_attest test enclave 1"
_ROOT_FILE, _ROOT_KEY_FILE, _ENCLAVE_FILE, _CHAIN_FILE = "root.pem", "root-key.pem", "enclave.json", "chain.json"
_SECRET_MODE, _PUBLIC_MODE = 0o600, 0o644
_MAX_STATE_FILE = 64 * 1024  # the chain file, the largest, is ~6 KB


def _write_file(path: Path, data: bytes, mode: int) -> None:
    """``data`` at ``path`` through a temporary file renamed into place, never readable beyond ``mode``."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as stream:
            os.fchmod(stream.fileno(), mode)
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode("ascii")


def _load_key(pem: str, where: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = load_pem_private_key(pem.encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeEncodeError, UnsupportedAlgorithm):
        raise ConfigurationError(f"{where}: not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp384r1":
        raise ConfigurationError(f"{where}: not a P-384 key")
    return key


def _read_state(path: Path) -> bytes:
    try:
        with path.open("rb") as stream:
            data = stream.read(_MAX_STATE_FILE + 1)
    except OSError as error:
        raise ConfigurationError(f"{path}: cannot read a test enclave file: {error.strerror or error}") from None
    if len(data) > _MAX_STATE_FILE:
        raise ConfigurationError(f"{path}: over {_MAX_STATE_FILE} bytes, not a test enclave file")
    return data


def _read_json(path: Path) -> dict[str, Any]:
    data = _read_state(path)
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ConfigurationError(f"{path}: not JSON") from None
    if not isinstance(value, dict):
        raise ConfigurationError(f"{path}: not a JSON object")
    return value


class TestEnclave:
    """A TEST enclave whose documents verify now, under its own TEST root: for a live verifier (a local KMS).

    :class:`TestPKI` documents carry a fixed time in 2026, which a live
    verifier sees as expired or not yet valid. A test enclave holds a root
    (random P-384 key, ``CN=aws.nitro-enclaves.TEST-ONLY``, valid 30 years) and
    an identity (its PCRs); :meth:`attest` returns a document timestamped now
    and signed by a leaf valid now. The chain under the root rolls every two
    hours with fresh keys, as AWS rolls its leaf, so every document stays
    verifiable for at least an hour after it is made (the leaf lives 3 hours).

    Its documents verify only with ``roots=enclave.roots``, never against the
    AWS root. With a ``directory`` it is kept there: ``root.pem`` (the root
    certificate, for ``--root``/``--roots``), ``root-key.pem`` and
    ``chain.json`` (keys, mode 0600), ``enclave.json`` (the PCRs); a later
    :meth:`load` (another process, ``nitro-attest testing attest``) attests as
    the same enclave.

    >>> enclave = TestEnclave.create(pcrs={0: "ab" * 48})
    >>> data = enclave.attest(nonce=b"n", public_key=enclave_key.public_key_der)  # doctest: +SKIP
    >>> nitro_attest.verify(data, policy, roots=enclave.roots)  # doctest: +SKIP
    """

    __test__: ClassVar[bool] = False  # not a test class, whatever its name says to pytest

    def __init__(
        self,
        root: x509.Certificate,
        root_key: ec.EllipticCurvePrivateKey,
        pcrs: Mapping[int, bytes],
        *,
        debug: bool,
        directory: Path | None,
    ) -> None:
        self._root = root
        self._root_key = root_key
        self._pcrs: Mapping[int, bytes] = MappingProxyType(dict(pcrs))
        self._debug = debug
        self._directory = directory
        self._lock = threading.Lock()
        self._chains: dict[int, TestPKI] = {}

    @classmethod
    def create(
        cls,
        directory: str | os.PathLike[str] | None = None,
        *,
        pcrs: Mapping[int, bytes | str] | None = None,
        debug: bool = False,
    ) -> TestEnclave:
        """A new test enclave: a fresh root, and ``pcrs`` over :data:`DEFAULT_PCRS` (bytes or hex).

        ``debug`` makes a debug-mode enclave: PCR0, PCR1 and PCR2 are zero
        (``verify`` rejects it unless the policy allows debug; KMS does not).
        With ``directory`` (created if needed; files in it are replaced) the
        enclave is written there.
        """
        merged = {**DEFAULT_PCRS, **{index: _pcr_bytes(index, value) for index, value in (pcrs or {}).items()}}
        if debug:
            merged.update({0: bytes(48), 1: bytes(48), 2: bytes(48)})
        now = datetime.now(timezone.utc).replace(microsecond=0)
        root_key = ec.generate_private_key(ec.SECP384R1())
        root = issue_certificate(
            _names(_ENCLAVE_SEED, "us-east-1", None)["root"],
            root_key.public_key(),
            issuer=_names(_ENCLAVE_SEED, "us-east-1", None)["root"],
            signing_key=root_key,
            serial=x509.random_serial_number(),
            not_before=now - _LIVE_ROOT_LEAD,
            not_after=now - _LIVE_ROOT_LEAD + _ROOT_LIFETIME,
            extensions=_ca_extensions(path_length=None, key=root_key, issuer_key=None, crl_url=None),
        )
        path = None if directory is None else Path(directory)
        enclave = cls(root, root_key, merged, debug=debug, directory=path)
        if path is not None:
            path.mkdir(parents=True, exist_ok=True)
            _write_file(path / _ROOT_KEY_FILE, _key_pem(root_key).encode("ascii"), _SECRET_MODE)
            _write_file(path / _ROOT_FILE, enclave.root_pem, _PUBLIC_MODE)
            identity = {
                "format": _ENCLAVE_FORMAT,
                "debug": debug,
                "pcrs": {str(index): value.hex() for index, value in sorted(merged.items())},
            }
            _write_file(path / _ENCLAVE_FILE, (json.dumps(identity, indent=2) + "\n").encode("ascii"), _PUBLIC_MODE)
        return enclave

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> TestEnclave:
        """The test enclave :meth:`create` wrote to ``directory``.

        :raises ~nitro_attest.ConfigurationError: a file is missing or is not what :meth:`create` writes.
        """
        path = Path(directory)
        identity = _read_json(path / _ENCLAVE_FILE)
        if identity.get("format") != _ENCLAVE_FORMAT:
            raise ConfigurationError(f"{path / _ENCLAVE_FILE}: not a test enclave (format {_ENCLAVE_FORMAT!r})")
        raw_pcrs, debug = identity.get("pcrs"), identity.get("debug")
        if not isinstance(raw_pcrs, dict) or not isinstance(debug, bool):
            raise ConfigurationError(f"{path / _ENCLAVE_FILE}: needs 'pcrs' (an object) and 'debug' (a boolean)")
        try:
            pcrs = {_pcr_index(index): _pcr_bytes(_pcr_index(index), value) for index, value in raw_pcrs.items()}
        except (TypeError, ValueError) as error:
            raise ConfigurationError(f"{path / _ENCLAVE_FILE}: {error}") from None
        try:
            root = x509.load_pem_x509_certificate(_read_state(path / _ROOT_FILE))
        except ValueError:
            raise ConfigurationError(f"{path / _ROOT_FILE}: not a PEM certificate") from None
        root_key = _load_key(_read_state(path / _ROOT_KEY_FILE).decode("ascii", "replace"), path / _ROOT_KEY_FILE)
        if root.public_key() != root_key.public_key():
            raise ConfigurationError(f"{path / _ROOT_KEY_FILE} is not the key of {path / _ROOT_FILE}")
        return cls(root, root_key, pcrs, debug=debug, directory=path)

    @property
    def directory(self) -> Path | None:
        """Where the enclave is kept, or None for one in memory only."""
        return self._directory

    @property
    def root(self) -> x509.Certificate:
        """The enclave's TEST root certificate."""
        return self._root

    @property
    def roots(self) -> tuple[x509.Certificate, ...]:
        """What to pass as ``verify(..., roots=)`` (or to a local KMS) for this enclave's documents."""
        return (self._root,)

    @property
    def root_pem(self) -> bytes:
        """The root certificate as PEM: what ``root.pem`` holds, for ``--root``/``--roots``."""
        return self._root.public_bytes(Encoding.PEM)

    @property
    def pcrs(self) -> Mapping[int, bytes]:
        """The PCRs every document of this enclave reports (16 of them, as a real enclave's)."""
        return self._pcrs

    @property
    def debug(self) -> bool:
        """Whether this is a debug-mode enclave (PCR0, PCR1 and PCR2 zero)."""
        return self._debug

    def attest(
        self,
        *,
        public_key: bytes | None = None,
        nonce: bytes | None = None,
        user_data: bytes | None = None,
        at: datetime | None = None,
    ) -> bytes:
        """A document of this enclave made at ``at`` (default now), as NSM answers an attestation request.

        ``public_key`` (the enclave's SubjectPublicKeyInfo DER, for KMS's
        ``Recipient``), ``nonce`` and ``user_data`` are at most 1024 bytes each,
        null when not given. A past ``at`` makes a document a live verifier
        rejects as expired once its leaf's 3 hours are over.
        """
        for name, value in (("public_key", public_key), ("nonce", nonce), ("user_data", user_data)):
            if value is not None and (not isinstance(value, bytes) or len(value) > MAX_FIELD_SIZE):
                raise ValueError(f"{name} must be at most {MAX_FIELD_SIZE} bytes or None, got {value!r:.60}")
        moment = datetime.now(timezone.utc) if at is None else at
        if moment.tzinfo is None:
            raise TypeError("at must be timezone-aware")
        return self.pki(moment).document(
            pcrs=self._pcrs, public_key=public_key, nonce=nonce, user_data=user_data, timestamp=moment
        )

    def pki(self, at: datetime | None = None) -> TestPKI:
        """The chain that signs documents made at ``at`` (default now): this root, and the window's rolled CAs."""
        moment = datetime.now(timezone.utc) if at is None else at
        window = (moment - _EPOCH) // _ROLL
        with self._lock:
            chain = self._chains.get(window)
            if chain is None:
                chain = self._stored_chain(window) or self._new_chain(window)
                self._chains[window] = chain
        return chain

    def _new_chain(self, window: int) -> TestPKI:
        # Named after the window so that each rolled CA has its own names and serials, as AWS's do.
        keys: dict[Level, ec.EllipticCurvePrivateKey] = {
            level: ec.generate_private_key(ec.SECP384R1()) for level in _LEVELS[1:]
        }
        keys["root"] = self._root_key
        chain = TestPKI._issue(
            keys,
            start=_EPOCH + window * _ROLL - _DOCUMENT_OFFSET,
            region="us-east-1",
            seed=f"{_ENCLAVE_SEED}/{window}",
            root_name=self._root.subject,
            root=self._root,
        )
        if self._directory is not None and window >= self._stored_window():
            state = {
                "window": window,
                "certificates": {
                    level: getattr(chain, level).public_bytes(Encoding.PEM).decode() for level in _LEVELS[1:]
                },
                "keys": {level: _key_pem(keys[level]) for level in _LEVELS[1:]},
            }
            _write_file(self._directory / _CHAIN_FILE, json.dumps(state).encode("ascii"), _SECRET_MODE)
        return chain

    def _stored_window(self) -> int:
        assert self._directory is not None  # only called for an enclave kept in a directory
        path = self._directory / _CHAIN_FILE
        if not path.exists():
            return -1
        window = _read_json(path).get("window")
        return window if type(window) is int else -1

    def _stored_chain(self, window: int) -> TestPKI | None:
        if self._directory is None or self._stored_window() != window:
            return None
        path = self._directory / _CHAIN_FILE
        state = _read_json(path)
        certificates, keys = state.get("certificates"), state.get("keys")
        if not isinstance(certificates, dict) or not isinstance(keys, dict):
            raise ConfigurationError(f"{path}: needs 'certificates' and 'keys' objects")
        fields: dict[str, Any] = {
            "root": self._root,
            "root_key": self._root_key,
            "start": _EPOCH + window * _ROLL - _DOCUMENT_OFFSET,
        }
        for level in _LEVELS[1:]:
            certificate, key = certificates.get(level), keys.get(level)
            if not isinstance(certificate, str) or not isinstance(key, str):
                raise ConfigurationError(f"{path}: no {level} certificate and key")
            try:
                fields[level] = x509.load_pem_x509_certificate(certificate.encode("ascii"))
            except (ValueError, UnicodeEncodeError):
                raise ConfigurationError(f"{path}: the {level} certificate is not PEM") from None
            fields[f"{level}_key"] = _load_key(key, path)
        return TestPKI(**fields)


def _pcr_index(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"PCR index must be an integer 0..31, got {text!r}")
    return int(text)
