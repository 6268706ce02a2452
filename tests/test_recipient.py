"""nitro_attest.recipient: KMS ``CiphertextForRecipient`` envelopes, opened, inspected and sealed.

- the real KMS envelopes of ../shared/kms: the two with keys open to their
  plaintexts, all six are inspected;
- what seal() writes has the ASN.1 skeleton of the real KMS envelopes
  (tags, definite or indefinite lengths, versions, OIDs, NULL parameters,
  primitive lengths: key id, IV, encrypted key, chunks), walked with
  asn1crypto's parser;
- one test per rejection path, with the input that triggers it; every
  decryption failure gives one code and one message;
- property tests: mutated envelopes raise RecipientError and nothing else.

The OpenSSL interop is in test_recipient_openssl.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from asn1crypto import algos, cms, core, parser  # type: ignore[import-untyped]
from conftest import require_shared
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import padding as symmetric_padding
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP, PKCS1v15
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import nitro_attest
from nitro_attest import ConfigurationError, Policy
from nitro_attest.recipient import (
    CONTENT_ENCRYPTION,
    KEY_ENCRYPTION,
    MAX_ENVELOPE,
    MAX_PLAINTEXT,
    EnclaveKey,
    EnvelopeInfo,
    RecipientError,
    inspect,
    seal,
)
from nitro_attest.testing import DocumentFactory

KEYED = ("kms_cfr_enclaver_rs", "kms_cfr_enclaver_go")
KEYLESS = ("cms1", "cms2", "kms_cfr_rustcrypto_1", "kms_cfr_rustcrypto_4_chunked")
# The size of each sample's encryptedContent (../shared/kms/README.md).
CONTENT_LENGTHS = {
    "cms1": 48,
    "cms2": 16,
    "kms_cfr_rustcrypto_1": 16,
    "kms_cfr_rustcrypto_4_chunked": 4112,
    "kms_cfr_enclaver_rs": 16,
    "kms_cfr_enclaver_go": 48,
}
OAEP_SHA256 = OAEP(mgf=MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
DECRYPT_MESSAGE = "the envelope does not decrypt with this key (wrong key, or a corrupted encrypted key or content)"


def sample(name: str) -> bytes:
    return require_shared(f"kms/{name}.ber").read_bytes()


def sample_key(name: str) -> EnclaveKey:
    return EnclaveKey.from_pem(require_shared(f"kms/{name}.key.pem").read_bytes())


@pytest.fixture(scope="module")
def key() -> EnclaveKey:
    return EnclaveKey.generate()


@pytest.fixture(scope="module")
def other_key() -> EnclaveKey:
    return EnclaveKey.generate()


# -- the ASN.1 skeleton, walked with asn1crypto's parser ----------------------------------------------


def _values(data: bytes) -> list[bytes]:
    values = []
    while data:
        length = parser.peek(data)
        values.append(data[:length])
        data = data[length:]
    return values


def skeleton(data: bytes) -> list[Any]:
    """Each value of ``data`` as (class, tag, length form, what): what is children, an OID, an INTEGER or a size."""
    nodes: list[Any] = []
    for value in _values(data):
        class_, constructed, tag, _header, contents, trailer = parser.parse(value)
        form = "indefinite" if trailer else "definite"
        what: Any
        if constructed:
            what = skeleton(contents)
        elif class_ == 0 and tag == 6:
            what = core.ObjectIdentifier.load(value).dotted
        elif class_ == 0 and tag == 2:
            what = ("INTEGER", core.Integer.load(value).native)
        elif class_ == 0 and tag == 5:
            what = "NULL"
        else:
            what = len(contents)
        nodes.append((class_, tag, form, what))
    return nodes


def _encrypted_content_info(tree: list[Any]) -> list[Any]:
    (content_info,) = tree
    enveloped = content_info[3][1][3][0][3]
    encrypted_content_info: list[Any] = enveloped[2][3]
    return encrypted_content_info


def chunk_sizes(tree: list[Any]) -> list[int]:
    """The chunk sizes of the encryptedContent: the sizes under the ``[0]`` of the EncryptedContentInfo."""
    return [node[3] for node in _encrypted_content_info(tree)[2][3]]


def with_encrypted_content(tree: list[Any], node: tuple[Any, ...]) -> list[Any]:
    """``tree`` with the encryptedContent replaced by ``node``."""
    _encrypted_content_info(tree)[2] = node
    return tree


def with_chunks(tree: list[Any], sizes: list[int]) -> list[Any]:
    """``tree`` with the encryptedContent as ``[0]`` indefinite, of OCTET STRINGs of ``sizes``."""
    return with_encrypted_content(tree, (2, 0, "indefinite", [(0, 4, "definite", size) for size in sizes]))


# -- envelopes made here, one field at a time (DER, which open() accepts as OpenSSL writes it) ------------


def oaep_identifier(hash_oid: str = "sha256", mask_hash: str = "sha256", *, label: bytes | None = None) -> Any:
    parameters = {
        "hash_algorithm": algos.DigestAlgorithm({"algorithm": hash_oid, "parameters": core.Null()}),
        "mask_gen_algorithm": algos.MaskGenAlgorithm(
            {"algorithm": "mgf1", "parameters": algos.DigestAlgorithm({"algorithm": mask_hash})}
        ),
    }
    if label is not None:
        parameters["p_source_algorithm"] = algos.PSourceAlgorithm({"algorithm": "p_specified", "parameters": label})
    return cms.KeyEncryptionAlgorithm({"algorithm": "rsaes_oaep", "parameters": algos.RSAESOAEPParams(parameters)})


def ktri(
    key: EnclaveKey,
    content_key: bytes,
    *,
    key_id: bytes | None = None,
    version: str = "v2",
    algorithm: Any = None,
    encrypted_key: bytes | None = None,
) -> Any:
    public = key.private_key.public_key()
    return cms.RecipientInfo(
        name="ktri",
        value=cms.KeyTransRecipientInfo(
            {
                "version": version,
                "rid": cms.RecipientIdentifier(
                    name="subject_key_identifier", value=key.key_id if key_id is None else key_id
                ),
                "key_encryption_algorithm": oaep_identifier() if algorithm is None else algorithm,
                "encrypted_key": public.encrypt(content_key, OAEP_SHA256) if encrypted_key is None else encrypted_key,
            }
        ),
    )


def encrypt_content(plaintext: bytes, content_key: bytes, iv: bytes, *, pad: bool = True) -> bytes:
    if pad:
        padder = symmetric_padding.PKCS7(128).padder()
        plaintext = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(content_key), modes.CBC(iv)).encryptor()
    return encryptor.update(plaintext) + encryptor.finalize()


CONTENT_KEY = bytes(range(32))
IV = bytes(range(16))


def envelope(
    key: EnclaveKey,
    plaintext: bytes = b"a secret",
    *,
    recipients: list[Any] | None = None,
    version: int = 2,
    content_type: str = "data",
    content_algorithm: Any = None,
    content: bytes | None = None,
    omit_content: bool = False,
    extra: dict[str, Any] | None = None,
    outer_type: str = "enveloped_data",
) -> bytes:
    """A DER EnvelopedData for ``key``, as OpenSSL writes one, with any one field replaced."""
    encrypted_content = encrypt_content(plaintext, CONTENT_KEY, IV) if content is None else content
    content_info: dict[str, Any] = {
        "content_type": content_type,
        "content_encryption_algorithm": (
            cms.EncryptionAlgorithm({"algorithm": "aes256_cbc", "parameters": IV})
            if content_algorithm is None
            else content_algorithm
        ),
    }
    if not omit_content:
        content_info["encrypted_content"] = encrypted_content
    enveloped = cms.EnvelopedData(
        {
            "version": version,
            "recipient_infos": [ktri(key, CONTENT_KEY)] if recipients is None else recipients,
            "encrypted_content_info": cms.EncryptedContentInfo(content_info),
            **(extra or {}),
        }
    )
    if outer_type != "enveloped_data":
        other: bytes = cms.ContentInfo({"content_type": outer_type}).dump()
        return other
    data: bytes = cms.ContentInfo({"content_type": "enveloped_data", "content": enveloped}).dump()
    return data


# -- the real KMS envelopes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", KEYED)
def test_opens_the_keyed_kms_samples(name: str) -> None:
    plaintext = require_shared(f"kms/{name}.plaintext").read_bytes()
    assert sample_key(name).open(sample(name)) == plaintext


def test_the_keyed_samples_hold_what_their_sources_say() -> None:
    assert sample_key("kms_cfr_enclaver_rs").open(sample("kms_cfr_enclaver_rs")) == b"Hello, World"
    assert len(sample_key("kms_cfr_enclaver_go").open(sample("kms_cfr_enclaver_go"))) == 32  # a data key


@pytest.mark.parametrize("name", KEYED + KEYLESS)
def test_inspect_reads_every_sample(name: str) -> None:
    info = inspect(sample(name))
    assert info == EnvelopeInfo(
        key_id=info.key_id,
        key_size=2048,
        content_length=CONTENT_LENGTHS[name],
        key_encryption="RSAES-OAEP SHA-256 MGF1-SHA-256",
        content_encryption="AES-256-CBC",
    )
    assert len(info.key_id) == 32
    if name in KEYED:
        assert info.key_id == sample_key(name).key_id


@pytest.mark.parametrize("name", KEYED)
def test_the_sample_key_ids_are_sha256_of_the_spki(name: str) -> None:
    key = sample_key(name)
    der = key.private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert key.public_key_der == der
    assert key.key_id == hashlib.sha256(der).digest() == inspect(sample(name)).key_id


def test_a_sample_does_not_open_with_another_key(key: EnclaveKey) -> None:
    with pytest.raises(RecipientError) as caught:
        key.open(sample("kms_cfr_enclaver_rs"))
    assert caught.value.code == "recipient"
    assert inspect(sample("kms_cfr_enclaver_rs")).key_id.hex() in caught.value.message


def test_the_samples_have_the_layout_the_readme_describes() -> None:
    """The skeleton of one real KMS envelope, spelled out: what seal() must write."""
    null_sha256 = [(0, 6, "definite", "2.16.840.1.101.3.4.2.1"), (0, 5, "definite", "NULL")]
    expected = [
        (
            0,
            16,
            "indefinite",
            [
                (0, 6, "definite", "1.2.840.113549.1.7.3"),
                (
                    2,
                    0,
                    "indefinite",
                    [
                        (
                            0,
                            16,
                            "indefinite",
                            [
                                (0, 2, "definite", ("INTEGER", 2)),
                                (
                                    0,
                                    17,
                                    "definite",
                                    [
                                        (
                                            0,
                                            16,
                                            "definite",
                                            [
                                                (0, 2, "definite", ("INTEGER", 2)),
                                                (2, 0, "definite", 32),
                                                (
                                                    0,
                                                    16,
                                                    "definite",
                                                    [
                                                        (0, 6, "definite", "1.2.840.113549.1.1.7"),
                                                        (
                                                            0,
                                                            16,
                                                            "definite",
                                                            [
                                                                (2, 0, "definite", [(0, 16, "definite", null_sha256)]),
                                                                (
                                                                    2,
                                                                    1,
                                                                    "definite",
                                                                    [
                                                                        (
                                                                            0,
                                                                            16,
                                                                            "definite",
                                                                            [
                                                                                (
                                                                                    0,
                                                                                    6,
                                                                                    "definite",
                                                                                    "1.2.840.113549.1.1.8",
                                                                                ),
                                                                                (0, 16, "definite", null_sha256),
                                                                            ],
                                                                        )
                                                                    ],
                                                                ),
                                                            ],
                                                        ),
                                                    ],
                                                ),
                                                (0, 4, "definite", 256),
                                            ],
                                        )
                                    ],
                                ),
                                (
                                    0,
                                    16,
                                    "indefinite",
                                    [
                                        (0, 6, "definite", "1.2.840.113549.1.7.1"),
                                        (
                                            0,
                                            16,
                                            "definite",
                                            [(0, 6, "definite", "2.16.840.1.101.3.4.1.42"), (0, 4, "definite", 16)],
                                        ),
                                        (2, 0, "indefinite", [(0, 4, "definite", 16)]),
                                    ],
                                ),
                            ],
                        )
                    ],
                ),
            ],
        )
    ]
    assert skeleton(sample("kms_cfr_rustcrypto_1")) == expected
    assert chunk_sizes(skeleton(sample("kms_cfr_rustcrypto_4_chunked"))) == [1000, 1000, 1000, 1000, 112]


@pytest.mark.parametrize("name", sorted(set(KEYED + KEYLESS) - {"cms2"}))
def test_every_sample_has_one_skeleton_but_for_its_chunks(name: str) -> None:
    tree = skeleton(sample(name))
    assert tree == with_chunks(skeleton(sample("kms_cfr_rustcrypto_1")), chunk_sizes(tree))


def test_one_real_kms_envelope_has_primitive_content() -> None:
    """cms2.ber (the C SDK's tests) writes its 16 bytes of encryptedContent as a primitive [0]: opened too."""
    expected = with_encrypted_content(skeleton(sample("kms_cfr_rustcrypto_1")), (2, 0, "definite", 16))
    assert skeleton(sample("cms2")) == expected
    assert inspect(sample("cms2")).content_length == 16


# -- seal() writes the KMS layout ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plaintext_length", "name", "chunks"),
    [
        (16, "kms_cfr_rustcrypto_1", [32]),  # the next padded size: one chunk of 32 where the sample has 16
        (4096, "kms_cfr_rustcrypto_4_chunked", None),
        (12, "kms_cfr_rustcrypto_1", None),  # "Hello, World": the sample's own content size
        (32, "cms1", None),  # a data key, as KMS GenerateDataKey releases it
    ],
)
def test_seal_writes_the_kms_skeleton(key: EnclaveKey, plaintext_length: int, name: str, chunks: list[int]) -> None:
    sealed = seal(b"s" * plaintext_length, key.public_key_der)
    expected = skeleton(sample(name))
    if chunks is not None:
        expected = with_chunks(expected, chunks)
    assert skeleton(sealed) == expected
    assert key.open(sealed) == b"s" * plaintext_length


