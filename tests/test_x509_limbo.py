"""C2SP x509-limbo (``../shared/x509-limbo``) over the chain rules of DESIGN.md section 3.

Each limbo case runs once per algorithm pin, as one parameter named by its limbo id:

- ``relaxed``: our rules with any key and signature algorithm cryptography can
  verify (limbo is mostly P-256), compared with limbo's expected result, or
  with the Nitro profile's where ``nitro_profile_overrides.json`` or the
  references in :data:`PROFILE_DIFFERENCES` say it differs. The relaxed pin is
  defined here, never in the package, and runs through the private
  ``nitro_attest._chain._validate_path``, which has no cache; here every
  relaxed run happens with ``LINK_CACHE`` replaced by a tripwire, so a run
  that touched it would fail.
- ``nitro``: the real pin (ecdsa-with-SHA384 by P-384 keys, on our backends).
  A path that is not all P-384/SHA-384 is rejected with ``certificate``, or
  with ``chain`` when its first certificate is not trusted (the root pin comes
  first); an all-P-384 path keeps the relaxed run's expectation. The same
  certificates are then sent through ``nitro_attest.verify()`` in a document
  and must get the same error.

Our verifier validates a fixed-order path and builds none: this harness orders
limbo's untrusted intermediates from the leaf to a trusted certificate by
names. Cases that need path building, or whose intermediates chain by name in
more than one way, are skipped saying so; so is every case whose expected
result depends on something outside the Nitro profile. Every expected
rejection names the rule of ours that makes it (:data:`REJECTED_BY`): a case
never passes because it failed for another reason.

``pytest tests/test_x509_limbo.py -rs`` lists every skip with its reason and
count; :func:`test_summary` pins the counts per pin (docs/security.md quotes them).
"""

from __future__ import annotations

import ast
import inspect
import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import pytest
from conftest import absent_reason, shared_path
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import SignatureAlgorithmOID

import nitro_attest
from nitro_attest import CertificateInvalid, MalformedDocument, NitroAttestError, Policy
from nitro_attest import _chain as chain
from nitro_attest._chain import CLOCK_SKEW, LINK_CACHE
from nitro_attest.document import MAX_CERTIFICATE_SIZE, _load_certificate
from nitro_attest.testing import DEFAULT_PCRS, TestPKI, derive_key

LIMBO = "x509-limbo/limbo-nitro-subset.json"
OVERRIDES = "x509-limbo/nitro_profile_overrides.json"

Pin = Literal["relaxed", "nitro"]
PINS: tuple[Pin, ...] = ("relaxed", "nitro")


def _any_key_problem(certificate: x509.Certificate) -> str | None:
    try:
        certificate.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        return f"unusable public key: {exc}"
    return None


def _signed_by_any_algorithm(issuer: x509.Certificate, subject: x509.Certificate) -> bool:
    # What cryptography raises for a signature it cannot check or that does not verify.
    try:
        subject.verify_directly_issued_by(issuer)
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        return False
    return True


#: Any key and signature algorithm cryptography can verify: limbo's algorithms. Never for documents.
RELAXED_PIN = chain._AlgorithmPin("relaxed", _any_key_problem, _signed_by_any_algorithm)
_PIN_OBJECTS = {"relaxed": RELAXED_PIN, "nitro": chain._NITRO_PIN}

# cryptography warns (and will refuse) when it loads a serial number <= 0;
# document.py rejects those itself, which the serial cases check.
pytestmark = pytest.mark.filterwarnings("ignore:Parsed a serial number which wasn't positive")


def _read_json(relative: str) -> Any:
    path = shared_path(relative)
    return None if path is None else json.loads(path.read_text(encoding="utf-8"))


_LIMBO: Any = _read_json(LIMBO)
_PROFILE: Any = _read_json(OVERRIDES)
CASES: list[dict[str, Any]] = _LIMBO["testcases"] if _LIMBO is not None else []
CASES_BY_ID: dict[str, dict[str, Any]] = {case["id"]: case for case in CASES}
OVERRIDE_EXPECTED: dict[str, str] = _PROFILE["override_expected"] if _PROFILE is not None else {}
PATH_BUILDING_CASES: frozenset[str] = frozenset(_PROFILE["not_applicable_path_building"] if _PROFILE else ())

