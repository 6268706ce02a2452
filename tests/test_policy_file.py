"""Policy files: the JSON/TOML format round-trips, and every mistake is refused with the key named."""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nitro_attest import Policy, parse
from nitro_attest.kms import KeyPolicy, KmsPolicyError
from nitro_attest.policy_file import (
    MAX_POLICY_FILE_SIZE,
    PolicyFileError,
    PolicyFormat,
    dumps_policy,
    load_policy,
    loads_policy,
)
from nitro_attest.testing import DEFAULT_PCRS, TestPKI

PCR0 = DEFAULT_PCRS[0].hex()
PCR1 = DEFAULT_PCRS[1].hex()
OTHER = "ab" * 48
# Reading TOML needs tomllib (Python 3.11+); on 3.10 only the refusal is tested.
HAS_TOMLLIB = sys.version_info >= (3, 11)
needs_tomllib = pytest.mark.skipif(not HAS_TOMLLIB, reason="reading TOML needs tomllib (Python 3.11+)")
FORMATS: tuple[PolicyFormat, ...] = ("json", "toml") if HAS_TOMLLIB else ("json",)


def _json(table: dict[str, Any]) -> str:
    return json.dumps(table)


def _error(text: str | bytes, fmt: PolicyFormat = "json", source: str = "<string>") -> PolicyFileError:
    with pytest.raises(PolicyFileError) as caught:
        loads_policy(text, format=fmt, source=source)
    return caught.value


# --------------------------------------------------------------------------- reading


def test_json_example_reads_as_the_policy_it_states() -> None:
    text = """{
      "nitro_attest_policy": 1,
      "pcrs": {"0": "<PCR0>", "1": ["<PCR1>", "<OTHER>"]},
      "module_id": "i-*",
      "nonce": "00ff",
      "user_data": "",
      "public_key": "0A0b",
      "max_age_seconds": 300,
      "allow_debug": false
    }"""
    text = text.replace("<PCR0>", PCR0.upper()).replace("<PCR1>", PCR1).replace("<OTHER>", OTHER)
    expected = Policy(
        {0: PCR0, 1: [PCR1, OTHER]},
        module_id="i-*",
        nonce=b"\x00\xff",
        user_data=b"",
        public_key=b"\x0a\x0b",
        max_age=timedelta(seconds=300),
    )
    assert loads_policy(text, format="json") == expected


@needs_tomllib
def test_toml_example_with_bare_integer_keys() -> None:
    text = f"""
nitro_attest_policy = 1
max_age_seconds = 0.25
allow_debug = true

[pcrs]
0 = "{PCR0}"
31 = ["{PCR1}", "{OTHER}"]
"""
    expected = Policy({0: PCR0, 31: [PCR1, OTHER]}, max_age=timedelta(milliseconds=250), allow_debug=True)
    assert loads_policy(text, format="toml") == expected


def test_image_sha384_is_pcr0_and_both_must_hold() -> None:
    assert loads_policy(_json({"nitro_attest_policy": 1, "image_sha384": PCR0}), format="json") == Policy({0: PCR0})
    both = {"nitro_attest_policy": 1, "image_sha384": [PCR0, OTHER], "pcrs": {"0": PCR0}}
    assert loads_policy(_json(both), format="json") == Policy({0: PCR0})


def test_any_enclave_must_be_said() -> None:
    table: dict[str, Any] = {"nitro_attest_policy": 1, "any_enclave": True, "max_age_seconds": 60}
    assert loads_policy(_json(table), format="json") == Policy.any_enclave(max_age=timedelta(seconds=60))
    # false is the default: PCRs must then be pinned.
    table = {"nitro_attest_policy": 1, "any_enclave": False, "pcrs": {"0": PCR0}}
    assert loads_policy(_json(table), format="json") == Policy({0: PCR0})


def test_any_of_reads_alternatives() -> None:
    table = {"nitro_attest_policy": 1, "any_of": [{"pcrs": {"0": PCR0}}, {"image_sha384": OTHER, "allow_debug": True}]}
    expected = Policy.any_of(Policy({0: PCR0}), Policy({0: OTHER}, allow_debug=True))
    assert loads_policy(_json(table), format="json") == expected


