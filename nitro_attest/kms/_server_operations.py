"""The operations of the local KMS: AWS's field names, validation and limits, key policies and ``Recipient``.

Each operation takes the decoded JSON body and the caller's principal and
returns the JSON answer, or raises :class:`KmsError` (``__type`` and
``message``, as KMS answers). What KMS would keep to itself (which statement
or condition denied, why a document was refused) goes into the request's
audit details, never into the answer.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .._verify import verify
from ..document import VerifiedDocument
from ..errors import NitroAttestError
from ..policy import Policy
from ..recipient import RecipientError, seal
from ._evaluation import evaluate, evaluate_without_recipient
from ._key_policy import KeyPolicy, KmsPolicyError, Statement, parse_key_policy
from ._server_store import Store, StoredAlias, StoredKey

#: The ``__type`` of every error the local KMS answers (HTTP 400), as AWS names them.
ERROR_TYPES = frozenset(
    {
        "AccessDeniedException",
        "AlreadyExistsException",
        "DisabledException",
        "DryRunOperationException",
        "IncorrectKeyException",
        "IncompleteSignatureException",
        "InvalidCiphertextException",
        "InvalidKeyUsageException",
        "InvalidSignatureException",
        "KMSInvalidStateException",
        "MalformedPolicyDocumentException",
        "MissingAuthenticationTokenException",
        "NotFoundException",
        "SerializationException",
        "UnknownOperationException",
        "UnrecognizedClientException",
        "UnsupportedOperationException",
        "ValidationException",
    }
)

MAX_PLAINTEXT = 4096  # Encrypt's Plaintext, KMS's limit
MAX_CIPHERTEXT = 6144  # CiphertextBlob, KMS's limit
MAX_DATA_KEY = 1024  # NumberOfBytes of GenerateDataKey and GenerateRandom
MAX_ATTESTATION_DOCUMENT = 262144  # Recipient.AttestationDocument, KMS's limit
MAX_POLICY = 32768
MAX_DESCRIPTION = 8192
MAX_KEY_ID = 2048
MAX_ALIAS = 256
MAX_CONTEXT = 8192  # the EncryptionContext's keys and values, UTF-8, together
MAX_GRANT_TOKENS = 10
MAX_LIST = 1000
KEY_ENCRYPTION_ALGORITHM = "RSAES_OAEP_SHA_256"
SYMMETRIC_DEFAULT = "SYMMETRIC_DEFAULT"

_BLOB_VERSION = b"\x01"
_KEY_ID_SIZE = 16  # the key's UUID, so that Decrypt finds the key without KeyId, as KMS's blobs allow
_NONCE_SIZE = 12
_TAG_SIZE = 16
_HEADER_SIZE = len(_BLOB_VERSION) + _KEY_ID_SIZE
# Binds each blob to this server's format: a blob of another format never decrypts by accident.
_AAD_LABEL = b"nitro_attest local KMS ciphertext v1\x00"
_ALIAS_NAME = re.compile(r"alias/[a-zA-Z0-9/_-]+")
_KEY_ARN = re.compile(r"arn:aws:kms:(?P<region>[^:]+):(?P<account>[0-9]{12}):(?P<resource>(?:key|alias)/.+)")
_DATA_KEY_SPECS = {"AES_256": 32, "AES_128": 16}
_DAY = 86400.0


class KmsError(Exception):
    """What KMS answers with HTTP 400: ``{"__type": type_, "message": message}``."""

    def __init__(self, type_: str, message: str) -> None:
        assert type_ in ERROR_TYPES, type_  # a new type must be listed, so that the documentation lists it
        super().__init__(f"{type_}: {message}")
        self.type = type_
        self.message = message


def _validation(message: str) -> KmsError:
    return KmsError("ValidationException", f"1 validation error detected: {message}")


def _serialization(message: str) -> KmsError:
    return KmsError("SerializationException", message)


@dataclass(frozen=True)
class Settings:
    """What the server is configured with: ARNs' account and region, and the roots documents must chain to."""

    account: str
    region: str
    roots: tuple[x509.Certificate, ...] | None  # None: the AWS root