# --- Skip reasons: one text each, so that `pytest -rs` counts them -----------------------

PATH_BUILDING = (
    "path building: listed in nitro_profile_overrides.json not_applicable_path_building; our verifier takes "
    "a fixed-order path from cabundle[0], a trusted root, and builds none (DESIGN.md section 3)"
)
AMBIGUOUS = (
    "ordering ambiguous: the intermediates chain by name from the leaf to a trusted certificate in more than "
    "one way, and our verifier builds no paths (DESIGN.md section 3)"
)
ALGORITHM_POLICY = (
    "key/signature algorithm policy (DSA, P-192, weak or odd-sized RSA, explicit curve parameters): the "
    "relaxed pin accepts any algorithm by design; the nitro-pin run of the same case decides it (rejected)"
)
MAX_CHAIN_DEPTH = (
    "max_chain_depth is a validator setting the Nitro profile does not have (its only bound is cabundle's "
    "1..8 certificates, DESIGN.md section 1); limbo's SUCCESS cases with a depth still run"
)
AKI_RULES = (
    "authorityKeyIdentifier content rules (CA/B Forum root AKI, pedantic RFC 5280) are outside the Nitro "
    "profile: AKI/SKI are not checked (nitro_profile_overrides.json note) and the root is pinned by its bytes"
)
SERIAL_LENGTH = (
    "serial number length over 20 octets (limbo feature pedantic-serial-number) is not checked by the Nitro "
    "profile; a serial <= 0 is rejected (document.py, RFC 5280 4.1.2.2), which the serial cases check"
)
SUBSET_LACKS_INTERMEDIATE = (
    "limbo-nitro-subset.json omits the intermediate this case is about (untrusted_intermediates is empty, the "
    "leaf's issuer is absent): a rejection would be for the missing link, not the rule under test "
    "(tests/test_rules.py covers that rule)"
)

#: Skipped under the relaxed pin only; the nitro pin rejects these paths whatever the reason.
RELAXED_SKIPS: Mapping[str, str] = {
    "webpki::explicit-curve": ALGORITHM_POLICY,
    "webpki::forbidden-dsa-leaf": ALGORITHM_POLICY,
    "webpki::forbidden-dsa-root": ALGORITHM_POLICY,
    "webpki::forbidden-p192-leaf": ALGORITHM_POLICY,
    "webpki::forbidden-p192-root": ALGORITHM_POLICY,
    "webpki::forbidden-rsa-key-not-divisible-by-8-in-leaf": ALGORITHM_POLICY,
    "webpki::forbidden-rsa-not-divisible-by-8-in-root": ALGORITHM_POLICY,
    "webpki::forbidden-weak-rsa-in-leaf": ALGORITHM_POLICY,
    "webpki::forbidden-weak-rsa-key-in-root": ALGORITHM_POLICY,
    "pathlen::max-chain-depth-0-exhausted": MAX_CHAIN_DEPTH,
    "pathlen::max-chain-depth-1-exhausted": MAX_CHAIN_DEPTH,
    "rfc5280::aki::cross-signed-root-missing-aki": AKI_RULES,
    "webpki::aki::root-with-aki-all-fields": AKI_RULES,
    "webpki::aki::root-with-aki-missing-keyidentifier": AKI_RULES,
    "webpki::aki::root-with-aki-ski-mismatch": AKI_RULES,
    "rfc5280::serial::too-long": SERIAL_LENGTH,
    "rfc5280::ica-ku-keycertsign": SUBSET_LACKS_INTERMEDIATE,
    "rfc5280::intermediate-ca-missing-basic-constraints": SUBSET_LACKS_INTERMEDIATE,
}

# --- Where the Nitro profile's result differs from limbo's, beyond the overrides file ------

_SKEW_REFERENCE = (
    "clock skew: a certificate not yet valid by at most CLOCK_SKEW (60 s) passes (README 'What verify() "
    "checks', nitro_attest._chain.CLOCK_SKEW; DESIGN.md section 4)"
)

