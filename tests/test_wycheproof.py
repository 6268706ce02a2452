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
from dataclasses import dataclass
from functools import cache

import pytest
from conftest import absent_reason, as_params, shared_path
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_der_public_key

from nitro_attest import _backend as backend
from nitro_attest import _cose as cose
from nitro_attest._chain import raw_signature

FILES = {
    "p1363": "wycheproof/ecdsa_secp384r1_sha384_p1363_test.json",
    "der": "wycheproof/ecdsa_secp384r1_sha384_test.json",
}

# Strict encodings only (DER exactly as X.690 DER, raw signatures exactly
# 96 bytes with 0 < r, s < n): what Wycheproof merely tolerates is rejected.
ACCEPTABLE_RESULT = False


def check(backend_name: str, encoding: str, key: ec.EllipticCurvePublicKey, message: bytes, signature: bytes) -> bool:
    """The library's own path for ``encoding`` on one backend.

    Raw ``r || s`` goes to the backend as COSE's does; DER first through
    :func:`nitro_attest._chain.raw_signature`, as certificate links do.
    """
    raw = signature if encoding == "p1363" else raw_signature(signature)
    if raw is None:
        return False
    point = key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return backend.verify_p384_many([backend.P384Job(point, message, raw)], workers=1, backend=backend_name)[0]


def _backend_param(name: str) -> object:
    missing = name not in backend.available_backends()
    reason = f"the {name} backend is not available: native extension {backend.NATIVE_IMPORT_ERROR}"
    return pytest.param(name, id=name, marks=pytest.mark.skipif(missing, reason=reason))


# Every vector runs on each backend; one not built in this installation skips, saying so.
@pytest.fixture(params=[_backend_param(name) for name in ("cryptography", "nettle")])
def p384_backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


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
def test_vector(vector: Vector, p384_backend: str) -> None:
    key = p384_key(vector.key_der)
    if isinstance(key, str):
        pytest.skip(f"group key {key} (counted by test_every_group_key_is_p384)")
    message, signature = bytes.fromhex(vector.msg), bytes.fromhex(vector.sig)

    result = check(p384_backend, vector.encoding, key, message, signature)

    expected = {"valid": True, "invalid": False, "acceptable": ACCEPTABLE_RESULT}[vector.result]
    assert result is expected, f"{vector.name} ({vector.result}: {vector.comment}; flags {list(vector.flags)})"
    if vector.result == "acceptable":
        # Whatever we decide must not depend on the call: same answer again.
        assert check(p384_backend, vector.encoding, key, message, signature) is result