def test_byte_order_mark_is_accepted() -> None:
    text = _json({"nitro_attest_policy": 1, "pcrs": {"0": PCR0}})
    assert loads_policy(b"\xef\xbb\xbf" + text.encode(), format="json") == Policy({0: PCR0})
    assert loads_policy("\ufeff" + text, format="json") == Policy({0: PCR0})


def test_loaded_policy_judges_a_document() -> None:
    document = parse(TestPKI.create().document())
    accepting = loads_policy(_json({"nitro_attest_policy": 1, "pcrs": {"0": PCR0, "1": PCR1}}), format="json")
    assert accepting.explain(document, allow_unverified=True) == ()
    rejecting = loads_policy(_json({"nitro_attest_policy": 1, "pcrs": {"0": OTHER}}), format="json")
    assert [failure.index for failure in rejecting.explain(document, allow_unverified=True)] == [0]


# --------------------------------------------------------------------------- writing and round trips


def test_dumps_json_is_readable_and_stable() -> None:
    policy = Policy({8: OTHER, 0: [PCR1, PCR0]}, max_age=timedelta(seconds=1, microseconds=500))
    text = dumps_policy(policy)
    assert json.loads(text) == {
        "nitro_attest_policy": 1,
        "pcrs": {"0": sorted([PCR0, PCR1]), "8": OTHER},
        "max_age_seconds": 1.0005,
    }
    assert text.endswith("}\n")
    assert '"max_age_seconds": 1.0005' in text  # an exact decimal, not a float's repr


@needs_tomllib
def test_dumps_toml_uses_tables_for_pcrs_and_any_of() -> None:
    policy = Policy.any_of(Policy({0: PCR0}, module_id="i-*"), Policy.any_enclave(nonce=b"\x01"))
    text = dumps_policy(policy, format="toml")
    assert "[[any_of]]" in text
    assert "[any_of.pcrs]" in text
    assert f'0 = "{PCR0}"' in text
    assert "any_enclave = true" in text
    assert loads_policy(text, format="toml") == policy


def test_dumps_rejects_unknown_format_and_non_policy() -> None:
    with pytest.raises(ValueError, match="format"):
        dumps_policy(Policy({0: PCR0}), format="yaml")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Policy"):
        dumps_policy({0: PCR0})  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_of_awkward_strings(fmt: PolicyFormat) -> None:
    policy = Policy.any_enclave(module_id='i-*"\\\x00\t\n\x7f\u00e9\U0001f600?')
    assert loads_policy(dumps_policy(policy, format=fmt), format=fmt) == policy


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_of_extreme_ages(fmt: PolicyFormat) -> None:
    for age in (timedelta(0), timedelta(microseconds=1), timedelta.max, timedelta(days=3, microseconds=10)):
        policy = Policy.any_enclave(max_age=age)
        assert loads_policy(dumps_policy(policy, format=fmt), format=fmt) == policy


_PINS = st.frozensets(st.binary(min_size=48, max_size=48), min_size=1, max_size=3)
_FIELD = st.none() | st.binary(max_size=80)


@st.composite
def _plain_policies(draw: st.DrawFn) -> Policy:
    options: dict[str, Any] = {
        "nonce": draw(_FIELD),
        "user_data": draw(_FIELD),
        "public_key": draw(_FIELD),
        "max_age": draw(st.none() | st.timedeltas(min_value=timedelta(0))),
        "allow_debug": draw(st.booleans()),
        "module_id": draw(st.none() | st.text(min_size=1, max_size=24)),
    }
    if draw(st.booleans()):
        return Policy.any_enclave(**options)
    return Policy(draw(st.dictionaries(st.integers(0, 31), _PINS, min_size=1, max_size=5)), **options)


_POLICIES = _plain_policies() | st.lists(_plain_policies(), min_size=2, max_size=3).map(
    lambda policies: Policy.any_of(*policies)
)


@settings(max_examples=150, deadline=None)
@given(policy=_POLICIES, fmt=st.sampled_from(FORMATS))
def test_round_trip_of_generated_policies(policy: Policy, fmt: PolicyFormat) -> None:
    text = dumps_policy(policy, format=fmt)
    assert loads_policy(text, format=fmt) == policy


# --------------------------------------------------------------------------- errors


def _with(**changes: Any) -> str:
    table: dict[str, Any] = {"nitro_attest_policy": 1, "pcrs": {"0": PCR0}}
    table.update(changes)
    return _json({key: value for key, value in table.items() if value is not None})