#: id -> (the profile's expected result, why). The skew cases are also checked to fail once the skew is used up.
PROFILE_DIFFERENCES: Mapping[str, tuple[str, str]] = {
    "rfc5280::validity::not-yet-valid-1-second": ("SUCCESS", _SKEW_REFERENCE),
    "rfc5280::validity::not-yet-valid-5-seconds": ("SUCCESS", _SKEW_REFERENCE),
    "rfc5280::validity::notbefore-fractional": ("SUCCESS", _SKEW_REFERENCE),
    "rfc5280::validity::notafter-fractional": (
        "FAILURE",
        "notBefore <= at <= notAfter compares instants (DESIGN.md section 3): 5 ms after notAfter is after it; "
        "limbo itself calls the case ambiguous and picks the flooring reading",
    ),
}


@dataclass(frozen=True)
class Rejection:
    """The error our rules give for an expected failure: its code and a fragment of its message."""

    code: str
    says: str
    note: str = ""


_NC = "unknown critical extension 2.5.29.30"
_NC_NOTE = "nameConstraints is not implemented, so a critical one rejects (DESIGN.md section 3)"
_CA_LEAF = "the leaf is a CA certificate"
# In these cases root, intermediate and leaf share one validity window; the root is checked first.
_SAME_WINDOW = "every certificate of the path has the leaf's window: the root is the first found expired"

#: Every case the relaxed run expects to fail, with the rule of ours that rejects it.
REJECTED_BY: Mapping[str, Rejection] = {
    "cve::cve-2025-61727": Rejection("chain", _NC, _NC_NOTE + "; limbo's reason (wildcard SAN) is hostname"),
    "cve::cve-2025-61727-nc-permits-variant": Rejection("chain", _NC, _NC_NOTE),
    "pathlen::intermediate-pathlen-too-long": Rejection("chain", "pathLenConstraint 1 but 2 CA certificates follow"),
    "pathlen::intermediate-violates-pathlen-0": Rejection("chain", "pathLenConstraint 0 but 1 CA certificates follow"),
    "pathlen::validation-ignores-pathlen-in-leaf": Rejection("chain", _CA_LEAF, "overrides: FAILURE"),
    "pathological::nc-dos-1": Rejection("chain", _NC, _NC_NOTE),
    "pathological::nc-dos-2": Rejection("chain", _NC, _NC_NOTE),
    "pathological::nc-dos-3": Rejection("chain", _NC, _NC_NOTE),
    "rfc5280::aki::critical-aki": Rejection("chain", "unknown critical extension 2.5.29.35"),
    "rfc5280::ca-as-leaf": Rejection("chain", _CA_LEAF, "overrides: FAILURE"),
    "rfc5280::ca-as-leaf-wrong-san": Rejection("chain", _CA_LEAF, "limbo's reason (the SAN) is hostname"),
    "rfc5280::ca-empty-subject": Rejection("chain", "a CA certificate with an empty subject"),
    "rfc5280::chain-untrusted-root": Rejection("chain", "is not a trusted root"),
    "rfc5280::duplicate-extensions": Rejection("certificate", "Duplicate 2.5.29.17 extension"),
    "rfc5280::ee-critical-aia-invalid": Rejection("chain", "unknown critical extension 1.3.6.1.5.5.7.1.1"),
    "rfc5280::ee-empty-issuer": Rejection("chain", "issuer name does not match"),
    "rfc5280::intermediate-ca-without-ca-bit": Rejection("chain", "not a CA certificate"),
    "rfc5280::leaf-ku-keycertsign": Rejection("chain", "the leaf's keyUsage allows keyCertSign"),
    "rfc5280::mismatching-signature-algorithm": Rejection(
        "chain",
        "not signed by the certificate before it",
        "the relaxed pin's verify_directly_issued_by refuses inner/outer signature algorithms that differ; "
        "the Nitro pin itself does not compare them: a known tolerance (tests/test_attacks.py, "
        "leaf-inner-ecdsa-sha256-outer-sha384)",
    ),
    "rfc5280::no-keyusage": Rejection("chain", "the leaf's keyUsage lacks digitalSignature", "overrides: FAILURE"),
    "rfc5280::root-inconsistent-ca-extensions": Rejection("chain", "keyUsage lacks keyCertSign"),
    "rfc5280::root-missing-basic-constraints": Rejection("chain", "not a CA certificate"),
    "rfc5280::root-non-critical-basic-constraints": Rejection("chain", "basicConstraints is not critical"),
    "rfc5280::serial::negative": Rejection("certificate", "serial number that is not positive"),
    "rfc5280::serial::zero": Rejection("certificate", "serial number that is not positive"),
    "rfc5280::ski::critical-ski": Rejection("chain", "unknown critical extension 2.5.29.14"),
    "rfc5280::unknown-critical-extension-ee": Rejection("chain", "unknown critical extension 1.3.6.1.4.1.55738"),
    "rfc5280::unknown-critical-extension-intermediate": Rejection(
        "chain", "unknown critical extension 1.3.6.1.4.1.55738"
    ),
    "rfc5280::unknown-critical-extension-root": Rejection("chain", "unknown critical extension 1.3.6.1.4.1.55738"),
    "rfc5280::validity::expired-1-second": Rejection("expired", "cabundle[0] ", _SAME_WINDOW),
    "rfc5280::validity::expired-5-seconds": Rejection("expired", "cabundle[0] ", _SAME_WINDOW),
    "rfc5280::validity::expired-intermediate": Rejection("expired", "cabundle[1] "),
    "rfc5280::validity::expired-leaf": Rejection("expired", "certificate (the enclave's leaf)"),
    "rfc5280::validity::expired-root": Rejection("expired", "cabundle[0] "),
    "rfc5280::validity::notafter-fractional": Rejection("expired", "cabundle[0] ", _SAME_WINDOW),
    "webpki::aki::root-with-aki-authoritycertissuer": Rejection(
        "certificate", "authority_cert_issuer and authority_cert_serial_number must both be present"
    ),
    "webpki::aki::root-with-aki-authoritycertserialnumber": Rejection(
        "certificate", "authority_cert_issuer and authority_cert_serial_number must both be present"
    ),
    "webpki::ca-as-leaf": Rejection("chain", _CA_LEAF),
    "webpki::cryptographydotio-chain-missing-intermediate": Rejection("chain", "issuer name does not match"),
    "webpki::ee-basicconstraints-ca": Rejection("chain", _CA_LEAF),
    "webpki::malformed-aia": Rejection("certificate", "is not a usable X.509 certificate"),
    "webpki::v1-cert": Rejection(
        "chain", "the leaf's keyUsage lacks digitalSignature", "a v1/v2 certificate has no keyUsage"
    ),
}

