"""The local KMS (``nitro_attest.kms.server``) through an unchanged boto3 client on a real loopback server.

Every test talks HTTP to a :class:`LocalKms` on 127.0.0.1: boto3 for what a
program written for AWS does, raw ``http.client`` requests for what boto3
would refuse to send (bad JSON, unknown targets, oversized bodies, bad
signatures). Documents come from :class:`TestEnclave`, valid now.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import sqlite3
import stat
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("werkzeug", reason="the local KMS needs werkzeug (the kms-server extra)")
boto3 = pytest.importorskip("boto3", reason="these tests drive the local KMS with boto3 (the test extra)")
from botocore.auth import SigV4Auth  # noqa: E402 -- after the skips
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

from nitro_attest.errors import ConfigurationError  # noqa: E402
from nitro_attest.kms.server import MAX_BODY, Credential, KmsServer, LocalKms, load_credentials  # noqa: E402
from nitro_attest.recipient import EnclaveKey  # noqa: E402
from nitro_attest.testing import TestEnclave  # noqa: E402

PCR0 = "ab" * 48
OTHER_PCR0 = "cd" * 48
ACCOUNT = "123456789012"
ROOT_PRINCIPAL = f"arn:aws:iam::{ACCOUNT}:root"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/data-processing"


def user_guide_policy(pcrs: dict[int, bytes], principal: str = ROOT_PRINCIPAL) -> str:
    """The Nitro Enclaves User Guide's key policy with this enclave's PCRs, beside an admin statement."""
    condition = {
        "kms:RecipientAttestation:ImageSha384": pcrs[0].hex(),
        **{f"kms:RecipientAttestation:PCR{index}": pcrs[index].hex() for index in (0, 1, 2, 3, 4, 8)},
    }
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "Key administration, no Decrypt",
                    "Effect": "Allow",
                    "Principal": {"AWS": ROOT_PRINCIPAL},
                    "Action": [
                        "kms:Encrypt",
                        "kms:DescribeKey",
                        "kms:PutKeyPolicy",
                        "kms:GetKeyPolicy",
                        "kms:CreateAlias",
                        "kms:EnableKey",
                        "kms:DisableKey",
                        "kms:ScheduleKeyDeletion",
                        "kms:GenerateDataKeyWithoutPlaintext",
                    ],
                    "Resource": "*",
                },
                {
                    "Sid": "Enable enclave data processing",
                    "Effect": "Allow",
                    "Principal": {"AWS": principal},
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:GenerateRandom"],
                    "Resource": "*",
                    "Condition": {"StringEqualsIgnoreCase": condition},
                },
            ],
        }
    )


@pytest.fixture(scope="module")
def enclave() -> TestEnclave:
    return TestEnclave.create(pcrs={0: PCR0})


@pytest.fixture(scope="module")
def impostor() -> TestEnclave:
    """Another enclave whose root the server also trusts, running other code (PCR0)."""
    return TestEnclave.create(pcrs={0: OTHER_PCR0})


@pytest.fixture(scope="module")
def enclave_key() -> EnclaveKey:
    return EnclaveKey.generate()


@pytest.fixture(scope="module")
def audit_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audit") / "audit.jsonl"


@pytest.fixture(scope="module")
def warnings() -> io.StringIO:
    return io.StringIO()


@pytest.fixture(scope="module")
def kms(enclave: TestEnclave, impostor: TestEnclave, audit_path: Path, warnings: io.StringIO) -> Iterator[LocalKms]:
    with LocalKms(roots=enclave.roots + impostor.roots, audit_log=audit_path, warnings=warnings) as server:
        yield server


@pytest.fixture(scope="module")
def client(kms: LocalKms) -> Any:
    return kms.client()


@pytest.fixture(scope="module")
def key_id(client: Any, enclave: TestEnclave) -> str:
    """A key under the user guide's policy for ``enclave``."""
    key: str = client.create_key(Description="enclave secrets")["KeyMetadata"]["KeyId"]
    client.put_key_policy(KeyId=key, PolicyName="default", Policy=user_guide_policy(dict(enclave.pcrs)))
    return key


def recipient(document: bytes) -> dict[str, Any]:
    return {"AttestationDocument": document, "KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256"}


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return excinfo.value.response["Error"]["Code"], excinfo.value.response["Error"]["Message"]


def audit_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def last_record(path: Path, **match: Any) -> dict[str, Any]:
    return next(r for r in reversed(audit_records(path)) if all(r.get(k) == v for k, v in match.items()))