@pytest.mark.parametrize(
    ("plaintext_length", "chunks"),
    [(1, [16]), (983, [992]), (999, [1000, 8]), (3999, [1000] * 4), (MAX_PLAINTEXT, [1000] * 65 + [552])],
)
def test_seal_cuts_the_content_in_chunks_of_1000(key: EnclaveKey, plaintext_length: int, chunks: list[int]) -> None:
    sealed = seal(b"c" * plaintext_length, key.public_key_der)
    assert chunk_sizes(skeleton(sealed)) == chunks
    assert len(sealed) <= MAX_ENVELOPE
    assert key.open(sealed) == b"c" * plaintext_length


def test_seal_uses_a_fresh_key_and_iv_every_call(key: EnclaveKey) -> None:
    first, second = (cms.ContentInfo.load(seal(b"same secret", key.public_key_der))["content"] for _ in range(2))
    assert first["recipient_infos"][0].chosen["rid"].native == second["recipient_infos"][0].chosen["rid"].native
    fields: list[Callable[[Any], bytes]] = [
        lambda envelope: envelope["recipient_infos"][0].chosen["encrypted_key"].native,
        lambda envelope: envelope["encrypted_content_info"]["content_encryption_algorithm"]["parameters"].native,
        lambda envelope: envelope["encrypted_content_info"]["encrypted_content"].native,
    ]
    for field in fields:
        assert field(first) != field(second)


