"""The NSM attestation request and response, against aws/aws-nitro-enclaves-nsm-api's definitions.

``Request::Attestation`` is serde's externally tagged struct variant:
``{"Attestation": {"user_data", "nonce", "public_key"}}`` (declaration
order, ``Option<ByteBuf>`` as bytes or null); ``Response::Attestation`` is
``{"Attestation": {"document": bytes}}`` and ``Response::Error(ErrorCode)``
``{"Error": "<name>"}``. The ioctl is ``_IOWR(0x0A, 0, struct nsm_raw)``,
``nsm_raw`` being two ``{u64 addr, u64 len}``. The device itself exists only
in an enclave: here, only the failure to open it is exercised.
"""

from __future__ import annotations

import cbor2
import pytest

from nitro_attest.nsm import (
    ERROR_CODES,
    IOCTL_RAW,
    MAX_FIELD,
    Attester,
    NsmDevice,
    NsmError,
    decode_attestation_response,
    encode_attestation_request,
)
from nitro_attest.testing import TestEnclave


def test_the_request_is_serde_cbor_s_encoding() -> None:
    # Bytes as serde_cbor writes Request::Attestation { user_data: Some(b"u"), nonce: None, public_key: Some(b"k") }.
    expected = b"\xa1\x6bAttestation\xa3\x69user_data\x41u\x65nonce\xf6\x6apublic_key\x41k"
    assert encode_attestation_request(public_key=b"k", user_data=b"u") == expected


def test_an_empty_request_has_three_nulls() -> None:
    decoded = cbor2.loads(encode_attestation_request())
    assert decoded == {"Attestation": {"user_data": None, "nonce": None, "public_key": None}}
    assert list(decoded["Attestation"]) == ["user_data", "nonce", "public_key"]


@pytest.mark.parametrize("name", ["public_key", "nonce", "user_data"])
def test_fields_over_1024_bytes_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        encode_attestation_request(**{name: bytes(MAX_FIELD + 1)})


def test_the_ioctl_number_is_iowr_0x0a_0_of_two_iovecs() -> None:
    assert IOCTL_RAW == 0xC0200A00


def test_an_attestation_response_gives_its_document() -> None:
    assert decode_attestation_response(cbor2.dumps({"Attestation": {"document": b"\x84doc"}})) == b"\x84doc"


@pytest.mark.parametrize("code", sorted(ERROR_CODES))
def test_an_error_response_names_its_code(code: str) -> None:
    with pytest.raises(NsmError, match=code) as caught:
        decode_attestation_response(cbor2.dumps({"Error": code}))
    assert caught.value.code == "error"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff",
        cbor2.dumps("LockPCR"),
        cbor2.dumps({"Attestation": {"document": ""}}),
        cbor2.dumps({"Attestation": {"document": b""}}),
        cbor2.dumps({"Attestation": {"document": b"d", "extra": 1}}),
        cbor2.dumps({"DescribePCR": {"lock": True, "data": b""}}),
        cbor2.dumps({"Error": 3}),
        bytes(0x3001),
    ],
    ids=[
        "empty",
        "not-cbor",
        "unit-variant",
        "text-document",
        "empty-document",
        "extra",
        "other-variant",
        "numeric-error",
        "too-long",
    ],
)
def test_anything_else_is_malformed(data: bytes) -> None:
    with pytest.raises(NsmError) as caught:
        decode_attestation_response(data)
    assert caught.value.code in ("malformed", "error")


def test_no_device_is_a_device_error(tmp_path: object) -> None:
    with pytest.raises(NsmError) as caught:
        NsmDevice(f"{tmp_path}/no-nsm").attest(public_key=b"k")
    assert caught.value.code == "device"


def test_the_test_enclave_is_an_attester() -> None:
    enclaves: list[Attester] = [TestEnclave.create(), NsmDevice()]
    assert all(callable(enclave.attest) for enclave in enclaves)
