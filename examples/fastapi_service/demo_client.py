"""Plays an enclave against the example service with the look-alike test PKI: no AWS hardware needed.

    python demo_client.py setup DIR     # writes DIR/test-root.pem and DIR/policy.json for the service
    python demo_client.py attest URL    # challenge, document, secret; then the same document again (refused)

A real enclave gets its document from the Nitro Security Module (NSM), signed
under the AWS root; here the test PKI signs it, so the service must be told to
trust the test root (NITRO_ATTEST_UNSAFE_ROOTS_PEM): never do that in production.
"""

from __future__ import annotations

import base64
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import nitro_attest
from nitro_attest.recipient import EnclaveKey
from nitro_attest.testing import DEFAULT_PCRS, TestPKI


class Response(Protocol):
    status_code: int

    def json(self) -> Any: ...


class HttpClient(Protocol):
    """What the demo needs of an HTTP client: ``httpx.Client(base_url=...)`` or FastAPI's ``TestClient``."""

    def post(self, url: str, *, json: Any = None) -> Response: ...


def live_test_pki(now: datetime) -> TestPKI:
    """The default test PKI (same root every time) with the certificates below the root valid around ``now``."""
    pki = TestPKI.create()
    for level in ("regional", "zonal", "instance", "leaf"):
        pki = pki.reissue(level, not_before=now - timedelta(minutes=5), not_after=now + timedelta(hours=3))
    return pki


def enclave_answer(http: HttpClient, pki: TestPKI, enclave_key: rsa.RSAPrivateKey, now: datetime) -> bytes:
    """What an enclave does: get a challenge, attest with its nonce and the enclave's public key."""
    challenge = http.post("/challenge").json()
    public_key = enclave_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pki.document(nonce=base64.b64decode(challenge["nonce"]), public_key=public_key, timestamp=now)


def release_secret(http: HttpClient, document: bytes, enclave_key: rsa.RSAPrivateKey) -> tuple[int, Any]:
    """Sends the document; on success opens the sealed secret inside the enclave. (status, secret or error body)."""
    response = http.post("/attest", json={"document": base64.b64encode(document).decode()})
    body = response.json()
    if response.status_code != 200:
        return response.status_code, body
    # The envelope is what KMS answers with Recipient=: inside a real enclave, kmstool opens it too.
    return 200, EnclaveKey(enclave_key).open(base64.b64decode(body["sealed_secret"]))


def setup(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    root = TestPKI.create().root.public_bytes(serialization.Encoding.PEM)
    (directory / "test-root.pem").write_bytes(root)
    policy = nitro_attest.Policy({index: DEFAULT_PCRS[index] for index in (0, 1, 2)})
    (directory / "policy.json").write_text(nitro_attest.dumps_policy(policy), encoding="utf-8")
    print(f"wrote {directory / 'test-root.pem'} and {directory / 'policy.json'}")


def attest(url: str) -> int:
    import httpx  # noqa: PLC0415 -- the HTTP client only the command line needs

    now = datetime.now(timezone.utc)
    pki = live_test_pki(now)
    enclave_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with httpx.Client(base_url=url) as http:
        document = enclave_answer(http, pki, enclave_key, now)
        status, result = release_secret(http, document, enclave_key)
        print(f"first attempt: {status} {result!r}")
        status, result = release_secret(http, document, enclave_key)
        print(f"same document again: {status} {result!r}")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "setup":
        setup(Path(argv[1]))
        return 0
    if len(argv) == 2 and argv[0] == "attest":
        return attest(argv[1])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
