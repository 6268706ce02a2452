"""Policy beyond single pins: KMS's PCR0 name, module_id patterns, any_of, and every failure reported."""

from __future__ import annotations

import pickle
from datetime import timedelta

import pytest

import nitro_attest
from nitro_attest import AttestationDocument, Policy, PolicyFailure, PolicyViolation
from nitro_attest.testing import DEFAULT_MODULE_ID, DEFAULT_PCRS, TestPKI

OLD_IMAGE = {0: DEFAULT_PCRS[0], 1: DEFAULT_PCRS[1], 2: DEFAULT_PCRS[2]}
NEW_IMAGE = {index: bytes([index + 1]) * 48 for index in (0, 1, 2)}


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI.create()


@pytest.fixture(scope="module")
def document(pki: TestPKI) -> AttestationDocument:
    data = pki.document(nonce=b"n0", user_data=b"u0")
    return nitro_attest.verify(data, Policy.any_enclave(), at=pki.document_time, roots=pki.roots)


def test_explain_lists_every_failure_in_order(pki: TestPKI, document: AttestationDocument) -> None:
    policy = Policy(
        {0: NEW_IMAGE[0], 2: NEW_IMAGE[2], 20: DEFAULT_PCRS[0]},
        nonce=b"other",
        user_data=b"u0",
        public_key=b"key",
        max_age=timedelta(seconds=1),
        module_id="i-ffff*",
    )
    later = pki.document_time + timedelta(minutes=5)
    failures = policy.explain(document, later)
    assert [(failure.code, failure.index) for failure in failures] == [
        ("pcr", 0),
        ("pcr", 2),
        ("pcr", 20),
        ("module_id", None),
        ("nonce", None),
        ("public_key", None),
        ("stale", None),
    ]
    pcr0 = failures[0]
    assert pcr0.expected == (NEW_IMAGE[0].hex(),)
    assert pcr0.actual == DEFAULT_PCRS[0].hex()
    assert failures[2].actual is None  # PCR20 is absent from the document
    assert failures[4].expected == (b"other".hex(),) and failures[4].actual == b"n0".hex()
    assert failures[5].actual is None


def test_check_raises_with_all_failures_and_the_first_code(pki: TestPKI, document: AttestationDocument) -> None:
    policy = Policy({1: NEW_IMAGE[1]}, nonce=b"other")
    with pytest.raises(PolicyViolation) as caught:
        policy.check(document, pki.document_time)
    assert caught.value.code == "pcr"
    assert [failure.code for failure in caught.value.failures] == ["pcr", "nonce"]
    assert "PCR1" in str(caught.value) and "nonce" in str(caught.value)


def test_verify_raises_the_same_failures_as_explain(pki: TestPKI) -> None:
    policy = Policy({0: NEW_IMAGE[0]}, user_data=b"x")
    data = pki.document()
    with pytest.raises(PolicyViolation) as caught:
        nitro_attest.verify(data, policy, at=pki.document_time, roots=pki.roots)
    document = nitro_attest.verify(data, Policy.any_enclave(), at=pki.document_time, roots=pki.roots)
    assert caught.value.failures == policy.explain(document, pki.document_time)


def test_explain_is_empty_when_accepted(pki: TestPKI, document: AttestationDocument) -> None:
    assert Policy(OLD_IMAGE, nonce=b"n0", module_id=DEFAULT_MODULE_ID).explain(document, pki.document_time) == ()


def test_explain_defaults_to_now(document: AttestationDocument) -> None:
    failures = Policy(OLD_IMAGE, max_age=timedelta(days=1)).explain(document)
    assert [failure.code for failure in failures] == ["stale"]


def test_debug_is_reported_with_the_pcr_failures(pki: TestPKI) -> None:
    zero = bytes(48)
    data = pki.document(pcrs={**DEFAULT_PCRS, 0: zero, 1: zero, 2: zero})
    document = nitro_attest.verify(data, Policy.any_enclave(allow_debug=True), at=pki.document_time, roots=pki.roots)
    codes = [failure.code for failure in Policy(OLD_IMAGE).explain(document, pki.document_time)]
    assert codes == ["debug", "pcr", "pcr", "pcr"]


# -- image_sha384 ---------------------------------------------------------------------------------


def test_image_sha384_alone_pins_pcr0(pki: TestPKI, document: AttestationDocument) -> None:
    assert Policy(image_sha384=DEFAULT_PCRS[0].hex().upper()).pcrs == {0: frozenset({DEFAULT_PCRS[0]})}
    failures = Policy(image_sha384=NEW_IMAGE[0]).explain(document, pki.document_time)
    assert [(failure.code, failure.index) for failure in failures] == [("pcr", 0)]


def test_image_sha384_and_pcr0_must_both_hold() -> None:
    both = Policy({0: [DEFAULT_PCRS[0], NEW_IMAGE[0]]}, image_sha384=[DEFAULT_PCRS[0]])
    assert both.pcrs[0] == frozenset({DEFAULT_PCRS[0]})
    with pytest.raises(ValueError, match="no common value"):
        Policy({0: DEFAULT_PCRS[0]}, image_sha384=NEW_IMAGE[0])