_DROP: Any = None  # in _with(): removes the key

ERRORS: list[tuple[str, str, str, str]] = [
    # (id, JSON text, key named, words of the problem)
    ("version-missing", _with(nitro_attest_policy=_DROP), "nitro_attest_policy", "missing"),
    ("version-unsupported", _with(nitro_attest_policy=2), "nitro_attest_policy", "not supported"),
    ("version-string", _with(nitro_attest_policy="1"), "nitro_attest_policy", "got a string"),
    ("version-bool", _with(nitro_attest_policy=True), "nitro_attest_policy", "got a boolean"),
    ("version-float", '{"nitro_attest_policy": 1.0, "any_enclave": true}', "nitro_attest_policy", "integer 1"),
    ("typo-top", _with(pcr={"0": PCR0}), "pcr", "did you mean 'pcrs'"),
    ("typo-unrelated", _with(colour="red"), "colour", "expected one of"),
    ("odd-key-quoted", _with(**{"a.b": 1}), '"a.b"', "unknown key"),
    ("pcrs-list", _with(pcrs=[PCR0]), "pcrs", "expected a table"),
    ("pcrs-index-32", _with(pcrs={"32": PCR0}), "pcrs.32", "0..31"),
    ("pcrs-index-leading-zero", _with(pcrs={"00": PCR0}), "pcrs.00", "0..31"),
    ("pcrs-index-negative", _with(pcrs={"-1": PCR0}), "pcrs.-1", "0..31"),
    ("pcrs-index-name", _with(pcrs={"PCR0": PCR0}), "pcrs.PCR0", "0..31"),
    ("pcrs-short", _with(pcrs={"0": PCR0[:-1]}), "pcrs.0", "96 hex digits"),
    ("pcrs-not-hex", _with(pcrs={"0": "g" + PCR0[1:]}), "pcrs.0", "character 1 is 'g'"),
    ("pcrs-number", _with(pcrs={"0": 12}), "pcrs.0", "got an integer"),
    ("pcrs-empty-list", _with(pcrs={"0": []}), "pcrs.0", "empty list"),
    ("pcrs-list-item", _with(pcrs={"0": [PCR0, None]}), "pcrs.0[1]", "got null"),
    ("pcrs-list-repeat", _with(pcrs={"0": [PCR0, PCR0.upper()]}), "pcrs.0[1]", "listed twice"),
    ("pcrs-empty", _with(pcrs={}), "pcrs", "any_enclave = true"),
    ("pcrs-missing", _with(pcrs=_DROP, nonce="00"), "pcrs", "missing"),
    ("image-bad", _with(pcrs=_DROP, image_sha384="00"), "image_sha384", "96 hex digits"),
    ("image-disjoint", _with(image_sha384=OTHER), "image_sha384", "no common value"),
    ("any-enclave-and-pcrs", _with(any_enclave=True), "any_enclave", "cannot be combined with pcrs"),
    (
        "any-enclave-and-image",
        _with(pcrs=_DROP, image_sha384=PCR0, any_enclave=True),
        "any_enclave",
        "cannot be combined with image_sha384",
    ),
    ("any-enclave-string", _with(pcrs=_DROP, any_enclave="yes"), "any_enclave", "true or false"),
    ("module-id-empty", _with(module_id=""), "module_id", "non-empty"),
    ("module-id-number", _with(module_id=7), "module_id", "got an integer"),
    ("module-id-surrogate", _with(module_id="\ud800"), "module_id", "surrogate"),
    ("nonce-odd", _with(nonce="abc"), "nonce", "odd number"),
    ("nonce-not-hex", _with(nonce="0x00"), "nonce", "character 2 is 'x'"),
    ("nonce-bytes-list", _with(nonce=[0, 1]), "nonce", "expected a hex string"),
    ("user-data-too-long", _with(user_data="00" * 1025), "user_data", "at most 1024"),
    # JSON null is a wrong type, not "absent": no policy value is null.
    (
        "public-key-null",
        '{"nitro_attest_policy": 1, "any_enclave": true, "public_key": null}',
        "public_key",
        "got null",
    ),
    ("max-age-negative", _with(max_age_seconds=-1), "max_age_seconds", ">= 0"),
    ("max-age-string", _with(max_age_seconds="300"), "max_age_seconds", "got a string"),
    ("max-age-bool", _with(max_age_seconds=True), "max_age_seconds", "got a boolean"),
    ("max-age-nanoseconds", _with(max_age_seconds=1e-7), "max_age_seconds", "finer than a microsecond"),
    ("max-age-huge", _with(max_age_seconds=10**20), "max_age_seconds", "more than a timedelta holds"),
    ("allow-debug-string", _with(allow_debug="false"), "allow_debug", "true or false"),
    ("any-of-and-pcrs", _with(any_of=[{"pcrs": {"0": PCR0}}]), "pcrs", "cannot be combined with any_of"),
    ("any-of-table", _with(pcrs=_DROP, any_of={"pcrs": {"0": PCR0}}), "any_of", "expected a list"),
    ("any-of-empty", _with(pcrs=_DROP, any_of=[]), "any_of", "at least one"),
    ("any-of-item", _with(pcrs=_DROP, any_of=[{"pcrs": {"0": PCR0}}, "x"]), "any_of[1]", "expected a policy table"),
    (
        "any-of-version",
        _with(pcrs=_DROP, any_of=[{"nitro_attest_policy": 1, "pcrs": {"0": PCR0}}]),
        "any_of[0].nitro_attest_policy",
        "top level",
    ),
    ("any-of-nested", _with(pcrs=_DROP, any_of=[{"any_of": []}]), "any_of[0].any_of", "do not nest"),
    ("any-of-typo", _with(pcrs=_DROP, any_of=[{"pcrs": {"0": PCR0}, "nonse": "00"}]), "any_of[0].nonse", "nonce"),
    (
        "any-of-unpinned",
        _with(pcrs=_DROP, any_of=[{"pcrs": {"0": PCR0}}, {"nonce": "00"}]),
        "any_of[1].pcrs",
        "missing",
    ),
    (
        "any-of-deep-path",
        _with(pcrs=_DROP, any_of=[{"any_enclave": True}, {"pcrs": {"0": PCR0, "1": [PCR1, "zz"]}}]),
        "any_of[1].pcrs.1[1]",
        "96 hex digits",
    ),
    (
        "repeated-top",
        '{"nitro_attest_policy": 1, "any_enclave": true, "any_enclave": false}',
        "(top level)",
        "repeated",
    ),
    (
        "repeated-nested",
        '{"nitro_attest_policy": 1, "any_of": [{"pcrs": {"0": "' + PCR0 + '", "0": "' + OTHER + '"}}]}',
        "any_of[0].pcrs",
        'repeated key "0"',
    ),
]