def test_seal_accepts_every_form_of_recipient(key: EnclaveKey) -> None:
    public = key.private_key.public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    for recipient in (key.public_key_der, bytearray(key.public_key_der), pem, b"\n" + pem, public):
        assert key.open(seal(b"to every form", recipient)) == b"to every form"
    assert key.open(seal(memoryview(b"from a view"), key.public_key_der)) == b"from a view"


def verified_document(public_key: bytes | None) -> nitro_attest.VerifiedDocument:
    make = DocumentFactory()
    data = make(public_key=public_key)
    return nitro_attest.verify(data, Policy.any_enclave(), at=make.verification_time, roots=make.roots)


def test_seal_to_a_verified_document_opens_with_the_enclave_key(key: EnclaveKey) -> None:
    document = verified_document(key.public_key_der)
    sealed = seal(b"released to the attested enclave", document)
    assert inspect(sealed).key_id == key.key_id
    assert key.open(sealed) == b"released to the attested enclave"


def test_seal_refuses_a_parsed_document(key: EnclaveKey) -> None:
    document = nitro_attest.parse(DocumentFactory()(public_key=key.public_key_der))
    with pytest.raises(TypeError, match=r"must be a VerifiedDocument.*not a parsed AttestationDocument"):
        seal(b"secret", document)


