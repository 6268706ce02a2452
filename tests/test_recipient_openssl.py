"""nitro_attest.recipient against the ``openssl cms`` command, both ways (skipped when ``openssl`` is absent).

- ``openssl cms -decrypt`` opens what seal() writes (the KMS layout: BER,
  32-byte key id, chunks), given the private key only;
- EnclaveKey.open reads what ``openssl cms -encrypt -keyid -keyopt
  rsa_padding_mode:oaep -keyopt rsa_oaep_md:sha256 -aes-256-cbc`` writes, with
  and without ``-stream``, to a certificate OpenSSL made for the key (its
  20-byte subjectKeyIdentifier);
- what other ``openssl cms -encrypt`` options write is refused, each with its code.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import require_shared

from nitro_attest.recipient import EnclaveKey, RecipientError, inspect, seal

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="the openssl binary is not on PATH")

OAEP_SHA256 = ["-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256"]


def openssl(*arguments: str, data: bytes = b"") -> bytes:
    assert OPENSSL is not None
    done = subprocess.run([OPENSSL, *arguments], input=data, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


@pytest.fixture(scope="module")
def enclave(tmp_path_factory: pytest.TempPathFactory) -> tuple[EnclaveKey, Path, Path]:
    """A key, its PEM file and a self-signed certificate OpenSSL made for it."""
    directory = tmp_path_factory.mktemp("openssl")
    key = EnclaveKey.generate()
    key_file = directory / "key.pem"
    key_file.write_bytes(key.to_pem())
    certificate = directory / "cert.pem"
    openssl(
        "req", "-x509", "-new", "-key", str(key_file), "-subj", "/CN=enclave", "-days", "1", "-out", str(certificate)
    )
    return key, key_file, certificate


def encrypt(certificate: Path, plaintext: bytes, *options: str) -> bytes:
    return openssl(
        "cms", "-encrypt", "-binary", "-outform", "DER", "-recip", str(certificate), *options, data=plaintext
    )


@pytest.mark.parametrize("size", [16, 4096], ids=["16-bytes", "4096-bytes"])
def test_openssl_decrypts_what_seal_writes(enclave: tuple[EnclaveKey, Path, Path], size: int) -> None:
    key, key_file, _ = enclave
    plaintext = bytes(range(256)) * (size // 256) or b"sixteen bytes!!!"
    sealed = seal(plaintext, key.public_key_der)
    opened = openssl("cms", "-decrypt", "-binary", "-inform", "DER", "-inkey", str(key_file), data=sealed)
    assert opened == plaintext


@pytest.mark.parametrize("stream", [False, True], ids=["der", "stream"])
@pytest.mark.parametrize("size", [13, 4096])
def test_open_reads_what_openssl_writes(enclave: tuple[EnclaveKey, Path, Path], stream: bool, size: int) -> None:
    key, _, certificate = enclave
    plaintext = b"o" * size
    options = ["-keyid", *OAEP_SHA256, "-aes-256-cbc", *(["-stream"] if stream else [])]
    data = encrypt(certificate, plaintext, *options)
    assert (data[1] == 0x80) is stream  # -stream writes indefinite lengths, the other DER
    assert len(inspect(data).key_id) == 20
    assert key.open(data) == plaintext


@pytest.mark.parametrize(
    ("options", "code", "match"),
    [
        (["-keyid", "-aes-256-cbc"], "unsupported", "RSA PKCS#1 v1.5 key transport"),
        (["-keyid", "-keyopt", "rsa_padding_mode:oaep", "-aes-256-cbc"], "unsupported", "RSAES-OAEP with SHA-1"),
        (["-keyid", *OAEP_SHA256, "-aes-128-cbc"], "unsupported", "AES-128-CBC"),
        (["-keyid", *OAEP_SHA256, "-aes-192-cbc"], "unsupported", "AES-192-CBC"),
        ([*OAEP_SHA256, "-aes-256-cbc"], "unsupported", "issuerAndSerialNumber"),
    ],
    ids=["pkcs1-v1.5", "oaep-sha1", "aes-128", "aes-192", "issuer-and-serial"],
)
def test_open_refuses_what_other_openssl_options_write(
    enclave: tuple[EnclaveKey, Path, Path], options: list[str], code: str, match: str
) -> None:
    key, _, certificate = enclave
    data = encrypt(certificate, b"refused", *options)
    with pytest.raises(RecipientError, match=match) as caught:
        key.open(data)
    assert caught.value.code == code


def test_open_refuses_two_openssl_recipients(enclave: tuple[EnclaveKey, Path, Path]) -> None:
    key, _, certificate = enclave
    data = encrypt(certificate, b"two", "-keyid", *OAEP_SHA256, "-aes-256-cbc", "-recip", str(certificate))
    with pytest.raises(RecipientError, match="2 recipients") as caught:
        key.open(data)
    assert caught.value.code == "unsupported"


def test_a_kms_sample_decrypts_with_openssl_too(tmp_path: Path) -> None:
    """The keyed KMS-layout sample, for the record: OpenSSL reads the layout seal() writes."""
    key_file = require_shared("kms/kms_cfr_enclaver_rs.key.pem")
    data = require_shared("kms/kms_cfr_enclaver_rs.ber").read_bytes()
    opened = openssl("cms", "-decrypt", "-binary", "-inform", "DER", "-inkey", str(key_file), data=data)
    assert opened == b"Hello, World"
