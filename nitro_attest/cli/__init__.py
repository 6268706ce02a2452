"""``nitro-attest``: inspect and verify Nitro Enclaves attestation documents from a shell.

Command groups, one module each: ``inspect`` and ``verify``
(:mod:`nitro_attest.cli.documents`), ``pcr`` (:mod:`nitro_attest.cli.measurements`),
``eif describe`` and ``eif pcr`` (:mod:`nitro_attest.cli.eif`), ``policy check``,
``policy from-document`` and ``policy from-eif`` (:mod:`nitro_attest.cli.policy`),
``recipient keygen|seal|open|inspect`` (:mod:`nitro_attest.cli.recipient`),
``kms serve`` (:mod:`nitro_attest.cli.kms`), ``secrets encrypt|run|inspect``
(:mod:`nitro_attest.cli.boot_secrets`), ``testing init|attest``
(:mod:`nitro_attest.cli.testing`) and ``demo`` (:mod:`nitro_attest.cli.demo`). Each module's ``register`` adds
its subcommands and the handler that runs them; what the handlers compute comes
from the library's public API, so the CLI holds only flags, files and text.

Exit codes: 0 accepted (or shown), 1 rejected (a :class:`~nitro_attest.NitroAttestError`,
its ``code`` on stderr), 2 usage error (bad flags, unreadable or unrecognised
input). Input may be raw CBOR, hex or base64, from a file or ``-`` (stdin).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .. import BACKEND, __version__
from . import boot_secrets, demo, documents, eif, kms, measurements, policy, recipient, testing
from ._common import EXIT_OK, EXIT_REJECTED, EXIT_USAGE, UsageError

__all__ = ["EXIT_OK", "EXIT_REJECTED", "EXIT_USAGE", "main"]

_GROUPS = (documents, measurements, eif, policy, recipient, kms, testing, boot_secrets, demo)


class _Version(argparse.Action):
    """argparse's version action, without its line wrapping: the path must stay whole to be copied."""

    def __init__(self, option_strings: Sequence[str], version: str, dest: str = argparse.SUPPRESS) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="show the version and exit")
        self.version = version

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(self.version)
        parser.exit()


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nitro-attest",
        description="Inspect and verify AWS Nitro Enclaves attestation documents.",
        epilog="FILE is raw CBOR, hex or base64 (detected), or - for stdin. "
        "Exit codes: 0 ok, 1 rejected, 2 usage error.",
    )
    # Where the package was imported from: a source tree on sys.path shadows an installed package.
    location = Path(__file__).resolve().parents[1]
    parser.add_argument(
        "--version",
        action=_Version,
        version=f"nitro-attest {__version__} (P-384 backend: {BACKEND}) from {location}",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in _GROUPS:
        group.register(commands)
    _remember_parsers(parser)
    return parser


def _remember_parsers(parser: argparse.ArgumentParser) -> None:
    """Every (sub)parser stores itself in the namespace it parses, the innermost last, for usage errors.

    Read from the namespace, not found again by the subcommand names: a command's own arguments may use
    the same names (``secrets run -- COMMAND`` has a ``command``).
    """
    parser.set_defaults(usage_parser=parser)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                _remember_parsers(subparser)


def _exit_code(code: object) -> int:
    if code is None:
        return EXIT_OK
    return code if isinstance(code, int) else EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``nitro-attest`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits on --help and bad usage; main returns codes instead
        return _exit_code(exit_.code)
    try:
        code: int = args.handler(args)
        return code
    except UsageError as error:
        # As argparse does for its own errors: the usage of the subcommand that was run, then what is wrong.
        print(args.usage_parser.format_usage(), end="", file=sys.stderr)
        print(f"{args.usage_parser.prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader (e.g. `| head`) left: stop quietly, and keep Python's exit-time flush from failing again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_REJECTED