def test_seal_refuses_a_document_without_public_key() -> None:
    with pytest.raises(RecipientError, match="carries no public_key") as caught:
        seal(b"secret", verified_document(None))
    assert caught.value.code == "recipient"


def test_seal_refuses_a_pem_public_key_in_a_document(key: EnclaveKey) -> None:
    pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(RecipientError, match=r"public_key is not a SubjectPublicKeyInfo \(DER\)") as caught:
        seal(b"secret", verified_document(pem))
    assert caught.value.code == "recipient"


def test_seal_refuses_a_document_with_an_ec_key() -> None:
    ec_key = ec.generate_private_key(ec.SECP384R1()).public_key()
    der = ec_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(RecipientError, match="not an RSA key") as caught:
        seal(b"secret", verified_document(der))
    assert caught.value.code == "recipient"


@pytest.mark.parametrize(
    ("recipient", "match"),
    [
        (b"not a key", r"not a SubjectPublicKeyInfo \(DER or PEM\)"),
        (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", r"not a SubjectPublicKeyInfo"),
        (b"\x30" * 5000, "5000 bytes, over the 4096-byte bound"),
    ],
)
def test_seal_refuses_bytes_that_are_no_public_key(recipient: bytes, match: str) -> None:
    with pytest.raises(RecipientError, match=match) as caught:
        seal(b"secret", recipient)
    assert caught.value.code == "recipient"


def test_seal_refuses_an_rsa_key_of_another_size() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    with pytest.raises(RecipientError, match="1024-bit RSA key") as caught:
        seal(b"secret", small)
    assert caught.value.code == "recipient"


@pytest.mark.parametrize("recipient", ["a PEM as str", ec.generate_private_key(ec.SECP256R1()).public_key(), None])
def test_seal_refuses_a_recipient_of_another_type(recipient: object) -> None:
    with pytest.raises(TypeError, match="seal's recipient must be a VerifiedDocument"):
        seal(b"secret", recipient)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, MAX_PLAINTEXT + 1])
def test_seal_bounds_the_plaintext(key: EnclaveKey, size: int) -> None:
    with pytest.raises(ConfigurationError, match=f"1 to {MAX_PLAINTEXT} bytes, not {size}"):
        seal(b"p" * size, key.public_key_der)


def test_seal_refuses_a_str_plaintext(key: EnclaveKey) -> None:
    with pytest.raises(TypeError, match="plaintext must be bytes, not str"):
        seal("secret", key.public_key_der)  # type: ignore[arg-type]


# -- EnclaveKey -------------------------------------------------------------------------------------------------


def test_a_generated_key(key: EnclaveKey) -> None:
    assert key.private_key.key_size == 2048
    assert key.private_key.public_key().public_numbers().e == 65537
    assert key.key_id == hashlib.sha256(key.public_key_der).digest()
    assert key.key_id.hex() not in repr(key)  # bytes in the repr, and never the private key
    assert "private" not in repr(key)


@pytest.mark.parametrize("bits", [3072, 4096])
def test_larger_keys_seal_open_and_fit_the_nsm_limit(bits: int) -> None:
    key = EnclaveKey.generate(bits)
    assert len(key.public_key_der) <= 1024  # NSM's bound on an attestation request's public_key
    sealed = seal(b"larger", key.public_key_der)
    assert inspect(sealed).key_size == bits
    assert key.open(sealed) == b"larger"


@pytest.mark.parametrize("bits", [1024, 2047, 8192, True])
def test_generate_refuses_other_sizes(bits: int) -> None:
    with pytest.raises(ConfigurationError, match="2048, 3072 or 4096 bits"):
        EnclaveKey.generate(bits)


def test_a_key_survives_pem(key: EnclaveKey) -> None:
    pem = key.to_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    assert EnclaveKey.from_pem(pem).key_id == key.key_id
    encrypted = key.to_pem(password=b"hunter2")
    assert encrypted.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert EnclaveKey.from_pem(encrypted, password=b"hunter2").key_id == key.key_id


def test_from_pem_reads_pkcs1() -> None:
    data = require_shared("kms/kms_cfr_enclaver_go.key.pem").read_bytes()
    assert data.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert EnclaveKey.from_pem(data).private_key.key_size == 2048


def _ec_pem() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _rsa_1024_pem() -> bytes:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.mark.parametrize(
    ("make", "password", "match"),
    [
        (lambda key: b"not a key", None, "not a usable PEM private key"),
        (lambda key: b"-" * 20000, None, "at most 16384 bytes, not 20000"),
        (lambda key: key.to_pem(password=b"right"), None, "not a usable PEM private key: Password was not given"),
        (lambda key: key.to_pem(password=b"right"), b"wrong", "not a usable PEM private key"),
        (lambda key: key.to_pem(), b"needless", "not a usable PEM private key: Password was given"),
        (lambda key: _ec_pem(), None, "an RSA key, not"),
        (lambda key: _rsa_1024_pem(), None, "not 1024-bit"),
    ],
    ids=["garbage", "too-large", "password-missing", "password-wrong", "password-needless", "ec", "rsa-1024"],
)
def test_from_pem_refuses(
    key: EnclaveKey, make: Callable[[EnclaveKey], bytes], password: bytes | None, match: str
) -> None:
    with pytest.raises(ConfigurationError, match=match):
        EnclaveKey.from_pem(make(key), password=password)


