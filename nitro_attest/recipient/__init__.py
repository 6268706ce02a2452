"""Secret release to an attested enclave: KMS ``CiphertextForRecipient`` envelopes, sealed and opened.

AWS KMS answers a request made with ``Recipient=`` (an attestation document
whose ``public_key`` is the enclave's RSA key) with a ``CiphertextForRecipient``:
a CMS EnvelopedData (RFC 5652) that only that key opens. This module opens
one inside the enclave (:meth:`EnclaveKey.open`), and seals a secret to an
enclave in the same format from your own service (:func:`seal`), so an
enclave reads what you send it with the code (or the AWS C SDK's
``kmstool``) that reads what KMS sends it.

The format, as KMS writes it and :func:`seal` writes it byte for byte in
structure: BER with indefinite lengths for the ContentInfo, its ``[0]``, the
EnvelopedData and its EncryptedContentInfo; EnvelopedData version 2; one
KeyTransRecipientInfo version 2 whose ``rid`` is ``[0]``
subjectKeyIdentifier = SHA-256 of the recipient's SubjectPublicKeyInfo DER;
RSAES-OAEP with SHA-256 and MGF1-SHA-256 (explicit NULL parameters) carrying
a fresh AES-256 key; AES-256-CBC with a fresh 16-byte IV and PKCS#7 padding;
the encrypted content as ``[0]`` constructed, in OCTET STRINGs of at most
1000 bytes.

Opening is strict, like the verifier: besides that layout it accepts only
what ``openssl cms -encrypt -keyid -keyopt rsa_padding_mode:oaep -keyopt
rsa_oaep_md:sha256 -aes-256-cbc`` writes, with or without ``-stream``: DER
or BER, hash parameters NULL or absent, and a 20-byte key id (SHA-1 of the
key, RFC 5280 section 4.2.1.2 method 1, as OpenSSL puts in certificates). It
refuses everything else, each with a :class:`RecipientError` code (among
them, as ``malformed``, values a SEQUENCE or explicit tag holds past its
schema, and tag numbers of over four octets):

- several recipients, and recipients named by issuerAndSerialNumber
  (``unsupported``): KMS writes one, named by key id, and an enclave has a
  key, not a certificate;
- envelopes over :data:`MAX_ENVELOPE` bytes, content over
  :data:`MAX_PLAINTEXT` bytes once decrypted, and trailing bytes
  (``malformed``).

An envelope is not signed: anyone who knows the enclave's public key can seal
to it. That an envelope opens says only that it was sealed to this key, not
who sealed it; authenticate the sender another way if that matters.
"""

import hashlib
import hmac
import os
from dataclasses import dataclass, field

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ..document import AttestationDocument, require_verified
from ..errors import ConfigurationError, NitroAttestError
from ..keys import load_rsa_public_key
from . import _cms

__all__ = [
    "CONTENT_ENCRYPTION",
    "KEY_ENCRYPTION",
    "KEY_SIZES",
    "MAX_ENVELOPE",
    "MAX_PLAINTEXT",
    "EnclaveKey",
    "EnvelopeInfo",
    "RecipientError",
    "inspect",
    "seal",
]

#: The RSA key sizes (bits) an enclave key may have, to seal to or open with.
KEY_SIZES = (2048, 3072, 4096)

#: The largest secret :func:`seal` seals and :meth:`EnclaveKey.open` returns, in bytes: 64 KiB, sixteen
#: times the largest plaintext KMS returns (4096 bytes, from ``Decrypt``), room for a key bundle.
MAX_PLAINTEXT = 64 * 1024

#: The largest envelope :func:`inspect` and :meth:`EnclaveKey.open` read, in bytes: the largest content
#: (:data:`MAX_PLAINTEXT` plus a padding block) with its chunk headers, a 4096-bit key's encrypted key
#: and the wrappers fit with room to spare.
MAX_ENVELOPE = MAX_PLAINTEXT + 8 * 1024

#: What an accepted envelope's key is encrypted with, as :attr:`EnvelopeInfo.key_encryption` names it.
KEY_ENCRYPTION = "RSAES-OAEP SHA-256 MGF1-SHA-256"
#: What an accepted envelope's content is encrypted with, as :attr:`EnvelopeInfo.content_encryption` names it.
CONTENT_ENCRYPTION = "AES-256-CBC"