#: The counts docs/security.md quotes, per pin: outcomes, then skips by reason.
EXPECTED_SUMMARY: Mapping[Pin, Mapping[str, int]] = {
    "relaxed": {
        "SUCCESS": 21,
        "FAILURE": 42,
        PATH_BUILDING: 9,
        AMBIGUOUS: 3,
        ALGORITHM_POLICY: 9,
        MAX_CHAIN_DEPTH: 2,
        AKI_RULES: 4,
        SERIAL_LENGTH: 1,
        SUBSET_LACKS_INTERMEDIATE: 2,
    },
    "nitro": {"FAILURE": 81, PATH_BUILDING: 9, AMBIGUOUS: 3},
}


# --- The harness ------------------------------------------------------------------------


def _pem_certificate(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode("ascii"))


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.DER)


# Bounds the name search: the pathological cases (100 same-named CAs) are skipped before it runs.
_SEARCH_BUDGET = 10_000


def _name_chained_paths(
    leaf: x509.Certificate, intermediates: Sequence[x509.Certificate], trusted: Sequence[x509.Certificate]
) -> list[list[x509.Certificate]] | None:
    """Up to two paths ``[trusted, intermediates..., leaf]`` whose names chain; None when the search is too big.

    Each intermediate is used at most once; a trusted certificate whose
    subject is a certificate's issuer ends a path there.
    """
    found: list[list[x509.Certificate]] = []
    budget = [_SEARCH_BUDGET]

    def extend(path: list[x509.Certificate], used: frozenset[int]) -> None:
        budget[0] -= 1
        if budget[0] < 0 or len(found) > 1:
            return
        issuer = path[0].issuer
        found.extend([anchor, *path] for anchor in trusted if anchor.subject == issuer)
        for index, certificate in enumerate(intermediates):
            if index not in used and certificate.subject == issuer:
                extend([certificate, *path], used | {index})

    extend([leaf], frozenset())
    return None if budget[0] < 0 else found