def test_an_enclave_key_holds_an_rsa_private_key() -> None:
    with pytest.raises(TypeError, match=r"holds an rsa\.RSAPrivateKey, not"):
        EnclaveKey(ec.generate_private_key(ec.SECP256R1()))  # type: ignore[arg-type]


# -- what open() accepts besides the KMS layout ------------------------------------------------------------------


def test_open_accepts_der_with_absent_hash_parameters(key: EnclaveKey) -> None:
    """What ``openssl cms -encrypt`` writes without ``-stream``, made here (the OpenSSL tests run the binary)."""
    algorithm = cms.KeyEncryptionAlgorithm(
        {
            "algorithm": "rsaes_oaep",
            "parameters": algos.RSAESOAEPParams(
                {
                    "hash_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                    "mask_gen_algorithm": algos.MaskGenAlgorithm(
                        {"algorithm": "mgf1", "parameters": algos.DigestAlgorithm({"algorithm": "sha256"})}
                    ),
                }
            ),
        }
    )
    data = envelope(key, recipients=[ktri(key, CONTENT_KEY, algorithm=algorithm)])
    assert data[1] != 0x80  # definite lengths
    assert key.open(data) == b"a secret"


def test_open_accepts_an_openssl_key_id(key: EnclaveKey) -> None:
    """OpenSSL names the recipient by its certificate's key id: SHA-1 of the subjectPublicKey bits."""
    bits = key.private_key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    openssl_id = hashlib.sha1(bits).digest()
    data = envelope(key, recipients=[ktri(key, CONTENT_KEY, key_id=openssl_id)])
    assert inspect(data).key_id == openssl_id
    assert key.open(data) == b"a secret"


def test_open_accepts_buffers(key: EnclaveKey) -> None:
    data = seal(b"buffered", key.public_key_der)
    assert key.open(bytearray(data)) == key.open(memoryview(data)) == b"buffered"


def test_open_returns_the_largest_plaintext(key: EnclaveKey) -> None:
    data = envelope(key, b"m" * MAX_PLAINTEXT)
    assert key.open(data) == b"m" * MAX_PLAINTEXT


# -- every rejection path -----------------------------------------------------------------------------------------


def rejected(key: EnclaveKey, data: object, code: str, match: str) -> RecipientError:
    with pytest.raises(RecipientError, match=match) as caught:
        key.open(data)  # type: ignore[arg-type]
    assert caught.value.code == code
    if code in ("malformed", "unsupported"):
        with pytest.raises(RecipientError) as inspected:
            inspect(data)  # type: ignore[arg-type]
        assert (inspected.value.code, inspected.value.message) == (code, caught.value.message)
    return caught.value


def test_rejects_an_envelope_over_the_bound(key: EnclaveKey) -> None:
    rejected(key, b"\x30\x80" + bytes(MAX_ENVELOPE), "malformed", f"over the {MAX_ENVELOPE}-byte bound")
    rejected(key, bytearray(100 * 1024 * 1024), "malformed", "104857600 bytes, over")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x30",
        b"\x30\x80",
        b"\x04\x02ab",
        b"\x30\x80\x06\x09*\x86H\x86\xf7\r\x01\x07\x03\xa0\x80\x30\x80" + bytes(6),
        b"garbage",
    ],
    ids=["empty", "one-byte", "open-indefinite", "octet-string", "empty-enveloped-data", "garbage"],
)
def test_rejects_undecodable_bytes(key: EnclaveKey, data: bytes) -> None:
    rejected(key, data, "malformed", "not a BER-encoded CMS ContentInfo")


def test_rejects_trailing_bytes(key: EnclaveKey) -> None:
    data = seal(b"secret", key.public_key_der)
    rejected(key, data + b"\x00", "malformed", "1 trailing bytes after the envelope")
    rejected(key, data + data, "malformed", f"{len(data)} trailing bytes")


def test_rejects_a_content_info_without_content(key: EnclaveKey) -> None:
    data = cms.ContentInfo({"content_type": "enveloped_data"}).dump()
    rejected(key, data, "malformed", "no content")


def test_rejects_no_recipient(key: EnclaveKey) -> None:
    rejected(key, envelope(key, recipients=[]), "malformed", "no recipient")


def test_rejects_a_ktri_version_other_than_2(key: EnclaveKey) -> None:
    data = envelope(key, recipients=[ktri(key, CONTENT_KEY, version="v0")])
    rejected(key, data, "malformed", "KeyTransRecipientInfo version 0 with a key id")


def test_rejects_an_enveloped_data_version_other_than_2(key: EnclaveKey) -> None:
    rejected(key, envelope(key, version=0), "malformed", "EnvelopedData version 0")


@pytest.mark.parametrize("size", [100, 255, 257])
def test_rejects_an_encrypted_key_of_no_rsa_size(key: EnclaveKey, size: int) -> None:
    data = envelope(key, recipients=[ktri(key, CONTENT_KEY, encrypted_key=b"k" * size)])
    rejected(key, data, "malformed", f"an encrypted key of {size} bytes")


