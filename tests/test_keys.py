"""nitro_attest.keys: one reading of certificates and enclave public keys, and each way they are refused."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from nitro_attest.keys import (
    MAX_PUBLIC_KEY_SIZE,
    certificate_summary,
    load_certificate,
    load_certificates,
    load_rsa_public_key,
)
from nitro_attest.testing import TestPKI

PKI = TestPKI.create()
ROOT_PEM = PKI.root.public_bytes(Encoding.PEM)
ROOT_DER = PKI.root.public_bytes(Encoding.DER)
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()


def _spki(key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey, encoding: Encoding) -> bytes:
    return key.public_bytes(encoding, PublicFormat.SubjectPublicKeyInfo)


def test_certificates_pem_der_bundle_and_object() -> None:
    assert load_certificate(ROOT_PEM) == load_certificate(ROOT_DER) == load_certificate(ROOT_PEM.decode()) == PKI.root
    assert load_certificate(PKI.root) is PKI.root
    assert load_certificates(ROOT_PEM * 2) == (PKI.root, PKI.root)
    assert load_certificates(memoryview(ROOT_DER)) == (PKI.root,)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"", "the certificate is empty"),
        (b" \n", "the certificate is empty"),
        (b"not a certificate", "neither PEM .* nor DER"),
        (ROOT_DER[:-1], "neither PEM .* nor DER"),
        (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "no -----BEGIN CERTIFICATE----- block"),
        (ROOT_PEM.replace(b"MII", b"!!!", 1), "PEM CERTIFICATE block is damaged"),
        ("DER as text", "must be PEM text"),
    ],
)
def test_what_is_not_a_certificate(value: bytes | str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_certificates(value)


def test_one_certificate_where_one_is_expected() -> None:
    with pytest.raises(ValueError, match="holds 2 certificates where one is expected"):
        load_certificate(ROOT_PEM * 2)


def test_a_certificate_of_another_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="not int"):
        load_certificate(42)  # type: ignore[arg-type]


def test_certificate_summary() -> None:
    summary = certificate_summary(PKI.root)
    assert summary["subject"] == PKI.root.subject.rfc4514_string()
    assert summary["not_before"].endswith("Z") and len(summary["sha256"]) == 64


def test_rsa_public_keys_der_and_pem() -> None:
    der = _spki(RSA_KEY, Encoding.DER)
    assert load_rsa_public_key(der).public_numbers() == RSA_KEY.public_numbers()
    assert load_rsa_public_key(_spki(RSA_KEY, Encoding.PEM), pem=True).public_numbers() == RSA_KEY.public_numbers()


@pytest.mark.parametrize(
    ("data", "pem", "message"),
    [
        (bytes(MAX_PUBLIC_KEY_SIZE + 1), False, f"the key is {MAX_PUBLIC_KEY_SIZE + 1} bytes, over the"),
        (b"\x04" + bytes(96), False, r"the key is not a SubjectPublicKeyInfo \(DER\)"),
        (_spki(RSA_KEY, Encoding.PEM), False, r"not a SubjectPublicKeyInfo \(DER\)"),  # PEM only when asked
        (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", True, r"\(DER or PEM\)"),
        (_spki(ec.generate_private_key(ec.SECP384R1()).public_key(), Encoding.DER), False, r"an EC \(secp384r1\) key"),
        (_spki(ed25519.Ed25519PrivateKey.generate().public_key(), Encoding.DER), False, "Ed25519PublicKey key, not"),
    ],
)
def test_what_is_not_an_rsa_public_key(data: bytes, pem: bool, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_rsa_public_key(data, "the key", pem=pem)