_BLOCK = 16
_CEK_SIZE = 32
_KMS_KEY_ID_SIZE = 32  # SHA-256 of the SubjectPublicKeyInfo DER
_OPENSSL_KEY_ID_SIZE = 20  # SHA-1 of the subjectPublicKey bits (RFC 5280 4.2.1.2 method 1)
_MAX_KEY_FILE = 16 * 1024  # a 4096-bit key's PKCS#8 PEM is ~3.3 KB
_OAEP = OAEP(mgf=MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
# One message for every way decryption can fail, so that no failure can be told from another. Whether an
# envelope opens at all still shows (CBC without a MAC): see RecipientError and docs/recipient.md.
_DECRYPT_FAILED = "the envelope does not decrypt with this key (wrong key, or a corrupted encrypted key or content)"
_ALGORITHM_NAMES = {
    _cms.RSAES_PKCS1_V1_5: "RSA PKCS#1 v1.5 key transport",
    _cms.AES_128_CBC: "AES-128-CBC",
    _cms.AES_192_CBC: "AES-192-CBC",
    _cms.SHA1: "SHA-1",
}
_RECIPIENT_KINDS = {
    "kari": "key agreement (KeyAgreeRecipientInfo)",
    "kekri": "key-encryption key (KEKRecipientInfo)",
    "pwri": "password (PasswordRecipientInfo)",
    "ori": "other (OtherRecipientInfo)",
}


class RecipientError(NitroAttestError):
    """A ``CiphertextForRecipient`` envelope, or a recipient to seal to, was rejected.

    ``malformed``: not an EnvelopedData of the accepted shape (undecodable,
    trailing bytes, wrong versions or lengths, over a size bound);
    ``unsupported``: well-formed, but not what KMS writes (RSA PKCS#1 v1.5 key
    transport, OAEP with SHA-1, AES-128/192, another content type, several
    recipients, an issuerAndSerialNumber recipient); ``recipient``: opening,
    the envelope is not sealed to this key; sealing, the recipient has no
    usable RSA public key (a document without ``public_key``, not an SPKI,
    not RSA, not 2048, 3072 or 4096 bits); ``decrypt``: the envelope is for
    this key but does not decrypt (OAEP failure, a content key of the wrong
    length, bad padding). Every ``decrypt`` error has the same message, so
    that an error does not tell which step failed. It cannot hide whether an
    envelope opened: AES-CBC without a MAC (the KMS format) makes opening
    tampered copies of a captured envelope a CBC padding oracle, so an
    enclave key must not open many envelopes an attacker can tamper with
    (use a fresh key per boot or per request; treat ``decrypt`` as an attack).
    """

    codes = frozenset({"malformed", "unsupported", "recipient", "decrypt"})


@dataclass(frozen=True)
class EnvelopeInfo:
    """What :func:`inspect` reads from an envelope without a key."""

    #: The recipient's key id: SHA-256 of its SubjectPublicKeyInfo DER (32 bytes, KMS), or 20 bytes (OpenSSL).
    key_id: bytes
    #: The RSA key size the encrypted key was made for, in bits (2048, 3072 or 4096).
    key_size: int
    #: The size of the encrypted content in bytes; the secret is 1 to 16 bytes shorter (PKCS#7 padding).
    content_length: int
    #: How the content key is encrypted: always :data:`KEY_ENCRYPTION` (anything else is refused).
    key_encryption: str = KEY_ENCRYPTION
    #: How the content is encrypted: always :data:`CONTENT_ENCRYPTION` (anything else is refused).
    content_encryption: str = CONTENT_ENCRYPTION


@dataclass(frozen=True)
class _Sealed:
    info: EnvelopeInfo
    encrypted_key: bytes
    iv: bytes
    content: bytes


def _malformed(message: str) -> RecipientError:
    return RecipientError("malformed", message)


def _unsupported(message: str) -> RecipientError:
    return RecipientError("unsupported", message)


def _name(oid: str | None) -> str:
    return _ALGORITHM_NAMES.get(oid or "", f"OID {oid}")


def _envelope_bytes(envelope: object) -> bytes:
    if not isinstance(envelope, (bytes, bytearray, memoryview)):
        raise TypeError(f"an envelope must be bytes, not {type(envelope).__name__}")
    # Measured before anything is copied: a huge bytearray costs nothing to refuse.
    size = envelope.nbytes if isinstance(envelope, memoryview) else len(envelope)
    if size > MAX_ENVELOPE:
        raise _malformed(f"the envelope is {size} bytes, over the {MAX_ENVELOPE}-byte bound")
    return bytes(envelope)


def _check_oaep(oaep: _cms.Oaep) -> None:
    if oaep.hash != _cms.SHA256:
        raise _unsupported(f"RSAES-OAEP with {_name(oaep.hash)}: only SHA-256 is accepted")
    if oaep.mask_generation != _cms.MGF1 or oaep.mask_hash != _cms.SHA256:
        what = f"MGF1 with {_name(oaep.mask_hash)}" if oaep.mask_generation == _cms.MGF1 else "another mask function"
        raise _unsupported(f"RSAES-OAEP with {what}: only MGF1 with SHA-256 is accepted")
    if oaep.p_source != _cms.P_SPECIFIED or oaep.label:
        raise _unsupported("RSAES-OAEP with a label: KMS and OpenSSL use none")


def _check_recipient(recipients: tuple[_cms.Recipient, ...]) -> _cms.Recipient:
    if not recipients:
        raise _malformed("the EnvelopedData has no recipient")
    if len(recipients) > 1:
        raise _unsupported(f"the envelope has {len(recipients)} recipients: only one (as KMS writes) is accepted")
    (recipient,) = recipients
    if recipient.kind != "ktri":
        raise _unsupported(f"a {_RECIPIENT_KINDS[recipient.kind]} recipient: only key transport is accepted")
    if recipient.rid_kind != "subject_key_identifier":
        raise _unsupported("a recipient named by issuerAndSerialNumber: only a key id (as KMS writes) is accepted")
    if recipient.version != 2:
        raise _malformed(f"KeyTransRecipientInfo version {recipient.version} with a key id: it must be 2")
    key_id = recipient.key_id or b""
    if len(key_id) not in (_KMS_KEY_ID_SIZE, _OPENSSL_KEY_ID_SIZE):
        raise _unsupported(f"a key id of {len(key_id)} bytes: KMS writes 32 (SHA-256), OpenSSL 20 (SHA-1)")
    if recipient.oaep is None:  # read for RSAES-OAEP only
        raise _unsupported(f"{_name(recipient.algorithm)}: only RSAES-OAEP key transport is accepted")
    _check_oaep(recipient.oaep)
    encrypted_key = recipient.encrypted_key or b""
    if len(encrypted_key) * 8 not in KEY_SIZES:
        raise _malformed(f"an encrypted key of {len(encrypted_key)} bytes: not a 2048-, 3072- or 4096-bit RSA block")
    return recipient


def _read(envelope: object) -> _Sealed:
    data = _envelope_bytes(envelope)
    try:
        parsed = _cms.read(data)
    except (ValueError, TypeError) as error:  # asn1crypto's two errors for undecodable input
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise _malformed(f"not a BER-encoded CMS ContentInfo: {reason}") from None
    if parsed.trailing:
        raise _malformed(f"{parsed.trailing} trailing bytes after the envelope")
    if parsed.content_type != _cms.ENVELOPED_DATA:
        raise _unsupported(f"content type {parsed.content_type}: only EnvelopedData ({_cms.ENVELOPED_DATA})")
    recipient = _check_recipient(parsed.recipients)
    if parsed.version != 2:
        raise _malformed(f"EnvelopedData version {parsed.version}: with a key id recipient it must be 2")
    if parsed.has_originator_info:
        raise _unsupported("the EnvelopedData has originatorInfo: KMS writes none")
    if parsed.has_unprotected_attributes:
        raise _unsupported("the EnvelopedData has unprotectedAttrs: KMS writes none")
    if parsed.encrypted_content_type != _cms.DATA:
        raise _unsupported(f"encrypted content of type {parsed.encrypted_content_type}: only id-data ({_cms.DATA})")
    if parsed.content_algorithm != _cms.AES_256_CBC:
        raise _unsupported(f"content encrypted with {_name(parsed.content_algorithm)}: only AES-256-CBC is accepted")
    if parsed.iv is None or len(parsed.iv) != _BLOCK:
        raise _malformed("AES-256-CBC's parameters are not a 16-byte IV")
    content = parsed.content
    if content is None:
        raise _malformed("no encryptedContent: detached content is not accepted")
    if len(content) > MAX_PLAINTEXT + _BLOCK:
        raise _malformed(f"{len(content)} bytes of encrypted content, over the {MAX_PLAINTEXT + _BLOCK}-byte bound")
    if not content or len(content) % _BLOCK:
        raise _malformed(f"{len(content)} bytes of encrypted content: not a positive multiple of 16 (AES-CBC)")
    key_id = recipient.key_id or b""
    encrypted_key = recipient.encrypted_key or b""
    info = EnvelopeInfo(key_id=key_id, key_size=len(encrypted_key) * 8, content_length=len(content))
    return _Sealed(info, encrypted_key, parsed.iv, content)


def inspect(envelope: bytes | bytearray | memoryview) -> EnvelopeInfo:
    """What ``envelope`` is sealed to and with, read without a key.

    Applies every rule :meth:`EnclaveKey.open` applies before it needs the
    key, so an envelope ``inspect`` accepts fails to open only with code
    ``recipient`` or ``decrypt``.

    :raises RecipientError: ``malformed`` or ``unsupported``.
    :raises TypeError: ``envelope`` is not bytes, bytearray or memoryview.
    """
    return _read(envelope).info


def _check_key_size(bits: int, what: str) -> None:
    if bits not in KEY_SIZES:
        raise RecipientError("recipient", f"{what} is a {bits}-bit RSA key: only 2048, 3072 or 4096 bits are accepted")


def _load_public_key(data: bytes, what: str, *, pem: bool) -> rsa.RSAPublicKey:
    try:
        return load_rsa_public_key(data, what, pem=pem)
    except ValueError as error:
        raise RecipientError("recipient", str(error)) from None


def _recipient_key(recipient: object) -> rsa.RSAPublicKey:
    if isinstance(recipient, AttestationDocument):
        document = require_verified(recipient, "seal's recipient")
        if not document.public_key:
            raise RecipientError(
                "recipient", "the document carries no public_key: the enclave must ask NSM to attest its public key"
            )
        # DER only, as KMS takes it from a document's public_key.
        key = _load_public_key(document.public_key, "the document's public_key", pem=False)
    elif isinstance(recipient, (bytes, bytearray, memoryview)):
        key = _load_public_key(bytes(recipient), "the recipient's public key", pem=True)
    elif isinstance(recipient, rsa.RSAPublicKey):
        key = recipient
    else:
        raise TypeError(
            "seal's recipient must be a VerifiedDocument, SubjectPublicKeyInfo DER or PEM bytes, or an "
            f"rsa.RSAPublicKey, not {type(recipient).__name__}"
        )
    _check_key_size(key.key_size, "the recipient's key")
    return key


def _spki_der(key: rsa.RSAPublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def seal(
    plaintext: bytes | bytearray | memoryview,
    recipient: AttestationDocument | bytes | bytearray | memoryview | rsa.RSAPublicKey,
) -> bytes:
    """``plaintext`` sealed to ``recipient`` in the layout of a KMS ``CiphertextForRecipient``.

    ``recipient`` is a :class:`~nitro_attest.VerifiedDocument` (sealed to its
    ``public_key``, which must be a DER SubjectPublicKeyInfo, as KMS requires),
    a SubjectPublicKeyInfo as DER or PEM bytes, or an ``rsa.RSAPublicKey``;
    a 2048-, 3072- or 4096-bit RSA key. Every call uses a fresh AES-256 key
    and IV. ``plaintext`` is 1 to :data:`MAX_PLAINTEXT` bytes.

    :raises TypeError: ``recipient`` is a merely parsed document, or of another type; ``plaintext`` is not bytes.
    :raises RecipientError: ``recipient``: the recipient has no usable RSA public key.
    :raises ~nitro_attest.ConfigurationError: ``plaintext`` is empty or over :data:`MAX_PLAINTEXT` bytes.
    """
    if not isinstance(plaintext, (bytes, bytearray, memoryview)):
        raise TypeError(f"plaintext must be bytes, not {type(plaintext).__name__}")
    size = plaintext.nbytes if isinstance(plaintext, memoryview) else len(plaintext)
    if not 1 <= size <= MAX_PLAINTEXT:
        raise ConfigurationError(f"a secret to seal is 1 to {MAX_PLAINTEXT} bytes, not {size}")
    key = _recipient_key(recipient)
    content_key, iv = os.urandom(_CEK_SIZE), os.urandom(_BLOCK)
    padder = padding.PKCS7(_BLOCK * 8).padder()
    padded = padder.update(bytes(plaintext)) + padder.finalize()
    encryptor = Cipher(algorithms.AES(content_key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    key_id = hashlib.sha256(_spki_der(key)).digest()
    return _cms.write(key_id, key.encrypt(content_key, _OAEP), iv, ciphertext)


@dataclass(frozen=True, eq=False)
class EnclaveKey:
    """The enclave's RSA key pair: its public half goes into the attestation document, its private half opens.

    Make one with :meth:`generate` when the enclave starts (or load it with
    :meth:`from_pem`), ask NSM for an attestation document with
    ``public_key=key.public_key_der``, send the document, and :meth:`open`
    what comes back (from KMS with ``Recipient=``, or from :func:`seal`).
    """

    #: The RSA private key (2048, 3072 or 4096 bits).
    private_key: rsa.RSAPrivateKey = field(repr=False)
    #: The SubjectPublicKeyInfo DER: what goes into the attestation request's ``public_key`` (at most 550 bytes).
    public_key_der: bytes = field(init=False, repr=False)
    #: SHA-256 of :attr:`public_key_der`: the recipient key id KMS and :func:`seal` write.
    key_id: bytes = field(init=False)
    # SHA-1 of the subjectPublicKey bits (the RSAPublicKey DER): the key id OpenSSL writes.
    _openssl_key_id: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.private_key, rsa.RSAPrivateKey):
            raise TypeError(f"an EnclaveKey holds an rsa.RSAPrivateKey, not {type(self.private_key).__name__}")
        if self.private_key.key_size not in KEY_SIZES:
            raise ConfigurationError(
                f"an enclave key is a 2048-, 3072- or 4096-bit RSA key, not {self.private_key.key_size}-bit"
            )
        public = self.private_key.public_key()
        der = _spki_der(public)
        bits = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
        object.__setattr__(self, "public_key_der", der)
        object.__setattr__(self, "key_id", hashlib.sha256(der).digest())
        object.__setattr__(self, "_openssl_key_id", hashlib.sha1(bits, usedforsecurity=False).digest())

    @classmethod
    def generate(cls, bits: int = 2048) -> "EnclaveKey":
        """A new key of ``bits`` (2048, 3072 or 4096) with public exponent 65537.

        :raises ~nitro_attest.ConfigurationError: another size.
        """
        if bits not in KEY_SIZES:
            raise ConfigurationError(f"an enclave key is 2048, 3072 or 4096 bits, not {bits!r}")
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=bits))

    @classmethod
    def from_pem(cls, data: bytes, password: bytes | None = None) -> "EnclaveKey":
        """The key in ``data``: a PEM RSA private key, PKCS#8 or PKCS#1, encrypted with ``password`` or not.

        :raises ~nitro_attest.ConfigurationError: not such a key, the wrong password, not RSA, another size.
        """
        if len(data) > _MAX_KEY_FILE:
            raise ConfigurationError(f"a PEM private key is at most {_MAX_KEY_FILE} bytes, not {len(data)}")
        try:
            key = serialization.load_pem_private_key(data, password=password)
        # TypeError: cryptography's answer to a password missing, or given for a key in the clear.
        except (ValueError, TypeError, UnsupportedAlgorithm) as error:
            raise ConfigurationError(f"not a usable PEM private key: {error}") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigurationError(f"an enclave key is an RSA key, not {type(key).__name__}")
        return cls(key)

    def to_pem(self, password: bytes | None = None) -> bytes:
        """The private key as PKCS#8 PEM, encrypted with ``password`` when one is given."""
        encryption = (
            serialization.NoEncryption() if password is None else serialization.BestAvailableEncryption(password)
        )
        return self.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)

    def open(self, envelope: bytes | bytearray | memoryview) -> bytes:
        """The secret sealed in ``envelope`` to this key (by KMS with ``Recipient=``, by :func:`seal` or OpenSSL).

        :raises RecipientError: ``malformed`` or ``unsupported`` (as :func:`inspect`); ``recipient``: sealed to
            another key; ``decrypt``: sealed to this key's id but it does not decrypt (one message for every cause).
        :raises TypeError: ``envelope`` is not bytes, bytearray or memoryview.
        """
        sealed = _read(envelope)
        key_id = sealed.info.key_id
        mine = self.key_id if len(key_id) == _KMS_KEY_ID_SIZE else self._openssl_key_id
        if not hmac.compare_digest(key_id, mine):
            raise RecipientError(
                "recipient", f"the envelope is sealed to key id {key_id.hex()}, not to this key ({self.key_id.hex()})"
            )
        plaintext = self._decrypt(sealed)
        if plaintext is None:
            # Raised here, outside any except block, so that no cause or context tells the failures apart.
            raise RecipientError("decrypt", _DECRYPT_FAILED)
        return plaintext

    def _decrypt(self, sealed: _Sealed) -> bytes | None:
        try:
            content_key = self.private_key.decrypt(sealed.encrypted_key, _OAEP)
        except ValueError:
            return None
        if len(content_key) != _CEK_SIZE:
            return None
        decryptor = Cipher(algorithms.AES(content_key), modes.CBC(sealed.iv)).decryptor()
        padded = decryptor.update(sealed.content) + decryptor.finalize()
        unpadder = padding.PKCS7(_BLOCK * 8).unpadder()
        try:
            plaintext = unpadder.update(padded) + unpadder.finalize()
        except ValueError:
            return None
        # Content of MAX_PLAINTEXT + 16 bytes may hide up to 15 more bytes than seal() puts in; refused
        # like any other failure, so that the answer says no more about the padding than "it opened".
        return plaintext if len(plaintext) <= MAX_PLAINTEXT else None