@pytest.mark.parametrize("occurrence", [0, 1], ids=["hash", "mgf1-hash"])
def test_rejects_sha256_parameters_other_than_null(key: EnclaveKey, occurrence: int) -> None:
    """An empty OCTET STRING where the NULL is: the same length, so only the parameters change."""
    null_sha256 = bytes.fromhex("06096086480165030402010500")
    data = seal(b"secret", key.public_key_der)
    start = data.index(null_sha256, data.index(null_sha256) + 1) if occurrence else data.index(null_sha256)
    data = data[: start + 11] + b"\x04\x00" + data[start + 13 :]
    rejected(key, data, "malformed", "tag should have been 5, but 4 was found")


@pytest.mark.parametrize("iv", [b"", b"i" * 8, b"i" * 17])
def test_rejects_an_iv_of_another_size(key: EnclaveKey, iv: bytes) -> None:
    algorithm = cms.EncryptionAlgorithm({"algorithm": "aes256_cbc", "parameters": iv})
    rejected(key, envelope(key, content_algorithm=algorithm), "malformed", "not a 16-byte IV")


def test_rejects_detached_content(key: EnclaveKey) -> None:
    rejected(key, envelope(key, omit_content=True), "malformed", "detached content")


@pytest.mark.parametrize("size", [0, 15, 17, 33])
def test_rejects_content_of_no_block_size(key: EnclaveKey, size: int) -> None:
    rejected(key, envelope(key, content=b"c" * size), "malformed", f"{size} bytes of encrypted content: not a")


def test_rejects_content_over_the_bound(key: EnclaveKey) -> None:
    size = MAX_PLAINTEXT + 32
    rejected(key, envelope(key, content=b"c" * size), "malformed", f"{size} bytes of encrypted content, over")


@pytest.mark.parametrize("outer", ["data", "signed_data", "digested_data", "encrypted_data"])
def test_rejects_another_content_type(key: EnclaveKey, outer: str) -> None:
    rejected(key, envelope(key, outer_type=outer), "unsupported", "only EnvelopedData")


def test_rejects_several_recipients(key: EnclaveKey, other_key: EnclaveKey) -> None:
    recipients = [ktri(key, CONTENT_KEY), ktri(other_key, CONTENT_KEY)]
    rejected(key, envelope(key, recipients=recipients), "unsupported", "2 recipients: only one")


def test_rejects_a_kek_recipient(key: EnclaveKey) -> None:
    kekri = cms.RecipientInfo(
        name="kekri",
        value=cms.KEKRecipientInfo(
            {
                "version": "v4",
                "kekid": {"key_identifier": b"kek"},
                "key_encryption_algorithm": {"algorithm": "aes256_wrap"},
                "encrypted_key": b"w" * 40,
            }
        ),
    )
    rejected(key, envelope(key, recipients=[kekri]), "unsupported", r"key-encryption key \(KEKRecipientInfo\)")


def test_rejects_an_issuer_and_serial_number_recipient(key: EnclaveKey) -> None:
    name = {"common_name": "enclave"}
    recipient = cms.RecipientInfo(
        name="ktri",
        value=cms.KeyTransRecipientInfo(
            {
                "version": "v0",
                "rid": cms.RecipientIdentifier(
                    name="issuer_and_serial_number",
                    value={"issuer": cms.Name.build(name), "serial_number": 1},
                ),
                "key_encryption_algorithm": oaep_identifier(),
                "encrypted_key": b"k" * 256,
            }
        ),
    )
    rejected(key, envelope(key, recipients=[recipient], version=0), "unsupported", "issuerAndSerialNumber")


@pytest.mark.parametrize("size", [0, 16, 31, 33])
def test_rejects_a_key_id_of_another_size(key: EnclaveKey, size: int) -> None:
    data = envelope(key, recipients=[ktri(key, CONTENT_KEY, key_id=b"i" * size)])
    rejected(key, data, "unsupported", f"a key id of {size} bytes")


def test_rejects_pkcs1_v1_5_key_transport(key: EnclaveKey) -> None:
    algorithm = cms.KeyEncryptionAlgorithm({"algorithm": "rsaes_pkcs1v15", "parameters": core.Null()})
    encrypted = key.private_key.public_key().encrypt(CONTENT_KEY, PKCS1v15())
    data = envelope(key, recipients=[ktri(key, CONTENT_KEY, algorithm=algorithm, encrypted_key=encrypted)])
    rejected(key, data, "unsupported", "RSA PKCS#1 v1.5 key transport: only RSAES-OAEP")


def test_rejects_an_unknown_key_transport(key: EnclaveKey) -> None:
    algorithm = cms.KeyEncryptionAlgorithm({"algorithm": "1.2.3.4"})
    data = envelope(key, recipients=[ktri(key, CONTENT_KEY, algorithm=algorithm)])
    rejected(key, data, "unsupported", "OID 1.2.3.4: only RSAES-OAEP")