def _unanchored_path(
    leaf: x509.Certificate, intermediates: Sequence[x509.Certificate], trusted: Sequence[x509.Certificate]
) -> list[x509.Certificate] | None:
    """When no path reaches a trusted certificate: the document a sender could still make, or None if unclear.

    The intermediates that chain by name above the leaf (one candidate at each
    step) come first, so ``cabundle[0]`` is untrusted and the root pin decides;
    with none, the only trusted certificate stands as ``cabundle[0]`` (a
    document has one) and the names decide.
    """
    path = [leaf]
    used: set[int] = set()
    while True:
        candidates = [
            index
            for index, certificate in enumerate(intermediates)
            if index not in used and certificate.subject == path[0].issuer
        ]
        if len(candidates) > 1:
            return None
        if not candidates:
            break
        used.add(candidates[0])
        path.insert(0, intermediates[candidates[0]])
    if len(path) == 1:
        if len(trusted) != 1:
            return None
        path.insert(0, trusted[0])
    return path


def _is_p384_sha384(certificate: x509.Certificate) -> bool:
    """Independently of the code under test: ecdsa-with-SHA384 and a named P-384 key."""
    try:
        key = certificate.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return False
    return (
        certificate.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA384
        and isinstance(key, ec.EllipticCurvePublicKey)
        and isinstance(key.curve, ec.SECP384R1)
    )


@dataclass(frozen=True)
class Plan:
    """What one case under one pin runs: the path and what to expect, or why it is skipped."""

    skip: str | None = None
    path: tuple[bytes, ...] = ()  # DER, [cabundle[0], ..., leaf]
    roots: tuple[x509.Certificate, ...] = ()
    at: datetime | None = None
    expected: str = ""  # "SUCCESS" or "FAILURE"
    rejection: Rejection | None = None


def _validation_time(case: Mapping[str, Any]) -> datetime:
    value = case.get("validation_time")
    return datetime.fromisoformat(value) if value else datetime.now(timezone.utc)


def _relaxed_expectation(case_id: str, limbo_expected: str) -> tuple[str, Rejection | None]:
    if case_id in OVERRIDE_EXPECTED:
        expected = OVERRIDE_EXPECTED[case_id]
    elif case_id in PROFILE_DIFFERENCES:
        expected = PROFILE_DIFFERENCES[case_id][0]
    else:
        expected = limbo_expected
    if expected == "FAILURE" and case_id not in REJECTED_BY:
        raise AssertionError(f"{case_id}: limbo expects FAILURE; REJECTED_BY must name the rule of ours that rejects")
    return expected, REJECTED_BY.get(case_id)


def plan(case: Mapping[str, Any], pin: Pin) -> Plan:
    """The path this harness feeds our rules for ``case``, and the expected result under ``pin``."""
    case_id: str = case["id"]
    if case_id in PATH_BUILDING_CASES:
        return Plan(skip=PATH_BUILDING)
    trusted = tuple(_pem_certificate(pem) for pem in case["trusted_certs"])
    intermediates = [_pem_certificate(pem) for pem in case["untrusted_intermediates"]]
    leaf = _pem_certificate(case["peer_certificate"])
    paths = _name_chained_paths(leaf, intermediates, trusted)
    if paths is None or len(paths) > 1:
        return Plan(skip=AMBIGUOUS)
    path = paths[0] if paths else _unanchored_path(leaf, intermediates, trusted)
    if path is None:
        return Plan(skip=AMBIGUOUS)
    ders = tuple(_der(certificate) for certificate in path)
    at = _validation_time(case)
    all_p384 = all(_is_p384_sha384(certificate) for certificate in path)
    if pin == "relaxed" or all_p384:
        if case_id in RELAXED_SKIPS:
            return Plan(skip=RELAXED_SKIPS[case_id])
        expected, rejection = _relaxed_expectation(case_id, case["expected_result"])
        return Plan(path=ders, roots=trusted, at=at, expected=expected, rejection=rejection)
    anchored = _der(path[0]) in {_der(root) for root in trusted}
    rejection = (
        Rejection("certificate", "", "the Nitro pin: not ecdsa-with-SHA384 by a P-384 key, or unparsable")
        if anchored
        else Rejection("chain", "is not a trusted root", "the root pin comes before every other check")
    )
    return Plan(path=ders, roots=trusted, at=at, expected="FAILURE", rejection=rejection)


