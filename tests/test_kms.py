"""nitro_attest.kms: KMS key policies evaluated against attestation documents, as KMS would."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from conftest import absent_reason, manifest_entries, require_shared

import nitro_attest
from nitro_attest import AttestationDocument, Policy
from nitro_attest.kms import (
    IMAGE_SHA384_KEY,
    KeyPolicy,
    KmsDecision,
    KmsPolicyError,
    evaluate,
    key_policy_pcr_constraints,
    parse_key_policy,
    pcr_constraints,
)
from nitro_attest.testing import DEFAULT_PCRS, TestPKI

ROLE = "arn:aws:iam::123456789012:role/data-processing"
SESSION = "arn:aws:sts::123456789012:assumed-role/data-processing/i-0123456789abcdef0"
OTHER_ROLE = "arn:aws:iam::123456789012:role/somebody-else"
ACCOUNT_ROOT = "arn:aws:iam::123456789012:root"


def key(pcr: int) -> str:
    return f"kms:RecipientAttestation:PCR{pcr}"


def pcr_hex(pcr: int) -> str:
    return DEFAULT_PCRS[pcr].hex()


def statement(**elements: Any) -> dict[str, Any]:
    """An Allow for kms:Decrypt to anyone, on this key; ``elements`` replace or add elements (None removes one)."""
    base: dict[str, Any] = {"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}
    base.update(elements)
    return {name: value for name, value in base.items() if value is not None}


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow_if(operator: str, condition_key: str, values: object) -> dict[str, Any]:
    return policy(statement(Condition={operator: {condition_key: values}}))


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI.create()


def make_document(pki: TestPKI, **keywords: Any) -> AttestationDocument:
    data = pki.document(**keywords)
    return nitro_attest.verify(data, Policy.any_enclave(allow_debug=True), at=pki.document_time, roots=pki.roots)


@pytest.fixture(scope="module")
def doc(pki: TestPKI) -> AttestationDocument:
    """The default test document: 16 PCRs (DEFAULT_PCRS), no public key."""
    return make_document(pki)


def reasons_text(decision: KmsDecision) -> str:
    return "\n".join(decision.reasons)


# --------------------------------------------------------------------------- the AWS example key policy


def real_document() -> tuple[bytes, AttestationDocument]:
    entries = [
        entry
        for entry in manifest_entries("real")
        if not entry["debug_mode_pcr0_all_zero"] and 8 in entry["nonzero_pcr_indexes"]
    ]
    if not entries:
        pytest.skip(absent_reason("vectors/MANIFEST.json"))
    data = require_shared(f"vectors/{entries[0]['file']}").read_bytes()
    document = nitro_attest.verify(data, Policy.any_enclave(allow_debug=True), at=nitro_attest.parse(data).timestamp)
    return data, document


def aws_example_policy(document: AttestationDocument) -> dict[str, Any]:
    """AWS's example, its EXAMPLE placeholders replaced by ``document``'s PCRs in upper case, as users paste them."""
    example: dict[str, Any] = json.loads(require_shared("kms/kms_policy_examples.json").read_text(encoding="utf-8"))
    del example["_source"]  # the file's provenance note, not part of the policy
    conditions = example["Statement"][0]["Condition"]["StringEqualsIgnoreCase"]
    for condition_key in conditions:
        name = condition_key.rsplit(":", 1)[1]
        index = 0 if name == "ImageSha384" else int(name.removeprefix("PCR"))
        conditions[condition_key] = document.pcrs[index].hex().upper()
    return example


@pytest.mark.parametrize("action", ["kms:Decrypt", "kms:GenerateDataKey"])
def test_aws_example_allows_its_enclave(action: str) -> None:
    _, document = real_document()
    decision = evaluate(aws_example_policy(document), document, action=action)
    assert decision.allowed
    assert decision.deciding_statement is not None
    assert decision.deciding_statement.sid == "Enable enclave data processing"
    assert decision.unevaluated == ()
    assert "Principal" in reasons_text(decision) and "not evaluated" in reasons_text(decision)


def test_aws_example_denies_encrypt() -> None:
    _, document = real_document()
    decision = evaluate(aws_example_policy(document), document, action="kms:Encrypt")
    assert not decision.allowed
    assert decision.deciding_statement is None
    assert "implicitly denied" in decision.reasons[-1]


def test_aws_example_denies_an_enclave_with_another_pcr(pki: TestPKI) -> None:
    _, document = real_document()
    changed = {index: pcr.value for index, pcr in document.pcrs.items()}
    changed[2] = bytes(reversed(changed[2])) if changed[2] != bytes(48) else b"\x01" * 48
    other = make_document(pki, pcrs=changed)
    decision = evaluate(aws_example_policy(document), other)
    assert not decision.allowed
    assert decision.deciding_statement is None
    failing = [line for line in decision.reasons if line.endswith(": false") and "kms:RecipientAttestation" in line]
    assert len(failing) == 1
    assert "kms:RecipientAttestation:PCR2 (PCR2)" in failing[0]
    assert other.pcrs[2].hex() in failing[0]


def test_aws_example_principal() -> None:
    _, document = real_document()
    example = aws_example_policy(document)
    assert evaluate(example, document, principal=ROLE).allowed
    assert evaluate(example, document, principal=SESSION).allowed
    decision = evaluate(example, document, principal=OTHER_ROLE)
    assert not decision.allowed
    assert f"does not match {OTHER_ROLE}" in reasons_text(decision)


def test_aws_example_pcr_constraints() -> None:
    data, document = real_document()
    constraints = key_policy_pcr_constraints(aws_example_policy(document))
    assert constraints == {index: frozenset({document.pcrs[index].value}) for index in (0, 1, 2, 3, 4, 8)}
    # The constraints make a Policy that verify() accepts for the same enclave.
    nitro_attest.verify(data, Policy(constraints), at=document.timestamp)


# --------------------------------------------------------------------------- string operators


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("StringEquals", pcr_hex(1), True),
        ("StringEquals", pcr_hex(1).upper(), False),  # case-sensitive against KMS's lower-case hex
        ("StringEquals", pcr_hex(2), False),
        ("StringEqualsIgnoreCase", pcr_hex(1).upper(), True),
        ("StringEqualsIgnoreCase", pcr_hex(1), True),
        ("StringEqualsIgnoreCase", pcr_hex(2).upper(), False),
        ("StringNotEquals", pcr_hex(2), True),
        ("StringNotEquals", pcr_hex(1), False),
        ("StringNotEquals", pcr_hex(1).upper(), True),
        ("StringNotEqualsIgnoreCase", pcr_hex(1).upper(), False),
        ("StringNotEqualsIgnoreCase", pcr_hex(2), True),
        ("StringLike", pcr_hex(1)[:10] + "*", True),
        ("StringLike", "?" + pcr_hex(1)[1:], True),
        ("StringLike", "*", True),
        ("StringLike", pcr_hex(1)[:10].upper() + "*", False),  # case-sensitive
        ("StringLike", pcr_hex(2)[:10] + "*", False),
        ("StringLike", "?" * 95, False),  # ? is exactly one character
        ("StringNotLike", pcr_hex(2)[:10] + "*", True),
        ("StringNotLike", pcr_hex(1)[:10] + "*", False),
    ],
)
def test_string_operator(doc: AttestationDocument, operator: str, value: str, expected: bool) -> None:
    decision = evaluate(allow_if(operator, key(1), value), doc)
    assert decision.allowed is expected
    assert decision.unevaluated == ()
    line = next(line for line in decision.reasons if f"{operator} {key(1)}" in line)
    assert value in line and pcr_hex(1) in line and line.endswith(": " + str(expected).lower())


def test_wildcards_match_in_linear_time(doc: AttestationDocument) -> None:
    # A regular expression would backtrack exponentially on this pattern.
    decision = evaluate(allow_if("StringLike", key(0), "*0" * 60 + "*z"), doc)
    assert not decision.allowed


def test_case_mismatch_is_explained(doc: AttestationDocument) -> None:
    decision = evaluate(allow_if("StringEquals", key(1), pcr_hex(1).upper()), doc)
    assert not decision.allowed
    assert "matches ignoring case" in reasons_text(decision)
    assert "StringEqualsIgnoreCase" in reasons_text(decision)


def test_image_sha384_is_pcr0(doc: AttestationDocument) -> None:
    assert evaluate(allow_if("StringEquals", IMAGE_SHA384_KEY, pcr_hex(0)), doc).allowed
    assert not evaluate(allow_if("StringEquals", IMAGE_SHA384_KEY, pcr_hex(1)), doc).allowed


def test_condition_keys_are_case_insensitive(doc: AttestationDocument) -> None:
    assert evaluate(allow_if("StringEquals", "KMS:RECIPIENTATTESTATION:pcr1", pcr_hex(1)), doc).allowed
    assert evaluate(allow_if("StringEquals", "kms:recipientattestation:imagesha384", pcr_hex(0)), doc).allowed


def test_values_are_alternatives(doc: AttestationDocument) -> None:
    values = [pcr_hex(2), pcr_hex(1), "not-a-pcr"]
    assert evaluate(allow_if("StringEquals", key(1), values), doc).allowed
    # A negated operator with several values needs all of them to differ (NOR).
    assert not evaluate(allow_if("StringNotEquals", key(1), values), doc).allowed
    assert evaluate(allow_if("StringNotEquals", key(1), [pcr_hex(2), pcr_hex(3)]), doc).allowed


def test_keys_and_operators_all_must_hold(doc: AttestationDocument) -> None:
    both = {key(1): pcr_hex(1), key(2): pcr_hex(2)}
    assert evaluate(policy(statement(Condition={"StringEquals": both})), doc).allowed
    one_wrong = {key(1): pcr_hex(1), key(2): pcr_hex(3)}
    assert not evaluate(policy(statement(Condition={"StringEquals": one_wrong})), doc).allowed
    operators = {"StringEquals": {key(1): pcr_hex(1)}, "StringEqualsIgnoreCase": {key(2): pcr_hex(2).upper()}}
    assert evaluate(policy(statement(Condition=operators)), doc).allowed
    operators["StringNotLike"] = {key(3): pcr_hex(3)[:4] + "*"}
    assert not evaluate(policy(statement(Condition=operators)), doc).allowed


def test_no_condition_allows(doc: AttestationDocument) -> None:
    decision = evaluate(policy(statement()), doc)
    assert decision.allowed
    assert "no Condition" in reasons_text(decision)


# --------------------------------------------------------------------------- absent keys, IfExists, Null, set operators


@pytest.mark.parametrize(
    ("operator", "expected"),
    [
        ("StringEquals", False),
        ("StringEqualsIgnoreCase", False),
        ("StringLike", False),
        ("StringNotEquals", True),
        ("StringNotEqualsIgnoreCase", True),
        ("StringNotLike", True),
        ("StringEqualsIfExists", True),
        ("StringLikeIfExists", True),
        ("StringNotEqualsIfExists", True),
        ("ForAnyValue:StringEquals", False),
        ("ForAnyValue:StringNotEquals", False),
        ("ForAllValues:StringEquals", True),
        ("ForAllValues:StringNotEquals", True),
        ("ForAnyValue:StringEqualsIfExists", True),
    ],
)
def test_absent_pcr(doc: AttestationDocument, operator: str, expected: bool) -> None:
    # The default document has PCR0..15: PCR20 is absent from the request.
    decision = evaluate(allow_if(operator, key(20), pcr_hex(1)), doc)
    assert decision.allowed is expected
    assert "actual absent" in reasons_text(decision)


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("StringEqualsIfExists", pcr_hex(1), True),
        ("StringEqualsIfExists", pcr_hex(2), False),
        ("StringNotEqualsIfExists", pcr_hex(1), False),
        ("StringEqualsIgnoreCaseIfExists", pcr_hex(1).upper(), True),
        ("StringNotEqualsIgnoreCaseIfExists", pcr_hex(1).upper(), False),
        ("StringLikeIfExists", pcr_hex(1)[:3] + "*", True),
        ("StringNotLikeIfExists", pcr_hex(1)[:3] + "*", False),
        ("ForAnyValue:StringEquals", pcr_hex(1), True),
        ("ForAnyValue:StringEquals", pcr_hex(2), False),
        ("ForAllValues:StringEquals", pcr_hex(1), True),
        ("ForAllValues:StringEquals", pcr_hex(2), False),
        ("ForAllValues:StringNotEquals", pcr_hex(1), False),
    ],
)
def test_present_pcr_with_if_exists_or_set_operator(
    doc: AttestationDocument, operator: str, value: str, expected: bool
) -> None:
    decision = evaluate(allow_if(operator, key(1), value), doc)
    assert decision.allowed is expected
    if operator.startswith("For"):
        assert "AWS advises against set operators" in reasons_text(decision)


def test_pcr16_when_the_document_has_it(pki: TestPKI) -> None:
    extended = make_document(pki, pcrs={**DEFAULT_PCRS, 16: b"\x16" * 48})
    assert evaluate(allow_if("StringEquals", key(16), "16" * 48), extended).allowed
    assert not evaluate(allow_if("Null", key(16), "true"), extended).allowed


@pytest.mark.parametrize(
    ("condition_key", "value", "expected"),
    [
        (key(20), "true", True),
        (key(20), "false", False),
        (key(1), "true", False),
        (key(1), "false", True),
        (IMAGE_SHA384_KEY, False, True),  # JSON false reads as "false"
        (key(1), "TRUE", False),
    ],
)
def test_null(doc: AttestationDocument, condition_key: str, value: object, expected: bool) -> None:
    assert evaluate(allow_if("Null", condition_key, value), doc).allowed is expected


@pytest.mark.parametrize("action", ["kms:Encrypt", "kms:ReEncryptFrom", "kms:GenerateDataKeyWithoutPlaintext"])
def test_attestation_keys_are_absent_for_operations_without_recipient(doc: AttestationDocument, action: str) -> None:
    allow = policy(statement(Action="kms:*", Condition={"StringEquals": {key(1): pcr_hex(1)}}))
    decision = evaluate(allow, doc, action=action)
    assert not decision.allowed
    assert "no kms:RecipientAttestation keys" in reasons_text(decision)
    # ... which makes a "deny unless PCR" statement deny them.
    deny = statement(Effect="Deny", Action="kms:*", Condition={"StringNotEquals": {key(1): pcr_hex(1)}})
    decision = evaluate(policy(statement(Action="kms:*"), deny), doc, action=action)
    assert not decision.allowed
    assert decision.deciding_statement is not None and decision.deciding_statement.index == 1


@pytest.mark.parametrize(
    "action",
    ["kms:Decrypt", "kms:DeriveSharedSecret", "kms:GenerateDataKey", "kms:GenerateDataKeyPair", "kms:GenerateRandom"],
)
def test_attested_operations(doc: AttestationDocument, action: str) -> None:
    attested = policy(statement(Action="kms:*", Condition={"StringEquals": {key(1): pcr_hex(1)}}))
    assert evaluate(attested, doc, action=action).allowed


# --------------------------------------------------------------------------- statements: effect, actions


def test_explicit_deny_overrides_allow(doc: AttestationDocument) -> None:
    deny = statement(Sid="NoPcr1", Effect="Deny", Condition={"StringEquals": {key(1): pcr_hex(1)}})
    decision = evaluate(policy(statement(Sid="Everyone"), deny), doc)
    assert not decision.allowed
    assert decision.deciding_statement is not None and decision.deciding_statement.sid == "NoPcr1"
    assert "denied explicitly by Statement[1] (Sid 'NoPcr1')" in decision.reasons[-1]
    # A deny that does not apply leaves the allow.
    deny["Condition"] = {"StringEquals": {key(1): pcr_hex(2)}}
    decision = evaluate(policy(statement(Sid="Everyone"), deny), doc)
    assert decision.allowed
    assert decision.deciding_statement is not None and decision.deciding_statement.sid == "Everyone"


def test_statement_order_does_not_matter(doc: AttestationDocument) -> None:
    deny = statement(Effect="Deny")
    assert not evaluate(policy(deny, statement()), doc).allowed
    assert not evaluate(policy(statement(), deny), doc).allowed


def test_several_allows(doc: AttestationDocument) -> None:
    first = statement(Sid="Old", Condition={"StringEquals": {key(0): pcr_hex(2)}})
    second = statement(Sid="New", Condition={"StringEquals": {key(0): pcr_hex(0)}})
    decision = evaluate(policy(first, second), doc)
    assert decision.allowed
    assert decision.deciding_statement is not None and decision.deciding_statement.sid == "New"
    assert "Statement[0] (Sid 'Old') [Allow]: applies: false" in decision.reasons


def test_single_statement_object_and_text_forms(doc: AttestationDocument) -> None:
    single = {"Version": "2012-10-17", "Statement": statement()}
    assert evaluate(single, doc).allowed
    assert evaluate(json.dumps(single), doc).allowed
    assert evaluate(json.dumps(single).encode(), doc).allowed
    parsed = parse_key_policy(single)
    assert isinstance(parsed, KeyPolicy) and evaluate(parsed, doc).allowed


def test_implicit_deny(doc: AttestationDocument) -> None:
    decision = evaluate(policy(statement(Action="kms:Encrypt")), doc)
    assert not decision.allowed
    assert decision.deciding_statement is None
    assert "does not cover kms:Decrypt" in reasons_text(decision)


@pytest.mark.parametrize(
    ("actions", "expected"),
    [
        ("kms:Decrypt", True),
        ("KMS:decrypt", True),
        ("kms:*", True),
        ("*", True),
        ("kms:Decrypt*", True),
        ("kms:?ecrypt", True),
        ("kms:De*pt", True),
        (["kms:Encrypt", "kms:Decrypt"], True),
        ("kms:Encrypt", False),
        ("kms:Decrypt?", False),
        ("s3:*", False),
        ("kms:DecryptX", False),
    ],
)
def test_action_matching(doc: AttestationDocument, actions: object, expected: bool) -> None:
    assert evaluate(policy(statement(Action=actions)), doc).allowed is expected


@pytest.mark.parametrize(
    ("not_actions", "expected"),
    [("kms:Encrypt", True), (["kms:Encrypt", "kms:Decrypt"], False), ("kms:*", False), ("kms:En*", True)],
)
def test_not_action(doc: AttestationDocument, not_actions: object, expected: bool) -> None:
    decision = evaluate(policy(statement(Action=None, NotAction=not_actions)), doc)
    assert decision.allowed is expected
    assert "NotAction" in reasons_text(decision)


def test_not_action_deny(doc: AttestationDocument) -> None:
    deny_all_but_encrypt = statement(Effect="Deny", Action=None, NotAction="kms:Encrypt")
    assert not evaluate(policy(statement(Action="kms:*"), deny_all_but_encrypt), doc).allowed
    assert evaluate(policy(statement(Action="kms:*"), deny_all_but_encrypt), doc, action="kms:Encrypt").allowed


# --------------------------------------------------------------------------- principals


@pytest.mark.parametrize(
    ("principal_element", "caller", "expected"),
    [
        ("*", ROLE, True),
        ({"AWS": "*"}, ROLE, True),
        ({"AWS": ROLE}, ROLE, True),
        ({"AWS": ROLE}, SESSION, True),  # a role covers its sessions
        ({"AWS": "arn:aws:iam::123456789012:role/path/data-processing"}, SESSION, True),
        ({"AWS": [OTHER_ROLE, ROLE]}, ROLE, True),
        ({"AWS": ROLE}, OTHER_ROLE, False),
        ({"AWS": "arn:aws:iam::999999999999:role/data-processing"}, SESSION, False),
        ({"AWS": ROLE.upper()}, ROLE, False),
        ({"Service": "kms.amazonaws.com"}, ROLE, False),
        ({"AWS": ACCOUNT_ROOT}, ACCOUNT_ROOT, True),
    ],
)
def test_principal(doc: AttestationDocument, principal_element: object, caller: str, expected: bool) -> None:
    decision = evaluate(policy(statement(Principal=principal_element)), doc, principal=caller)
    assert decision.allowed is expected
    assert caller in reasons_text(decision)


@pytest.mark.parametrize("account", [ACCOUNT_ROOT, "123456789012"])
def test_account_principal_delegates_to_iam(doc: AttestationDocument, account: str) -> None:
    # Access then also needs an IAM policy in the account, which we cannot see: never "allowed".
    decision = evaluate(policy(statement(Principal={"AWS": account})), doc, principal=ROLE)
    assert not decision.allowed
    assert "IAM policies" in reasons_text(decision)
    # ... but a Deny naming the account covers everyone in it.
    deny = statement(Effect="Deny", Principal={"AWS": account})
    decision = evaluate(policy(statement(), deny), doc, principal=ROLE)
    assert not decision.allowed
    assert decision.deciding_statement is not None and decision.deciding_statement.effect == "Deny"


def test_principal_not_evaluated_without_caller(doc: AttestationDocument) -> None:
    decision = evaluate(policy(statement(Principal={"AWS": OTHER_ROLE})), doc)
    assert decision.allowed
    assert "not evaluated (no principal given)" in reasons_text(decision)


def test_not_principal(doc: AttestationDocument) -> None:
    deny_others = statement(Effect="Deny", Principal=None, NotPrincipal={"AWS": ROLE})
    allow_all = statement()
    assert evaluate(policy(allow_all, deny_others), doc, principal=ROLE).allowed
    decision = evaluate(policy(allow_all, deny_others), doc, principal=OTHER_ROLE)
    assert not decision.allowed and decision.deciding_statement is not None
    # Whether NotPrincipal excludes a session through its role is subtle: the Deny may apply.
    decision = evaluate(policy(allow_all, deny_others), doc, principal=SESSION)
    assert not decision.allowed
    assert "may deny" in decision.reasons[-1]
    allow_others = statement(Principal=None, NotPrincipal={"AWS": OTHER_ROLE})
    assert evaluate(policy(allow_others), doc, principal=ROLE).allowed
    assert not evaluate(policy(allow_others), doc, principal=OTHER_ROLE).allowed


# --------------------------------------------------------------------------- what cannot be evaluated


def test_unevaluable_condition_never_allows(doc: AttestationDocument) -> None:
    conditions = {"StringEquals": {key(1): pcr_hex(1)}, "IpAddress": {"aws:SourceIp": "192.0.2.0/24"}}
    decision = evaluate(policy(statement(Condition=conditions)), doc)
    assert not decision.allowed
    assert decision.deciding_statement is None
    assert decision.unevaluated == ("aws:SourceIp",)
    assert "aws:SourceIp: not evaluated" in reasons_text(decision)
    assert "depends on what could not be evaluated" in decision.reasons[-1]


def test_unevaluable_condition_listed_even_when_another_fails(doc: AttestationDocument) -> None:
    conditions = {"StringEquals": {key(1): pcr_hex(2), "kms:ViaService": "ec2.us-east-1.amazonaws.com"}}
    decision = evaluate(policy(statement(Condition=conditions)), doc)
    assert not decision.allowed
    assert decision.unevaluated == ("kms:ViaService",)
    assert "applies: false" in reasons_text(decision)


def test_unevaluable_deny_blocks(doc: AttestationDocument) -> None:
    deny = statement(Sid="Fence", Effect="Deny", Condition={"StringNotEquals": {"kms:CallerAccount": "123456789012"}})
    decision = evaluate(policy(statement(), deny), doc)
    assert not decision.allowed
    assert decision.deciding_statement is not None and decision.deciding_statement.sid == "Fence"
    assert decision.unevaluated == ("kms:CallerAccount",)
    assert "may deny" in decision.reasons[-1]


def test_unevaluable_deny_with_a_false_condition_does_not_apply(doc: AttestationDocument) -> None:
    # false AND unknown is false: the deny cannot apply, whatever the unknown key holds.
    conditions = {"StringEquals": {key(1): pcr_hex(2)}, "Bool": {"aws:SecureTransport": False}}
    decision = evaluate(policy(statement(), statement(Effect="Deny", Condition=conditions)), doc)
    assert decision.allowed
    assert decision.unevaluated == ("aws:SecureTransport",)


@pytest.mark.parametrize(
    ("operator", "condition_key", "value"),
    [
        ("StringEquals", "kms:EncryptionContext:Department", "IT"),
        ("Bool", key(1), True),  # not a string operator
        ("ArnLike", "aws:PrincipalArn", "arn:aws:iam::*:role/x"),
        ("StringEquals", key(1), "${aws:username}"),  # policy variable
        ("Null", "aws:SourceVpce", "true"),
    ],
)
def test_unevaluable(doc: AttestationDocument, operator: str, condition_key: str, value: object) -> None:
    decision = evaluate(allow_if(operator, condition_key, value), doc)
    assert not decision.allowed
    assert decision.unevaluated == (condition_key,)


def test_unevaluated_keys_listed_once(doc: AttestationDocument) -> None:
    first = statement(Condition={"StringEquals": {"aws:SourceVpc": "vpc-1"}})
    second = statement(Condition={"StringEquals": {"AWS:SourceVPC": "vpc-2", "kms:ViaService": "x"}})
    other_action = statement(Action="kms:Encrypt", Condition={"StringEquals": {"aws:Other": "x"}})
    decision = evaluate(policy(first, second, other_action), doc)
    assert decision.unevaluated == ("aws:SourceVpc", "kms:ViaService")


# --------------------------------------------------------------------------- notes on the document


def test_debug_document_is_judged_by_its_pins(pki: TestPKI) -> None:
    debug = make_document(pki, pcrs={**DEFAULT_PCRS, 0: bytes(48), 1: bytes(48), 2: bytes(48)})
    decision = evaluate(allow_if("StringEqualsIgnoreCase", IMAGE_SHA384_KEY, "0" * 96), debug)
    assert decision.allowed
    assert "debug-mode enclave" in reasons_text(decision)


def test_public_key_note(pki: TestPKI, doc: AttestationDocument) -> None:
    assert "no public_key" in reasons_text(evaluate(policy(statement()), doc))
    with_key = make_document(pki, public_key=b"\x30" * 32)
    assert "no public_key" not in reasons_text(evaluate(policy(statement()), with_key))


# --------------------------------------------------------------------------- malformed policies


MALFORMED: list[tuple[str, object, tuple[str, ...]]] = [
    ("not-json", "{'Statement': []}", ("not valid JSON",)),
    ("trailing-garbage", json.dumps(policy(statement())) + "x", ("not valid JSON",)),
    ("nan", '{"Statement": [{"Effect": NaN}]}', ("NaN",)),
    ("duplicate-key", '{"Statement": [], "Statement": []}', ("duplicate", "Statement")),
    ("not-utf8", b"\xff{}", ("UTF-8",)),
    ("too-large", json.dumps(policy(statement(Sid="x" * 33000))), ("32768",)),
    ("bad-character", json.dumps(policy(statement(Sid="\u2603")), ensure_ascii=False), ("not allowed",)),
    ("too-deep", "[" * 10000 + "]" * 10000, ("deep",)),
    ("list", "[]", ("JSON object",)),
    ("no-statement", {"Version": "2012-10-17"}, ("no Statement",)),
    ("empty-statement", policy(), ("non-empty",)),
    ("statement-string", {"Statement": "Allow"}, ("Statement",)),
    ("unknown-top-level", {**policy(statement()), "Statements": []}, ("Statements",)),
    ("bad-version", {**policy(statement()), "Version": "2020-01-01"}, ("Version",)),
    ("statement-not-object", policy("Allow"), ("Statement[0]", "object")),  # type: ignore[arg-type]
    ("effect-case", policy(statement(Sid="S1", Effect="allow")), ("Statement[0] (Sid 'S1')", "Effect")),
    ("effect-missing", policy(statement(), statement(Effect=None)), ("Statement[1]", "Effect")),
    ("sid-number", policy(statement(Sid=3)), ("Statement[0]", "Sid")),
    ("unknown-element", policy(statement(Conditions={})), ("Statement[0]", "Conditions")),
    ("action-missing", policy(statement(Action=None)), ("Statement[0]", "Action", "NotAction")),
    ("action-and-not-action", policy(statement(NotAction="kms:Encrypt")), ("Action", "NotAction")),
    ("action-empty-list", policy(statement(Action=[])), ("Action", "empty")),
    ("action-no-service", policy(statement(Action="Decrypt")), ("'Decrypt'", "service:action")),
    ("action-number", policy(statement(Action=[1])), ("Action",)),
    ("resource-missing", policy(statement(Resource=None)), ("Resource",)),
    ("principal-missing", policy(statement(Principal=None)), ("Principal", "NotPrincipal")),
    ("principal-and-not", policy(statement(NotPrincipal="*")), ("Principal", "NotPrincipal")),
    ("principal-string", policy(statement(Principal=ROLE)), ("Principal",)),
    ("principal-kind", policy(statement(Principal={"User": ROLE})), ("'User'",)),
    ("principal-partial-wildcard", policy(statement(Principal={"AWS": "arn:aws:iam::1:role/*"})), ("whole value",)),
    ("condition-list", policy(statement(Condition=[])), ("Condition",)),
    (
        "condition-null",
        '{"Statement": {"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", '
        '"Resource": "*", "Condition": null}}',
        ("Condition", "null"),
    ),
    ("operator-unknown", allow_if("StringEqual", key(0), "x"), ("'StringEqual'",)),
    ("operator-case", allow_if("stringequals", key(0), "x"), ("did you mean 'StringEquals'",)),
    ("operator-null-if-exists", allow_if("NullIfExists", key(0), "true"), ("'NullIfExists'",)),
    ("operator-for-any-null", allow_if("ForAnyValue:Null", key(0), "true"), ("'ForAnyValue:Null'",)),
    ("operator-two-qualifiers", allow_if("ForAnyValue:ForAllValues:StringEquals", key(0), "x"), ("ForAnyValue",)),
    ("operator-block-not-object", policy(statement(Condition={"StringEquals": "x"})), ("StringEquals",)),
    ("key-pcr32", allow_if("StringEquals", key(32), "x"), (key(32), "unknown attestation key")),
    ("key-pcr-leading-zero", allow_if("StringEquals", "kms:RecipientAttestation:PCR01", "x"), ("PCR01",)),
    ("key-typo", allow_if("StringEquals", "kms:RecipientAttestation:ImageSha256", "x"), ("ImageSha256",)),
    ("value-object", allow_if("StringEquals", key(0), {"a": 1}), (key(0), "an object")),
    ("value-null", allow_if("StringEquals", key(0), None), (key(0), "null")),
    ("value-empty-list", allow_if("StringEquals", key(0), []), (key(0), "empty")),
    ("null-maybe", allow_if("Null", key(0), "maybe"), (key(0), "'true' or 'false'")),
]


@pytest.mark.parametrize(("malformed", "needles"), [pytest.param(p, n, id=i) for i, p, n in MALFORMED])
def test_malformed_policy(doc: AttestationDocument, malformed: Any, needles: tuple[str, ...]) -> None:
    with pytest.raises(KmsPolicyError) as raised:
        parse_key_policy(malformed)
    for needle in needles:
        assert needle in str(raised.value)
    with pytest.raises(KmsPolicyError):
        evaluate(malformed, doc)
    assert isinstance(raised.value, ValueError)


def test_wrong_argument_types(doc: AttestationDocument) -> None:
    with pytest.raises(TypeError):
        parse_key_policy(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        evaluate(policy(statement()), b"not a document")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="service:Operation"):
        evaluate(policy(statement()), doc, action="Decrypt")
    with pytest.raises(TypeError):
        evaluate(policy(statement()), doc, principal=123)  # type: ignore[arg-type]


def test_parsed_types(doc: AttestationDocument) -> None:
    parsed = parse_key_policy(
        policy(
            statement(
                Sid="S",
                Action=["kms:Decrypt", "kms:GenerateDataKey"],
                Principal={"AWS": [ROLE, "123456789012"]},
                Condition={"ForAnyValue:StringEqualsIgnoreCaseIfExists": {IMAGE_SHA384_KEY: [pcr_hex(0), 1, True]}},
            )
        )
    )
    (only,) = parsed.statements
    assert only.label == "Statement[0] (Sid 'S')"
    assert only.principals == (("AWS", ROLE), ("AWS", "123456789012"))
    (condition,) = only.conditions
    assert condition.base == "StringEqualsIgnoreCase"
    assert condition.qualifier == "ForAnyValue" and condition.if_exists
    assert condition.values == (pcr_hex(0), "1", "true")
    assert condition.pcr == 0
    assert only.matches_action("kms:generatedatakey") and not only.matches_action("kms:Encrypt")


# --------------------------------------------------------------------------- PCR constraints (for Policy)


def constraints_of(conditions: Mapping[str, Any], effect: str = "Allow") -> Mapping[int, frozenset[bytes]]:
    (parsed,) = parse_key_policy(policy(statement(Effect=effect, Condition=dict(conditions)))).statements
    return pcr_constraints(parsed)


def test_pcr_constraints_of_an_allow() -> None:
    conditions = {
        "StringEqualsIgnoreCase": {IMAGE_SHA384_KEY: [pcr_hex(0).upper(), pcr_hex(5)], key(0): pcr_hex(0)},
        "StringEquals": {key(1): [pcr_hex(1), pcr_hex(2).upper()], key(2): pcr_hex(2)},
        "StringLike": {key(3): pcr_hex(3)},  # no wildcard: an equality
        "StringEqualsIfExists": {key(16): "16" * 48},  # a Policy requires it present: stricter, never looser
    }
    assert constraints_of(conditions) == {
        0: frozenset({DEFAULT_PCRS[0]}),  # ImageSha384 and PCR0 intersect
        1: frozenset({DEFAULT_PCRS[1]}),  # upper case can never equal KMS's value under StringEquals
        2: frozenset({DEFAULT_PCRS[2]}),
        3: frozenset({DEFAULT_PCRS[3]}),
        16: frozenset({b"\x16" * 48}),
    }
    assert constraints_of({}) == {}


@pytest.mark.parametrize(
    ("conditions", "needle"),
    [
        ({"StringEquals": {"aws:SourceIp": "x"}}, "not a Nitro Enclaves attestation key"),
        ({"StringLike": {key(1): "ab*"}}, "wildcard"),
        ({"StringNotEquals": {key(1): pcr_hex(1)}}, "StringNotEquals"),
        ({"Null": {key(1): "false"}}, "Null"),
        ({"Bool": {key(1): True}}, "Bool"),
        ({"StringEquals": {key(1): "${aws:username}"}}, "policy variable"),
        ({"StringEquals": {key(1): pcr_hex(1).upper()}}, "lower-case"),
        ({"StringEqualsIgnoreCase": {key(1): "abc"}}, "can equal"),
        ({"StringEquals": {IMAGE_SHA384_KEY: pcr_hex(0), key(0): pcr_hex(1)}}, "never allows"),
        ({"StringEquals": {"kms:RecipientAttestation:NitroTPMPCR4": pcr_hex(4)}}, "NitroTPMPCR4"),
    ],
)
def test_pcr_constraints_inexpressible(conditions: Mapping[str, Any], needle: str) -> None:
    with pytest.raises(KmsPolicyError, match="Statement\\[0\\]") as raised:
        constraints_of(conditions)
    assert needle in str(raised.value)


def test_pcr_constraints_of_a_deny() -> None:
    deny_unless = {"StringNotEqualsIgnoreCase": {key(2): [pcr_hex(2), pcr_hex(3).upper()]}}
    assert constraints_of(deny_unless, "Deny") == {2: frozenset({DEFAULT_PCRS[2], DEFAULT_PCRS[3]})}
    with pytest.raises(KmsPolicyError, match="present"):
        constraints_of({"Null": {key(2): "true"}}, "Deny")
    with pytest.raises(KmsPolicyError, match="deny unless"):
        constraints_of({"StringEquals": {key(2): pcr_hex(2)}}, "Deny")
    with pytest.raises(KmsPolicyError, match="2 condition"):
        constraints_of({"StringNotEquals": {key(2): pcr_hex(2), key(3): pcr_hex(3)}}, "Deny")
    with pytest.raises(KmsPolicyError, match="0 condition"):
        constraints_of({}, "Deny")


def test_key_policy_pcr_constraints(pki: TestPKI, doc: AttestationDocument) -> None:
    admin = statement(Sid="Admin", Principal={"AWS": ACCOUNT_ROOT}, Action="kms:*")
    enclave = statement(
        Sid="Enclave", Principal={"AWS": ROLE}, Condition={"StringEqualsIgnoreCase": {key(0): pcr_hex(0)}}
    )
    deny_unless = statement(
        Sid="Fence", Effect="Deny", Action="kms:Decrypt", Condition={"StringNotEquals": {key(8): pcr_hex(8)}}
    )
    require_pcr0 = statement(Effect="Deny", Condition={"Null": {IMAGE_SHA384_KEY: "true"}})
    unrelated_deny = statement(Effect="Deny", Action="kms:ScheduleKeyDeletion")
    key_policy = policy(admin, enclave, deny_unless, require_pcr0, unrelated_deny)

    expected = {0: frozenset({DEFAULT_PCRS[0]}), 8: frozenset({DEFAULT_PCRS[8]})}
    assert key_policy_pcr_constraints(key_policy, sid="Enclave") == expected
    # The admin statement (kms:* to the account) could also allow the role: not one Policy.
    with pytest.raises(KmsPolicyError, match="Admin") as raised:
        key_policy_pcr_constraints(key_policy, principal=ROLE)
    assert "Enclave" in str(raised.value) and "sid=" in str(raised.value)
    with pytest.raises(KmsPolicyError, match="exactly one Allow"):
        key_policy_pcr_constraints(key_policy, sid="Nope")
    # Without the admin statement, the role's statement is the only Allow.
    alone = policy(enclave, deny_unless, require_pcr0)
    assert key_policy_pcr_constraints(alone, principal=ROLE) == expected
    with pytest.raises(KmsPolicyError, match="found none"):
        key_policy_pcr_constraints(alone, principal=OTHER_ROLE)
    # The constraints agree with evaluate() on the document.
    assert evaluate(alone, doc, principal=ROLE).allowed
    nitro_attest.verify(pki.document(), Policy(expected), at=pki.document_time, roots=pki.roots)


def test_key_policy_pcr_constraints_conflicts() -> None:
    enclave = statement(Condition={"StringEquals": {key(0): pcr_hex(0)}})
    contradicting = statement(Effect="Deny", Condition={"StringNotEquals": {key(0): pcr_hex(1)}})
    with pytest.raises(KmsPolicyError, match="denies every PCR0"):
        key_policy_pcr_constraints(policy(enclave, contradicting))
    require_unpinned = statement(Effect="Deny", Condition={"Null": {key(5): "true"}})
    with pytest.raises(KmsPolicyError, match="PCR5 to be present"):
        key_policy_pcr_constraints(policy(enclave, require_unpinned))
    deny_on_ip = statement(Effect="Deny", Condition={"NotIpAddress": {"aws:SourceIp": "192.0.2.0/24"}})
    with pytest.raises(KmsPolicyError, match="aws:SourceIp"):
        key_policy_pcr_constraints(policy(enclave, deny_on_ip))
