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
    MAX_REQUEST,
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


_DOCUMENT = b"\xa1\x6bAttestation\xa1\x68document\x41d"  # {"Attestation": {"document": b"d"}}


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "the response is not CBOR"),
        (b"\xff", "the response is not CBOR"),
        (b"\x5b\xff\xff\xff\xff\xff\xff\xff\xff", "the response is not CBOR: premature end of stream"),
        (b"\x81" * 10, "the response is not CBOR: maximum container nesting depth (4) exceeded"),
        (cbor2.dumps({"Attestation": {"document": [[[b"d"]]]}}), "maximum container nesting depth (4) exceeded"),
        (b"\xa2" + _DOCUMENT[1:] + _DOCUMENT[1:], "the response is not CBOR: error decoding map: Duplicate map key"),
        (cbor2.dumps("LockPCR"), 'the response is not {"Attestation": {"document": bytes}}'),
        (cbor2.dumps({"Attestation": {"document": ""}}), 'the response is not {"Attestation": {"document": bytes}}'),
        (cbor2.dumps({"Attestation": {"document": b""}}), 'the response is not {"Attestation": {"document": bytes}}'),
        (cbor2.dumps({"Attestation": {"document": b"d", "extra": 1}}), 'the response is not {"Attestation"'),
        (cbor2.dumps({"Attestation": {"document": b"d"}, "Error": "x"}), 'the response is not {"Attestation"'),
        (cbor2.dumps({"DescribePCR": {"lock": True, "data": b""}}), 'the response is not {"Attestation"'),
        (bytes(0x3001), "the response is 12289 bytes, over 12288"),
    ],
    ids=[
        "empty",
        "not-cbor",
        "length-past-the-data",
        "nested",
        "nested-document",
        "repeated-key",
        "unit-variant",
        "text-document",
        "empty-document",
        "extra",
        "error-beside",
        "other-variant",
        "too-long",
    ],
)
def test_anything_else_is_malformed(data: bytes, fragment: str) -> None:
    with pytest.raises(NsmError) as caught:
        decode_attestation_response(data)
    assert caught.value.code == "malformed" and fragment in caught.value.message, caught.value


def test_an_error_code_that_is_not_the_api_s_is_named_unknown() -> None:
    for code in (3, "LockPCR"):
        with pytest.raises(NsmError) as caught:
            decode_attestation_response(cbor2.dumps({"Error": code}))
        assert caught.value.code == "error" and caught.value.message == "the NSM answered Error: an unknown code"


def test_a_field_that_is_not_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="nonce must be bytes of at most 1024 or None"):
        encode_attestation_request(nonce="text")  # type: ignore[arg-type]


def test_no_device_is_a_device_error(tmp_path: object) -> None:
    with pytest.raises(NsmError) as caught:
        NsmDevice(f"{tmp_path}/no-nsm").attest(public_key=b"k")
    assert caught.value.code == "device" and f"cannot open {tmp_path}/no-nsm: No such file" in caught.value.message


def test_a_device_that_refuses_the_ioctl_is_a_device_error() -> None:
    # /dev/null opens read-write and answers ENOTTY to any ioctl: the call is made with the real struct.
    with pytest.raises(NsmError) as caught:
        NsmDevice("/dev/null").attest(public_key=b"k")
    assert caught.value.code == "device" and "the NSM ioctl on /dev/null failed" in caught.value.message


def test_a_request_over_the_driver_s_limit_is_not_sent() -> None:
    with pytest.raises(NsmError) as caught:
        NsmDevice("/nonexistent")._call(bytes(MAX_REQUEST + 1))
    assert caught.value.code == "device" and "over the driver's 4096" in caught.value.message


def test_the_test_enclave_is_an_attester() -> None:
    enclaves: list[Attester] = [TestEnclave.create(), NsmDevice()]
    assert all(callable(enclave.attest) for enclave in enclaves)
