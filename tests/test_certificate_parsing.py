"""Each way cryptography refuses a certificate becomes CertificateInvalid('certificate') at parse().

The inputs are single-byte edits of the test PKI's leaf certificate: enough
to reach each parse error, with no DER parser of our own. Signatures are not
re-made, because parse() must refuse these before any signature is looked at.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

import nitro_attest
from nitro_attest import CertificateInvalid
from nitro_attest.testing import TestPKI

_VERSION_V3 = bytes.fromhex("a003020102")  # [0] EXPLICIT INTEGER 2 at the start of the TBSCertificate
_COUNTRY_US = b"\x13\x02US"  # PrintableString "US" in the issuer name, C=US


@pytest.fixture(scope="module")
def leaf_der() -> bytes:
    return TestPKI.create().leaf.public_bytes(Encoding.DER)


def _edit(der: bytes, marker: bytes, offset: int, value: int) -> bytes:
    position = der.index(marker) + offset
    edited = bytearray(der)
    edited[position] = value
    return bytes(edited)


def _unknown_version(der: bytes) -> bytes:
    return _edit(der, _VERSION_V3, 4, 0x05)  # x509.InvalidVersion, not a ValueError


def _bit_string_country(der: bytes) -> bytes:
    # BIT STRING under the countryName OID: cryptography raises TypeError for the name.
    return _edit(_edit(der, _COUNTRY_US, 0, 0x03), b"\x03\x02US", 2, 0x00)


def _negative_serial(der: bytes) -> bytes:
    # The serial INTEGER follows the version; a leading 0x80 makes it negative.
    return _edit(der, _VERSION_V3, 7, 0x80)


def _truncated(der: bytes) -> bytes:
    return der[:-10]


@pytest.mark.parametrize(
    "edit", [_unknown_version, _bit_string_country, _negative_serial, _truncated], ids=lambda edit: edit.__name__
)
@pytest.mark.parametrize("place", ["certificate", "cabundle"])
def test_unparsable_certificate_is_rejected_at_parse(
    leaf_der: bytes, edit: Callable[[bytes], bytes], place: str
) -> None:
    pki = TestPKI.create()
    broken = edit(leaf_der)
    if place == "certificate":
        overrides: dict[str, object] = {"certificate": broken}
    else:
        bundle = [certificate.public_bytes(Encoding.DER) for certificate in pki.cabundle]
        overrides = {"cabundle": [*bundle[:-1], broken]}
    data = pki.document(payload_overrides=overrides)
    with warnings.catch_warnings():
        # cryptography warns about the negative serial before we refuse it.
        warnings.simplefilter("ignore")
        with pytest.raises(CertificateInvalid) as caught:
            nitro_attest.parse(data)
    assert caught.value.code == "certificate"
    assert place in str(caught.value)
    assert _EXPECTED_REASON[edit.__name__] in str(caught.value)


_EXPECTED_REASON = {
    "_unknown_version": "not a valid X509 version",
    "_bit_string_country": "BitString",
    "_negative_serial": "serial number that is not positive",
    "_truncated": "not a usable X.509 certificate",
}


def _three_letter_country(der: bytes) -> bytes:
    # C=USA: cryptography warns (a country is 2 letters); the length bytes grow by one.
    position = der.index(_COUNTRY_US)
    return der[:position] + b"\x13\x03USA" + der[position + 4 :]


@pytest.mark.parametrize("edit", [_negative_serial, _three_letter_country], ids=lambda edit: edit.__name__)
def test_warnings_as_errors_still_give_a_certificate_error(leaf_der: bytes, edit: Callable[[bytes], bytes]) -> None:
    """An application running with -W error must get CertificateInvalid, not cryptography's warning."""
    data = TestPKI.create().document(payload_overrides={"certificate": edit(leaf_der)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(CertificateInvalid) as caught:
            nitro_attest.parse(data)
    assert caught.value.code == "certificate"
