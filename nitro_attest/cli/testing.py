"""``testing init|attest``: a TEST enclave whose documents verify now (:class:`nitro_attest.testing.TestEnclave`).

``init`` writes a look-alike PKI (a TEST root, never AWS's) and an enclave
identity to a directory; ``attest`` mints a document of that enclave, valid
now, for a local verifier or ``nitro-attest kms serve --roots DIR/root.pem``.
"""

from __future__ import annotations

import argparse

from ..testing import TestEnclave
from ._common import EXIT_OK, UsageError, hex_argument, pcr_argument, read_file, write_atomically

__all__ = ["register"]

_EXIT_CODES = "Exit codes: 0 done, 2 usage error."


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = commands.add_parser(
        "testing",
        help="a TEST enclave for local testing: documents valid now, under a TEST root",
        description="Make a TEST enclave (a look-alike PKI and PCRs) and mint attestation documents valid now. "
        "They verify only against the enclave's own root (DIR/root.pem), never against AWS's.",
    )
    actions = group.add_subparsers(dest="testing_command", metavar="ACTION", required=True)
    init = actions.add_parser(
        "init",
        help="write a new test enclave to DIR",
        description="Write a TEST root (DIR/root.pem, its key DIR/root-key.pem mode 0600) and the enclave's "
        "PCRs (DIR/enclave.json) to DIR. PCRs not given keep the test defaults.",
        epilog=_EXIT_CODES,
    )
    init.add_argument("directory", metavar="DIR", help="where to write the enclave (created if needed)")
    init.add_argument(
        "--pcr", metavar="N=HEX", type=pcr_argument, action="append", default=[], help="PCR N's value; repeatable"
    )
    init.add_argument("--debug", action="store_true", help="a debug-mode enclave (PCR0, PCR1, PCR2 zero)")
    init.set_defaults(handler=_init)

    attest = actions.add_parser(
        "attest",
        help="mint an attestation document of the enclave in DIR, valid now",
        description="Write a raw CBOR attestation document of the enclave in DIR, timestamped now, to --out "
        "(default stdout).",
        epilog=_EXIT_CODES,
    )
    attest.add_argument("directory", metavar="DIR", help="a directory written by `testing init`")
    attest.add_argument("--public-key", metavar="PUB.der", help="the enclave's public key (SubjectPublicKeyInfo DER)")
    attest.add_argument("--nonce", metavar="HEX", type=hex_argument, help="the document's nonce")
    attest.add_argument("--user-data", metavar="HEX", type=hex_argument, help="the document's user_data")
    attest.add_argument("--out", default="-", metavar="DOC", help="where to write the document (default stdout)")
    attest.set_defaults(handler=_attest)


def _init(args: argparse.Namespace) -> int:
    pcrs = dict(args.pcr)
    try:
        enclave = TestEnclave.create(args.directory, pcrs=pcrs, debug=args.debug)
    except OSError as error:
        raise UsageError(f"cannot write {args.directory}: {error.strerror or error}") from None
    print(f"test enclave written to {enclave.directory}; its root (for --roots): {enclave.directory}/root.pem")
    return EXIT_OK


def _attest(args: argparse.Namespace) -> int:
    public_key = None if args.public_key is None else read_file(args.public_key)
    try:
        enclave = TestEnclave.load(args.directory)
        document = enclave.attest(public_key=public_key, nonce=args.nonce, user_data=args.user_data)
    except ValueError as error:  # a ConfigurationError (not a test enclave directory), or a field over 1024 bytes
        raise UsageError(str(error)) from None
    except OSError as error:
        raise UsageError(f"cannot write the chain to {args.directory}: {error.strerror or error}") from None
    write_atomically(args.out, document)
    return EXIT_OK