class _Body:
    """The request's members, read with KMS's types and constraints; JSON null is an absent member."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self._raw = raw

    def _get(self, name: str, kind: type, what: str) -> Any:
        value = self._raw.get(name)
        # bool is an int in Python, never in JSON's types as KMS reads them.
        if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
            raise _serialization(f"{name} must be {what}, not {type(value).__name__}")
        return value

    def string(self, name: str, *, required: bool = False, high: int = MAX_KEY_ID, low: int = 1) -> str | None:
        value: str | None = self._get(name, str, "a string")
        if value is None:
            if required:
                raise _validation(f"Value null at '{name}' failed to satisfy constraint: Member must not be null")
            return None
        if not low <= len(value) <= high:
            raise _validation(
                f"Value at '{name}' failed to satisfy constraint: Member must have length between {low} and {high}"
            )
        return value

    def required_string(self, name: str, *, high: int = MAX_KEY_ID) -> str:
        value = self.string(name, required=True, high=high)
        assert value is not None  # required
        return value

    def blob(self, name: str, *, high: int, required: bool = True) -> bytes | None:
        text: str | None = self._get(name, str, "a base64 string")
        if text is None:
            if required:
                raise _validation(f"Value null at '{name}' failed to satisfy constraint: Member must not be null")
            return None
        if len(text) > 4 * (high // 3 + 1):  # refused before it is decoded
            raise _validation(f"Value at '{name}' failed to satisfy constraint: Member must have length <= {high}")
        if not text.isascii():  # b64decode raises a bare ValueError for a str with non-ASCII characters
            raise _serialization(f"{name} is not valid base64")
        try:
            value = base64.b64decode(text, validate=True)
        except binascii.Error:
            raise _serialization(f"{name} is not valid base64") from None
        if not 1 <= len(value) <= high:
            raise _validation(
                f"Value at '{name}' failed to satisfy constraint: Member must have length between 1 and {high}"
            )
        return value

    def integer(self, name: str, *, low: int, high: int) -> int | None:
        value: int | None = self._get(name, int, "an integer")
        if value is not None and not low <= value <= high:
            raise _validation(
                f"Value '{value}' at '{name}' failed to satisfy constraint: Member must be between {low} and {high}"
            )
        return value

    def boolean(self, name: str) -> bool:
        return bool(self._get(name, bool, "a boolean"))

    def choice(self, name: str, allowed: tuple[str, ...], default: str | None) -> str | None:
        value = self.string(name, high=64)
        if value is None:
            return default
        if value not in allowed:
            raise _validation(
                f"Value '{value}' at '{name}' failed to satisfy constraint: Member must satisfy enum value set: "
                f"[{', '.join(allowed)}]"
            )
        return value

    def context(self, name: str) -> dict[str, str]:
        value = self._get(name, dict, "a map of strings")
        if value is None:
            return {}
        size = 0
        for key, item in value.items():
            if not isinstance(item, str):
                raise _serialization(f"{name}: the value of {key!r} must be a string, not {type(item).__name__}")
            size += len(key.encode("utf-8", "surrogatepass")) + len(item.encode("utf-8", "surrogatepass"))
        if size > MAX_CONTEXT:
            raise _validation(f"{name} is {size} bytes of keys and values, over {MAX_CONTEXT}")
        return dict(value)

    def grant_tokens(self) -> None:
        tokens = self._get("GrantTokens", list, "a list of strings")
        if tokens is not None and (len(tokens) > MAX_GRANT_TOKENS or not all(isinstance(t, str) for t in tokens)):
            raise _validation(f"GrantTokens must be at most {MAX_GRANT_TOKENS} strings")

    def mapping(self, name: str) -> Mapping[str, Any] | None:
        value: Mapping[str, Any] | None = self._get(name, dict, "an object")
        return value


def _canonical_context(context: Mapping[str, str]) -> bytes:
    # Sorted, with fixed separators: the same context always gives the same associated data.
    return json.dumps(sorted(context.items()), separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", "surrogatepass"
    )


def _seal_blob(key: StoredKey, plaintext: bytes, context: Mapping[str, str]) -> bytes:
    header = _BLOB_VERSION + uuid.UUID(key.id).bytes
    nonce = os.urandom(_NONCE_SIZE)
    sealed = AESGCM(key.material).encrypt(nonce, plaintext, _AAD_LABEL + header + _canonical_context(context))
    return header + nonce + sealed


def _blob_key_id(blob: bytes) -> str:
    if len(blob) <= _HEADER_SIZE + _NONCE_SIZE + _TAG_SIZE or blob[:1] != _BLOB_VERSION:
        raise KmsError("InvalidCiphertextException", "the ciphertext is not a ciphertext of this KMS")
    return str(uuid.UUID(bytes=blob[1:_HEADER_SIZE]))


def _open_blob(key: StoredKey, blob: bytes, context: Mapping[str, str]) -> bytes:
    header, nonce, sealed = (
        blob[:_HEADER_SIZE],
        blob[_HEADER_SIZE : _HEADER_SIZE + _NONCE_SIZE],
        blob[_HEADER_SIZE + _NONCE_SIZE :],
    )
    try:
        return AESGCM(key.material).decrypt(nonce, sealed, _AAD_LABEL + header + _canonical_context(context))
    except InvalidTag:
        # KMS's answer for a tampered blob and for a wrong EncryptionContext alike.
        raise KmsError("InvalidCiphertextException", "the ciphertext or its encryption context is invalid") from None


@functools.lru_cache(maxsize=256)
def _parsed(policy: str) -> KeyPolicy:
    return parse_key_policy(policy)  # stored policies were validated when they were put


#: The actions that reach a key's plaintext without an attestation document: Decrypt itself, and
#: ReEncryptFrom, which moves the ciphertext to a key whose policy may not ask for one.
UNATTESTED_GAP_ACTIONS = ("kms:Decrypt", "kms:ReEncryptFrom")


def unattested_statements(policy: KeyPolicy, action: str) -> list[Statement]:
    """The Allow statements that let a principal do ``action`` without any attestation condition.

    None when a Deny on ``action`` applies to a request without attestation
    keys (the "deny unless PCRn is ..." shape closes the gap for every Allow).
    A Deny that is false when the keys are absent (a blocklist: "deny when
    PCR0 is this revoked image") or depends on what cannot be evaluated
    closes nothing.
    """
    if any(
        statement.effect == "Deny" and _denies_without_recipient(statement, action) for statement in policy.statements
    ):
        return []
    return [
        statement
        for statement in policy.statements
        if statement.effect == "Allow"
        and statement.matches_action(action)
        and not any(condition.pcr is not None for condition in statement.conditions)
    ]


def _denies_without_recipient(deny: Statement, action: str) -> bool:
    # Judged alone, so that the decision's deciding statement is this Deny exactly when it applies for sure.
    decision = evaluate_without_recipient(KeyPolicy(None, None, (deny,)), action=action, principal=None)
    return decision.deciding_statement is deny


Details = dict[str, Any]


class Operations:
    """The KMS operations over one :class:`Store`; ``warn`` receives the PutKeyPolicy warnings."""

    def __init__(self, store: Store, settings: Settings, warn: Callable[[str, Details], None]) -> None:
        self._store = store
        self._settings = settings
        self._warn = warn
        self._handlers: Mapping[str, Callable[[_Body, str, Details], dict[str, Any]]] = {
            "CreateKey": self._create_key,
            "DescribeKey": self._describe_key,
            "ListKeys": self._list_keys,
            "CreateAlias": self._create_alias,
            "ListAliases": self._list_aliases,
            "PutKeyPolicy": self._put_key_policy,
            "GetKeyPolicy": self._get_key_policy,
            "EnableKey": self._enable_key,
            "DisableKey": self._disable_key,
            "ScheduleKeyDeletion": self._schedule_key_deletion,
            "Encrypt": self._encrypt,
            "Decrypt": self._decrypt,
            "ReEncrypt": self._re_encrypt,
            "GenerateDataKey": self._generate_data_key,
            "GenerateDataKeyWithoutPlaintext": self._generate_data_key_without_plaintext,
            "GenerateRandom": self._generate_random,
        }

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self._handlers)

    def call(self, operation: str, body: Mapping[str, Any], principal: str, details: Details) -> dict[str, Any]:
        """Runs ``operation`` (one of :attr:`names`) for ``principal``; ``details`` collects what the audit log says."""
        return self._handlers[operation](_Body(body), principal, details)

    # ------------------------------------------------------------------ keys, names and policies

    def _arn(self, key_id: str) -> str:
        return f"arn:aws:kms:{self._settings.region}:{self._settings.account}:key/{key_id}"

    def _alias_arn(self, name: str) -> str:
        return f"arn:aws:kms:{self._settings.region}:{self._settings.account}:{name}"

    def _default_policy(self) -> str:
        root = f"arn:aws:iam::{self._settings.account}:root"
        statement = {
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            "Action": "kms:*",
            "Resource": "*",
        }
        return json.dumps({"Version": "2012-10-17", "Id": "key-default-1", "Statement": [statement]}, indent=2)

    def _find(self, key_id: str, details: Details) -> StoredKey:
        """The key ``key_id`` names: a key id, a key ARN, an alias name or an alias ARN."""
        not_found = KmsError("NotFoundException", f"Key '{key_id}' does not exist")
        name = key_id
        arn = _KEY_ARN.fullmatch(key_id)
        if arn is not None:
            if (arn["region"], arn["account"]) != (self._settings.region, self._settings.account):
                raise not_found
            name = arn["resource"].removeprefix("key/")
        if name.startswith("alias/"):
            alias = self._store.alias(name)
            if alias is None:
                raise KmsError("NotFoundException", f"Alias {self._alias_arn(name)} is not found.")
            name = alias.key_id
        try:
            name = str(uuid.UUID(name))
        except ValueError:
            raise KmsError("NotFoundException", f"Invalid keyId '{key_id}'") from None
        key = self._store.key(name, time.time())
        if key is None:
            raise not_found
        details["key"] = self._arn(key.id)
        return key

    def _authorize(
        self, key: StoredKey, action: str, principal: str, details: Details, document: VerifiedDocument | None = None
    ) -> None:
        policy = _parsed(key.policy)
        if document is None:
            decision = evaluate_without_recipient(policy, action=action, principal=principal)
        else:
            decision = evaluate(policy, document, action=action, principal=principal)
        if decision.allowed:
            return
        statement = decision.deciding_statement
        details["denied"] = {
            "action": action,
            "statement": None if statement is None else statement.label,
            "reasons": list(decision.reasons),
            "unevaluated": list(decision.unevaluated),
        }
        explicit = statement is not None and statement.effect == "Deny"
        why = (
            "with an explicit deny in a resource-based policy"
            if explicit
            else f"because no resource-based policy allows the {action} action"
        )
        raise KmsError(
            "AccessDeniedException",
            f"User: {principal} is not authorized to perform: {action} on resource: {self._arn(key.id)} {why}",
        )

    def _usable(self, key: StoredKey) -> None:
        """Refuses a cryptographic operation on a key that is not enabled, as KMS does."""
        if key.state == "Disabled":
            raise KmsError("DisabledException", f"{self._arn(key.id)} is disabled.")
        if key.state == "PendingDeletion":
            raise KmsError("KMSInvalidStateException", f"{self._arn(key.id)} is pending deletion.")

    def _not_pending_deletion(self, key: StoredKey) -> None:
        if key.state == "PendingDeletion":
            raise KmsError("KMSInvalidStateException", f"{self._arn(key.id)} is pending deletion.")

    def _policy(self, text: str, details: Details) -> KeyPolicy:
        try:
            policy = parse_key_policy(text)
        except KmsPolicyError as error:
            details["policy_error"] = str(error)
            raise KmsError("MalformedPolicyDocumentException", f"The new key policy is malformed: {error}") from None
        return policy

    def _warn_unattested(self, key_id: str, policy: KeyPolicy) -> None:
        gaps = {action: unattested_statements(policy, action) for action in UNATTESTED_GAP_ACTIONS}
        for statement in policy.statements:
            actions = [action for action, statements in gaps.items() if statement in statements]
            if not actions:
                continue
            principals = ", ".join(value if kind == "*" else f"{kind}:{value}" for kind, value in statement.principals)
            element = "NotPrincipal" if statement.not_principal else "Principal"
            moved = (
                " (kms:ReEncryptFrom moves the ciphertext to a key whose policy need not ask for attestation)"
                if "kms:ReEncryptFrom" in actions
                else ""
            )
            self._warn(
                f"the key policy of {self._arn(key_id)} lets {element} {principals} {' and '.join(actions)} without "
                f"any kms:RecipientAttestation condition ({statement.label}): it can decrypt outside any "
                f"enclave{moved}, and an account principal extends this to every role its IAM policies allow "
                "(an instance-role grant bypasses the PCRs)",
                {"key": self._arn(key_id), "statement": statement.label, "actions": actions},
            )

    def _metadata(self, key: StoredKey) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "AWSAccountId": self._settings.account,
            "KeyId": key.id,
            "Arn": self._arn(key.id),
            "CreationDate": key.created,
            "Enabled": key.state == "Enabled",
            "Description": key.description,
            "KeyUsage": "ENCRYPT_DECRYPT",
            "KeyState": key.state,
            "Origin": "AWS_KMS",
            "KeyManager": "CUSTOMER",
            "CustomerMasterKeySpec": SYMMETRIC_DEFAULT,
            "KeySpec": SYMMETRIC_DEFAULT,
            "EncryptionAlgorithms": [SYMMETRIC_DEFAULT],
            "MultiRegion": False,
        }
        if key.deletion_date is not None:
            metadata["DeletionDate"] = key.deletion_date
        return metadata

    # ------------------------------------------------------------------ Recipient

    def _recipient(self, body: _Body, details: Details) -> VerifiedDocument | None:
        recipient = body.mapping("Recipient")
        if recipient is None:
            return None
        fields = _Body(recipient)
        fields.choice("KeyEncryptionAlgorithm", (KEY_ENCRYPTION_ALGORITHM,), KEY_ENCRYPTION_ALGORITHM)
        data = fields.blob("AttestationDocument", high=MAX_ATTESTATION_DOCUMENT)
        assert data is not None  # required
        try:
            # KMS checks that the document is genuine and judges its PCRs by the key policy only:
            # debug-mode enclaves are evaluated like any other, and no age or nonce is required.
            document = verify(data, Policy.any_enclave(allow_debug=True), roots=self._settings.roots)
        except NitroAttestError as error:
            details["recipient_rejected"] = {"code": error.code, "message": error.message}
            raise KmsError("ValidationException", "The attestation document in Recipient is not valid.") from None
        details["recipient"] = {
            "module_id": document.module_id,
            "timestamp": document.timestamp.isoformat(),
            "pcr0": document.pcrs[0].hex() if 0 in document.pcrs else None,
        }
        if document.public_key is None:
            details["recipient_rejected"] = {"code": "recipient", "message": "the document has no public_key"}
            raise KmsError("ValidationException", "The attestation document in Recipient has no public key.")
        return document

    def _for_recipient(self, plaintext: bytes, document: VerifiedDocument, details: Details) -> bytes:
        try:
            return seal(plaintext, document)
        except RecipientError as error:
            details["recipient_rejected"] = {"code": error.code, "message": error.message}
            raise KmsError(
                "ValidationException", "The public key in the attestation document is not a usable RSA key."
            ) from None

    def _dry_run(self, body: _Body) -> None:
        if body.boolean("DryRun"):
            raise KmsError("DryRunOperationException", "The request would have succeeded, but the DryRun flag is set.")

    # ------------------------------------------------------------------ operations

    def _create_key(self, body: _Body, principal: str, details: Details) -> dict[str, Any]:
        description = body.string("Description", low=0, high=MAX_DESCRIPTION) or ""
        for name, allowed in (
            ("KeyUsage", "ENCRYPT_DECRYPT"),
            ("KeySpec", SYMMETRIC_DEFAULT),
            ("CustomerMasterKeySpec", SYMMETRIC_DEFAULT),
            ("Origin", "AWS_KMS"),
        ):
            value = body.string(name, high=64)
            if value is not None and value != allowed:
                raise KmsError(
                    "UnsupportedOperationException",
                    f"{name} {value} is not supported by this local KMS: it makes {allowed} keys only",
                )
        if body.boolean("MultiRegion"):
            raise KmsError("UnsupportedOperationException", "multi-Region keys are not supported by this local KMS")
        body.boolean("BypassPolicyLockoutSafetyCheck")
        text = body.string("Policy", high=MAX_POLICY)
        policy = None if text is None else self._policy(text, details)
        key = StoredKey(
            id=str(uuid.uuid4()),
            material=AESGCM.generate_key(bit_length=256),
            created=time.time(),
            description=description,
            state="Enabled",
            deletion_date=None,
            policy=self._default_policy() if text is None else text,
        )
        self._store.add_key(key)
        details["key"] = self._arn(key.id)
        if policy is not None:
            self._warn_unattested(key.id, policy)
        return {"KeyMetadata": self._metadata(key)}

    def _describe_key(self, body: _Body, principal: str, details: Details) -> dict[str, Any]:
        body.grant_tokens()
        key = self._find(body.required_string("KeyId"), details)
        self._authorize(key, "kms:DescribeKey", principal, details)
        return {"KeyMetadata": self._metadata(key)}

    def _list_keys(self, body: _Body, principal: str, details: Details) -> dict[str, Any]:
        limit = body.integer("Limit", low=1, high=MAX_LIST) or 100
        marker = body.string("Marker", high=MAX_KEY_ID) or ""
        ids = self._store.key_ids(marker, limit + 1)
        answer: dict[str, Any] = {
            "Keys": [{"KeyId": key_id, "KeyArn": self._arn(key_id)} for key_id in ids[:limit]],
            "Truncated": len(ids) > limit,
        }
        if len(ids) > limit:
            answer["NextMarker"] = ids[limit - 1]
        return answer

    def _create_alias(self, body: _Body, principal: str, details: Details) -> dict[str, Any]:
        name = body.required_string("AliasName", high=MAX_ALIAS)
        if not _ALIAS_NAME.fullmatch(name):
            raise _validation(
                f"Value '{name}' at 'aliasName' failed to satisfy constraint: Member must satisfy regular "
                "expression pattern: alias/[a-zA-Z0-9/_-]+"
            )
        if name.startswith("alias/aws/"):
            raise _validation("Alias names beginning with alias/aws/ are reserved for AWS managed keys")
        target = body.required_string("TargetKeyId")
        if target.startswith("alias/") or ":alias/" in target:
            raise _validation("TargetKeyId must be a key ID or key ARN, not an alias")
        key = self._find(target, details)
        self._authorize(key, "kms:CreateAlias", principal, details)
        self._not_pending_deletion(key)
        if not self._store.add_alias(StoredAlias(name=name, key_id=key.id, created=time.time())):
            raise KmsError("AlreadyExistsException", f"An alias with the name {self._alias_arn(name)} already exists")
        return {}

    def _list_aliases(self, body: _Body, principal: str, details: Details) -> dict[str, Any]:
        limit = body.integer("Limit", low=1, high=100) or 50
        marker = body.string("Marker", high=MAX_KEY_ID) or ""
        key_id = body.string("KeyId")
        target = None
        if key_id is not None:
            key = self._find(key_id, details)
            self._authorize(key, "kms:ListAliases", principal, details)
            target = key.id
        aliases = self._store.aliases(marker, limit + 1, target)
        answer: dict[str, Any] = {
            "Aliases": [
                {
                    "AliasName": alias.name,
                    "AliasArn": self._alias_arn(alias.name),
                    "TargetKeyId": alias.key_id,
                    "CreationDate": alias.created,
                    "LastUpdatedDate": alias.created,
                }
                for alias in aliases[:limit]
            ],
            "Truncated": len(aliases) > limit,
        }
        if len(aliases) > limit:
            answer["NextMarker"] = aliases[limit - 1].name
        return answer

    def _policy_name(self, body: _Body) -> None:
        name = body.string("PolicyName", high=128)
        if name is not None and name != "default":
            raise KmsError("NotFoundException", f"Policy {name} does not exist: the only key policy is 'default'")

    def _put_key_policy(self, body: _Body, principal: str, details: Details) -> dict[str, Any]:
        key = self._find(body.required_string("KeyId"), details)
        self._policy_name(body)
        text = body.required_string("Policy", high=MAX_POLICY)
        body.boolean("BypassPolicyLockoutSafetyCheck")
        self._authorize(key, "kms:PutKeyPolicy", principal, details)
        policy = self._policy(text, details)
        self._store.set_policy(key.id, text)
        self._warn_unattested(key.id, policy)
        return {}

    def _get_key_policy(self, body: _Body, principal: str, details: Details) -> dict[str, Any]:
        key = self._find(body.required_string("KeyId"), details)
        self._policy_name(body)
        self._authorize(key, "kms:GetKeyPolicy", principal, details)
        return {"Policy": key.policy, "PolicyName": "default"}

    def _set_state(self, body: _Body, principal: str, details: Details, *, enabled: bool) -> dict[str, Any]:
        key = self._find(body.required_string("KeyId"), details)
        self._authorize(key, "kms:EnableKey" if enabled else "kms:DisableKey", principal, details)
        self._not_pending_deletion(key)
        self._store.update_key(key.id, state="Enabled" if enabled else "Disabled", deletion_date=None)
        return {}

    def _enable_key(self, body: _Body, principal: str, details: Details) -> dict[str, Any]:
        return self._set_state(body, principal, details, enabled=True)

    def _disable_key(self, body: _Body, principal: str, details: Details) -> dict[str, Any]:
        return self._set_state(body, principal, details, enabled=False)

    def _schedule_key_deletion(self, body: _Body, principal: str, details: Details) -> dict[str, Any]:
        key = self._find(body.required_string("KeyId"), details)
        days = body.integer("PendingWindowInDays", low=7, high=30) or 30
        self._authorize(key, "kms:ScheduleKeyDeletion", principal, details)
        self._not_pending_deletion(key)
        deletion_date = time.time() + days * _DAY
        self._store.update_key(key.id, state="PendingDeletion", deletion_date=deletion_date)
        return {
            "KeyId": self._arn(key.id),
            "DeletionDate": deletion_date,
            "KeyState": "PendingDeletion",
            "PendingWindowInDays": days,
        }

    def _algorithm(self, body: _Body, name: str) -> str:
        algorithm = body.choice(
            name, (SYMMETRIC_DEFAULT, "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "SM2PKE"), SYMMETRIC_DEFAULT
        )
        if algorithm != SYMMETRIC_DEFAULT:
            raise KmsError(
                "InvalidKeyUsageException", f"{name} {algorithm} is not supported by a SYMMETRIC_DEFAULT key"
            )
        return SYMMETRIC_DEFAULT

    def _encrypt(self, body: _Body, principal: str, details: Details) -> dict[str, Any]:
        key = self._find(body.required_string("KeyId"), details)
        plaintext = body.blob("Plaintext", high=MAX_PLAINTEXT)
        assert plaintext is not None  # required
        context = body.context("EncryptionContext")
        body.grant_tokens()
        algorithm = self._algorithm(body, "EncryptionAlgorithm")
        self._authorize(key, "kms:Encrypt", principal, details)
        self._usable(key)
        self._dry_run(body)
        return {
            "CiphertextBlob": _b64(_seal_blob(key, plaintext, context)),
            "KeyId": self._arn(key.id),
            "EncryptionAlgorithm": algorithm,
        }

    def _blob_key(self, blob: bytes, key_id: str | None, details: Details) -> StoredKey:
        """The key a ciphertext was made with; IncorrectKeyException when ``key_id`` names another."""
        embedded = _blob_key_id(blob)
        key = self._store.key(embedded, time.time())
        if key is None:
            raise KmsError("InvalidCiphertextException", "the ciphertext is not a ciphertext of this KMS")
        details["key"] = self._arn(key.id)
        if key_id is not None and self._find(key_id, {}).id != key.id:
            raise KmsError(
                "IncorrectKeyException", "The key ID in the request does not identify a KMS key that can decrypt it."
            )
        return key

    def _decrypt(self, body: _Body, principal: str, details: Details) -> dict[str, Any]:
        blob = body.blob("CiphertextBlob", high=MAX_CIPHERTEXT)
        assert blob is not None  # required
        context = body.context("EncryptionContext")
        body.grant_tokens()
        key_id = body.string("KeyId")
        algorithm = self._algorithm(body, "EncryptionAlgorithm")
        document = self._recipient(body, details)
        key = self._blob_key(blob, key_id, details)
        self._authorize(key, "kms:Decrypt", principal, details, document)
        self._usable(key)
        plaintext = _open_blob(key, blob, context)
        self._dry_run(body)
        answer: dict[str, Any] = {"KeyId": self._arn(key.id), "EncryptionAlgorithm": algorithm}
        if document is None:
            answer["Plaintext"] = _b64(plaintext)
        else:
            answer["CiphertextForRecipient"] = _b64(self._for_recipient(plaintext, document, details))
        return answer

    def _re_encrypt(self, body: _Body, principal: str, details: Details) -> dict[str, Any]:
        blob = body.blob("CiphertextBlob", high=MAX_CIPHERTEXT)
        assert blob is not None  # required
        source_context = body.context("SourceEncryptionContext")
        destination_context = body.context("DestinationEncryptionContext")
        source_algorithm = self._algorithm(body, "SourceEncryptionAlgorithm")
        destination_algorithm = self._algorithm(body, "DestinationEncryptionAlgorithm")
        body.grant_tokens()
        source = self._blob_key(blob, body.string("SourceKeyId"), details)
        destination = self._find(body.required_string("DestinationKeyId"), {})
        details["destination_key"] = self._arn(destination.id)
        self._authorize(source, "kms:ReEncryptFrom", principal, details)
        self._authorize(destination, "kms:ReEncryptTo", principal, details)
        self._usable(source)
        self._usable(destination)
        plaintext = _open_blob(source, blob, source_context)
        self._dry_run(body)
        return {
            "CiphertextBlob": _b64(_seal_blob(destination, plaintext, destination_context)),
            "SourceKeyId": self._arn(source.id),
            "KeyId": self._arn(destination.id),
            "SourceEncryptionAlgorithm": source_algorithm,
            "DestinationEncryptionAlgorithm": destination_algorithm,
        }

    def _data_key_size(self, body: _Body) -> int:
        size = body.integer("NumberOfBytes", low=1, high=MAX_DATA_KEY)
        spec = body.choice("KeySpec", tuple(_DATA_KEY_SPECS), None)
        if (size is None) == (spec is None):
            raise _validation("Specify either KeySpec or NumberOfBytes, but not both")
        return _DATA_KEY_SPECS[spec] if spec is not None else size or 0

    def _data_key(
        self, body: _Body, principal: str, details: Details, action: str
    ) -> tuple[StoredKey, bytes, bytes, VerifiedDocument | None]:
        key = self._find(body.required_string("KeyId"), details)
        context = body.context("EncryptionContext")
        size = self._data_key_size(body)
        body.grant_tokens()
        document = self._recipient(body, details) if action == "kms:GenerateDataKey" else None
        self._authorize(key, action, principal, details, document)
        self._usable(key)
        self._dry_run(body)
        plaintext = os.urandom(size)
        return key, plaintext, _seal_blob(key, plaintext, context), document

    def _generate_data_key(self, body: _Body, principal: str, details: Details) -> dict[str, Any]:
        key, plaintext, blob, document = self._data_key(body, principal, details, "kms:GenerateDataKey")
        answer = {"CiphertextBlob": _b64(blob), "KeyId": self._arn(key.id)}
        if document is None:
            answer["Plaintext"] = _b64(plaintext)
        else:
            answer["CiphertextForRecipient"] = _b64(self._for_recipient(plaintext, document, details))
        return answer

    def _generate_data_key_without_plaintext(self, body: _Body, principal: str, details: Details) -> dict[str, Any]:
        key, _, blob, _ = self._data_key(body, principal, details, "kms:GenerateDataKeyWithoutPlaintext")
        return {"CiphertextBlob": _b64(blob), "KeyId": self._arn(key.id)}

    def _generate_random(self, body: _Body, principal: str, details: Details) -> dict[str, Any]:
        size = body.integer("NumberOfBytes", low=1, high=MAX_DATA_KEY)
        if size is None:
            raise _validation("Value null at 'numberOfBytes' failed to satisfy constraint: Member must not be null")
        if body.string("CustomKeyStoreId", high=64) is not None:
            raise KmsError("UnsupportedOperationException", "custom key stores are not supported by this local KMS")
        # No key, so no key policy: in AWS only the caller's IAM policies govern GenerateRandom.
        document = self._recipient(body, details)
        random = os.urandom(size)
        if document is None:
            return {"Plaintext": _b64(random)}
        return {"CiphertextForRecipient": _b64(self._for_recipient(random, document, details))}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
