"""The local KMS (``nitro_attest.kms.server``) against what a security review found: one test per finding.

Each test sends what the review sent (a swapped body under a signed
X-Amz-Content-SHA256, a rebinding Host, malformed members and headers, empty
roots, policies whose gaps the warning missed) and states what the server does
now; the tests after the review's show the neighbouring inputs that are still
accepted.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("werkzeug", reason="the local KMS needs werkzeug (the kms-server extra)")
boto3 = pytest.importorskip("boto3", reason="these tests drive the local KMS with boto3 (the test extra)")
from botocore.auth import SigV4Auth  # type: ignore[import-untyped]  # noqa: E402 -- after the skips
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]  # noqa: E402
from botocore.credentials import Credentials  # type: ignore[import-untyped]  # noqa: E402

from nitro_attest.errors import ConfigurationError  # noqa: E402
from nitro_attest.kms import KmsPolicyError, parse_key_policy  # noqa: E402
from nitro_attest.kms._server_operations import Operations  # noqa: E402
from nitro_attest.kms.server import Credential, KmsServer, LocalKms  # noqa: E402
from nitro_attest.testing import TestEnclave  # noqa: E402

PCR0 = "ab" * 48
ACCOUNT = "123456789012"
ROOT_PRINCIPAL = f"arn:aws:iam::{ACCOUNT}:root"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/data-processing"
CREDENTIALS = (Credential("AKIDPARENT", "parent-secret", ROLE),)


def enclave_statement(pcrs: dict[int, bytes], principal: str) -> dict[str, Any]:
    return {
        "Sid": "Enable enclave data processing",
        "Effect": "Allow",
        "Principal": {"AWS": principal},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Resource": "*",
        "Condition": {"StringEqualsIgnoreCase": {"kms:RecipientAttestation:PCR0": pcrs[0].hex()}},
    }


@pytest.fixture(scope="module")
def enclave() -> TestEnclave:
    return TestEnclave.create(pcrs={0: PCR0})


@pytest.fixture(scope="module")
def warnings() -> io.StringIO:
    return io.StringIO()


@pytest.fixture(scope="module")
def kms(enclave: TestEnclave, warnings: io.StringIO) -> Iterator[LocalKms]:
    with LocalKms(roots=enclave.roots, warnings=warnings) as server:
        yield server


@pytest.fixture(scope="module")
def signed_kms(enclave: TestEnclave) -> Iterator[LocalKms]:
    with LocalKms(roots=enclave.roots, credentials=CREDENTIALS) as server:
        yield server


def raw(
    kms: LocalKms, body: bytes, *, target: str | None = "TrentService.ListKeys", headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """Sends one POST as bytes; returns the status and the raw answer."""
    host, port = kms.endpoint_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    sent = {"Content-Type": "application/x-amz-json-1.1", **(headers or {})}
    if target is not None:
        sent["X-Amz-Target"] = target
    try:
        connection.request("POST", "/", body=body, headers=sent)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def kms_error(status: int, data: bytes) -> str:
    """The ``__type`` of a KMS-shaped 400; fails the test on anything else (a 500 HTML page, a traceback)."""
    assert status == 400, (status, data[:200])
    answer = json.loads(data)
    assert set(answer) == {"__type", "message"}, answer
    return str(answer["__type"])


# --------------------------------------------------------------------------- SigV4: the body is not covered


def test_a_signed_x_amz_content_sha256_does_not_let_the_body_be_swapped(signed_kms: LocalKms) -> None:
    """botocore's canonical request takes X-Amz-Content-SHA256 as the payload hash without checking it.

    A client that signs that header (honestly, with the hash of its body) can
    have its body replaced in flight: the server must compare the header to
    the body it read, as AWS does.
    """
    parent = signed_kms.client()
    key = parent.create_key(
        Policy=json.dumps(
            {
                "Statement": [
                    {"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "kms:PutKeyPolicy", "Resource": "*"}
                ]
            }
        )
    )["KeyMetadata"]["KeyId"]
    honest = json.dumps(
        {
            "KeyId": key,
            "Policy": json.dumps(
                {"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}]}
            ),
        }
    )
    request = AWSRequest(
        method="POST",
        url=signed_kms.endpoint_url + "/",
        data=honest.encode(),
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "TrentService.PutKeyPolicy",
            "X-Amz-Content-SHA256": hashlib.sha256(honest.encode()).hexdigest(),
        },
    )
    SigV4Auth(Credentials("AKIDPARENT", "parent-secret"), "kms", "us-east-1").add_auth(request)
    headers = {name: value for name, value in request.headers.items() if name.lower() != "host"}
    swapped = json.dumps(
        {
            "KeyId": key,
            "Policy": json.dumps(
                {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"}]}
            ),
        }
    ).encode()
    sent = {name: value for name, value in headers.items() if name != "X-Amz-Target"}
    status, data = raw(signed_kms, swapped, target="TrentService.PutKeyPolicy", headers=sent)
    assert kms_error(status, data) == "InvalidSignatureException"


# --------------------------------------------------------------------------- loopback without credentials


def test_without_credentials_a_request_for_another_host_is_refused(kms: LocalKms) -> None:
    """DNS rebinding: a web page whose name now resolves to 127.0.0.1 reaches the server same-origin.

    Without credentials the server is open to anything on loopback; it should
    at least refuse a Host header that does not name a loopback address.
    """
    port = kms.endpoint_url.rsplit(":", 1)[1]
    status, data = raw(kms, b"{}", headers={"Host": f"rebind.attacker.example:{port}"})
    assert status != 200 and b'"Keys"' not in data, data[:200]


# --------------------------------------------------------------------------- malformed input: 500s


def _blob(kms: LocalKms) -> tuple[str, str]:
    client = kms.client()
    key = client.create_key()["KeyMetadata"]["KeyId"]
    return key, base64.b64encode(client.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"]).decode()


@pytest.mark.parametrize(
    ("target", "body"),
    [
        ("Decrypt", {"CiphertextBlob": "é"}),
        ("Encrypt", {"KeyId": "KEY", "Plaintext": "é"}),
        ("ReEncrypt", {"CiphertextBlob": "\ud800", "DestinationKeyId": "KEY"}),
        ("Decrypt", {"CiphertextBlob": "BLOB", "Recipient": {"AttestationDocument": "é"}}),
        ("GenerateRandom", {"NumberOfBytes": 8, "Recipient": {"AttestationDocument": "é"}}),
        ("CreateKey", {"Description": "\ud800"}),
        ("ListKeys", {"Marker": "\ud800"}),
        ("ListAliases", {"Marker": "\ud800"}),
    ],
    ids=[
        "non-ASCII CiphertextBlob",
        "non-ASCII Plaintext",
        "lone surrogate CiphertextBlob",
        "non-ASCII AttestationDocument",
        "non-ASCII AttestationDocument (GenerateRandom)",
        "lone surrogate Description (SQLite)",
        "lone surrogate ListKeys Marker (SQLite)",
        "lone surrogate ListAliases Marker (SQLite)",
    ],
)
def test_malformed_members_get_a_kms_shaped_400_not_a_500(kms: LocalKms, target: str, body: dict[str, Any]) -> None:
    key, blob = _blob(kms)
    text = json.dumps(body).replace('"KEY"', json.dumps(key)).replace('"BLOB"', json.dumps(blob))
    status, data = raw(kms, text.encode(), target=f"TrentService.{target}")
    assert kms_error(status, data) in ("SerializationException", "ValidationException")


def test_a_key_policy_with_a_huge_number_is_malformed_not_a_500(kms: LocalKms) -> None:
    key, _ = _blob(kms)
    policy = (
        '{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*", '
        '"Condition": {"NumericEquals": {"aws:x": ' + "1" * 5000 + "}}}]}"
    )
    status, data = raw(kms, json.dumps({"KeyId": key, "Policy": policy}).encode(), target="TrentService.PutKeyPolicy")
    assert kms_error(status, data) == "MalformedPolicyDocumentException"


@pytest.mark.parametrize("length", ["\u00b9", "0" * 5000 + "2"], ids=["superscript digit", "5001 digits"])
def test_a_content_length_python_calls_a_digit_is_refused_not_a_500(kms: LocalKms, length: str) -> None:
    status, data = raw(kms, b"{}", headers={"Content-Length": length})
    assert kms_error(status, data) == "ValidationException"


def test_a_bad_chunk_header_is_refused_not_a_500(kms: LocalKms) -> None:
    host, port = kms.endpoint_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(
            b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: TrentService.ListKeys\r\n"
            b"Content-Type: application/x-amz-json-1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
        )
        answer = b""
        while chunk := connection.recv(65536):  # the headers and the body may come in two segments
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    assert kms_error(status, answer.split(b"\r\n\r\n", 1)[1]) == "ValidationException"


def test_an_empty_roots_is_refused_at_start_not_a_500_on_every_recipient() -> None:
    with pytest.raises(ConfigurationError):
        KmsServer(port=0, roots=[]).close()


# --------------------------------------------------------------------------- the unattested-Decrypt warning


def test_a_deny_that_never_applies_without_recipient_does_not_silence_the_warning(
    kms: LocalKms, enclave: TestEnclave, warnings: io.StringIO
) -> None:
    """A blocklist Deny (StringEquals PCR0 = a revoked image) is false when PCR0 is absent: root still decrypts."""
    client = kms.client()
    key = client.create_key()["KeyMetadata"]["KeyId"]
    policy = {
        "Statement": [
            {
                "Sid": "Admin",
                "Effect": "Allow",
                "Principal": {"AWS": ROOT_PRINCIPAL},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "Revoked image",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:RecipientAttestation:PCR0": "ef" * 48}},
            },
        ]
    }
    before = len(warnings.getvalue())
    client.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(policy))
    blob = client.encrypt(KeyId=key, Plaintext=b"outside any enclave")["CiphertextBlob"]
    assert client.decrypt(CiphertextBlob=blob)["Plaintext"] == b"outside any enclave"  # the gap is real
    assert key in warnings.getvalue()[before:]


def test_re_encrypt_from_without_attestation_is_warned_like_decrypt(
    kms: LocalKms, enclave: TestEnclave, warnings: io.StringIO
) -> None:
    """kms:ReEncrypt* without attestation moves the ciphertext to a key the caller may Decrypt: the same gap."""
    client = kms.client()
    key = client.create_key()["KeyMetadata"]["KeyId"]
    admin = {
        "Sid": "Key administration, no Decrypt",
        "Effect": "Allow",
        "Principal": {"AWS": ROOT_PRINCIPAL},
        "Action": ["kms:Encrypt", "kms:ReEncrypt*", "kms:DescribeKey", "kms:PutKeyPolicy"],
        "Resource": "*",
    }
    policy = {"Statement": [admin, enclave_statement(dict(enclave.pcrs), ROOT_PRINCIPAL)]}
    before = len(warnings.getvalue())
    client.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(policy))
    blob = client.encrypt(KeyId=key, Plaintext=b"enclave only")["CiphertextBlob"]
    mine = client.create_key()["KeyMetadata"]["KeyId"]  # the default policy: root may Decrypt
    moved = client.re_encrypt(CiphertextBlob=blob, DestinationKeyId=mine)["CiphertextBlob"]
    assert client.decrypt(CiphertextBlob=moved)["Plaintext"] == b"enclave only"  # the PCR condition bypassed
    assert key in warnings.getvalue()[before:]


# --------------------------------------------------------------------------- around the findings: what still works


def _signed_headers(kms: LocalKms, body: bytes, target: str, content_hash: str) -> dict[str, str]:
    request = AWSRequest(
        method="POST",
        url=kms.endpoint_url + "/",
        data=body,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": target,
            "X-Amz-Content-SHA256": content_hash,
        },
    )
    SigV4Auth(Credentials("AKIDPARENT", "parent-secret"), "kms", "us-east-1").add_auth(request)
    return {name: value for name, value in request.headers.items() if name.lower() not in ("host", "x-amz-target")}


def test_an_unsigned_payload_is_refused_and_an_honest_content_hash_accepted(signed_kms: LocalKms) -> None:
    body = b"{}"
    unsigned = _signed_headers(signed_kms, body, "TrentService.ListKeys", "UNSIGNED-PAYLOAD")
    assert kms_error(*raw(signed_kms, body, headers=unsigned)) == "InvalidSignatureException"
    honest = _signed_headers(signed_kms, body, "TrentService.ListKeys", hashlib.sha256(body).hexdigest())
    status, data = raw(signed_kms, body, headers=honest)
    assert status == 200 and b'"Keys"' in data


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.0.0.1:{port}",
        "127.9.9.9:{port}",
        "localhost:{port}",
        "LOCALHOST",
        "[::1]:{port}",
        "[::1]",
        "::1",
    ],
)
def test_without_credentials_a_loopback_host_is_answered(kms: LocalKms, host: str) -> None:
    port = kms.endpoint_url.rsplit(":", 1)[1]
    status, data = raw(kms, b"{}", headers={"Host": host.format(port=port)})
    assert status == 200 and b'"Keys"' in data


@pytest.mark.parametrize(
    "host",
    [
        "localhost.attacker.example",
        "127.0.0.1.nip.io:{port}",
        "10.0.0.1:{port}",
        "[::1]x",
        "127.0.0.1:port",
        "",
    ],
)
def test_without_credentials_every_other_host_is_unrecognized(kms: LocalKms, host: str) -> None:
    port = kms.endpoint_url.rsplit(":", 1)[1]
    status, data = raw(kms, b"{}", headers={"Host": host.format(port=port)})
    assert kms_error(status, data) == "UnrecognizedClientException"
    assert b"DNS rebinding" in data


def test_with_credentials_the_host_is_the_signature_s_business(signed_kms: LocalKms) -> None:
    """A signed request names the host it signed; the loopback-only rule is for the open, unsigned server."""
    body = b"{}"
    request = AWSRequest(
        method="POST",
        url="http://kms.example:443/",
        data=body,
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.ListKeys"},
    )
    SigV4Auth(Credentials("AKIDPARENT", "parent-secret"), "kms", "us-east-1").add_auth(request)
    headers = {name: value for name, value in request.headers.items() if name != "X-Amz-Target"}
    status, data = raw(signed_kms, body, headers={**headers, "Host": "kms.example:443"})
    assert status == 200 and b'"Keys"' in data


def test_a_surrogate_in_a_map_key_or_a_nested_member_is_a_serialization_error(kms: LocalKms) -> None:
    _, blob = _blob(kms)
    for body in (
        {"CiphertextBlob": blob, "EncryptionContext": {"\ud800": "x"}},
        {"CiphertextBlob": blob, "GrantTokens": ["\udfff"]},
    ):
        status, data = raw(kms, json.dumps(body).encode(), target="TrentService.Decrypt")
        assert kms_error(status, data) == "SerializationException"
        assert b"lone surrogate" in data
    # Not an escape: the surrogate's own three bytes, which json.loads decodes with surrogatepass.
    status, data = raw(kms, b'{"Description": "\xed\xa0\x80"}', target="TrentService.CreateKey")
    assert kms_error(status, data) == "SerializationException"


def test_a_key_policy_number_under_the_digit_limit_is_read() -> None:
    policy = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "kms:*",
                "Resource": "*",
                "Condition": {"NumericEquals": {"aws:x": int("1" * 4000)}},
            }
        ]
    }
    assert parse_key_policy(json.dumps(policy)).statements[0].conditions[0].values == ("1" * 4000,)
    with pytest.raises(KmsPolicyError, match="number too long"):
        parse_key_policy(json.dumps(policy).replace("1" * 4000, "1" * 5000))
    with pytest.raises(KmsPolicyError, match="duplicate JSON key"):  # the hooks' errors are kept as they are
        parse_key_policy('{"Statement": [], "Statement": []}')


def test_an_empty_roots_is_refused_by_local_kms_too_and_none_is_the_aws_root() -> None:
    with pytest.raises(ConfigurationError, match="roots is empty"):
        LocalKms(roots=[])
    KmsServer(port=0, roots=None).close()


def test_a_deny_that_may_not_apply_without_recipient_leaves_the_warning(kms: LocalKms, warnings: io.StringIO) -> None:
    """A Deny that also needs a condition this library cannot evaluate may not apply: the gap may be open."""
    client = kms.client()
    key = client.create_key()["KeyMetadata"]["KeyId"]
    deny = {
        "Sid": "Only the enclave, from the VPC",
        "Effect": "Deny",
        "Principal": "*",
        "Action": ["kms:Decrypt", "kms:ReEncrypt*"],
        "Resource": "*",
        "Condition": {
            "StringNotEqualsIgnoreCase": {"kms:RecipientAttestation:PCR0": PCR0},
            "IpAddress": {"aws:SourceIp": "10.0.0.0/8"},
        },
    }
    admin = {
        "Sid": "Admin",
        "Effect": "Allow",
        "Principal": {"AWS": ROOT_PRINCIPAL},
        "Action": "kms:*",
        "Resource": "*",
    }
    before = len(warnings.getvalue())
    client.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps({"Statement": [admin, deny]}))
    assert key in warnings.getvalue()[before:]


def test_a_deny_on_decrypt_only_leaves_the_re_encrypt_warning(kms: LocalKms, warnings: io.StringIO) -> None:
    client = kms.client()
    key = client.create_key()["KeyMetadata"]["KeyId"]
    deny = {
        "Sid": "Only the enclave",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "kms:Decrypt",
        "Resource": "*",
        "Condition": {"StringNotEqualsIgnoreCase": {"kms:RecipientAttestation:PCR0": PCR0}},
    }
    admin = {
        "Sid": "Admin",
        "Effect": "Allow",
        "Principal": {"AWS": ROOT_PRINCIPAL},
        "Action": "kms:*",
        "Resource": "*",
    }
    before = len(warnings.getvalue())
    client.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps({"Statement": [admin, deny]}))
    written = warnings.getvalue()[before:]
    assert f"key/{key} lets Principal AWS:{ROOT_PRINCIPAL} kms:ReEncryptFrom without any" in written
    assert "kms:Decrypt and" not in written  # the Deny closes Decrypt itself


def test_an_operation_that_raises_is_still_in_the_audit_log(
    enclave: TestEnclave, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Operations, body: Any, principal: str, details: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("a bug in an operation")

    monkeypatch.setattr(Operations, "_list_keys", broken)
    audit = tmp_path / "audit.jsonl"
    with LocalKms(roots=enclave.roots, audit_log=audit) as server:
        status, _ = raw(server, b"{}")
    assert status == 500  # werkzeug's answer to an exception: the bug is not dressed up as a KMS error
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [(r["operation"], r["outcome"]) for r in records] == [("ListKeys", "error")]