def _load_path(path: Sequence[bytes]) -> list[x509.Certificate]:
    """The certificates as document.parse loads them (same errors, same names in messages)."""
    where = [f"cabundle[{position}]" for position in range(len(path) - 1)] + ["certificate"]
    return [_load_certificate(der, label) for der, label in zip(path, where, strict=True)]


def run_rules(plan_: Plan, pin: Pin, at: datetime | None = None) -> NitroAttestError | None:
    """Our rules over the plan's path: None when accepted, else the NitroAttestError (anything else escapes)."""
    assert plan_.at is not None
    try:
        chain._validate_path(_load_path(plan_.path), at or plan_.at, plan_.roots, pin=_PIN_OBJECTS[pin])
    except NitroAttestError as error:
        return error
    return None


class _CacheTripwire:
    """Stands in for LINK_CACHE during relaxed runs: any use of it fails the test."""

    def _used(self, *_: object) -> Any:
        raise AssertionError("LINK_CACHE was used during a relaxed-pin run")

    __contains__ = __len__ = add = has_path = add_path = clear = _used


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI.create()


POLICY = Policy({0: DEFAULT_PCRS[0]})


def _as_document(pki: TestPKI, path: Sequence[bytes]) -> bytes:
    return pki.document(payload_overrides={"cabundle": list(path[:-1]), "certificate": path[-1]})


def _case_params() -> list[Any]:
    if not CASES or _PROFILE is None:
        reason = absent_reason(LIMBO if not CASES else OVERRIDES)
        return [pytest.param(None, None, id="shared-absent", marks=pytest.mark.skip(reason=reason))]
    params = []
    for pin in PINS:
        for case in CASES:
            params.append(pytest.param(pin, case, id=f"{pin}-{case['id']}"))
    return params


@pytest.mark.parametrize(("pin", "case"), _case_params())
def test_limbo_case(pin: Pin, case: dict[str, Any], pki: TestPKI, monkeypatch: pytest.MonkeyPatch) -> None:
    plan_ = plan(case, pin)
    if plan_.skip is not None:
        pytest.skip(f"[{pin}] {plan_.skip}")
    if pin == "relaxed":
        monkeypatch.setattr(chain, "LINK_CACHE", _CacheTripwire())
    error = run_rules(plan_, pin)

    if plan_.expected == "SUCCESS":
        assert error is None, f"{case['id']}: expected SUCCESS, got {error!r}"
    else:
        assert error is not None, f"{case['id']}: expected FAILURE, the path was accepted"
        assert isinstance(error, CertificateInvalid), repr(error)
        if plan_.rejection is not None:
            assert error.code == plan_.rejection.code, repr(error)
            assert plan_.rejection.says in error.message, repr(error)

    if error is None and PROFILE_DIFFERENCES.get(case["id"], ("", ""))[1] == _SKEW_REFERENCE:
        # Only the skew separates us from limbo: past it, the same path is rejected.
        assert plan_.at is not None
        late = run_rules(plan_, pin, at=plan_.at - CLOCK_SKEW)
        assert late is not None and late.code == "expired", repr(late)

    if pin == "nitro":
        # The production entry point on the same certificates agrees (a document
        # can carry no certificate over 1 KiB: that is a schema error first).
        with pytest.raises(NitroAttestError) as raised:
            nitro_attest.verify(_as_document(pki, plan_.path), POLICY, at=plan_.at, roots=plan_.roots)
        if any(len(der) > MAX_CERTIFICATE_SIZE for der in plan_.path):
            assert isinstance(raised.value, MalformedDocument) and raised.value.code in {"size", "schema"}
        elif error is None:  # the chain passed; the document is signed by the test PKI's leaf, not limbo's
            assert raised.value.code == "signature", repr(raised.value)
        else:
            assert (type(raised.value), str(raised.value)) == (type(error), str(error))


def _summary() -> dict[Pin, Counter[str]]:
    summary: dict[Pin, Counter[str]] = {pin: Counter() for pin in PINS}
    for pin in PINS:
        for case in CASES:
            plan_ = plan(case, pin)
            if plan_.skip is not None:
                summary[pin][plan_.skip] += 1
            else:
                summary[pin][plan_.expected] += 1
    return summary


