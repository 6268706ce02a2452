"""A stream of attestation documents shaped like a busy verifier's traffic.

One look-alike AWS PKI from :mod:`nitro_attest.testing` (root, regional and
zonal from ``TestPKI.create``), ``instances`` instance certificates under its
zonal CA, ``enclaves`` enclave leaves spread round-robin over the instances
(each enclave: its own leaf key, module id and PCR set), and ``n`` documents
round-robin over the enclaves, each with a distinct nonce and a timestamp
inside its leaf's validity. Every document verifies at :attr:`Stream.at` with
``roots=stream.roots`` and ``policy=stream.policy``.

``TestPKI`` models one instance and one leaf; :meth:`TestPKI.document` signs
with whatever leaf and bundle its fields hold, so each enclave is a
``dataclasses.replace`` of the base PKI with its own instance and leaf
certificates (issued here with ``nitro_attest.testing.issue_certificate`` and
``derive_key``, copying the base certificates' extensions and names so the
shapes stay AWS's).

    >>> stream = make_stream(n=2000, enclaves=20, instances=5)
    >>> nitro_attest.verify(stream.documents[0], stream.policy, at=stream.at, roots=stream.roots)
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID, NameOID

# The working tree's nitro_attest, whether or not one is installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nitro_attest
from nitro_attest.testing import DEFAULT_PCRS, DEFAULT_START, TestPKI, derive_key, issue_certificate

__all__ = ["Enclave", "Stream", "make_stream"]

SEED = "nitro_attest benchmark stream"
REGION = "us-east-1"
# The base PKI's first document is at start + 4 h (TestPKI.document_time); the
# leaves start around it, a little apart, and the stream is verified 1 h later.
_LEAF_LEAD = timedelta(seconds=3)
_LEAF_LIFETIME = timedelta(hours=3, seconds=3)
_LEAF_STAGGER = timedelta(seconds=15)
_VERIFY_AFTER = timedelta(hours=1)


def _sha384(text: str) -> bytes:
    return hashlib.sha384(text.encode()).digest()


def _replace_cn(name: x509.Name, common_name: str) -> x509.Name:
    """``name`` with its CN replaced, attribute order kept (AWS's layouts differ per level)."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name) if attribute.oid == NameOID.COMMON_NAME else attribute
            for attribute in name
        ]
    )


@dataclass(frozen=True)
class Enclave:
    """One enclave of the stream: its PKI view (own instance and leaf) and its measurements."""

    pki: TestPKI
    module_id: str
    pcrs: dict[int, bytes]


@dataclass(frozen=True)
class Stream:
    """``documents`` and what verifies them: ``roots``, ``at``, ``policy`` (pins every enclave's PCR0-2)."""

    documents: tuple[bytes, ...]
    enclave_of: tuple[int, ...]  # the enclave that made each document
    enclaves: tuple[Enclave, ...]
    instances: int
    roots: tuple[x509.Certificate, ...]
    at: datetime
    policy: nitro_attest.Policy


def _instance_certificate(base: TestPKI, index: int) -> tuple[str, x509.Certificate, ec.EllipticCurvePrivateKey]:
    instance_id = "i-" + _sha384(f"{SEED}/instance-id/{index}").hex()[:17]
    key = derive_key(f"{SEED}/key/instance/{index}")
    extensions = [
        x509.Extension(
            ExtensionOID.SUBJECT_KEY_IDENTIFIER, False, x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        )
        if extension.oid == ExtensionOID.SUBJECT_KEY_IDENTIFIER
        else extension
        for extension in base.instance.extensions
    ]
    certificate = issue_certificate(
        _replace_cn(base.instance.subject, f"{instance_id}.{REGION}.aws.nitro-enclaves"),
        key.public_key(),
        issuer=base.zonal.subject,
        signing_key=base.zonal_key,
        serial=int.from_bytes(_sha384(f"{SEED}/serial/instance/{index}")[:20], "big") % (1 << 159),
        not_before=base.instance.not_valid_before_utc,
        not_after=base.instance.not_valid_after_utc,
        extensions=list(extensions),
    )
    return instance_id, certificate, key


