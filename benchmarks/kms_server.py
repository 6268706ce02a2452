"""Decrypt requests per second on the local KMS, with and without Recipient, beside moto's server without.

    python benchmarks/kms_server.py [--clients 32] [--seconds 10] [--json FILE]

Each server runs in a subprocess of its own on 127.0.0.1 (so that its threads
do not share a GIL with the clients); ``--clients`` threads, each with its own
boto3 client, call Decrypt in a loop for ``--seconds``. Rows:

- ``nitro_attest, no Recipient``: Decrypt of a 32-byte ciphertext under the
  default key policy (SigV4 not checked: no credentials, as in tests);
- ``nitro_attest, Recipient``: the same ciphertext, under the user guide's key
  policy pinning the test enclave's PCRs, with an attestation document: each
  request verifies the document (chain and signature), evaluates the policy
  and seals the answer to the enclave's RSA key (one RSA-OAEP encryption);
- ``moto, no Recipient``: moto's server (``pip install 'moto[server]'``;
  skipped, saying why, when it is missing), which checks neither documents
  nor policies and ignores Recipient.

The machine is shared and has 2 cores: client threads and the server compete
for them, so read the rates side by side, not as absolutes.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import boto3  # type: ignore[import-untyped]
from _common import machine, machine_line  # first: puts this checkout's nitro_attest on the path
from botocore.config import Config  # type: ignore[import-untyped]

from nitro_attest.recipient import EnclaveKey
from nitro_attest.testing import TestEnclave

_SERVE = (
    "import sys\n"
    "from cryptography import x509\n"
    "from nitro_attest.kms.server import KmsServer\n"
    "roots = tuple(x509.load_pem_x509_certificates(open(sys.argv[1], 'rb').read()))\n"
    "server = KmsServer(port=0, roots=roots)\n"
    "print(server.endpoint_url, flush=True)\n"
    "server.serve_forever()\n"
)
_STARTUP_TIMEOUT = 60.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_for(url: str) -> None:
    host, port = url.removeprefix("http://").split(":")
    deadline = time.monotonic() + _STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, int(port)), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"no server answered on {url} within {_STARTUP_TIMEOUT:.0f} s")


@contextmanager
def _process(command: list[str], url: str | None) -> Iterator[str]:
    # Our own interpreter and fixed arguments: nothing comes from outside.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # noqa: S603
    try:
        if url is None:
            assert process.stdout is not None
            url = process.stdout.readline().strip()
        _wait_for(url)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _client(url: str) -> Any:
    return boto3.client(
        "kms",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="benchmark",
        aws_secret_access_key="benchmark",  # noqa: S106 -- the servers accept any signature
        config=Config(retries={"max_attempts": 1}, max_pool_connections=4),
    )


def _measure(url: str, call: Callable[[Any], object], clients: int, seconds: float) -> tuple[float, int]:
    """Requests per second of ``clients`` threads calling ``call(client)`` for ``seconds``; and the errors."""
    counts = [0] * clients
    errors = [0] * clients
    ready = threading.Barrier(clients + 1)
    stop = threading.Event()

    def worker(number: int) -> None:
        client = _client(url)
        call(client)  # warm: connection and first request outside the clock
        ready.wait()
        while not stop.is_set():
            try:
                call(client)
                counts[number] += 1
            except Exception:  # noqa: BLE001 -- counted and reported: a benchmark must finish
                errors[number] += 1

    threads = [threading.Thread(target=worker, args=(number,), daemon=True) for number in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait()
    started = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    elapsed = time.perf_counter() - started
    for thread in threads:
        thread.join(timeout=60)
    return sum(counts) / elapsed, sum(errors)


def _user_guide_policy(enclave: TestEnclave) -> str:
    condition = {
        "kms:RecipientAttestation:ImageSha384": enclave.pcrs[0].hex(),
        **{f"kms:RecipientAttestation:PCR{index}": enclave.pcrs[index].hex() for index in (0, 1, 2, 3, 4, 8)},
    }
    root = "arn:aws:iam::123456789012:root"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "Admin",
                    "Effect": "Allow",
                    "Principal": {"AWS": root},
                    "Action": ["kms:Encrypt", "kms:PutKeyPolicy"],
                    "Resource": "*",
                },
                {
                    "Sid": "Enable enclave data processing",
                    "Effect": "Allow",
                    "Principal": {"AWS": root},
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:GenerateRandom"],
                    "Resource": "*",
                    "Condition": {"StringEqualsIgnoreCase": condition},
                },
            ],
        }
    )


def _ours(clients: int, seconds: float, workdir: Path) -> list[dict[str, Any]]:
    enclave = TestEnclave.create(workdir / "enclave", pcrs={0: "ab" * 48})
    key = EnclaveKey.generate()
    document = enclave.attest(public_key=key.public_key_der)
    rows = []
    with _process([sys.executable, "-c", _SERVE, str(workdir / "enclave" / "root.pem")], None) as url:
        admin = _client(url)
        plain_key = admin.create_key()["KeyMetadata"]["KeyId"]
        plain_blob = admin.encrypt(KeyId=plain_key, Plaintext=bytes(32))["CiphertextBlob"]
        attested_key = admin.create_key()["KeyMetadata"]["KeyId"]
        admin.put_key_policy(KeyId=attested_key, PolicyName="default", Policy=_user_guide_policy(enclave))
        attested_blob = admin.encrypt(KeyId=attested_key, Plaintext=bytes(32))["CiphertextBlob"]
        recipient = {"AttestationDocument": document, "KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256"}
        answer = admin.decrypt(CiphertextBlob=attested_blob, Recipient=recipient)
        assert key.open(answer["CiphertextForRecipient"]) == bytes(32)
        rate, errors = _measure(url, lambda c: c.decrypt(CiphertextBlob=plain_blob), clients, seconds)
        rows.append({"server": "nitro_attest", "recipient": False, "requests_per_second": rate, "errors": errors})
        rate, errors = _measure(
            url, lambda c: c.decrypt(CiphertextBlob=attested_blob, Recipient=recipient), clients, seconds
        )
        rows.append({"server": "nitro_attest", "recipient": True, "requests_per_second": rate, "errors": errors})
    return rows


def _moto(clients: int, seconds: float) -> list[dict[str, Any]]:
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        return [{"server": "moto", "recipient": False, "skipped": "moto[server] is not installed"}]
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with _process([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], url):
        admin = _client(url)
        key = admin.create_key()["KeyMetadata"]["KeyId"]
        blob = admin.encrypt(KeyId=key, Plaintext=bytes(32))["CiphertextBlob"]
        rate, errors = _measure(url, lambda c: c.decrypt(CiphertextBlob=blob), clients, seconds)
    return [{"server": "moto", "recipient": False, "requests_per_second": rate, "errors": errors}]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32, help="concurrent boto3 clients (default 32)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring time per row (default 10)")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    import tempfile  # noqa: PLC0415 -- main only

    with tempfile.TemporaryDirectory() as workdir:
        rows = _ours(args.clients, args.seconds, Path(workdir)) + _moto(args.clients, args.seconds)
    print(machine_line(machine()))
    print(f"Decrypt, {args.clients} concurrent boto3 clients, {args.seconds:g} s per row")
    for row in rows:
        label = f"{row['server']}, {'Recipient' if row['recipient'] else 'no Recipient'}"
        if "skipped" in row:
            print(f"  {label:<28} skipped: {row['skipped']}")
        else:
            print(f"  {label:<28} {row['requests_per_second']:8.0f} requests/s  ({row['errors']} errors)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