def test_summary() -> None:
    """The counts per pin that docs/security.md quotes (printed with ``-s``)."""
    if not CASES or _PROFILE is None:
        pytest.skip(absent_reason(LIMBO if not CASES else OVERRIDES))
    summary = _summary()
    for pin in PINS:
        print(f"\n{pin}: {sum(summary[pin].values())} cases")
        for outcome, count in summary[pin].most_common():
            print(f"  {count:3d}  {outcome}")
    assert {pin: dict(counts) for pin, counts in summary.items()} == EXPECTED_SUMMARY


def test_tables_name_only_cases_of_the_subset() -> None:
    if not CASES or _PROFILE is None:
        pytest.skip(absent_reason(LIMBO if not CASES else OVERRIDES))
    named = {*RELAXED_SKIPS, *PROFILE_DIFFERENCES, *REJECTED_BY, *OVERRIDE_EXPECTED}
    assert named - CASES_BY_ID.keys() == set()
    assert PATH_BUILDING_CASES - CASES_BY_ID.keys() == set()


# --- The relaxed pin cannot leak into production ------------------------------------------


def _p256_pki() -> TestPKI:
    """The test PKI with every key P-256 and every signature ecdsa-with-SHA256."""
    pki = TestPKI.create()
    for level in ("root", "regional", "zonal", "instance", "leaf"):
        pki = pki.reissue(level, key=derive_key(f"limbo p256 {level}", curve="P-256"), hash_algorithm=hashes.SHA256())
    return pki


def test_a_relaxed_run_never_lets_production_accept_the_same_p256_chain() -> None:
    p256 = _p256_pki()
    path = (*p256.cabundle, p256.leaf)
    ders = tuple(_der(certificate) for certificate in path)
    links = [(ders[position - 1], ders[position]) for position in range(1, len(ders))]
    data = p256.document()
    cached_links = len(LINK_CACHE)

    for _ in range(2):
        # The relaxed pin accepts the chain: it passes every rule but the algorithm pin...
        chain._validate_path(path, p256.document_time, p256.roots, pin=RELAXED_PIN)
        # ...and leaves no trace a production call could be served from.
        assert len(LINK_CACHE) == cached_links
        assert not LINK_CACHE.has_path(ders)
        assert not any(link in LINK_CACHE for link in links)
        # verify(), verify_batch() and the Nitro pin over the same path all still refuse it.
        with pytest.raises(CertificateInvalid) as raised:
            nitro_attest.verify(data, POLICY, at=p256.document_time, roots=p256.roots)
        assert raised.value.code == "certificate"
        [result] = nitro_attest.verify_batch([data], POLICY, at=p256.document_time, roots=p256.roots, workers=1)
        assert isinstance(result, CertificateInvalid) and result.code == "certificate"
        with pytest.raises(CertificateInvalid) as pinned:
            chain._validate_path(path, p256.document_time, p256.roots, pin=chain._NITRO_PIN)
        assert pinned.value.code == "certificate"


def test_the_same_path_passes_under_both_pins_when_it_is_p384(pki: TestPKI) -> None:
    path = (*pki.cabundle, pki.leaf)
    for pin in (RELAXED_PIN, chain._NITRO_PIN):
        chain._validate_path(path, pki.document_time, pki.roots, pin=pin)


def _package_sources() -> Iterator[tuple[Path, ast.Module]]:
    package = Path(inspect.getfile(nitro_attest)).parent
    for source in sorted(package.glob("*.py")):
        yield source, ast.parse(source.read_text(encoding="utf-8"))


def test_no_package_code_reaches_the_relaxed_pin() -> None:
    """Only tests use _validate_path; the functions that use the caches take no pin."""
    uses = []
    for source, tree in _package_sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Name | ast.Attribute) and not isinstance(node.ctx, ast.Store):
                name = node.id if isinstance(node, ast.Name) else node.attr
            elif isinstance(node, ast.alias):  # an import of it
                name = node.name
            else:
                continue
            if name == "_validate_path":
                uses.append(f"{source.name}:{node.lineno}")
    assert uses == []
    for function in (chain.validate_chain, chain.pending_links, chain._check_link):
        assert "pin" not in inspect.signature(function).parameters
