"""``recipient keygen|seal|open|inspect``: KMS ``CiphertextForRecipient`` envelopes (:mod:`nitro_attest.recipient`).

``seal --to`` takes an attestation document (verified first, with the usual
``--at``, ``--root`` and policy flags, and refused without a ``public_key``)
or the enclave's public key itself (SubjectPublicKeyInfo PEM or DER). Every
file is written through a temporary file renamed into place, so a failure
leaves nothing at ``--out``; keys are written with mode 0600.
"""

from __future__ import annotations

import argparse
import json

from .. import verify
from ..errors import ConfigurationError, NitroAttestError
from ..recipient import KEY_SIZES, MAX_PLAINTEXT, EnclaveKey, inspect, seal
from ._common import (
    EXIT_OK,
    EXIT_REJECTED,
    UsageError,
    add_policy_arguments,
    field_rows,
    load_document_bytes,
    load_roots,
    policy_from_arguments,
    read_file,
    rejected,
    source_name,
    verification_time,
    write_atomically,
)

__all__ = ["register"]

_SECRET_MODE = 0o600
_PUBLIC_MODE = 0o644
_EXIT_CODES = "Exit codes: 0 done, 1 the input was rejected (reason on stderr), 2 usage error."


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = commands.add_parser(
        "recipient",
        help="seal a secret to an attested enclave, open one: KMS CiphertextForRecipient envelopes",
        description="Make an enclave key, seal a secret to an attested enclave in the format of KMS's "
        "CiphertextForRecipient, open such an envelope, or inspect one without a key.",
    )
    actions = group.add_subparsers(dest="recipient_command", metavar="ACTION", required=True)

    keygen = actions.add_parser(
        "keygen",
        help="write a new RSA enclave key (PKCS#8 PEM, mode 0600)",
        description="Write a new RSA key to KEY.pem (mode 0600) and, with --public-out, its SubjectPublicKeyInfo "
        "DER: what goes into the attestation request's public_key.",
        epilog=_EXIT_CODES,
    )
    keygen.add_argument("--out", required=True, metavar="KEY.pem", help="where to write the private key")
    keygen.add_argument("--public-out", metavar="PUB.der", help="also write the public key (SPKI DER) here")
    keygen.add_argument("--bits", type=int, choices=KEY_SIZES, default=2048, help="key size (default 2048)")
    keygen.set_defaults(handler=_keygen)

    seal_ = actions.add_parser(
        "seal",
        help="seal FILE to an enclave: its verified attestation document, or its public key",
        description=f"Seal FILE (1 to {MAX_PLAINTEXT} bytes, - for stdin) to the enclave of --to: an attestation "
        "document (raw CBOR, hex or base64), verified first under the policy flags, or a SubjectPublicKeyInfo "
        "as PEM or DER. The envelope goes to --out (default stdout).",
        epilog=_EXIT_CODES,
    )
    seal_.add_argument("file", metavar="FILE", help="the secret, or - for stdin")
    seal_.add_argument("--to", required=True, metavar="DOC|PUB", help="attestation document, or PUB.pem / PUB.der")
    seal_.add_argument("--out", default="-", metavar="OUT", help="where to write the envelope (default stdout)")
    add_policy_arguments(seal_)  # with --at and --root
    seal_.set_defaults(handler=_seal)

    open_ = actions.add_parser(
        "open",
        help="open an envelope with the enclave key",
        description="Open FILE (a CiphertextForRecipient from KMS, or what `recipient seal` writes; - for stdin) "
        "with --key and write the secret to --out (default stdout, mode 0600 for a file).",
        epilog=_EXIT_CODES,
    )
    open_.add_argument("file", metavar="FILE", help="the envelope, or - for stdin")
    open_.add_argument("--key", required=True, metavar="KEY.pem", help="the enclave's private key (PEM)")
    open_.add_argument("--out", default="-", metavar="OUT", help="where to write the secret (default stdout)")
    open_.set_defaults(handler=_open)

    inspect_ = actions.add_parser(
        "inspect",
        help="say what an envelope is sealed to and with, without a key",
        description="Print the recipient's key id, the key size, the algorithms and the content length of FILE.",
        epilog=_EXIT_CODES,
    )
    inspect_.add_argument("file", metavar="FILE", help="the envelope, or - for stdin")
    inspect_.add_argument("--json", action="store_true", help="print JSON")
    inspect_.set_defaults(handler=_inspect)


def _load_key(path: str) -> EnclaveKey:
    try:
        return EnclaveKey.from_pem(read_file(path))
    except ConfigurationError as error:
        raise UsageError(f"--key {path}: {error}") from None


def _keygen(args: argparse.Namespace) -> int:
    key = EnclaveKey.generate(args.bits)
    if args.public_out is not None:
        write_atomically(args.public_out, key.public_key_der, mode=_PUBLIC_MODE)
    write_atomically(args.out, key.to_pem(), mode=_SECRET_MODE)
    print(f"key id (SHA-256 of the public key DER): {key.key_id.hex()}")
    return EXIT_OK


def _is_public_key(data: bytes) -> bool:
    # A SubjectPublicKeyInfo is PEM text or a DER SEQUENCE; a document is CBOR (0x84 / 0xd2), hex or base64.
    return data.lstrip().startswith(b"-----BEGIN") or data[:1] == b"\x30"


def _seal(args: argparse.Namespace) -> int:
    plaintext = read_file(args.file)
    if not 1 <= len(plaintext) <= MAX_PLAINTEXT:
        raise UsageError(f"{source_name(args.file)} is {len(plaintext)} bytes: a secret is 1 to {MAX_PLAINTEXT}")
    target = read_file(args.to)
    try:
        if _is_public_key(target):
            envelope = seal(plaintext, target)
        else:
            policy = policy_from_arguments(args)
            roots = load_roots(args.root)
            data = load_document_bytes(args.to)
            document = verify(data, policy, at=verification_time(args.at, data), roots=roots)
            envelope = seal(plaintext, document)
    except NitroAttestError as error:
        rejected(error)
        return EXIT_REJECTED
    write_atomically(args.out, envelope, mode=_PUBLIC_MODE)
    return EXIT_OK


def _open(args: argparse.Namespace) -> int:
    key = _load_key(args.key)
    envelope = read_file(args.file)
    try:
        secret = key.open(envelope)
    except NitroAttestError as error:
        rejected(error)
        return EXIT_REJECTED
    write_atomically(args.out, secret, mode=_SECRET_MODE)
    return EXIT_OK


def _inspect(args: argparse.Namespace) -> int:
    try:
        info = inspect(read_file(args.file))
    except NitroAttestError as error:
        rejected(error)
        return EXIT_REJECTED
    fields = {
        "key_id": info.key_id.hex(),
        "key_size": info.key_size,
        "key_encryption": info.key_encryption,
        "content_encryption": info.content_encryption,
        "content_length": info.content_length,
    }
    if args.json:
        print(json.dumps(fields, indent=2))
    else:
        print("\n".join(field_rows([(name, [str(value)]) for name, value in fields.items()])))
    return EXIT_OK