@pytest.mark.parametrize(
    ("algorithm", "match"),
    [
        (lambda: oaep_identifier("sha1", "sha1"), "RSAES-OAEP with SHA-1: only SHA-256"),
        (lambda: oaep_identifier("sha384", "sha384"), "RSAES-OAEP with OID 2.16.840.1.101.3.4.2.2"),
        (lambda: oaep_identifier("sha256", "sha1"), "MGF1 with SHA-1: only MGF1 with SHA-256"),
        (lambda: oaep_identifier(label=b"label"), "with a label"),
        (
            lambda: cms.KeyEncryptionAlgorithm(
                {
                    "algorithm": "rsaes_oaep",
                    "parameters": {
                        "hash_algorithm": {"algorithm": "sha256"},
                        "mask_gen_algorithm": {"algorithm": "1.2.3.4"},
                    },
                }
            ),
            "another mask function",
        ),
        (
            lambda: cms.KeyEncryptionAlgorithm(
                {
                    "algorithm": "rsaes_oaep",
                    "parameters": {
                        "hash_algorithm": {"algorithm": "sha256"},
                        "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": "sha256"}},
                        "p_source_algorithm": {"algorithm": "1.2.3.4"},
                    },
                }
            ),
            "with a label",
        ),
    ],
    ids=["sha1", "sha384", "mgf1-sha1", "label", "other-mgf", "other-p-source"],
)
def test_rejects_other_oaep_parameters(key: EnclaveKey, algorithm: Callable[[], Any], match: str) -> None:
    data = envelope(key, recipients=[ktri(key, CONTENT_KEY, algorithm=algorithm())])
    rejected(key, data, "unsupported", match)


def test_rejects_originator_info(key: EnclaveKey) -> None:
    data = envelope(key, extra={"originator_info": {"certs": []}})
    rejected(key, data, "unsupported", "originatorInfo")


def test_rejects_unprotected_attributes(key: EnclaveKey) -> None:
    attribute = cms.CMSAttribute({"type": "content_type", "values": ["data"]})
    data = envelope(key, extra={"unprotected_attrs": [attribute]})
    rejected(key, data, "unsupported", "unprotectedAttrs")


def test_rejects_encrypted_content_of_another_type(key: EnclaveKey) -> None:
    rejected(key, envelope(key, content_type="signed_data"), "unsupported", "encrypted content of type 1.2.840")


@pytest.mark.parametrize(
    ("algorithm", "match"),
    [("aes128_cbc", "AES-128-CBC"), ("aes192_cbc", "AES-192-CBC"), ("des", r"OID 1\.3\.14\.3\.2\.7")],
)
def test_rejects_other_content_encryption(key: EnclaveKey, algorithm: str, match: str) -> None:
    iv = IV if algorithm != "des" else IV[:8]
    identifier = cms.EncryptionAlgorithm({"algorithm": algorithm, "parameters": iv})
    rejected(key, envelope(key, content_algorithm=identifier), "unsupported", f"{match}: only AES-256-CBC")


def test_rejects_another_recipient(key: EnclaveKey, other_key: EnclaveKey) -> None:
    error = rejected(key, seal(b"secret", other_key.public_key_der), "recipient", "sealed to key id")
    assert other_key.key_id.hex() in error.message and key.key_id.hex() in error.message


def test_rejects_another_recipients_openssl_key_id(key: EnclaveKey) -> None:
    data = envelope(key, recipients=[ktri(key, CONTENT_KEY, key_id=b"o" * 20)])
    rejected(key, data, "recipient", "sealed to key id 6f6f")


@pytest.mark.parametrize("envelope_of", [str, list, lambda data: None])
def test_open_and_inspect_refuse_other_types(key: EnclaveKey, envelope_of: Callable[[bytes], object]) -> None:
    data = envelope_of(b"x")
    with pytest.raises(TypeError, match="an envelope must be bytes"):
        key.open(data)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="an envelope must be bytes"):
        inspect(data)  # type: ignore[arg-type]


# -- decryption failures: one code, one message ---------------------------------------------------------------------


def _corrupt_encrypted_key(key: EnclaveKey) -> bytes:
    encrypted = bytearray(key.private_key.public_key().encrypt(CONTENT_KEY, OAEP_SHA256))
    encrypted[100] ^= 1
    return envelope(key, recipients=[ktri(key, CONTENT_KEY, encrypted_key=bytes(encrypted))])


def _short_content_key(key: EnclaveKey) -> bytes:
    short = CONTENT_KEY[:16]
    return envelope(
        key,
        content=encrypt_content(b"secret", short, IV),
        recipients=[ktri(key, short)],
    )


def _bad_padding(key: EnclaveKey) -> bytes:
    return envelope(key, content=encrypt_content(b"sixteen bytes!!!", CONTENT_KEY, IV, pad=False))


def _over_the_bound_once_unpadded(key: EnclaveKey) -> bytes:
    return envelope(key, b"p" * (MAX_PLAINTEXT + 1))


def _flipped_iv(key: EnclaveKey) -> bytes:
    """One bit of the IV flipped: the padding byte of the one block flips too (0x0a to 0x0b), so it is bad."""
    flipped = IV[:-1] + bytes((IV[-1] ^ 1,))
    algorithm = cms.EncryptionAlgorithm({"algorithm": "aes256_cbc", "parameters": flipped})
    return envelope(key, b"secret", content_algorithm=algorithm)


def _wrong_key_same_id(key: EnclaveKey, other_key: EnclaveKey) -> bytes:
    return envelope(key, recipients=[ktri(other_key, CONTENT_KEY, key_id=key.key_id)])


DECRYPT_FAILURES: list[Callable[..., bytes]] = [
    _corrupt_encrypted_key,
    _short_content_key,
    _bad_padding,
    _over_the_bound_once_unpadded,
    _flipped_iv,
]


