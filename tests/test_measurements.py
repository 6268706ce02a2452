"""nitro_attest.measurements: PCR3, PCR4 and PCR8 computed from what they measure.

Checked against AWS's published examples, the PCR4 of every real document in
``../shared`` (when present), a PCR8 known answer computed by the OpenSSL command
line, and independent re-computations written without the module's code.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import absent_reason, as_params, require_shared, shared_path
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID

from nitro_attest import PCRValue, parse
from nitro_attest.measurements import pcr3_for_role, pcr4_for_instance, pcr8_for_certificate
from nitro_attest.testing import DEFAULT_MODULE_ID, DEFAULT_PCRS, DEFAULT_ROLE_ARN

# AWS Nitro Enclaves User Guide, "Where to get an enclave's measurements"
# (set-up-attestation.html#where), sections PCR3 and PCR4: AWS's published examples.
USER_GUIDE_ROLE_ARN = "arn:aws:iam::123456789012:role/Webserver"
USER_GUIDE_PCR3 = "78fce75db17cd4e0a3fb8dad3ad128ca5e77edbb2b2c7f75329dccd99aa5f6ef4fc1f1a452e315b9e98f9e312e6921e6"
USER_GUIDE_INSTANCE_ID = "i-1234567890abcdef0"
USER_GUIDE_PCR4 = "08f996b5d43e047a9eb51e7f548bfee7e164fd7dc8f65541f2ac09d6545ac812719327281c401a67a10fcba87ae79ce0"

# A known answer for PCR8. No public (signing certificate, PCR8) pair was found: the User
# Guide's signed build-enclave sample shows a PCR8 but not its certificate. So this one
# was made for these tests with the User Guide's OpenSSL recipe (P-384 key, since
# discarded; `openssl req -new -x509 -sha384`) and its PCR8 computed by the OpenSSL
# command line alone, outside Python:
#   openssl x509 -in cert.pem -outform DER | openssl dgst -sha384 -binary \
#     | cat <(head -c 48 /dev/zero) - | openssl dgst -sha384
KNOWN_ANSWER_CERTIFICATE = """\
-----BEGIN CERTIFICATE-----
MIICSDCCAc6gAwIBAgIUes90HM4OjDy/542TDyOdpToTYLEwCgYIKoZIzj0EAwMw
WzE8MDoGA1UEAwwzbml0cm9fYXR0ZXN0IFBDUjgga25vd24tYW5zd2VyIHRlc3Qg
KGtleSBkaXNjYXJkZWQpMRswGQYDVQQKDBJuaXRyb19hdHRlc3QgdGVzdHMwHhcN
MjYxMTIzMDQ0MjAyWhcNMjYxMTI0MDQ0MjAyWjBbMTwwOgYDVQQDDDNuaXRyb19h
dHRlc3QgUENSOCBrbm93bi1hbnN3ZXIgdGVzdCAoa2V5IGRpc2NhcmRlZCkxGzAZ
BgNVBAoMEm5pdHJvX2F0dGVzdCB0ZXN0czB2MBAGByqGSM49AgEGBSuBBAAiA2IA
BBzCaeBkOS/1idUf+2P82Vcrh0mlkZFIOVlyvEUgOu0O/O53FP9ruQ2vjmLNUYYz
wounWGn4gub8tIYooMDxM1tH+xO+UQW880ijWMe6DoT8BhxDXZM7Ks9wB1O8FWpR
pqNTMFEwHQYDVR0OBBYEFPB1GyL3UMlMDHIyxJENxs1PeH+YMB8GA1UdIwQYMBaA
FPB1GyL3UMlMDHIyxJENxs1PeH+YMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0E
AwMDaAAwZQIwG1LjmmJj0I7NHYiJjqfJ1oNQmdTDGO45iglkRfv0K41Q6RoY+/ab
rDb4+qrlLjvfAjEA03BouimaMeqJ8c89JTUtUrlgCJusx2vXixlnWEslOSUcKqgS
LGM1fzSyZvUR6jUE
-----END CERTIFICATE-----
"""
KNOWN_ANSWER_PCR8 = "23b570afbb2c85910b507289c8cdb89f344f868c22b3a0785b4d38243f093a64031dd9136427ab45bcd2998b0064ab1f"

USER_GUIDE_VECTORS = "kms/pcr_vectors_aws_user_guide.txt"
REAL_DOCUMENTS = "vectors/aws"


def _self_signed(common_name: str = "nitro_attest PCR8 test") -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A fresh P-384 self-signed certificate, shaped like the User Guide's signing certificate."""
    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=20))
        .sign(key, hashes.SHA384())
    )
    return certificate, key


