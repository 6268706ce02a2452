"""COSE WG examples (../shared/cose-examples): the COSE layer is right, and Nitro's envelope rules are stricter.

``ecdsa-sig-02`` is the one ES384 COSE_Sign1 example: its Sig_structure and
signature must check out with our code, yet the document is not Nitro-shaped.
Every other example is rejected by :func:`nitro_attest._cbor.decode_envelope`,
for the Nitro rule (DESIGN.md section 2) named per case below.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import cbor2
import pytest
from conftest import absent_reason, as_params, require_shared, shared_path
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from nitro_attest import MalformedDocument
from nitro_attest import _cose as cose
from nitro_attest._backend import P384Job, verify_p384_many
from nitro_attest._cbor import decode_envelope

# sign1-tests file -> (code, the Nitro rule that rejects it). Every one of them
# also carries a non-empty unprotected header ({4: kid}); the rule named is the
# one the envelope check meets first.
SIGN1_EXPECTED: dict[str, tuple[str, str]] = {
    "sign-fail-01.json": ("cbor", "tag 998: the only CBOR tag allowed is an outer COSE_Sign1 tag 18"),
    "sign-fail-02.json": ("cose", "alg -7 (ES256) is not ES384 (-35); its payload was also altered"),
    "sign-fail-03.json": ("cose", "alg -999 is not ES384 (-35)"),
    "sign-fail-04.json": ("cose", "alg is the text 'unknown', not the integer -35"),
    "sign-fail-06.json": ("cose", "a second protected parameter (3: content type): must be exactly {1: -35}"),
    "sign-fail-07.json": ("cose", "alg -7 (ES256) is not ES384 (-35)"),
    "sign-pass-01.json": ("cose", "protected header is empty (alg only in the unprotected header): must be {1: -35}"),
    "sign-pass-02.json": ("cose", "alg -7 (ES256) is not ES384 (-35); external AAD is irrelevant"),
    "sign-pass-03.json": ("cose", "alg -7 (ES256) is not ES384 (-35); being untagged is allowed"),
}

# sign-tests (COSE_Sign, several signers) file -> (code, the Nitro rule that rejects it).
SIGN_EXPECTED: dict[str, tuple[str, str]] = {
    **{
        name: ("cbor", "tag 98 (COSE_Sign): the only CBOR tag allowed is an outer COSE_Sign1 tag 18")
        for name in (
            "ecdsa-01.json",
            "sign-fail-02.json",
            "sign-fail-03.json",
            "sign-fail-04.json",
            "sign-fail-06.json",
            "sign-fail-07.json",
            "sign-pass-01.json",
            "sign-pass-02.json",
        )
    },
    "sign-fail-01.json": ("cbor", "tag 998: the only CBOR tag allowed is an outer COSE_Sign1 tag 18"),
    "sign-pass-03.json": (
        "cose",
        "untagged COSE_Sign: its empty protected header (the signers carry the algorithm) binds no ES384",
    ),
}


def example_files(directory: str) -> list[Path]:
    path = shared_path(f"cose-examples/{directory}")
    return sorted(path.glob("*.json")) if path is not None else []


def load(path: Path) -> dict[str, Any]:
    example: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return example


def cbor_bytes(example: dict[str, Any]) -> bytes:
    return bytes.fromhex(example["output"]["cbor"])


def b64url_int(text: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


def jwk_public_key(jwk: dict[str, str], curve: ec.EllipticCurve) -> ec.EllipticCurvePublicKey:
    return ec.EllipticCurvePublicNumbers(b64url_int(jwk["x"]), b64url_int(jwk["y"]), curve).public_key()


def sign1_parts(data: bytes) -> list[Any]:
    """[protected, unprotected, payload, signature] of a (tagged or untagged) COSE_Sign1 example."""
    item = cbor2.loads(data)  # trusted test input: the COSE WG's own examples
    parts: list[Any] = item.value if isinstance(item, cbor2.CBORTag) else item
    return parts


def decode_error(data: bytes) -> MalformedDocument:
    with pytest.raises(MalformedDocument) as caught:
        decode_envelope(data)
    return caught.value


# -- ecdsa-sig-02: ES384, P-384 ---------------------------------------------------------------


@pytest.fixture(scope="module")
def es384_example() -> dict[str, Any]:
    return load(require_shared("cose-examples/ecdsa-examples/ecdsa-sig-02.json"))


def test_es384_sig_structure_matches_to_be_signed(es384_example: dict[str, Any]) -> None:
    protected, _, payload, _ = sign1_parts(cbor_bytes(es384_example))
    assert protected == bytes.fromhex("a1013822")  # {1: -35}, Nitro's own protected header
    expected = bytes.fromhex(es384_example["intermediates"]["ToBeSign_hex"])
    assert cose.sig_structure(protected, payload) == expected


def test_es384_signature_verifies_with_the_jwk_key(es384_example: dict[str, Any], signature_backend: str) -> None:
    protected, _, payload, signature = sign1_parts(cbor_bytes(es384_example))
    key = jwk_public_key(es384_example["input"]["sign0"]["key"], ec.SECP384R1())
    point = key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    message = cose.sig_structure(protected, payload)
    jobs = [
        P384Job(point, message, signature),
        P384Job(point, message + b"\x00", signature),
        P384Job(point, message, signature[:-1] + bytes([signature[-1] ^ 1])),
    ]
    assert verify_p384_many(jobs) == [True, False, False]


def test_es384_document_breaks_nitro_envelope_rules(es384_example: dict[str, Any]) -> None:
    # Valid COSE, but the unprotected header carries a kid: Nitro's is an empty map.
    error = decode_error(cbor_bytes(es384_example))
    assert error.code == "cose"
    assert "unprotected" in str(error)


# -- sign1-tests: COSE_Sign1, ES256 -------------------------------------------------------------

SIGN1_FILES = example_files("sign1-tests")


@pytest.mark.parametrize(
    "path",
    as_params(SIGN1_FILES, ids=lambda path: path.name, missing=absent_reason("cose-examples/sign1-tests")),
)
def test_sign1_example_is_rejected(path: Path) -> None:
    code, _rule = SIGN1_EXPECTED[path.name]
    assert decode_error(cbor_bytes(load(path))).code == code


@pytest.mark.parametrize(
    "path",
    as_params(
        [path for path in SIGN1_FILES if path.name.startswith("sign-pass-")],
        ids=lambda path: path.name,
        missing=absent_reason("cose-examples/sign1-tests"),
    ),
)
def test_sign1_pass_example_is_valid_generic_cose(path: Path) -> None:
    """The "pass" files are genuine ES256 COSE: rejecting them is the Nitro profile, not a broken file."""
    example = load(path)
    _, _, _, signature = sign1_parts(cbor_bytes(example))
    key = jwk_public_key(example["input"]["sign0"]["key"], ec.SECP256R1())
    to_be_signed = bytes.fromhex(example["intermediates"]["ToBeSign_hex"])
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    try:
        key.verify(encode_dss_signature(r, s), to_be_signed, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        pytest.fail(f"{path.name}: the ES256 signature does not verify as generic COSE")


# -- sign-tests: COSE_Sign (tag 98) -------------------------------------------------------------

SIGN_FILES = example_files("sign-tests")


@pytest.mark.parametrize(
    "path",
    as_params(SIGN_FILES, ids=lambda path: path.name, missing=absent_reason("cose-examples/sign-tests")),
)
def test_cose_sign_example_is_rejected(path: Path) -> None:
    code, _rule = SIGN_EXPECTED[path.name]
    assert decode_error(cbor_bytes(load(path))).code == code


def test_every_example_has_an_expected_code() -> None:
    if not SIGN1_FILES and not SIGN_FILES:
        pytest.skip(absent_reason("cose-examples"))
    assert {path.name for path in SIGN1_FILES} == set(SIGN1_EXPECTED)
    assert {path.name for path in SIGN_FILES} == set(SIGN_EXPECTED)