@pytest.mark.parametrize(("text", "key", "problem"), [case[1:] for case in ERRORS], ids=[case[0] for case in ERRORS])
def test_json_errors_name_the_key(text: str, key: str, problem: str) -> None:
    error = _error(text, source="policy.json")
    assert error.key == key
    assert problem in error.problem
    assert str(error) == f"policy.json: {key}: {error.problem}"
    assert error.source == "policy.json"
    assert isinstance(error, ValueError)


TOML_ERRORS: list[tuple[str, str, str, str]] = [
    ("version-missing", f'[pcrs]\n0 = "{PCR0}"\n', "nitro_attest_policy", "missing"),
    ("empty-file", "", "nitro_attest_policy", "missing"),
    ("pcrs-index", f'nitro_attest_policy = 1\n[pcrs]\n32 = "{PCR0}"\n', "pcrs.32", "0..31"),
    ("pcrs-hex", 'nitro_attest_policy = 1\n[pcrs]\n0 = "00"\n', "pcrs.0", "96 hex digits"),
    ("date", "nitro_attest_policy = 1\nany_enclave = true\nmodule_id = 2026-01-01\n", "module_id", "date or time"),
    ("max-age-inf", "nitro_attest_policy = 1\nany_enclave = true\nmax_age_seconds = inf\n", "max_age_seconds", ">= 0"),
    ("max-age-nan", "nitro_attest_policy = 1\nany_enclave = true\nmax_age_seconds = nan\n", "max_age_seconds", ">= 0"),
    (
        "alternative-unpinned",
        f'nitro_attest_policy = 1\n[[any_of]]\n[any_of.pcrs]\n0 = "{PCR0}"\n[[any_of]]\nallow_debug = true\n',
        "any_of[1].pcrs",
        "missing",
    ),
    ("typo", "nitro_attest_policy = 1\nany_enclave = true\nallow_debgu = true\n", "allow_debgu", "allow_debug"),
]