def _pcr8_independently(pem: str) -> str:
    """PCR8 written differently: DER from the PEM's base64 by hand, the extend as two updates."""
    body = "".join(line for line in pem.splitlines() if line and not line.startswith("-----"))
    der = base64.b64decode(body, validate=True)
    register = hashlib.new("sha384")
    register.update(b"\x00" * 48)  # the register's reset value
    register.update(hashlib.new("sha384", der).digest())  # the certificate's SHA-384 fingerprint
    return register.hexdigest()


# --------------------------------------------------------------------------- PCR3 / PCR4: AWS's examples


def test_user_guide_examples() -> None:
    pcr3 = pcr3_for_role(USER_GUIDE_ROLE_ARN)
    pcr4 = pcr4_for_instance(USER_GUIDE_INSTANCE_ID)
    assert isinstance(pcr3, PCRValue)
    assert (pcr3.index, pcr3.hex()) == (3, USER_GUIDE_PCR3)
    assert (pcr4.index, pcr4.hex()) == (4, USER_GUIDE_PCR4)
    assert pcr3.meaning == "IAM role of the parent instance"
    assert pcr4.meaning == "instance ID of the parent instance"


def test_user_guide_vectors_file() -> None:
    """Every example in ../shared's copy of the User Guide reproduces exactly."""
    text = require_shared(USER_GUIDE_VECTORS).read_text(encoding="utf-8")
    vectors = re.findall(r"^PCR([34]) (role_arn|instance_id)=(\S+)\s*\n\s*->\s*([0-9a-f]{96})\s*$", text, re.M)
    assert {index for index, *_ in vectors} == {"3", "4"}, f"{USER_GUIDE_VECTORS} lacks a PCR3 or PCR4 example"
    for index, kind, value, expected in vectors:
        pcr = pcr3_for_role(value) if kind == "role_arn" else pcr4_for_instance(value)
        assert pcr.index == int(index)
        assert pcr.hex() == expected, f"PCR{index} of {value}"


def _real_documents() -> list[Path]:
    directory = shared_path(REAL_DOCUMENTS)
    return sorted(directory.glob("*.cbor")) if directory is not None else []


@pytest.mark.parametrize(
    "path", as_params(_real_documents(), ids=lambda path: path.name, missing=absent_reason(REAL_DOCUMENTS))
)
def test_pcr4_of_real_documents(path: Path) -> None:
    """Nitro hardware's PCR4 is the hash of the module_id's instance part (before "-enc")."""
    document = parse(path.read_bytes())
    instance_id, separator, _ = document.module_id.partition("-enc")
    assert separator, f"module_id {document.module_id!r} has no -enc part"
    assert document.pcrs[4] == pcr4_for_instance(instance_id)


def test_testing_pki_measures_pcr3_and_pcr4_the_same_way() -> None:
    assert pcr3_for_role(DEFAULT_ROLE_ARN) == DEFAULT_PCRS[3]
    assert pcr4_for_instance(DEFAULT_MODULE_ID.partition("-enc")[0]) == DEFAULT_PCRS[4]


# --------------------------------------------------------------------------- PCR3 / PCR4: input rules