def raw(
    kms: LocalKms,
    body: bytes,
    *,
    target: str | None = "TrentService.ListKeys",
    method: str = "POST",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Sends one request as bytes; returns the status, the JSON answer and the headers."""
    host, port = kms.endpoint_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    sent = {"Content-Type": "application/x-amz-json-1.1", **(headers or {})}
    if target is not None:
        sent["X-Amz-Target"] = target
    try:
        connection.request(method, "/", body=body, headers=sent)
        response = connection.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else {}, dict(response.getheaders())
    finally:
        connection.close()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --------------------------------------------------------------------------- the end-to-end flow


def test_decrypt_with_recipient_answers_a_ciphertext_for_recipient_and_no_plaintext(
    client: Any, key_id: str, enclave: TestEnclave, enclave_key: EnclaveKey
) -> None:
    blob = client.encrypt(KeyId=key_id, Plaintext=b"db password", EncryptionContext={"app": "x"})["CiphertextBlob"]
    document = enclave.attest(public_key=enclave_key.public_key_der)
    answer = client.decrypt(CiphertextBlob=blob, EncryptionContext={"app": "x"}, Recipient=recipient(document))
    assert "Plaintext" not in answer
    assert enclave_key.open(answer["CiphertextForRecipient"]) == b"db password"
    assert answer["KeyId"].endswith(f":key/{key_id}")
    assert answer["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"


def test_decrypt_without_recipient_is_denied_by_the_attestation_condition(
    client: Any, key_id: str, audit_path: Path
) -> None:
    blob = client.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"]
    with pytest.raises(ClientError) as excinfo:
        client.decrypt(CiphertextBlob=blob)
    code, message = error_of(excinfo)
    assert code == "AccessDeniedException"
    assert "Statement" not in message and "PCR" not in message  # the reasons go to the audit log only
    denied = last_record(audit_path, operation="Decrypt", outcome="AccessDeniedException")["denied"]
    assert denied["action"] == "kms:Decrypt"
    assert any("actual absent" in reason for reason in denied["reasons"])


def test_an_enclave_with_another_pcr0_is_access_denied_and_the_audit_log_says_which_condition(
    client: Any, key_id: str, impostor: TestEnclave, enclave_key: EnclaveKey, audit_path: Path
) -> None:
    blob = client.encrypt(KeyId=key_id, Plaintext=b"secret")["CiphertextBlob"]
    document = impostor.attest(public_key=enclave_key.public_key_der)
    with pytest.raises(ClientError) as excinfo:
        client.decrypt(CiphertextBlob=blob, Recipient=recipient(document))
    code, message = error_of(excinfo)
    assert code == "AccessDeniedException"
    assert OTHER_PCR0 not in message
    record = last_record(audit_path, operation="Decrypt", outcome="AccessDeniedException")
    assert record["recipient"]["pcr0"] == OTHER_PCR0
    failing = [r for r in record["denied"]["reasons"] if "Enable enclave data processing" in r and r.endswith("false")]
    assert any("kms:RecipientAttestation:PCR0" in r and f"actual {OTHER_PCR0}" in r for r in failing)


def _document_breakages(enclave: TestEnclave, key: EnclaveKey) -> dict[str, bytes]:
    stranger = TestEnclave.create(pcrs=dict(enclave.pcrs))  # the right PCRs, under a root nobody trusts
    valid = enclave.attest(public_key=key.public_key_der)
    return {
        "another root": stranger.attest(public_key=key.public_key_der),
        "expired": enclave.attest(public_key=key.public_key_der, at=datetime.now(timezone.utc) - timedelta(hours=5)),
        "tampered": valid[:-1] + bytes([valid[-1] ^ 1]),
        "not a document": b"\xa0",
    }


@pytest.mark.parametrize("breakage", ["another root", "expired", "tampered", "not a document"])
def test_a_document_that_does_not_verify_is_a_validation_exception(
    client: Any, key_id: str, enclave: TestEnclave, enclave_key: EnclaveKey, audit_path: Path, breakage: str
) -> None:
    blob = client.encrypt(KeyId=key_id, Plaintext=b"secret")["CiphertextBlob"]
    document = _document_breakages(enclave, enclave_key)[breakage]
    with pytest.raises(ClientError) as excinfo:
        client.decrypt(CiphertextBlob=blob, Recipient=recipient(document))
    assert error_of(excinfo) == ("ValidationException", "The attestation document in Recipient is not valid.")
    rejected = last_record(audit_path, operation="Decrypt", outcome="ValidationException")["recipient_rejected"]
    expected = {"another root": "chain", "expired": "expired", "tampered": "signature", "not a document": None}
    assert expected[breakage] in (rejected["code"], None)


def test_a_document_without_public_key_or_with_another_algorithm_is_refused(
    client: Any, key_id: str, enclave: TestEnclave, enclave_key: EnclaveKey
) -> None:
    blob = client.encrypt(KeyId=key_id, Plaintext=b"secret")["CiphertextBlob"]
    with pytest.raises(ClientError) as excinfo:
        client.decrypt(CiphertextBlob=blob, Recipient=recipient(enclave.attest()))
    assert error_of(excinfo) == ("ValidationException", "The attestation document in Recipient has no public key.")
    not_rsa = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d03010703420004") + bytes(64)
    with pytest.raises(ClientError) as excinfo:
        client.decrypt(CiphertextBlob=blob, Recipient=recipient(enclave.attest(public_key=not_rsa)))
    assert error_of(excinfo)[0] == "ValidationException"
    document = enclave.attest(public_key=enclave_key.public_key_der)
    with pytest.raises(ClientError) as excinfo:
        client.decrypt(
            CiphertextBlob=blob, Recipient={"AttestationDocument": document, "KeyEncryptionAlgorithm": "RSA_PKCS1"}
        )
    assert error_of(excinfo)[0] == "ValidationException"


def test_a_debug_enclave_is_judged_by_the_policy_alone_as_kms_does(client: Any, enclave_key: EnclaveKey) -> None:
    debug = TestEnclave.create(debug=True)
    with LocalKms(roots=debug.roots) as kms:
        local = kms.client()
        key = local.create_key()["KeyMetadata"]["KeyId"]  # the default policy: the account's root may do anything
        blob = local.encrypt(KeyId=key, Plaintext=b"s")["CiphertextBlob"]
        answer = local.decrypt(
            CiphertextBlob=blob, Recipient=recipient(debug.attest(public_key=enclave_key.public_key_der))
        )
    assert enclave_key.open(answer["CiphertextForRecipient"]) == b"s"


def test_a_wrong_encryption_context_or_a_tampered_blob_is_invalid_ciphertext(client: Any, kms: LocalKms) -> None:
    key = client.create_key()["KeyMetadata"]["KeyId"]
    blob = client.encrypt(KeyId=key, Plaintext=b"bound", EncryptionContext={"tenant": "a"})["CiphertextBlob"]
    for context in ({"tenant": "b"}, {}, {"tenant": "a", "extra": "x"}):
        with pytest.raises(ClientError) as excinfo:
            client.decrypt(CiphertextBlob=blob, EncryptionContext=context)
        assert error_of(excinfo)[0] == "InvalidCiphertextException"
    for tampered in (blob[:-1] + bytes([blob[-1] ^ 1]), blob[:20], b"\x02" + blob[1:], os.urandom(100)):
        with pytest.raises(ClientError) as excinfo:
            client.decrypt(CiphertextBlob=tampered, EncryptionContext={"tenant": "a"})
        assert error_of(excinfo)[0] == "InvalidCiphertextException"
    assert client.decrypt(CiphertextBlob=blob, EncryptionContext={"tenant": "a"})["Plaintext"] == b"bound"


def test_a_blob_swapped_onto_another_key_is_invalid_and_a_wrong_key_id_is_incorrect_key(client: Any) -> None:
    first, second = (client.create_key()["KeyMetadata"]["KeyId"] for _ in range(2))
    blob = client.encrypt(KeyId=first, Plaintext=b"x")["CiphertextBlob"]
    swapped = blob[:1] + uuid.UUID(second).bytes + blob[17:]  # the header now names the other key
    with pytest.raises(ClientError) as excinfo:
        client.decrypt(CiphertextBlob=swapped)
    assert error_of(excinfo)[0] == "InvalidCiphertextException"
    with pytest.raises(ClientError) as excinfo:
        client.decrypt(CiphertextBlob=blob, KeyId=second)
    assert error_of(excinfo)[0] == "IncorrectKeyException"
    assert client.decrypt(CiphertextBlob=blob, KeyId=first)["Plaintext"] == b"x"


def test_generate_data_key_with_recipient_the_blob_decrypts_to_the_key_the_envelope_holds(
    client: Any, key_id: str, enclave: TestEnclave, enclave_key: EnclaveKey
) -> None:
    document = enclave.attest(public_key=enclave_key.public_key_der)
    answer = client.generate_data_key(KeyId=key_id, KeySpec="AES_256", Recipient=recipient(document))
    assert "Plaintext" not in answer
    data_key = enclave_key.open(answer["CiphertextForRecipient"])
    assert len(data_key) == 32
    again = client.decrypt(CiphertextBlob=answer["CiphertextBlob"], Recipient=recipient(document))
    assert enclave_key.open(again["CiphertextForRecipient"]) == data_key


def test_generate_random_with_and_without_recipient(client: Any, enclave: TestEnclave, enclave_key: EnclaveKey) -> None:
    assert len(client.generate_random(NumberOfBytes=17)["Plaintext"]) == 17
    document = enclave.attest(public_key=enclave_key.public_key_der)
    answer = client.generate_random(NumberOfBytes=32, Recipient=recipient(document))
    assert "Plaintext" not in answer
    assert len(enclave_key.open(answer["CiphertextForRecipient"])) == 32


def test_generate_data_key_without_plaintext_and_number_of_bytes(client: Any, key_id: str) -> None:
    answer = client.generate_data_key_without_plaintext(KeyId=key_id, NumberOfBytes=64)
    assert "Plaintext" not in answer and "CiphertextForRecipient" not in answer
    plain = client.create_key()["KeyMetadata"]["KeyId"]
    answer = client.generate_data_key(KeyId=plain, NumberOfBytes=7)
    assert client.decrypt(CiphertextBlob=answer["CiphertextBlob"])["Plaintext"] == answer["Plaintext"]
    assert len(answer["Plaintext"]) == 7


def test_re_encrypt_moves_a_ciphertext_to_another_key_and_context(client: Any) -> None:
    source, destination = (client.create_key()["KeyMetadata"]["KeyId"] for _ in range(2))
    blob = client.encrypt(KeyId=source, Plaintext=b"move me", EncryptionContext={"a": "1"})["CiphertextBlob"]
    answer = client.re_encrypt(
        CiphertextBlob=blob,
        SourceEncryptionContext={"a": "1"},
        DestinationKeyId=destination,
        DestinationEncryptionContext={"b": "2"},
    )
    assert answer["SourceKeyId"].endswith(source) and answer["KeyId"].endswith(destination)
    moved = answer["CiphertextBlob"]
    assert (
        client.decrypt(CiphertextBlob=moved, EncryptionContext={"b": "2"}, KeyId=destination)["Plaintext"] == b"move me"
    )
    with pytest.raises(ClientError) as excinfo:
        client.re_encrypt(CiphertextBlob=blob, DestinationKeyId=destination)  # the source context is missing
    assert error_of(excinfo)[0] == "InvalidCiphertextException"


# --------------------------------------------------------------------------- keys, aliases, policies


def test_keys_aliases_and_arns(client: Any, kms: LocalKms) -> None:
    metadata = client.create_key(Description="named")["KeyMetadata"]
    key, arn = metadata["KeyId"], metadata["Arn"]
    assert arn == f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{key}"
    assert metadata["KeyState"] == "Enabled" and metadata["KeySpec"] == "SYMMETRIC_DEFAULT"
    client.create_alias(AliasName="alias/app-secrets", TargetKeyId=key)
    for name in (key, arn, "alias/app-secrets", f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/app-secrets"):
        assert client.describe_key(KeyId=name)["KeyMetadata"]["Description"] == "named"
    aliases = client.list_aliases(KeyId=key)["Aliases"]
    assert [(a["AliasName"], a["TargetKeyId"]) for a in aliases] == [("alias/app-secrets", key)]
    blob = client.encrypt(KeyId="alias/app-secrets", Plaintext=b"a")["CiphertextBlob"]
    assert client.decrypt(CiphertextBlob=blob)["Plaintext"] == b"a"
    with pytest.raises(ClientError) as excinfo:
        client.create_alias(AliasName="alias/app-secrets", TargetKeyId=key)
    assert error_of(excinfo)[0] == "AlreadyExistsException"
    for bad_alias in ("alias/aws/mine", "alias/has space", "noprefix"):
        with pytest.raises(ClientError) as excinfo:
            client.create_alias(AliasName=bad_alias, TargetKeyId=key)
        assert error_of(excinfo)[0] == "ValidationException", bad_alias
    with pytest.raises(ClientError) as excinfo:
        client.create_alias(AliasName="alias/other", TargetKeyId="alias/app-secrets")
    assert error_of(excinfo)[0] == "ValidationException"


@pytest.mark.parametrize(
    "name",
    [
        "00000000-0000-0000-0000-000000000000",
        "not-a-key",
        "alias/missing",
        f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/00000000-0000-0000-0000-000000000000",
        "arn:aws:kms:us-east-1:999999999999:alias/app-secrets",
    ],
)
def test_an_unknown_key_is_not_found(client: Any, name: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        client.describe_key(KeyId=name)
    assert error_of(excinfo)[0] == "NotFoundException"


def test_list_keys_pages_with_marker(client: Any) -> None:
    for _ in range(3):
        client.create_key()
    seen, marker = [], None
    while True:
        page = client.list_keys(Limit=2, **({"Marker": marker} if marker else {}))
        seen += [key["KeyId"] for key in page["Keys"]]
        if not page["Truncated"]:
            break
        marker = page["NextMarker"]
    assert len(seen) == len(set(seen)) >= 3
    assert seen == sorted(seen)


def test_disabled_and_pending_deletion_keys(client: Any) -> None:
    key = client.create_key()["KeyMetadata"]["KeyId"]
    blob = client.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"]
    client.disable_key(KeyId=key)
    assert client.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Disabled"
    with pytest.raises(ClientError) as excinfo:
        client.decrypt(CiphertextBlob=blob)
    assert error_of(excinfo)[0] == "DisabledException"
    client.enable_key(KeyId=key)
    assert client.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    scheduled = client.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    assert scheduled["KeyState"] == "PendingDeletion" and scheduled["PendingWindowInDays"] == 7
    for call in (
        lambda: client.encrypt(KeyId=key, Plaintext=b"x"),
        lambda: client.enable_key(KeyId=key),
        lambda: client.schedule_key_deletion(KeyId=key),
    ):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert error_of(excinfo)[0] == "KMSInvalidStateException"
    with pytest.raises(ClientError) as excinfo:
        client.schedule_key_deletion(KeyId=client.create_key()["KeyMetadata"]["KeyId"], PendingWindowInDays=6)
    assert error_of(excinfo)[0] == "ValidationException"


def test_get_and_put_key_policy(client: Any, key_id: str, enclave: TestEnclave) -> None:
    answer = client.get_key_policy(KeyId=key_id, PolicyName="default")
    assert answer["Policy"] == user_guide_policy(dict(enclave.pcrs))
    with pytest.raises(ClientError) as excinfo:
        client.get_key_policy(KeyId=key_id, PolicyName="other")
    assert error_of(excinfo)[0] == "NotFoundException"
    for malformed in ("not json", '{"Statement": []}', '{"Version": "2012-10-17", "Statement": {"Effect": "Allow"}}'):
        with pytest.raises(ClientError) as excinfo:
            client.put_key_policy(KeyId=key_id, PolicyName="default", Policy=malformed)
        assert error_of(excinfo)[0] == "MalformedPolicyDocumentException", malformed


def test_the_default_key_policy_lets_the_account_root_do_anything_and_nobody_else(enclave: TestEnclave) -> None:
    with LocalKms(principal=ROLE) as kms:
        client = kms.client()
        key = client.create_key()["KeyMetadata"]["KeyId"]
        with pytest.raises(ClientError) as excinfo:
            client.encrypt(KeyId=key, Plaintext=b"x")  # there is no IAM here to grant the role anything
        assert error_of(excinfo)[0] == "AccessDeniedException"


def test_put_key_policy_warns_about_decrypt_without_attestation(
    client: Any, warnings: io.StringIO, audit_path: Path
) -> None:
    key = client.create_key()["KeyMetadata"]["KeyId"]
    grant = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Admin",
                "Effect": "Allow",
                "Principal": {"AWS": ROOT_PRINCIPAL},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "Instance role",
                "Effect": "Allow",
                "Principal": {"AWS": ROLE},
                "Action": "kms:Decrypt",
                "Resource": "*",
            },
        ],
    }
    client.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(grant))
    text = warnings.getvalue()
    assert f"key/{key} lets Principal AWS:{ROLE} kms:Decrypt without any kms:RecipientAttestation condition" in text
    assert "Sid 'Admin'" in text  # kms:* covers Decrypt too
    record = last_record(audit_path, event="warning", statement="Statement[1] (Sid 'Instance role')")
    assert record["key"].endswith(key)


def test_a_deny_unless_the_pcr_matches_silences_the_warning(client: Any, warnings: io.StringIO) -> None:
    key = client.create_key()["KeyMetadata"]["KeyId"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Admin",
                "Effect": "Allow",
                "Principal": {"AWS": ROOT_PRINCIPAL},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "Only the enclave",
                "Effect": "Deny",
                "Principal": "*",
                # ReEncrypt too: kms:* lets root move the ciphertext to a key without this Deny.
                "Action": ["kms:Decrypt", "kms:ReEncrypt*"],
                "Resource": "*",
                "Condition": {"StringNotEqualsIgnoreCase": {"kms:RecipientAttestation:PCR0": PCR0}},
            },
        ],
    }
    before = warnings.getvalue()
    client.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(policy))
    assert key not in warnings.getvalue()[len(before) :]


def test_create_key_refuses_what_it_does_not_make(client: Any) -> None:
    for options in (
        {"KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"},
        {"Origin": "EXTERNAL"},
        {"MultiRegion": True},
    ):
        with pytest.raises(ClientError) as excinfo:
            client.create_key(**options)
        assert error_of(excinfo)[0] == "UnsupportedOperationException", options
    with pytest.raises(ClientError) as excinfo:
        client.create_key(Policy="{}")
    assert error_of(excinfo)[0] == "MalformedPolicyDocumentException"


def test_limits_and_types_are_kms_validation_errors(client: Any, kms: LocalKms) -> None:
    key = client.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as excinfo:
        client.encrypt(KeyId=key, Plaintext=b"x" * 4097)
    assert error_of(excinfo)[0] == "ValidationException"
    assert client.encrypt(KeyId=key, Plaintext=b"x" * 4096)["CiphertextBlob"]
    with pytest.raises(ClientError) as excinfo:
        client.generate_data_key(KeyId=key, NumberOfBytes=1025)
    assert error_of(excinfo)[0] == "ValidationException"
    with pytest.raises(ClientError) as excinfo:
        client.generate_data_key(KeyId=key, NumberOfBytes=16, KeySpec="AES_128")
    assert error_of(excinfo)[0] == "ValidationException"
    with pytest.raises(ClientError) as excinfo:
        client.encrypt(KeyId=key, Plaintext=b"x", EncryptionContext={"k": "v" * 9000})
    assert error_of(excinfo)[0] == "ValidationException"
    with pytest.raises(ClientError) as excinfo:
        client.encrypt(KeyId=key, Plaintext=b"x", EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    assert error_of(excinfo)[0] == "InvalidKeyUsageException"
    with pytest.raises(ClientError) as excinfo:
        client.encrypt(KeyId=key, Plaintext=b"x", DryRun=True)
    assert error_of(excinfo)[0] == "DryRunOperationException"
    with pytest.raises(ClientError) as excinfo:
        client.generate_random(NumberOfBytes=8, CustomKeyStoreId="cks-1234567890abcdef0")
    assert error_of(excinfo)[0] == "UnsupportedOperationException"


@pytest.mark.parametrize(
    ("target", "body", "expected"),
    [
        ("Encrypt", {"KeyId": 5, "Plaintext": "eA=="}, "SerializationException"),
        ("Encrypt", {"KeyId": "KEY", "Plaintext": "not base64!"}, "SerializationException"),
        ("Encrypt", {"KeyId": "KEY"}, "ValidationException"),
        ("Encrypt", {"KeyId": "", "Plaintext": "eA=="}, "ValidationException"),
        ("Encrypt", {"KeyId": "KEY", "Plaintext": "eA==", "EncryptionContext": {"a": 1}}, "SerializationException"),
        ("Encrypt", {"KeyId": "KEY", "Plaintext": "eA==", "EncryptionContext": []}, "SerializationException"),
        ("Encrypt", {"KeyId": "KEY", "Plaintext": "eA==", "GrantTokens": ["t"] * 11}, "ValidationException"),
        ("Encrypt", {"KeyId": "KEY", "Plaintext": "eA==", "DryRun": "yes"}, "SerializationException"),
        ("Decrypt", {"CiphertextBlob": b64(b"x" * 6145)}, "ValidationException"),
        ("Decrypt", {"CiphertextBlob": "eA==", "Recipient": "doc"}, "SerializationException"),
        ("Decrypt", {"CiphertextBlob": "eA==", "Recipient": {}}, "ValidationException"),
        ("GenerateRandom", {"NumberOfBytes": 0}, "ValidationException"),
        ("GenerateRandom", {"NumberOfBytes": True}, "SerializationException"),
        ("GenerateRandom", {"NumberOfBytes": "8"}, "SerializationException"),
        ("GenerateRandom", {}, "ValidationException"),
        ("GenerateDataKey", {"KeyId": "KEY"}, "ValidationException"),
        ("GenerateDataKey", {"KeyId": "KEY", "KeySpec": "AES_512"}, "ValidationException"),
        ("ListKeys", {"Limit": 1001}, "ValidationException"),
        ("ListAliases", {"Limit": 0}, "ValidationException"),
        ("CreateKey", {"Description": "d" * 8193}, "ValidationException"),
        ("CreateAlias", {"AliasName": "alias/" + "a" * 251, "TargetKeyId": "KEY"}, "ValidationException"),
        ("PutKeyPolicy", {"KeyId": "KEY"}, "ValidationException"),
    ],
)
def test_what_boto3_would_not_send_is_refused_by_the_server(
    kms: LocalKms, client: Any, target: str, body: dict[str, Any], expected: str
) -> None:
    key = client.create_key()["KeyMetadata"]["KeyId"]
    text = json.dumps(body).replace('"KEY"', json.dumps(key))
    status, answer, _ = raw(kms, text.encode(), target=f"TrentService.{target}")
    assert (status, answer["__type"]) == (400, expected), answer


# --------------------------------------------------------------------------- the protocol


@pytest.mark.parametrize(
    ("body", "target", "method", "headers", "expected"),
    [
        (b"{not json", "TrentService.ListKeys", "POST", {}, "SerializationException"),
        (b"[1, 2]", "TrentService.ListKeys", "POST", {}, "SerializationException"),
        (b'{"Limit": NaN}', "TrentService.ListKeys", "POST", {}, "SerializationException"),
        (b"\xff\xfe", "TrentService.ListKeys", "POST", {}, "SerializationException"),
        (b"[" * 100_000, "TrentService.ListKeys", "POST", {}, "SerializationException"),
        (b"{}", "TrentService.CreateGrant", "POST", {}, "UnknownOperationException"),
        (b"{}", "TrentService.", "POST", {}, "UnknownOperationException"),
        (b"{}", "DynamoDB_20120810.ListTables", "POST", {}, "UnknownOperationException"),
        (b"{}", None, "POST", {}, "UnknownOperationException"),
        (b"", "TrentService.ListKeys", "GET", {}, "UnknownOperationException"),
        (b"x" * (1 << 20), "TrentService.ListKeys", "POST", {}, "ValidationException"),
        (b"x" * (MAX_BODY + 1), "TrentService.ListKeys", "POST", {}, "ValidationException"),
        (b"x" * (9 << 20), "TrentService.ListKeys", "POST", {}, "ValidationException"),
    ],
    ids=[
        "malformed JSON",
        "not an object",
        "NaN",
        "not UTF-8",
        "nested too deep",
        "unsupported operation",
        "empty operation",
        "another service",
        "no target",
        "GET",
        "1 MiB body",
        "MAX_BODY + 1",
        "9 MiB body (not drained)",
    ],
)
def test_bad_requests_get_a_kms_shaped_400_and_the_server_keeps_serving(
    kms: LocalKms, client: Any, body: bytes, target: str | None, method: str, headers: dict[str, str], expected: str
) -> None:
    try:
        status, answer, response_headers = raw(kms, body, target=target, method=method, headers=headers)
    except (ConnectionResetError, BrokenPipeError):
        # A body past the drain limit: the server answers and closes without reading it all.
        assert len(body) > 8 << 20
    else:
        assert status == 400
        assert set(answer) == {"__type", "message"} and answer["__type"] == expected
        assert response_headers["Content-Type"] == "application/x-amz-json-1.1"
        assert response_headers["x-amzn-RequestId"]
    assert "Keys" in client.list_keys()


def test_a_chunked_body_over_the_limit_is_refused(kms: LocalKms, client: Any) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(MAX_BODY // 65536 + 2):
            yield b"x" * 65536

    host, port = kms.endpoint_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request(
            "POST", "/", body=chunks(), headers={"X-Amz-Target": "TrentService.ListKeys"}, encode_chunked=True
        )
        response = connection.getresponse()
        assert response.status == 400
        assert json.loads(response.read())["__type"] == "ValidationException"
    except (ConnectionResetError, BrokenPipeError):
        pass  # answered before the whole body was sent
    finally:
        connection.close()
    assert "Keys" in client.list_keys()


def test_a_bad_content_length_is_refused(kms: LocalKms) -> None:
    status, answer, _ = raw(kms, b"{}", headers={"Content-Length": "two"})
    assert (status, answer["__type"]) == (400, "ValidationException")


def test_concurrent_clients_share_the_state_safely(kms: LocalKms) -> None:
    key = kms.client().create_key()["KeyMetadata"]["KeyId"]
    failures: list[BaseException] = []

    def work(number: int) -> None:
        local = kms.client()
        try:
            for round_ in range(10):
                plaintext = f"{number}/{round_}".encode()
                blob = local.encrypt(KeyId=key, Plaintext=plaintext)["CiphertextBlob"]
                assert local.decrypt(CiphertextBlob=blob)["Plaintext"] == plaintext
        except BaseException as error:  # collected, and re-raised by the main thread
            failures.append(error)

    threads = [threading.Thread(target=work, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures


# --------------------------------------------------------------------------- state


def test_a_restart_on_the_same_db_decrypts_old_ciphertexts(tmp_path: Path) -> None:
    db = tmp_path / "kms.sqlite"
    with LocalKms(db=db) as kms:
        client = kms.client()
        key = client.create_key()["KeyMetadata"]["KeyId"]
        client.create_alias(AliasName="alias/kept", TargetKeyId=key)
        blob = client.encrypt(KeyId="alias/kept", Plaintext=b"survives", EncryptionContext={"c": "1"})["CiphertextBlob"]
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    with LocalKms(db=db) as kms:
        client = kms.client()
        assert client.decrypt(CiphertextBlob=blob, EncryptionContext={"c": "1"})["Plaintext"] == b"survives"
        assert client.describe_key(KeyId="alias/kept")["KeyMetadata"]["KeyId"] == key
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_db_of_another_account_or_not_sqlite_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "kms.sqlite"
    with LocalKms(db=db):
        pass
    with pytest.raises(ConfigurationError, match="account"):
        KmsServer(db=db, port=0, account="111122223333")
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database" * 100)
    with pytest.raises(ConfigurationError, match="not a usable SQLite database"):
        KmsServer(db=junk, port=0)
    with pytest.raises(ConfigurationError, match="cannot open the database"):
        KmsServer(db=tmp_path / "missing" / "kms.sqlite", port=0)


def test_configuration_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="without credentials"):
        KmsServer(host="0.0.0.0", port=0)  # refused, which is the point
    with pytest.raises(ConfigurationError, match="12 digits"):
        KmsServer(port=0, account="12")
    with pytest.raises(ConfigurationError, match="region"):
        KmsServer(port=0, region="moon")
    with pytest.raises(ConfigurationError, match="ARN"):
        KmsServer(port=0, principal="root")
    with pytest.raises(ConfigurationError, match="audit log"):
        KmsServer(port=0, audit_log=tmp_path / "missing" / "audit.jsonl")
    with LocalKms() as kms, pytest.raises(ConfigurationError, match="cannot listen"):
        KmsServer(port=int(kms.endpoint_url.rsplit(":", 1)[1]))


# --------------------------------------------------------------------------- SigV4


CREDENTIALS = (
    Credential("AKIDPARENT", "parent-secret", ROLE),
    Credential("AKIDOTHER", "other-secret", f"arn:aws:iam::{ACCOUNT}:role/other"),
)


@pytest.fixture(scope="module")
def signed_kms(enclave: TestEnclave) -> Iterator[LocalKms]:
    with LocalKms(roots=enclave.roots, credentials=CREDENTIALS) as server:
        yield server


def test_with_credentials_the_signature_is_checked_and_the_principal_is_the_credentials(
    signed_kms: LocalKms, enclave: TestEnclave, enclave_key: EnclaveKey
) -> None:
    # The role may decrypt only from the enclave; the account's root (no credentials here) administers nothing.
    admin = {
        "Sid": "Role admin",
        "Effect": "Allow",
        "Principal": {"AWS": ROLE},
        "Action": ["kms:Encrypt", "kms:PutKeyPolicy"],
        "Resource": "*",
    }
    policy = json.loads(user_guide_policy(dict(enclave.pcrs), principal=ROLE))
    policy["Statement"].append(admin)
    parent = signed_kms.client()
    key = parent.create_key(Policy=json.dumps(policy))["KeyMetadata"]["KeyId"]
    blob = parent.encrypt(KeyId=key, Plaintext=b"for the enclave")["CiphertextBlob"]
    document = enclave.attest(public_key=enclave_key.public_key_der)
    answer = parent.decrypt(CiphertextBlob=blob, Recipient=recipient(document))
    assert enclave_key.open(answer["CiphertextForRecipient"]) == b"for the enclave"
    other = signed_kms.client(access_key_id="AKIDOTHER")
    with pytest.raises(ClientError) as excinfo:
        other.decrypt(CiphertextBlob=blob, Recipient=recipient(document))
    code, message = error_of(excinfo)
    assert code == "AccessDeniedException" and "role/other" in message


@pytest.mark.parametrize(
    ("access_key", "secret", "region", "expected"),
    [
        ("AKIDPARENT", "wrong-secret", "us-east-1", "InvalidSignatureException"),
        ("AKIDUNKNOWN", "parent-secret", "us-east-1", "UnrecognizedClientException"),
        ("AKIDPARENT", "parent-secret", "eu-west-1", "InvalidSignatureException"),
    ],
)
def test_a_bad_signature_is_rejected(
    signed_kms: LocalKms, access_key: str, secret: str, region: str, expected: str
) -> None:
    client = boto3.client(
        "kms",
        endpoint_url=signed_kms.endpoint_url,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret,
    )
    with pytest.raises(ClientError) as excinfo:
        client.list_keys()
    assert error_of(excinfo)[0] == expected


def _signed_headers(kms: LocalKms, body: bytes, *, when: datetime | None = None) -> dict[str, str]:
    request = AWSRequest(
        method="POST",
        url=kms.endpoint_url + "/",
        data=body,
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.ListKeys"},
    )
    signer = SigV4Auth(Credentials("AKIDPARENT", "parent-secret"), "kms", "us-east-1")
    if when is None:
        signer.add_auth(request)
    else:
        request.context["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")
        request.headers["X-Amz-Date"] = request.context["timestamp"]
        canonical = signer.canonical_request(request)
        signature = signer.signature(signer.string_to_sign(request, canonical), request)
        request.headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={signer.scope(request)}, "
            f"SignedHeaders={signer.signed_headers(signer.headers_to_sign(request))}, Signature={signature}"
        )
    return {name: value for name, value in request.headers.items() if name.lower() != "host"}


def test_raw_signatures_tampered_expired_missing_and_malformed(signed_kms: LocalKms) -> None:
    body = b'{"Limit": 5}'
    status, answer, _ = raw(signed_kms, body, headers=_signed_headers(signed_kms, body))
    assert status == 200 and "Keys" in answer
    cases = {
        "InvalidSignatureException": [
            (b'{"Limit": 6}', _signed_headers(signed_kms, body)),  # the body changed after signing
            (body, _signed_headers(signed_kms, body, when=datetime.now(timezone.utc) - timedelta(minutes=20))),
        ],
        "MissingAuthenticationTokenException": [(body, {})],
        "IncompleteSignatureException": [
            (body, {"Authorization": "Basic dXNlcjpwYXNz"}),
            (body, {**_signed_headers(signed_kms, body), "X-Amz-Date": "yesterday"}),
        ],
    }
    for expected, requests in cases.items():
        for sent_body, headers in requests:
            sent = {name: value for name, value in headers.items() if name != "X-Amz-Target"}
            status, answer, _ = raw(signed_kms, sent_body, headers=sent)
            assert (status, answer["__type"]) == (400, expected), sent


def test_load_credentials(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    path.write_text(json.dumps({"AKID": {"secret_access_key": "sekrit", "principal": ROLE}}))
    assert load_credentials(path) == (Credential("AKID", "sekrit", ROLE),)
    assert "sekrit" not in repr(load_credentials(path))
    for content, message in [
        ("not json", "not JSON"),
        ("{}", "must be"),
        ('{"AKID": "s"}', "must be"),
        ('{"AKID": {"secret_access_key": "s", "principal": "role"}}', "not an ARN"),
    ]:
        path.write_text(content)
        with pytest.raises(ConfigurationError, match=message):
            load_credentials(path)
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_credentials(tmp_path / "missing.json")