@needs_tomllib
@pytest.mark.parametrize(
    ("text", "key", "problem"), [case[1:] for case in TOML_ERRORS], ids=[case[0] for case in TOML_ERRORS]
)
def test_toml_errors_name_the_key(text: str, key: str, problem: str) -> None:
    error = _error(text, "toml", source="policy.toml")
    assert error.key == key
    assert problem in error.problem
    assert str(error).startswith(f"policy.toml: {key}: ")


def test_errors_survive_pickling() -> None:
    for error in (_error(_with(pcrs={"0": "00"}), source="p.json"), _error("{", source="p.json")):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is PolicyFileError
        assert (str(copy), copy.source, copy.problem, copy.key, copy.line, copy.column) == (
            str(error),
            error.source,
            error.problem,
            error.key,
            error.line,
            error.column,
        )


def test_json_syntax_error_has_line_and_column() -> None:
    # A missing colon: every CPython's json points at the same place (a trailing comma moved in 3.13).
    error = _error('{\n  "nitro_attest_policy": 1,\n  "pcrs": {"0" "aa"}\n}', source="p.json")
    assert (error.line, error.column) == (3, 16)
    assert error.key is None
    assert str(error).startswith("p.json: line 3, column 16: not valid JSON")


@needs_tomllib
def test_toml_syntax_error_has_line_and_column() -> None:
    error = _error('nitro_attest_policy = 1\n\npcrs = { 0 = "a" \n', "toml", source="p.toml")
    assert error.line == 3
    assert error.column is not None
    assert str(error).startswith("p.toml: line 3, column ")
    assert "(at line" not in str(error)


@needs_tomllib
def test_toml_repeated_key_is_a_syntax_error() -> None:
    error = _error("nitro_attest_policy = 1\nany_enclave = true\nany_enclave = true\n", "toml")
    assert "not valid TOML" in str(error)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[1, 2]", "JSON object at the top level"),
        ('{"nitro_attest_policy": 1, "any_enclave": true, "max_age_seconds": NaN}', "NaN"),
        ("", "not valid JSON"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ],
)
def test_json_documents_that_are_not_policies(text: str, words: str) -> None:
    assert words in str(_error(text))


@needs_tomllib
def test_toml_nested_too_deeply() -> None:
    assert "nested too deeply" in str(_error("a = " + "[" * 100_000 + "]" * 100_000, "toml"))


def test_max_age_just_above_timedelta_max() -> None:
    limit = timedelta.max // timedelta(seconds=1) + 1
    assert "more than a timedelta holds" in str(_error(_with(max_age_seconds=limit)))


def test_not_utf8() -> None:
    assert "not UTF-8" in str(_error(b'{"nitro_attest_policy": 1, "module_id": "\xff"}'))


def test_size_cap() -> None:
    padding = " " * MAX_POLICY_FILE_SIZE
    assert "larger than 1 MiB" in str(_error(padding + _with()))
    assert "larger than 1 MiB" in str(_error((padding + _with()).encode(), "toml"))


def test_unknown_format_argument() -> None:
    with pytest.raises(ValueError, match="format"):
        loads_policy(_with(), format="yaml")  # type: ignore[arg-type]


def test_toml_needs_python_311(monkeypatch: pytest.MonkeyPatch) -> None:
    # What Python 3.10 does: there is no tomllib to import.
    monkeypatch.setitem(sys.modules, "tomllib", None)
    error = _error("nitro_attest_policy = 1\nany_enclave = true\n", "toml", source="p.toml")
    assert str(error) == "p.toml: TOML policies need Python 3.11 or later; use JSON"


# --------------------------------------------------------------------------- the documentation's examples

DOCS = Path(__file__).resolve().parents[1] / "docs" / "policies.md"
_FENCED = re.compile(r"```(json|toml)\n(.*?)```", re.DOTALL)


