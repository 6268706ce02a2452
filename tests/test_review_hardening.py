"""Hardening of nitro_attest.recipient and nitro_attest.eif after a security review: each test states a property.

- an envelope with an extra value inside any of its SEQUENCEs or explicit tags is ``malformed`` (asn1crypto
  alone keeps such values without complaint), in DER and in BER;
- a tag number of over four octets is ``malformed``, refused before asn1crypto reads it (in quadratic time);
- ``open``'s outcome on tampered copies of a captured envelope is a CBC padding oracle, inherent to the
  format: what the code guarantees (and the documentation says) is one code and one message;
- deeply nested CustomMetadata/DockerInfo is an ``EifError("metadata")``, not a RecursionError;
- a COSE_Sign1 with a non-empty unprotected header is ``EifError("signature")`` (nitro-cli writes ``{}``);
- ``EifDescription.table_matches`` says whether the offset table agrees, and ``eif describe`` warns when not.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import cbor2
import pytest
from asn1crypto import cms, core, parser  # type: ignore[import-untyped]
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from test_eif import _P384, METADATA, METADATA_JSON, PEM, PLAIN, SIGNATURE, _pcr_signature, raw_eif

from nitro_attest._cose import sig_structure
from nitro_attest.cli import EXIT_OK, main
from nitro_attest.eif import MAX_METADATA_DEPTH, EifError, describe
from nitro_attest.eif._signature import pcr_info
from nitro_attest.recipient import _DECRYPT_FAILED, EnclaveKey, RecipientError, seal
from nitro_attest.recipient import _cms as cms_oids


@pytest.fixture(scope="module")
def key() -> EnclaveKey:
    return EnclaveKey.generate()


# -- recipient: extra elements inside the envelope's SEQUENCEs ------------------------------------------


def _length(size: int) -> bytes:
    if size < 128:
        return bytes((size,))
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def _tlv(identifier: int, body: bytes) -> bytes:
    return bytes((identifier,)) + _length(len(body)) + body


def _contents(der: bytes) -> bytes:
    contents: bytes = parser.parse(der)[4]
    return contents


def _parts(key: EnclaveKey) -> dict[str, bytes]:
    """The parts of a sealed envelope, read back with asn1crypto: what a party who captured it has."""
    sealed = cms.ContentInfo.load(seal(b"a secret", key.public_key_der))["content"]
    ktri = sealed["recipient_infos"][0].chosen
    content_info = sealed["encrypted_content_info"]
    return {
        "encrypted_key": ktri["encrypted_key"].native,
        "iv": content_info["content_encryption_algorithm"]["parameters"].native,
        "content": content_info["encrypted_content"].native,
    }


Extra = dict[str, bytes]


def _der_envelope(key: EnclaveKey, parts: dict[str, bytes], extra: Extra) -> bytes:
    """A DER envelope of ``parts``, with ``extra[name]`` appended inside the SEQUENCE called ``name``."""
    oaep = cms_oids._OAEP_IDENTIFIER
    oaep_oid = oaep[2 : 2 + parser.peek(oaep[2:])]
    params = _contents(oaep)[len(oaep_oid) :]
    hash_explicit = _contents(params)[: parser.peek(_contents(params))]
    mask = _contents(params)[len(hash_explicit) :]
    hash_identifier = _contents(hash_explicit)
    hash_identifier = _tlv(0x30, _contents(hash_identifier) + extra.get("hash identifier", b""))
    hash_explicit = _tlv(0xA0, hash_identifier + extra.get("hash [0]", b""))
    params = _tlv(0x30, hash_explicit + mask + extra.get("oaep parameters", b""))
    key_encryption = _tlv(0x30, oaep_oid + params + extra.get("key encryption algorithm", b""))
    ktri = _tlv(
        0x30,
        core.Integer(2).dump()
        + _tlv(0x80, key.key_id)
        + key_encryption
        + _tlv(0x04, parts["encrypted_key"])
        + extra.get("ktri", b""),
    )
    content_algorithm = _tlv(
        0x30,
        core.ObjectIdentifier(cms_oids.AES_256_CBC).dump()
        + _tlv(0x04, parts["iv"])
        + extra.get("content encryption algorithm", b""),
    )
    encrypted_content_info = _tlv(
        0x30,
        core.ObjectIdentifier(cms_oids.DATA).dump()
        + content_algorithm
        + _tlv(0x80, parts["content"])
        + extra.get("encrypted content info", b""),
    )
    enveloped = _tlv(
        0x30, core.Integer(2).dump() + _tlv(0x31, ktri) + encrypted_content_info + extra.get("enveloped data", b"")
    )
    return _tlv(
        0x30,
        core.ObjectIdentifier(cms_oids.ENVELOPED_DATA).dump()
        + _tlv(0xA0, enveloped + extra.get("content [0]", b""))
        + extra.get("content info", b""),
    )


def test_the_rebuilt_envelope_opens(key: EnclaveKey) -> None:
    """The builder below is right: with nothing extra, the rebuilt envelope opens."""
    assert key.open(_der_envelope(key, _parts(key), {})) == b"a secret"


@pytest.mark.parametrize(
    "where",
    [
        "content info",
        "content [0]",
        "enveloped data",
        "encrypted content info",
        "content encryption algorithm",
        "ktri",
        "key encryption algorithm",
        "oaep parameters",
        "hash [0]",
        "hash identifier",
    ],
)
def test_an_extra_element_inside_a_sequence_is_malformed(key: EnclaveKey, where: str) -> None:
    """An element no field of the schema names is not "an EnvelopedData of the accepted shape".

    asn1crypto's Sequence keeps children past its last field as raw parts and an explicit tag's trailing
    values unread, so opening accepts them; OpenSSL, kmstool and any DER/BER reader that checks the
    schema refuse them.
    """
    data = _der_envelope(key, _parts(key), {where: b"\x05\x00"})
    with pytest.raises(RecipientError) as caught:
        key.open(data)
    assert caught.value.code == "malformed"


# -- recipient: open's outcome on tampered copies of a captured envelope -------------------------------


def test_open_of_tampered_copies_is_one_code_one_message_but_shows_whether_it_opened(key: EnclaveKey) -> None:
    """What the uniform ``decrypt`` error hides is which step failed, not whether the envelope opened.

    AES-CBC without a MAC (KMS's format) makes the opened-or-not outcome on tampered copies a padding oracle
    (Vaudenay): here the 16th byte of a secret, from 256 opens. No code can remove that, so this asserts
    what is documented (RecipientError, docs/recipient.md): every failure is ``decrypt`` with one message,
    and the oracle exists, which is why an enclave key must not open many attacker-tampered envelopes.
    """
    secret = b"sixteen bytes!!!"
    sealed = cms.ContentInfo.load(seal(secret, key.public_key_der))["content"]
    parts = {
        "encrypted_key": sealed["recipient_infos"][0].chosen["encrypted_key"].native,
        "iv": sealed["encrypted_content_info"]["content_encryption_algorithm"]["parameters"].native,
        "content": sealed["encrypted_content_info"]["encrypted_content"].native,
    }
    first_block = parts["content"][:16]
    opened, failures = set(), set()
    for guess in range(256):
        iv = parts["iv"][:15] + bytes((parts["iv"][15] ^ guess ^ 0x01,))
        tampered = _der_envelope(key, {**parts, "iv": iv, "content": first_block}, {})
        try:
            key.open(tampered)
        except RecipientError as error:
            failures.add((error.code, error.message))
        else:
            opened.add(guess)
    assert failures == {("decrypt", _DECRYPT_FAILED)}
    assert secret[15] in opened  # the oracle, inherent to CBC without a MAC: documented, not hidden


# -- recipient: the same extras in BER, and long tag numbers -------------------------------------------


def test_an_extra_value_inside_the_indefinite_content_wrapper_is_malformed(key: EnclaveKey) -> None:
    """KMS's layout: the ContentInfo's [0] has an indefinite length; a value after the EnvelopedData in it."""
    data = seal(b"a secret", key.public_key_der)
    assert data.endswith(b"\x00\x00\x00\x00\x00\x00")  # EnvelopedData, [0], ContentInfo end-of-contents
    extra = data[:-4] + b"\x05\x00" + data[-4:]
    with pytest.raises(RecipientError, match=r"the \[0\] of the ContentInfo holds more than one value") as caught:
        key.open(extra)
    assert caught.value.code == "malformed"


def test_an_extra_value_inside_the_indefinite_enveloped_data_is_malformed(key: EnclaveKey) -> None:
    data = seal(b"a secret", key.public_key_der)
    extra = data[:-6] + b"\x05\x00" + data[-6:]
    with pytest.raises(RecipientError, match=r"the EnvelopedData holds 1 value past its fields") as caught:
        key.open(extra)
    assert caught.value.code == "malformed"


_LONG_TAG = b"\x1f" + b"\xff" * 8000 + b"\x01\x00"


@pytest.mark.parametrize(
    "data",
    [
        _LONG_TAG,
        b"\x30\x80" + _LONG_TAG + b"\x00\x00",  # inside an indefinite length: asn1crypto scans it at once
        b"\x30\x82" + len(_LONG_TAG).to_bytes(2, "big") + _LONG_TAG,
        b"\x1f\x81\x81\x81\x81\x01\x00",  # five octets: one over the bound
    ],
    ids=["top level", "in an indefinite value", "in a definite value", "five octets"],
)
def test_a_tag_number_of_over_four_octets_is_malformed(key: EnclaveKey, data: bytes) -> None:
    """Refused before asn1crypto reads it: asn1crypto builds a long tag number in quadratic time (seconds here)."""
    with pytest.raises(RecipientError, match=r"tag number of over 4 octets") as caught:
        key.open(data)
    assert caught.value.code == "malformed"


def test_a_four_octet_tag_number_reaches_asn1crypto(key: EnclaveKey) -> None:
    with pytest.raises(RecipientError, match=r"ContentInfo: Error parsing asn1crypto.cms.ContentInfo") as caught:
        key.open(b"\x1f\x81\x81\x81\x01\x00")
    assert caught.value.code == "malformed"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x30\x80\x1f\x81", r"the identifier at offset 2 is cut short"),
        (b"\x30\x80\x04", r"the value at offset 2 has no length"),
        (b"\x30\x80\x04\x82\x01", r"the length of the value at offset 2 is cut short"),
        (b"\x30\x03\x04\x05\x00\x00\x00", r"the value at offset 2 runs past the end of what holds it"),
        (b"\x30\x80\x05\x00", r"the value at offset 4 is cut short"),
    ],
    ids=["tag", "length", "long length", "past its parent", "no end-of-contents"],
)
def test_headers_the_identifier_walk_cannot_follow_are_malformed(key: EnclaveKey, data: bytes, message: str) -> None:
    with pytest.raises(RecipientError, match=message) as caught:
        key.open(data)
    assert caught.value.code == "malformed"


# -- eif: metadata nesting ---------------------------------------------------------------------------------


def _metadata_with_custom(custom: str) -> bytes:
    return METADATA_JSON.decode().replace('"CustomMetadata": null', f'"CustomMetadata": {custom}').encode()


@pytest.mark.parametrize(
    "custom", ['{"a":' * 600 + "1" + "}" * 600, "[" * 600 + "]" * 600], ids=["nested objects", "nested arrays"]
)
def test_deeply_nested_custom_metadata_is_an_eif_error(custom: str) -> None:
    """json.loads reads 600 levels (well within the 1 MiB metadata bound); freezing stops at MAX_METADATA_DEPTH."""
    image = raw_eif([*PLAIN[:2], (METADATA, _metadata_with_custom(custom)), PLAIN[3]])
    with pytest.raises(EifError, match=r"metadata: CustomMetadata: nested deeper than 32 levels") as caught:
        describe(io.BytesIO(image))
    assert caught.value.code == "metadata"


def test_deeply_nested_docker_info_is_an_eif_error() -> None:
    nested = METADATA_JSON.decode().replace(
        '"DockerInfo": ', '"DockerInfo": ' + "[" * 40 + "1" + "]" * 40 + ', "x": ', 1
    )
    image = raw_eif([*PLAIN[:2], (METADATA, nested.encode()), PLAIN[3]])
    with pytest.raises(EifError, match=r"metadata: DockerInfo: nested deeper than 32 levels") as caught:
        describe(io.BytesIO(image))
    assert caught.value.code == "metadata"


def test_metadata_nested_to_the_bound_is_read() -> None:
    custom = "[" * MAX_METADATA_DEPTH + "]" * MAX_METADATA_DEPTH
    description = describe(io.BytesIO(raw_eif([*PLAIN[:2], (METADATA, _metadata_with_custom(custom)), PLAIN[3]])))
    assert description.metadata is not None
    assert json.dumps(description.describe_eif_json()["Metadata"]["CustomMetadata"]) == custom


# -- eif: the COSE unprotected header ----------------------------------------------------------------------


def _signed_image(unprotected: dict[Any, Any]) -> bytes:
    signing_key = _P384[1]
    pcr0 = describe(io.BytesIO(raw_eif(PLAIN))).pcrs[0].value
    protected, payload = b"\xa1\x01\x38\x22", pcr_info(pcr0)
    r, s = decode_dss_signature(signing_key.sign(sig_structure(protected, payload), ec.ECDSA(hashes.SHA384())))
    cose = cbor2.dumps([protected, unprotected, payload, r.to_bytes(48, "big") + s.to_bytes(48, "big")])
    return raw_eif([*PLAIN, (SIGNATURE, _pcr_signature(PEM, cose))])


def test_the_signed_image_builder_is_valid() -> None:
    description = describe(io.BytesIO(_signed_image({})))
    assert description.signature is not None and description.signature.valid


@pytest.mark.parametrize("unprotected", [{1: -7}, {4: b"key id"}], ids=["algorithm ES256 again", "a key id"])
def test_a_non_empty_unprotected_header_is_not_what_nitro_cli_writes(unprotected: dict[Any, Any]) -> None:
    """nitro-cli writes an empty unprotected header; RFC 9052 section 3 forbids a label in both buckets.

    Anything there would be unauthenticated parameters beside the signed ones.
    """
    with pytest.raises(
        EifError, match=r"expected an empty unprotected header \(nitro-cli's\), found 1 label"
    ) as caught:
        describe(io.BytesIO(_signed_image(unprotected)))
    assert caught.value.code == "signature"


# -- eif: the offset table, without strict --------------------------------------------------------------------


def test_table_matches_says_whether_the_offset_table_agrees() -> None:
    assert describe(io.BytesIO(raw_eif(PLAIN))).table_matches
    offsets = describe(io.BytesIO(raw_eif(PLAIN, offsets=[548, 566, 0, 0])))
    sizes = describe(io.BytesIO(raw_eif(PLAIN, sizes=[1, 1, 1, 1])))
    count = describe(io.BytesIO(raw_eif(PLAIN, count=3)))
    assert not offsets.table_matches and not sizes.table_matches and not count.table_matches


def test_eif_describe_warns_when_the_offset_table_does_not_match(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "moved.eif"
    path.write_bytes(raw_eif(PLAIN, offsets=[548, 566, 0, 0]))
    assert main(["eif", "describe", str(path)]) == EXIT_OK
    assert "warning: the header's offset table does not match the sections as read" in capsys.readouterr().err
    path.write_bytes(raw_eif(PLAIN))
    assert main(["eif", "describe", str(path)]) == EXIT_OK
    assert "offset table" not in capsys.readouterr().err