def _enclave(base: TestPKI, index: int, instance: tuple[str, x509.Certificate, ec.EllipticCurvePrivateKey]) -> Enclave:
    instance_id, instance_certificate, instance_key = instance
    enclave_id = _sha384(f"{SEED}/enclave-id/{index}").hex()[:16]
    module_id = f"{instance_id}-enc{enclave_id}"
    key = derive_key(f"{SEED}/key/leaf/{index}")
    not_before = base.document_time - _LEAF_LEAD + index * _LEAF_STAGGER
    leaf = issue_certificate(
        _replace_cn(base.leaf.subject, f"{module_id}.{REGION}.aws"),
        key.public_key(),
        issuer=instance_certificate.subject,
        signing_key=instance_key,
        # Nitro's leaf serial: the enclave id, then the Unix time the leaf was made.
        serial=int(enclave_id, 16) << 64 | int((not_before + _LEAF_LEAD).timestamp()),
        not_before=not_before,
        not_after=not_before + _LEAF_LIFETIME,
        extensions=list(base.leaf.extensions),
    )
    pki = dataclasses.replace(base, instance=instance_certificate, instance_key=instance_key, leaf=leaf, leaf_key=key)
    pcrs = dict(DEFAULT_PCRS)
    for pcr in (0, 1, 2):
        pcrs[pcr] = _sha384(f"{SEED}/enclave/{index}/PCR{pcr}")
    pcrs[4] = nitro_attest.pcr4_for_instance(instance_id).value
    return Enclave(pki=pki, module_id=module_id, pcrs=pcrs)


def make_stream(n: int = 2000, enclaves: int = 20, instances: int = 5, *, start: datetime = DEFAULT_START) -> Stream:
    """``n`` documents from ``enclaves`` enclaves on ``instances`` instances, all verifiable at one time.

    Certificates and keys are made once per instance and enclave; each document
    costs one P-384 signature (deterministic, so the stream is the same bytes
    every time).
    """
    if not (n >= 1 and enclaves >= 1 and 1 <= instances <= enclaves):
        raise ValueError("need n >= 1, enclaves >= 1 and 1 <= instances <= enclaves")
    base = TestPKI.create(seed=SEED, start=start, region=REGION)
    instance_material = [_instance_certificate(base, index) for index in range(instances)]
    made = tuple(_enclave(base, index, instance_material[index % instances]) for index in range(enclaves))
    at = base.document_time + _VERIFY_AFTER
    per_enclave = [len(range(index, n, enclaves)) for index in range(enclaves)]
    documents: list[bytes] = []
    enclave_of: list[int] = []
    for position in range(n):
        index, k = position % enclaves, position // enclaves
        enclave = made[index]
        # Spread the enclave's documents evenly from its first one (3 s after
        # the leaf's notBefore) to the verification time.
        first = enclave.pki.leaf.not_valid_before_utc + _LEAF_LEAD
        timestamp = first + (at - first) * k / per_enclave[index]
        documents.append(
            enclave.pki.document(
                pcrs=enclave.pcrs,
                module_id=enclave.module_id,
                timestamp=timestamp,
                nonce=hashlib.sha256(f"{SEED}/nonce/{position}".encode()).digest(),
            )
        )
        enclave_of.append(index)
    policy = nitro_attest.Policy({pcr: [enclave.pcrs[pcr] for enclave in made] for pcr in (0, 1, 2)})
    return Stream(
        documents=tuple(documents),
        enclave_of=tuple(enclave_of),
        enclaves=made,
        instances=instances,
        roots=base.roots,
        at=at,
        policy=policy,
    )


def _main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Make the benchmark stream and check that it verifies.")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--enclaves", type=int, default=20)
    parser.add_argument("--instances", type=int, default=5)
    args = parser.parse_args(argv)
    began = time.perf_counter()
    stream = make_stream(args.n, args.enclaves, args.instances)
    made = time.perf_counter() - began
    for data in stream.documents:
        nitro_attest.verify(data, stream.policy, at=stream.at, roots=stream.roots)
    leaves = {nitro_attest.parse(data).certificate.serial_number for data in stream.documents}
    bundles = {nitro_attest.parse(data).cabundle[-1].serial_number for data in stream.documents}
    print(
        f"{len(stream.documents)} documents, {len(leaves)} leaves, {len(bundles)} instance certificates, "
        f"made in {made:.2f} s; all verify at {stream.at.isoformat()}"
    )


if __name__ == "__main__":
    _main()