# -- module_id ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "accepted"),
    [
        (DEFAULT_MODULE_ID, True),
        ("i-0123456789abcdef0-enc*", True),
        ("i-0123456789abcdef?-enc0123456789abcdef0", True),
        ("*", True),
        ("i-0123456789abcdef0", False),  # a pattern matches the whole ID, not a prefix
        ("I-0123456789ABCDEF0-enc*", False),  # StringLike is case-sensitive
        ("i-0123456789abcdef0-enc[0-9]*", False),  # brackets are literal, as in IAM
        ("i-.*", False),  # and so are regex metacharacters
    ],
)
def test_module_id_pattern(pki: TestPKI, document: AttestationDocument, pattern: str, accepted: bool) -> None:
    failures = Policy(OLD_IMAGE, module_id=pattern).explain(document, pki.document_time)
    assert (failures == ()) is accepted
    if not accepted:
        assert failures[0].code == "module_id" and failures[0].actual == DEFAULT_MODULE_ID


@pytest.mark.parametrize("pattern", ["", 7])
def test_module_id_pattern_must_be_text(pattern: object) -> None:
    with pytest.raises(TypeError, match="module_id"):
        Policy(OLD_IMAGE, module_id=pattern)  # type: ignore[arg-type]


# -- any_of ---------------------------------------------------------------------------------------


def test_any_of_accepts_either_image(pki: TestPKI, document: AttestationDocument) -> None:
    rolling = Policy.any_of(Policy(NEW_IMAGE), Policy(OLD_IMAGE))
    assert rolling.explain(document, pki.document_time) == ()
    nitro_attest.verify(pki.document(), rolling, at=pki.document_time, roots=pki.roots)


def test_any_of_checks_each_policy_jointly(pki: TestPKI, document: AttestationDocument) -> None:
    # PCR0 of the running image with PCR1 of the other must not pass as a mix.
    mixed = Policy.any_of(Policy({0: OLD_IMAGE[0], 1: NEW_IMAGE[1]}), Policy({0: NEW_IMAGE[0], 1: OLD_IMAGE[1]}))
    failures = mixed.explain(document, pki.document_time)
    assert [(failure.alternative, failure.index) for failure in failures] == [(0, 1), (1, 0)]
    with pytest.raises(PolicyViolation) as caught:
        mixed.check(document, pki.document_time)
    assert "[policy 0] PCR1" in str(caught.value) and "[policy 1] PCR0" in str(caught.value)


def test_any_of_keeps_each_policys_other_constraints(pki: TestPKI, document: AttestationDocument) -> None:
    rolling = Policy.any_of(Policy(OLD_IMAGE, nonce=b"other"), Policy(NEW_IMAGE, nonce=b"n0"))
    assert [failure.code for failure in rolling.explain(document, pki.document_time)] == ["nonce", "pcr", "pcr", "pcr"]


def test_any_of_flattens_and_unwraps() -> None:
    first, second, third = Policy(OLD_IMAGE), Policy(NEW_IMAGE), Policy({3: DEFAULT_PCRS[3]})
    assert Policy.any_of(first) is first
    assert Policy.any_of(Policy.any_of(first, second), third).alternatives == (first, second, third)


@pytest.mark.parametrize("arguments", [(), ("not a policy",)])
def test_any_of_rejects_bad_arguments(arguments: tuple[object, ...]) -> None:
    with pytest.raises((ValueError, TypeError)):
        Policy.any_of(*arguments)  # type: ignore[arg-type]


# -- values ---------------------------------------------------------------------------------------


def test_policies_are_values() -> None:
    assert Policy({0: DEFAULT_PCRS[0].hex()}) == Policy({0: DEFAULT_PCRS[0].hex().upper()})
    assert hash(Policy({0: DEFAULT_PCRS[0]})) == hash(Policy(image_sha384=DEFAULT_PCRS[0]))
    assert Policy({0: DEFAULT_PCRS[0]}) != Policy({0: DEFAULT_PCRS[0]}, allow_debug=True)
    with pytest.raises(AttributeError):
        Policy(OLD_IMAGE).nonce = b"x"  # type: ignore[misc]


def test_policy_violation_survives_pickling() -> None:
    failure = PolicyFailure("pcr", "PCR0 differs", 0, ("aa",), "bb")
    error = PolicyViolation("pcr", "PCR0 differs", (failure,))
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.code, copy.message, copy.failures) == ("pcr", "PCR0 differs", (failure,))


@pytest.mark.parametrize(
    ("pcrs", "error", "match"),
    [
        ({0: "ab"}, ValueError, "96 hex digits"),
        ({0: "zz" * 48}, ValueError, "not hexadecimal"),
        ({0: b"\x00" * 47}, ValueError, "48 bytes"),
        ({0: []}, ValueError, "no allowed values"),
        ({0: 5}, TypeError, "allowed values"),
        ({0: [5]}, TypeError, "hex string or bytes"),
        ({32: DEFAULT_PCRS[0]}, ValueError, "index"),
        ({True: DEFAULT_PCRS[0]}, ValueError, "index"),
        ([(0, DEFAULT_PCRS[0])], TypeError, "mapping"),
    ],
)
def test_bad_pins_are_refused(pcrs: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        Policy(pcrs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"max_age": timedelta(seconds=-1)}, ValueError),
        ({"max_age": 60}, ValueError),
        ({"allow_debug": 1}, TypeError),
        ({"nonce": "text"}, TypeError),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        Policy(OLD_IMAGE, **options)  # type: ignore[arg-type]


def test_huge_max_age_is_not_an_overflow(pki: TestPKI, document: AttestationDocument) -> None:
    assert Policy(OLD_IMAGE, max_age=timedelta.max).explain(document, pki.document_time) == ()


def test_pcrs_mapping_is_indexed_by_integers_only(document: AttestationDocument) -> None:
    assert True not in document.pcrs  # True == 1, but a bool is not a PCR index
    with pytest.raises(KeyError):
        document.pcrs[True]  # type: ignore[index]
    assert document.pcrs[1] == DEFAULT_PCRS[1] and len(document.pcrs) == 16
