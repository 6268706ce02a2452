"""``kms serve``: a local, attestation-aware AWS KMS endpoint (:mod:`nitro_attest.kms.server`).

The server module is imported when ``serve`` runs, not when the CLI starts:
it needs werkzeug and botocore (``pip install nitro_attest[kms-server]``),
which ``nitro-attest --help`` must not.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import ConfigurationError
from ._common import EXIT_OK, UsageError, load_roots

__all__ = ["register"]

_DEFAULT_PORT = 4599  # nitro_attest.kms.server.DEFAULT_PORT, repeated so that --help needs no werkzeug


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = commands.add_parser(
        "kms",
        help="a local AWS KMS endpoint that checks attestation documents (Recipient) and key policies",
        description="A local AWS KMS endpoint for boto3 and the AWS CLI (--endpoint-url).",
    )
    actions = group.add_subparsers(dest="kms_command", metavar="ACTION", required=True)
    serve = actions.add_parser(
        "serve",
        help="serve the KMS JSON protocol until interrupted",
        description="Serve AWS KMS's JSON 1.1 protocol: keys, aliases, key policies, Encrypt, Decrypt, ReEncrypt, "
        "GenerateDataKey[WithoutPlaintext], GenerateRandom. Recipient documents are verified against --roots and "
        "key policies evaluated with their kms:RecipientAttestation keys; the answer is a CiphertextForRecipient. "
        "The first line on stdout is 'listening on http://HOST:PORT'.",
        epilog="Needs the kms-server extra: pip install 'nitro_attest[kms-server]'. Stop it with Ctrl-C.",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others need --credentials)"
    )
    serve.add_argument(
        "--port", type=int, default=_DEFAULT_PORT, help=f"port (default {_DEFAULT_PORT}; 0 picks a free one)"
    )
    serve.add_argument("--db", metavar="PATH", help="SQLite file for keys (created 0600; default in memory)")
    serve.add_argument(
        "--roots",
        metavar="PEM",
        action="append",
        default=[],
        help="trust these roots for Recipient documents instead of the AWS root (e.g. a test enclave's root.pem)",
    )
    serve.add_argument(
        "--credentials",
        metavar="FILE",
        help='JSON {"ACCESS_KEY_ID": {"secret_access_key": ..., "principal": ARN}}: SigV4 is then checked',
    )
    serve.add_argument("--audit-log", metavar="PATH", help="append one JSON line per request and warning here")
    serve.add_argument("--account", default="123456789012", help="the account in key ARNs (default 123456789012)")
    serve.add_argument("--region", default="us-east-1", help="the region in key ARNs and SigV4 (default us-east-1)")
    serve.add_argument(
        "--principal",
        metavar="ARN",
        help="without --credentials, the principal of every request (default the account's root)",
    )
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    try:
        from ..kms import server  # noqa: PLC0415 -- werkzeug and botocore only when serving
    except ImportError as error:
        raise UsageError(
            f"{error}: install the server's dependencies: pip install 'nitro_attest[kms-server]'"
        ) from None
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port} is not a port number (0 to 65535)")
    roots = load_roots(args.roots)
    try:
        credentials = server.load_credentials(args.credentials) if args.credentials else ()
        kms = server.KmsServer(
            host=args.host,
            port=args.port,
            db=args.db,
            roots=roots,
            credentials=credentials,
            audit_log=args.audit_log,
            account=args.account,
            region=args.region,
            principal=args.principal,
        )
    except ConfigurationError as error:
        raise UsageError(str(error)) from None
    print(f"listening on {kms.endpoint_url}", flush=True)
    for note in kms.notes:
        print(f"note: {note}", file=sys.stderr, flush=True)
    try:
        kms.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        kms.close()
    return EXIT_OK
