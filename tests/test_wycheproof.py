"""Project Wycheproof ECDSA P-384/SHA-384 vectors (../shared/wycheproof) against every P-384 backend.

Raw ``r || s`` (IEEE P1363) vectors go through the COSE check, DER vectors
through the X.509 check. Each vector is one test, named by file and tcId.

Wycheproof's "acceptable" verdict (neither required nor forbidden) is settled
by :data:`ACCEPTABLE_RESULT`: our backends are strict, so such a signature is
rejected. The two files of this Wycheproof release hold no "acceptable"
vector; the rule is here so a refreshed file cannot slip one in undecided.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import pytest
from conftest import absent_reason, as_params, shared_path
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_der_public_key

from nitro_attest import backend, cose

Verifier = Callable[[ec.EllipticCurvePublicKey, bytes, bytes], bool]

FILES = {
    "p1363": "wycheproof/ecdsa_secp384r1_sha384_p1363_test.json",
    "der": "wycheproof/ecdsa_secp384r1_sha384_test.json",
}

# Strict encodings only (DER exactly as X.690 DER, raw signatures exactly
# 96 bytes with 0 < r, s < n): what Wycheproof merely tolerates is rejected.
ACCEPTABLE_RESULT = False


@dataclass(frozen=True)
class P384Backend:
    """One implementation of the two signature checks the verifier needs."""

    name: str
    verify_raw: Verifier  # raw r || s, as COSE ES384 carries it
    verify_der: Verifier  # DER ECDSA-Sig-Value, as X.509 carries it

    def verifier(self, encoding: str) -> Verifier:
        return self.verify_raw if encoding == "p1363" else self.verify_der


def _native_point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def native_verify_raw(key: ec.EllipticCurvePublicKey, message: bytes, signature: bytes) -> bool:
    """The raw ``r || s`` check through the native (nettle) backend, one job."""
    job = backend.P384Job(_native_point(key), message, signature)
    return backend.verify_p384_many([job], workers=1, backend="nettle")[0]


def native_verify_der(key: ec.EllipticCurvePublicKey, message: bytes, signature: bytes) -> bool:
    """The DER check through the native backend: cryptography's DER decoder, then ``r || s`` to nettle.

    A value that cannot be a 48-byte unsigned field (negative, >= 2^384) cannot be
    a job: invalid. Anything else, in range or not, goes to the native code.
    """
    try:
        r, s = decode_dss_signature(signature)
    except ValueError:
        return False
    if not (0 <= r < 1 << 384 and 0 <= s < 1 << 384):
        return False
    return native_verify_raw(key, message, r.to_bytes(48, "big") + s.to_bytes(48, "big"))


# Every vector runs on each backend; one not built in this installation skips, saying so.
BACKENDS = [
    P384Backend("cryptography", cose.verify_p384, cose.verify_p384_der),
    P384Backend("nettle", native_verify_raw, native_verify_der),
]


def _backend_param(candidate: P384Backend) -> object:
    missing = candidate.name not in backend.available_backends()
    reason = f"the {candidate.name} backend is not available: native extension {backend.NATIVE_IMPORT_ERROR}"
    return pytest.param(candidate, id=candidate.name, marks=pytest.mark.skipif(missing, reason=reason))


@pytest.fixture(params=[_backend_param(candidate) for candidate in BACKENDS])
def p384_backend(request: pytest.FixtureRequest) -> P384Backend:
    chosen: P384Backend = request.param
    return chosen


@dataclass(frozen=True)
class Vector:
    encoding: str  # "p1363" or "der"
    tc_id: int
    key_der: str
    msg: str
    sig: str
    result: str  # "valid", "invalid" or "acceptable"
    comment: str
    flags: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.encoding}-tc{self.tc_id}"


def load_groups() -> list[tuple[str, dict[str, object]]]:
    """(encoding, test group) for every group of both files present."""
    groups = []
    for encoding, relative in FILES.items():
        path = shared_path(relative)
        if path is not None:
            groups += [(encoding, group) for group in json.loads(path.read_text(encoding="utf-8"))["testGroups"]]
    return groups


def group_key(group: dict[str, object]) -> str:
    key = group.get("publicKeyDer", group.get("keyDer"))
    assert isinstance(key, str), "a Wycheproof ECDSA group without publicKeyDer or keyDer"
    return key


def load_vectors() -> list[Vector]:
    vectors = []
    for encoding, group in load_groups():
        key_der = group_key(group)
        tests = group["tests"]
        assert isinstance(tests, list)
        vectors += [
            Vector(
                encoding,
                test["tcId"],
                key_der,
                test["msg"],
                test["sig"],
                test["result"],
                test["comment"],
                tuple(test["flags"]),
            )
            for test in tests
        ]
    return vectors


VECTORS = load_vectors()
MISSING = absent_reason("wycheproof")


@cache
def p384_key(key_der: str) -> ec.EllipticCurvePublicKey | str:
    """The group's P-384 public key, or why it cannot be one."""
    try:
        key = load_der_public_key(bytes.fromhex(key_der))
    except (ValueError, TypeError) as exc:
        return f"unloadable: {exc}"
    if not cose.is_p384_key(key):
        return f"not an EC P-384 key: {type(key).__name__}"
    return key


def test_every_group_key_is_p384() -> None:
    """Groups whose key cannot be used are counted here; today there are none, so every vector runs."""
    groups = load_groups()
    if not groups:
        pytest.skip(MISSING)
    unusable = {}
    for encoding, group in groups:
        key = p384_key(group_key(group))
        if isinstance(key, str):
            unusable[f"{encoding}: {group_key(group)[:40]}..."] = key
    assert unusable == {}, f"{len(unusable)} of {len(groups)} groups have no usable P-384 key"


@pytest.mark.parametrize("vector", as_params(VECTORS, ids=lambda vector: vector.name, missing=MISSING))
def test_vector(vector: Vector, p384_backend: P384Backend) -> None:
    key = p384_key(vector.key_der)
    if isinstance(key, str):
        pytest.skip(f"group key {key} (counted by test_every_group_key_is_p384)")
    verify = p384_backend.verifier(vector.encoding)
    message, signature = bytes.fromhex(vector.msg), bytes.fromhex(vector.sig)

    result = verify(key, message, signature)

    expected = {"valid": True, "invalid": False, "acceptable": ACCEPTABLE_RESULT}[vector.result]
    assert result is expected, f"{vector.name} ({vector.result}: {vector.comment}; flags {list(vector.flags)})"
    if vector.result == "acceptable":
        # Whatever we decide must not depend on the call: same answer again.
        assert verify(key, message, signature) is result