def _documented_policies() -> list[Any]:
    found = _FENCED.findall(DOCS.read_text(encoding="utf-8"))
    return [
        pytest.param(fmt, text, id=f"{fmt}-{n}", marks=[needs_tomllib] if fmt == "toml" else [])
        for n, (fmt, text) in enumerate(found)
        if "nitro_attest_policy" in text
    ]


@pytest.mark.parametrize(("fmt", "text"), _documented_policies())
def test_documented_examples_are_valid(fmt: PolicyFormat, text: str) -> None:
    # "<old PCR0>" placeholders stand for real values.
    concrete = re.sub(r"<[^>]+>", lambda match: hashlib.sha384(match.group().encode()).hexdigest(), text)
    policy = loads_policy(concrete, format=fmt)
    assert policy.pcrs or policy.alternatives


def test_documentation_has_both_formats() -> None:
    assert {param.values[0] for param in _documented_policies()} == {"json", "toml"}


# --------------------------------------------------------------------------- files and KMS key policies

KEY_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "EnclaveDecrypt",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:role/app"},
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": {"StringEqualsIgnoreCase": {"kms:RecipientAttestation:ImageSha384": PCR0}},
        }
    ],
}


@pytest.mark.parametrize("name", ["policy.json", "POLICY.JSON", pytest.param("policy.toml", marks=needs_tomllib)])
def test_load_policy_by_extension(tmp_path: Path, name: str) -> None:
    policy = Policy({0: PCR0}, max_age=timedelta(seconds=30))
    path = tmp_path / name
    path.write_text(dumps_policy(policy, format="toml" if name.endswith("toml") else "json"), encoding="utf-8")
    assert load_policy(path) == policy
    assert load_policy(str(path)) == policy


def test_load_policy_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(_with(pcrs={"0": "00"}), encoding="utf-8")
    with pytest.raises(PolicyFileError, match=r"bad\.json: pcrs\.0: expected 96 hex digits"):
        load_policy(path)


def test_load_policy_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("nitro_attest_policy: 1\n", encoding="utf-8")
    with pytest.raises(PolicyFileError, match=r"policy\.yaml: .*\.json or \.toml"):
        load_policy(path)


def test_load_policy_missing_file(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        load_policy(tmp_path / "absent.json")


def test_load_policy_size_cap(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    path.write_bytes(b" " * (MAX_POLICY_FILE_SIZE + 1) + _with().encode())
    with pytest.raises(PolicyFileError, match="larger than 1 MiB"):
        load_policy(path)


@pytest.mark.parametrize(
    "key_policy",
    [
        KEY_POLICY,
        {"Statement": KEY_POLICY["Statement"]},  # Version is optional
        {"Statement": KEY_POLICY["Statement"][0], "Version": "2012-10-17"},  # one statement, not a list
    ],
)
def test_load_policy_detects_kms_key_policies(tmp_path: Path, key_policy: dict[str, Any]) -> None:
    path = tmp_path / "key-policy.json"
    path.write_text(json.dumps(key_policy, indent=2), encoding="utf-8")
    loaded = load_policy(path)
    assert isinstance(loaded, KeyPolicy)
    assert [statement.sid for statement in loaded.statements] == ["EnclaveDecrypt"]


def test_malformed_kms_key_policy_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "key-policy.json"
    statement = {**KEY_POLICY["Statement"][0], "Effect": "Permit"}
    path.write_text(json.dumps({"Version": "2012-10-17", "Statement": [statement]}), encoding="utf-8")
    with pytest.raises(KmsPolicyError, match=r"key-policy\.json: .*Effect"):
        load_policy(path)
    # Version alone is a key policy missing its Statement, not a nitro_attest policy with unknown keys.
    path.write_text('{"Version": "2012-10-17"}', encoding="utf-8")
    with pytest.raises(KmsPolicyError, match="Statement"):
        load_policy(path)


def test_loads_policy_refuses_a_kms_key_policy() -> None:
    error = _error(json.dumps(KEY_POLICY))
    assert "AWS KMS key policy" in str(error)
    assert "load_policy" in str(error)


def test_a_nitro_attest_policy_with_statement_is_not_taken_for_kms(tmp_path: Path) -> None:
    path = tmp_path / "mixed.json"
    path.write_text(_with(Statement=[]), encoding="utf-8")
    with pytest.raises(PolicyFileError, match=r"mixed\.json: Statement: unknown key"):
        load_policy(path)