@pytest.mark.parametrize("make", [*DECRYPT_FAILURES, _wrong_key_same_id], ids=lambda make: make.__name__.strip("_"))
def test_every_decryption_failure_is_one_error(
    key: EnclaveKey, other_key: EnclaveKey, make: Callable[..., bytes]
) -> None:
    data = make(key, other_key) if make is _wrong_key_same_id else make(key)
    assert inspect(data).key_id == key.key_id  # the envelope is well-formed and for this key
    with pytest.raises(RecipientError) as caught:
        key.open(data)
    error = caught.value
    assert (error.code, error.message, str(error)) == ("decrypt", DECRYPT_MESSAGE, f"[decrypt] {DECRYPT_MESSAGE}")
    # Nothing chained to it tells which step failed.
    assert error.__cause__ is None and error.__context__ is None and error.__traceback__ is not None


def test_the_flipped_iv_fails_on_its_padding(key: EnclaveKey) -> None:
    """The bit flipped above changes the padding byte: a padding failure, not an OAEP one."""
    data = _flipped_iv(key)
    sealed = cms.ContentInfo.load(data)["content"]
    content_key = key.private_key.decrypt(sealed["recipient_infos"][0].chosen["encrypted_key"].native, OAEP_SHA256)
    iv = sealed["encrypted_content_info"]["content_encryption_algorithm"]["parameters"].native
    ciphertext = sealed["encrypted_content_info"]["encrypted_content"].native
    decryptor = Cipher(algorithms.AES(content_key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = symmetric_padding.PKCS7(128).unpadder()
    with pytest.raises(ValueError, match="Invalid padding bytes"):
        unpadder.update(padded) + unpadder.finalize()


# -- properties ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeds(key: EnclaveKey) -> list[bytes]:
    made = [seal(b"s" * size, key.public_key_der) for size in (1, 16, 1500)]
    made += [envelope(key), envelope(key, recipients=[ktri(key, CONTENT_KEY, key_id=b"o" * 20)])]
    return made


def check(key: EnclaveKey, data: bytes) -> None:
    """Only RecipientError escapes; inspect() and open() agree on malformed and unsupported."""
    try:
        info = inspect(data)
    except RecipientError as error:
        assert error.code in ("malformed", "unsupported")
        with pytest.raises(RecipientError) as opened:
            key.open(data)
        assert (opened.value.code, opened.value.message) == (error.code, error.message)
        event(f"rejected: {error.code}")
        return
    assert info.key_encryption == KEY_ENCRYPTION and info.content_encryption == CONTENT_ENCRYPTION
    try:
        key.open(data)
    except RecipientError as error:
        assert error.code in ("recipient", "decrypt")
        if error.code == "decrypt":
            assert error.message == DECRYPT_MESSAGE
        event(f"rejected: {error.code}")
        return
    event("opened")


@st.composite
def mutants(draw: st.DrawFn, sources: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(sources)))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        kind = draw(st.sampled_from(["set", "flip", "insert", "delete", "truncate", "splice"]))
        if kind == "set" and data:
            data[position] = draw(st.integers(0, 255))
        elif kind == "flip" and data:
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8) | st.sampled_from([b"\x00\x00", b"\x80"]))
        elif kind == "delete":
            del data[position : position + draw(st.integers(1, 16))]
        elif kind == "truncate":
            del data[position:]
        else:
            donor = draw(st.sampled_from(sources))
            start = draw(st.integers(0, len(donor) - 1))
            data[position:] = donor[start:]
    return bytes(data)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_envelopes_raise_only_recipient_errors(
    key: EnclaveKey, seeds: list[bytes], data: st.DataObject
) -> None:
    check(key, data.draw(mutants(seeds), label="mutant"))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_kms_samples_raise_only_recipient_errors(key: EnclaveKey, data: st.DataObject) -> None:
    sources = [sample(name) for name in KEYED + KEYLESS]
    check(key, data.draw(mutants(sources), label="mutant"))


@settings(max_examples=600, deadline=None)
@given(
    st.binary(max_size=600) | st.builds(bytes.__add__, st.sampled_from([b"\x30\x80", b"\x30\x82\x01\x00"]), st.binary())
)
def test_arbitrary_bytes_raise_only_recipient_errors(data: bytes) -> None:
    with pytest.raises(RecipientError) as caught:
        inspect(data)
    assert caught.value.code in ("malformed", "unsupported")


def _ber_tree(children: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """Constructed values around children, definite or indefinite, with tags the envelope uses."""
    identifiers = st.sampled_from([0x30, 0x31, 0xA0, 0xA1, 0x24, 0x80, 0x04])

    def wrap(identifier: int, parts: list[bytes], form: str) -> bytes:
        body = b"".join(parts)
        if form == "indefinite":
            return bytes((identifier, 0x80)) + body + b"\x00\x00"
        return bytes((identifier,)) + _length(len(body)) + body

    return st.builds(wrap, identifiers, st.lists(children, max_size=4), st.sampled_from(["definite", "indefinite"]))


def _length(size: int) -> bytes:
    if size < 128:
        return bytes((size,))
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


ber_values = st.recursive(
    st.sampled_from([b"\x02\x01\x02", b"\x05\x00", b"\x04\x10" + bytes(16), b"\x06\x09*\x86H\x86\xf7\r\x01\x07\x03"]),
    _ber_tree,
    max_leaves=12,
)


@settings(max_examples=800, deadline=None)
@given(ber_values)
def test_random_ber_trees_raise_only_recipient_errors(data: bytes) -> None:
    with pytest.raises(RecipientError) as caught:
        inspect(b"\x30\x80\x06\x09*\x86H\x86\xf7\r\x01\x07\x03\xa0\x80" + data + b"\x00\x00\x00\x00")
    assert caught.value.code in ("malformed", "unsupported")
