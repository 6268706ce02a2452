"""``secrets encrypt|run|inspect``: boot-time secrets, S3 Encryption Client format (:mod:`nitro_attest.boot_secrets`).

boto3 is imported when a command needs KMS or S3 (``pip install
'nitro_attest[secrets]'``), not when the CLI starts. Credentials and the
region come from boto3's usual chain (environment variables, profiles);
``--kms-endpoint`` and ``--s3-endpoint`` point at a vsock proxy or a local
server. ``secrets run`` says why on stderr and exits 1 on any failure, with
nothing written and the command not started.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..boot_secrets import (
    FORMATS,
    AllowList,
    BootSecretsError,
    EncryptedObject,
    SecretsConfigError,
    check_key_arn,
    config_format,
    decrypt,
    encrypt,
    get_object,
    inspect,
    launch,
    parse_config,
    parse_s3_url,
    put_object,
)
from ..errors import ConfigurationError, NitroAttestError
from ..nsm import Attester, NsmDevice
from ._common import EXIT_OK, EXIT_REJECTED, UsageError, field_rows, read_file, rejected, safe, write_atomically

__all__ = ["register"]

_EXIT_CODES = "Exit codes: 0 done, 1 rejected or failed (reason on stderr), 2 usage error."
_MAX_BLOB_FILE = 2 * 1024 * 1024  # a local file: the largest body in base64 and its metadata


def _context_argument(text: str) -> tuple[str, str]:
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


def _add_endpoints(parser: argparse.ArgumentParser, *, kms: bool = True) -> None:
    if kms:
        parser.add_argument("--kms-endpoint", metavar="URL", help="KMS endpoint (a vsock proxy, a local KMS)")
    parser.add_argument("--s3-endpoint", metavar="URL", help="S3 endpoint (a vsock proxy, a local S3 server)")
    parser.add_argument("--region", metavar="REGION", help="AWS region (default: boto3's configuration)")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = commands.add_parser(
        "secrets",
        help="boot-time secrets: a configuration encrypted for an attested enclave (S3 Encryption Client format)",
        description="Encrypt a configuration (environment variables and files) with a KMS key whose policy names "
        "the enclave's PCRs; open it inside the enclave and start the application with it.",
    )
    actions = group.add_subparsers(dest="secrets_command", metavar="ACTION", required=True)

    encrypt_ = actions.add_parser(
        "encrypt",
        help="encrypt CONFIG to an S3 object or a local file (S3EC V3)",
        description="Validate CONFIG (JSON; YAML or TOML by extension when their parser is installed), ask KMS "
        "for a data key under --key-id with the --context pairs, and write an S3 Encryption Client V3 object to "
        "--to s3://BUCKET/KEY or a local file --out.",
        epilog=_EXIT_CODES,
    )
    encrypt_.add_argument("config", metavar="CONFIG", help="the configuration file")
    encrypt_.add_argument("--key-id", required=True, metavar="KEY", help="the KMS key (id, ARN or alias)")
    target = encrypt_.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", metavar="FILE", help="write a local file (uploadable to S3 as the same object)")
    target.add_argument("--to", metavar="s3://BUCKET/KEY", help="write the S3 object")
    encrypt_.add_argument("--format", choices=FORMATS, help="CONFIG's format (default: from its extension)")
    encrypt_.add_argument(
        "--context", metavar="K=V", type=_context_argument, action="append", default=[], help="encryption context"
    )
    _add_endpoints(encrypt_)
    encrypt_.set_defaults(handler=_encrypt)

    run = actions.add_parser(
        "run",
        help="open a blob as an attested enclave, write its files, exec COMMAND with its environment",
        description="Fetch the blob, attest a fresh key (--attestation nsm: /dev/nsm; test:DIR: a test enclave), "
        "have KMS release the data key to it, check the key commitment, decrypt, check every entry against "
        "--allow-env and --allow-file, write the files atomically (mode 0600 unless the entry asks for less, "
        "no symbolic links followed) and replace this process with COMMAND.",
        epilog=_EXIT_CODES,
    )
    run.add_argument("--from", dest="source", required=True, metavar="FILE|s3://BUCKET/KEY", help="the blob")
    run.add_argument(
        "--context", metavar="K=V", type=_context_argument, action="append", default=[], help="encryption context"
    )
    run.add_argument("--attestation", default="nsm", metavar="nsm|test:DIR", help="who attests (default nsm)")
    run.add_argument("--allow-env", metavar="NAME", action="append", default=[], help="an allowed variable name")
    run.add_argument(
        "--allow-file", metavar="PATH", action="append", default=[], help="an allowed file, or directory below which"
    )
    run.add_argument(
        "--key-id",
        required=True,
        metavar="ARN",
        help="the KMS key's full ARN (arn:aws:kms:REGION:ACCOUNT:key/ID): a blob of another key is refused",
    )
    run.add_argument("--legacy", action="store_true", help="also open V1, AES-CBC and plain-kms objects")
    _add_endpoints(run)
    run.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARGS...]", help="what to run")
    run.set_defaults(handler=_run)

    inspect_ = actions.add_parser(
        "inspect",
        help="show a blob's format, key id, context and sizes, without decrypting",
        description="Print the S3EC format version, the algorithms, the stored encryption context, the recorded "
        "key id and the sizes of a local file or an S3 object. Nothing is decrypted.",
        epilog=_EXIT_CODES,
    )
    inspect_.add_argument("source", metavar="FILE|s3://BUCKET/KEY", help="the blob")
    inspect_.add_argument("--json", action="store_true", help="print JSON")
    _add_endpoints(inspect_, kms=False)
    inspect_.set_defaults(handler=_inspect)


def _client(service: str, endpoint: str | None, region: str | None) -> Any:
    try:
        import boto3  # type: ignore[import-untyped]  # noqa: PLC0415 -- only these commands need boto3
    except ImportError:
        raise UsageError("this command needs boto3: pip install 'nitro_attest[secrets]'") from None
    from botocore.exceptions import BotoCoreError  # type: ignore[import-untyped]  # noqa: PLC0415

    try:
        return boto3.client(service, endpoint_url=endpoint, region_name=region)
    except (BotoCoreError, ValueError) as error:  # no region (NoRegionError); "Invalid endpoint: ..."
        raise UsageError(f"cannot make the {service} client: {error}") from None


def _enclave_kms(args: argparse.Namespace) -> Any:
    """The KMS client ``secrets run`` uses; on the NSM, only over https.

    In an enclave every connection goes through the parent instance: over
    http it could answer Decrypt itself (a data key of its own, sealed to the
    attested key), since nothing then authenticates KMS. The endpoint checked
    is the one the client resolved, whatever configured it.
    """
    kms = _client("kms", args.kms_endpoint, args.region)
    endpoint = str(kms.meta.endpoint_url)
    if args.attestation == "nsm" and not endpoint.lower().startswith("https://"):
        raise UsageError(
            f"--kms-endpoint {safe(endpoint)}: with --attestation nsm the KMS endpoint must be https:// "
            "(over http the parent instance, which carries the connection, could answer Decrypt itself)"
        )
    return kms


def _context(pairs: list[tuple[str, str]]) -> dict[str, str]:
    context: dict[str, str] = {}
    for key, value in pairs:
        if key in context:
            raise UsageError(f"--context {key} is given twice")
        context[key] = value
    return context


def _load(source: str, args: argparse.Namespace) -> EncryptedObject:
    if source.startswith("s3://"):
        bucket, key = parse_s3_url(source)
        return get_object(_client("s3", args.s3_endpoint, args.region), bucket, key)
    return EncryptedObject.from_file(read_file(source, limit=_MAX_BLOB_FILE))


def _encrypt(args: argparse.Namespace) -> int:
    try:
        config = parse_config(read_file(args.config), args.format or config_format(args.config))
    except SecretsConfigError as error:
        raise UsageError(f"{args.config}: {error}") from None
    context = _context(args.context)
    destination = parse_s3_url(args.to) if args.to else None
    kms = _client("kms", args.kms_endpoint, args.region)
    s3 = _client("s3", args.s3_endpoint, args.region) if destination else None
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    try:
        blob = encrypt(config, kms=kms, key_id=args.key_id, context=context)
        if destination is not None:
            put_object(s3, *destination, blob)
    except SecretsConfigError as error:
        raise UsageError(str(error)) from None
    except (ClientError, BotoCoreError) as error:
        print(f"nitro-attest secrets encrypt: {safe(str(error))}", file=sys.stderr)
        return EXIT_REJECTED
    if destination is None:
        write_atomically(args.out, blob.to_file())
    print(f"wrote {args.to or args.out} (S3EC V3, key {blob.metadata.get('nitro-attest-key-id', args.key_id)})")
    return EXIT_OK


def _attester(choice: str) -> Attester:
    if choice == "nsm":
        return NsmDevice()
    if choice.startswith("test:") and len(choice) > len("test:"):
        from ..testing import TestEnclave  # noqa: PLC0415 -- tests only

        return TestEnclave.load(choice.removeprefix("test:"))
    raise UsageError(f"--attestation {choice!r}: nsm, or test:DIR (a `testing init` directory)")


def _run(args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise UsageError("no command: end the options with -- COMMAND [ARGS...]")
    try:
        allow = AllowList(env=frozenset(args.allow_env), files=tuple(args.allow_file))
    except SecretsConfigError as error:
        raise UsageError(str(error)) from None
    context = _context(args.context)
    try:
        key_id = check_key_arn(args.key_id)
    except SecretsConfigError as error:
        raise UsageError(f"--key-id {error}") from None
    try:
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415
    except ImportError:
        raise UsageError("this command needs boto3: pip install 'nitro_attest[secrets]'") from None
    kms = _enclave_kms(args)
    # From here on, every failure is a refusal: said on stderr, exit 1, nothing written, nothing run.
    try:
        attester = _attester(args.attestation)
        blob = _load(args.source, args)
        config = decrypt(
            blob,
            kms=kms,
            attester=attester,
            context=context,
            key_id=key_id,
            legacy=args.legacy,
        )
        del blob
        launch(config, allow, command)
    except NitroAttestError as error:  # BootSecretsError, NsmError
        rejected(error)
    except (ConfigurationError, UsageError, ClientError, BotoCoreError) as error:  # exec failing among them
        print(f"nitro-attest secrets run: {safe(str(error))}", file=sys.stderr)
    return EXIT_REJECTED


def _inspect(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    try:
        info = inspect(_load(args.source, args))
    except BootSecretsError as error:
        rejected(error)
        return EXIT_REJECTED
    except SecretsConfigError as error:
        raise UsageError(str(error)) from None
    except (ClientError, BotoCoreError) as error:
        print(f"nitro-attest secrets inspect: {safe(str(error))}", file=sys.stderr)
        return EXIT_REJECTED
    fields = {
        "format": f"S3EC V{info.version}",
        "content_algorithm": info.content_algorithm,
        "wrapping": info.wrapping,
        "key_id": info.key_id,
        "context": dict(info.context),
        "encrypted_key_size": info.encrypted_key_size,
        "body_size": info.body_size,
        "legacy": info.legacy,
    }
    if args.json:
        print(json.dumps(fields, indent=2))
    else:
        rows = [
            (name, [safe(value if isinstance(value, str) else json.dumps(value))]) for name, value in fields.items()
        ]
        print("\n".join(field_rows(rows)))
    return EXIT_OK