@pytest.mark.parametrize(
    "role_arn",
    [
        "arn:aws:iam::123456789012:role/Webserver",
        "arn:aws:iam::123456789012:role/application_abc/component_xyz/RDSAccess",
        "arn:aws-cn:iam::123456789012:role/r",
        "arn:aws-us-gov:iam::123456789012:role/r",
        "arn:aws-iso-b:iam::123456789012:role/r",
        "arn:aws:iam::123456789012:role/a+b=c,d.e@f_g-h",
        "arn:aws:iam::123456789012:role/" + "n" * 64,
    ],
)
def test_role_arns_accepted(role_arn: str) -> None:
    expected = hashlib.sha384(bytes(48) + role_arn.encode()).digest()
    assert pcr3_for_role(role_arn) == PCRValue(3, expected)


@pytest.mark.parametrize(
    ("role_arn", "message"),
    [
        ("arn:aws:iam::123456789012:instance-profile/Webserver", "instance profile ARN"),
        ("arn:aws:sts::123456789012:assumed-role/Webserver/i-1234567890abcdef0", "STS session ARN"),
        ("arn:aws:iam::123456789012:role/Webserver\n", "whitespace"),
        (" arn:aws:iam::123456789012:role/Webserver", "whitespace"),
        ("arn:aws:iam::12345678901:role/Webserver", "not an IAM role ARN"),
        ("arn:aws:iam::123456789012:role/", "not an IAM role ARN"),
        ("arn:aws:iam::123456789012:role/path/", "not an IAM role ARN"),
        ("arn:aws:iam::123456789012:role/" + "n" * 65, "not an IAM role ARN"),
        ("arn:aws:iam::123456789012:user/Webserver", "not an IAM role ARN"),
        ("arn:aws:iam:us-east-1:123456789012:role/Webserver", "not an IAM role ARN"),
        ("ARN:AWS:IAM::123456789012:ROLE/Webserver", "not an IAM role ARN"),
        ("Webserver", "not an IAM role ARN"),
        ("", "not an IAM role ARN"),
        ("arn:aws:iam::123456789012:role/" + "p/" * 256 + "name", "longer than"),
    ],
)
def test_role_arns_refused(role_arn: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        pcr3_for_role(role_arn)


@pytest.mark.parametrize("instance_id", ["i-12345678", "i-1234567890abcdef0", "i-0000000000000000a"])
def test_instance_ids_accepted(instance_id: str) -> None:
    expected = hashlib.sha384(bytes(48) + instance_id.encode()).digest()
    assert pcr4_for_instance(instance_id) == PCRValue(4, expected)


@pytest.mark.parametrize(
    ("instance_id", "message"),
    [
        ("i-1234567890abcdef0-enc0123456789abcdef0", "module_id; PCR4 measures the parent instance's ID"),
        ("i-1234567890ABCDEF0", "lower-case"),
        ("i-1234567890abcdef0\n", "whitespace"),
        ("i-1234567890abcdef", "not an EC2 instance ID"),
        ("i-123456789", "not an EC2 instance ID"),
        ("i-1234567890abcdefg", "not an EC2 instance ID"),
        ("1234567890abcdef0", "not an EC2 instance ID"),
        ("i-", "not an EC2 instance ID"),
        ("", "not an EC2 instance ID"),
    ],
)
def test_instance_ids_refused(instance_id: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        pcr4_for_instance(instance_id)


def test_module_id_error_names_the_instance_id() -> None:
    with pytest.raises(ValueError, match=r": i-1234567890abcdef0$"):
        pcr4_for_instance("i-1234567890abcdef0-enc0123456789abcdef0")


@pytest.mark.parametrize("value", [None, 123, b"i-1234567890abcdef0"])
def test_pcr3_pcr4_require_str(value: object) -> None:
    with pytest.raises(TypeError, match="must be a str"):
        pcr3_for_role(value)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a str"):
        pcr4_for_instance(value)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- PCR8


def test_pcr8_known_answer_from_openssl() -> None:
    pcr8 = pcr8_for_certificate(KNOWN_ANSWER_CERTIFICATE)
    assert (pcr8.index, pcr8.hex()) == (8, KNOWN_ANSWER_PCR8)
    assert pcr8.meaning == "enclave image signing certificate"
    assert _pcr8_independently(KNOWN_ANSWER_CERTIFICATE) == KNOWN_ANSWER_PCR8


def test_pcr8_matches_an_independent_computation() -> None:
    certificate, _ = _self_signed()
    pem = certificate.public_bytes(Encoding.PEM).decode()
    expected = _pcr8_independently(pem)
    assert pcr8_for_certificate(certificate).hex() == expected
    # The same, read as "extend with the certificate's SHA-384 fingerprint" (nitro-cli's comment).
    fingerprint = certificate.fingerprint(hashes.SHA384())
    assert hashlib.sha384(bytes(48) + fingerprint).hexdigest() == expected


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command line is not installed")
def test_pcr8_matches_the_openssl_command_line(tmp_path: Path) -> None:
    certificate, _ = _self_signed()
    pem_file = tmp_path / "signing-certificate.pem"
    pem_file.write_bytes(certificate.public_bytes(Encoding.PEM))

    def openssl(*args: str, data: bytes | None = None) -> bytes:
        return subprocess.run(["openssl", *args], input=data, capture_output=True, check=True, timeout=60).stdout

    der = openssl("x509", "-in", str(pem_file), "-outform", "DER")
    fingerprint = openssl("dgst", "-sha384", "-binary", data=der)
    register = openssl("dgst", "-sha384", "-binary", data=bytes(48) + fingerprint)
    assert pcr8_for_certificate(pem_file.read_bytes()).value == register


def test_pcr8_input_forms_agree() -> None:
    certificate, key = _self_signed()
    pem = certificate.public_bytes(Encoding.PEM)
    der = certificate.public_bytes(Encoding.DER)
    key_pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    expected = pcr8_for_certificate(certificate)
    forms: list[bytes | bytearray | memoryview | str | x509.Certificate] = [
        pem,
        pem.decode(),
        der,
        bytearray(der),
        memoryview(pem),
        pem.replace(b"\n", b"\r\n"),  # a PEM saved on Windows: same DER inside
        b"Certificate:\n    (openssl x509 -text output)\n" + pem,  # text around the block, as OpenSSL writes it
        key_pem + pem,  # a key next to the certificate: only CERTIFICATE blocks count
        x509.load_der_x509_certificate(der),
    ]
    for form in forms:
        assert pcr8_for_certificate(form) == expected
    assert expected != pcr8_for_certificate(_self_signed()[0])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"", "empty"),
        (b"  \n", "empty"),
        ("", "must be PEM text"),
        ("MIICSDCCAc6g", "must be PEM text"),
        (b"not a certificate at all", "neither PEM"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "no -----BEGIN CERTIFICATE-----"),
        # A line of the base64 lost: the block decodes, its DER does not parse.
        (
            KNOWN_ANSWER_CERTIFICATE.replace("pqNTMFEwHQYDVR0OBBYEFPB1GyL3UMlMDHIyxJENxs1PeH+YMB8GA1UdIwQYMBaA\n", ""),
            "PEM CERTIFICATE block is damaged",
        ),
        (KNOWN_ANSWER_CERTIFICATE.encode() * 2, "holds 2 certificates"),
    ],
)
def test_pcr8_bad_input(value: bytes | str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        pcr8_for_certificate(value)


def test_pcr8_bad_der() -> None:
    der = x509.load_pem_x509_certificate(KNOWN_ANSWER_CERTIFICATE.encode()).public_bytes(Encoding.DER)
    for damaged in (der[:-1], der + b"\x00", der[1:]):
        with pytest.raises(ValueError, match="neither PEM"):
            pcr8_for_certificate(damaged)


@pytest.mark.parametrize("value", [None, 8, ["-----BEGIN CERTIFICATE-----"]])
def test_pcr8_bad_type(value: object) -> None:
    with pytest.raises(TypeError, match="certificate must be"):
        pcr8_for_certificate(value)  # type: ignore[arg-type]
