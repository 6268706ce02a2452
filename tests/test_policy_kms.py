"""Policy.from_kms_key_policy: the same decisions as nitro_attest.kms.evaluate, wherever it succeeds."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nitro_attest
from nitro_attest import AttestationDocument, KmsPolicyError, Policy, kms
from nitro_attest.testing import DEFAULT_PCRS, TestPKI

PREFIX = "kms:RecipientAttestation:"
ROLE = "arn:aws:iam::123456789012:role/data-processing"
# A small pool, so generated policies and documents often agree on a value.
POOL = [DEFAULT_PCRS[0], bytes([1]) * 48, bytes([2]) * 48]
PINNED = (0, 1, 2, 8)
PKI = TestPKI.create()


def document_with(pcrs: Mapping[int, bytes]) -> AttestationDocument:
    data = PKI.document(pcrs={**DEFAULT_PCRS, **pcrs})
    return nitro_attest.verify(data, Policy.any_enclave(allow_debug=True), at=PKI.document_time, roots=PKI.roots)


def statement(
    effect: str, condition: Mapping[str, Any], *, sid: str = "enclave", action: Any = "kms:Decrypt"
) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": effect,
        "Principal": {"AWS": ROLE},
        "Action": action,
        "Resource": "*",
        "Condition": condition,
    }


def key_policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def key_name(index: int, image_name: bool) -> str:
    return PREFIX + ("ImageSha384" if index == 0 and image_name else f"PCR{index}")


def test_aws_example_shape_becomes_a_policy() -> None:
    condition = {
        "StringEqualsIgnoreCase": {key_name(index, False): DEFAULT_PCRS[index].hex().upper() for index in PINNED}
    }
    condition["StringEqualsIgnoreCase"][PREFIX + "ImageSha384"] = DEFAULT_PCRS[0].hex().upper()
    policy = Policy.from_kms_key_policy(key_policy(statement("Allow", condition)))
    assert policy.pcrs == {index: frozenset({DEFAULT_PCRS[index]}) for index in PINNED}
    assert policy.explain(document_with({}), PKI.document_time) == ()


def test_other_actions_and_the_sid_choose_the_statement() -> None:
    decrypt = statement("Allow", {"StringEqualsIgnoreCase": {key_name(0, True): POOL[1].hex()}}, sid="decrypt")
    derive = statement(
        "Allow",
        {"StringEqualsIgnoreCase": {key_name(0, True): POOL[2].hex()}},
        sid="derive",
        action="kms:GenerateDataKey",
    )
    text = key_policy(decrypt, derive)
    assert Policy.from_kms_key_policy(text).pcrs == {0: frozenset({POOL[1]})}
    assert Policy.from_kms_key_policy(text, action="kms:GenerateDataKey").pcrs == {0: frozenset({POOL[2]})}
    both = key_policy(decrypt, statement("Allow", {"StringEquals": {key_name(1, False): POOL[2].hex()}}, sid="second"))
    with pytest.raises(KmsPolicyError):
        Policy.from_kms_key_policy(both)
    assert Policy.from_kms_key_policy(both, sid="second").pcrs == {1: frozenset({POOL[2]})}


@pytest.mark.parametrize(
    ("condition", "match"),
    [
        ({"StringEquals": {"aws:SourceIp": "10.0.0.1"}}, "aws:SourceIp"),
        ({"StringLike": {PREFIX + "PCR0": "ab*"}}, "StringLike"),
        ({}, "pins no PCR"),
        ({"StringEqualsIgnoreCase": {PREFIX + "PCR0": "00" * 48}}, "debug"),
    ],
)
def test_inexpressible_key_policies_say_why(condition: Mapping[str, Any], match: str) -> None:
    with pytest.raises(KmsPolicyError, match=match):
        Policy.from_kms_key_policy(key_policy(statement("Allow", condition)))


def test_debug_pin_is_accepted_when_asked_for() -> None:
    text = key_policy(statement("Allow", {"StringEqualsIgnoreCase": {PREFIX + "PCR0": "00" * 48}}))
    assert Policy.from_kms_key_policy(text, allow_debug=True).allow_debug


def test_other_constraints_pass_through() -> None:
    text = key_policy(statement("Allow", {"StringEqualsIgnoreCase": {PREFIX + "PCR1": POOL[0].hex()}}))
    policy = Policy.from_kms_key_policy(text, nonce=b"n", module_id="i-*")
    assert (policy.nonce, policy.module_id) == (b"n", "i-*")


# -- agreement, property-tested -------------------------------------------------------------------

OPERATORS = ["StringEquals", "StringEqualsIgnoreCase", "StringEqualsIfExists", "StringEqualsIgnoreCaseIfExists"]


@st.composite
def conditions(draw: st.DrawFn) -> dict[str, dict[str, Any]]:
    """One or two operators, each pinning some PCRs to one or several pool values in either case."""
    condition: dict[str, dict[str, Any]] = {}
    for operator in draw(st.lists(st.sampled_from(OPERATORS), min_size=1, max_size=2, unique=True)):
        indexes = draw(st.lists(st.sampled_from(PINNED), min_size=1, max_size=3, unique=True))
        block: dict[str, Any] = {}
        for index in indexes:
            values = draw(st.lists(st.sampled_from(POOL), min_size=1, max_size=2, unique=True))
            texts = [value.hex().upper() if draw(st.booleans()) else value.hex() for value in values]
            block[key_name(index, draw(st.booleans()))] = texts[0] if len(texts) == 1 else texts
        condition[operator] = block
    return condition


@st.composite
def deny_unless(draw: st.DrawFn) -> dict[str, Any]:
    index = draw(st.sampled_from(PINNED))
    operator = draw(st.sampled_from(["StringNotEquals", "StringNotEqualsIgnoreCase"]))
    return statement("Deny", {operator: {key_name(index, False): draw(st.sampled_from(POOL)).hex()}}, sid="deny")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    allow=conditions(),
    denies=st.lists(deny_unless(), max_size=1),
    document_pcrs=st.fixed_dictionaries({index: st.sampled_from(POOL) for index in PINNED}),
    action=st.sampled_from(["kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt"]),
)
def test_from_kms_key_policy_agrees_with_kms_evaluate(
    allow: dict[str, Any], denies: list[dict[str, Any]], document_pcrs: dict[int, bytes], action: str
) -> None:
    text = key_policy(statement("Allow", allow, action=["kms:Decrypt", "kms:GenerateDataKey"]), *denies)
    document = document_with(document_pcrs)
    try:
        policy = Policy.from_kms_key_policy(text, action=action, allow_debug=True)
    except KmsPolicyError:
        return  # agreement is promised only where a Policy can be made
    decision = kms.evaluate(text, document, action=action, principal=ROLE)
    assert decision.allowed == (policy.explain(document, PKI.document_time) == ()), decision.reasons
