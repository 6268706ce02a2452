"""An example relying party: hands out challenges and releases a secret to an attested enclave.

``POST /challenge`` returns a fresh nonce. The enclave asks its NSM for an
attestation document carrying that nonce and its own RSA public key, and sends
it to ``POST /attest``; if the document verifies under the configured policy
and the nonce is consumed for the first time, the service returns the secret
sealed to that public key with :func:`nitro_attest.recipient.seal`: the
envelope AWS KMS answers to enclaves (``CiphertextForRecipient``), which the
enclave opens with its :class:`~nitro_attest.recipient.EnclaveKey` (or the
Nitro Enclaves SDK's kmstool), and the parent instance that relays the traffic
cannot read. Every rejection is logged at warning level with its code.

Run it with ``uvicorn app:create_app --factory --app-dir examples/fastapi_service``;
the configuration comes from the environment (see :func:`config_from_environment`
and README.md). Tests build a :class:`ServiceConfig` themselves and pass it to
:func:`create_app`.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

import nitro_attest
from nitro_attest.challenge import Challenger, MemoryChallengeStore, RedisChallengeStore, check_policy
from nitro_attest.policy_file import load_policy
from nitro_attest.recipient import RecipientError, seal

#: A document is at most 32 KiB; base64 in JSON makes that about 44 KiB.
MAX_REQUEST_BYTES = 64 * 1024
#: This service's Redis keys: another service on the same server must use another prefix.
REDIS_PREFIX = "nitro_attest_example:challenge:"
#: Seconds to wait for Redis before answering 503, rather than holding a worker thread.
REDIS_TIMEOUT = 2.0
#: How the secret comes back: the format of a KMS ``CiphertextForRecipient``.
SEALING = "KMS CiphertextForRecipient (CMS EnvelopedData, RSAES-OAEP-SHA-256, AES-256-CBC)"

_log = logging.getLogger("nitro_attest.example")


@dataclass(frozen=True)
class ServiceConfig:
    """What the service trusts and what it releases.

    ``roots`` None means the AWS Nitro Enclaves root shipped with nitro_attest;
    anything else is for tests (the test PKI's root).
    """

    challenger: Challenger
    policy: nitro_attest.Policy
    secret: bytes
    roots: tuple[x509.Certificate, ...] | None = None


class RequestRefused(Exception):
    """A refusal of this service's own (not a NitroAttestError): an HTTP status, a code, a message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def config_from_environment(environ: Mapping[str, str] = os.environ) -> ServiceConfig:
    """The configuration from environment variables.

    - ``NITRO_ATTEST_POLICY`` (required): a policy file (``.json``/``.toml``, or
      an AWS KMS key policy in JSON), as ``nitro-attest policy`` reads it.
    - ``NITRO_ATTEST_REDIS_URL``: keep challenges in this Redis server (needed
      with several worker processes); otherwise in this process's memory.
    - ``NITRO_ATTEST_DEMO_SECRET``: the secret to release (UTF-8); otherwise a
      random one per process.
    - ``NITRO_ATTEST_UNSAFE_ROOTS_PEM``: trust the root certificate(s) in this
      PEM file INSTEAD of the AWS root. For the test PKI only: whoever holds
      such a root's key can attest any measurements.
    """
    policy_path = environ.get("NITRO_ATTEST_POLICY")
    if not policy_path:
        raise RuntimeError("set NITRO_ATTEST_POLICY to the policy file the enclaves must satisfy")
    loaded = load_policy(policy_path)
    policy = loaded if isinstance(loaded, nitro_attest.Policy) else nitro_attest.Policy.from_kms_key_policy(loaded)
    check_policy(policy)  # at start: a policy that pins a nonce would refuse every request

    redis_url = environ.get("NITRO_ATTEST_REDIS_URL")
    if redis_url:
        import redis  # noqa: PLC0415 -- only a deployment that asks for Redis needs it installed

        client = redis.Redis.from_url(redis_url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT)
        store: MemoryChallengeStore | RedisChallengeStore = RedisChallengeStore(client, prefix=REDIS_PREFIX)
    else:
        store = MemoryChallengeStore()

    roots = None
    roots_path = environ.get("NITRO_ATTEST_UNSAFE_ROOTS_PEM")
    if roots_path:
        with open(roots_path, "rb") as stream:
            roots = tuple(x509.load_pem_x509_certificates(stream.read()))

    demo_secret = environ.get("NITRO_ATTEST_DEMO_SECRET")
    secret = demo_secret.encode() if demo_secret else secrets.token_bytes(32)
    return ServiceConfig(challenger=Challenger(store), policy=policy, secret=secret, roots=roots)


def _refusal(status: int, code: str, message: str) -> JSONResponse:
    # The reason a client was refused is what an operator needs first when an enclave cannot get its secret.
    _log.warning("refused %d [%s]: %s", status, code, message)
    return JSONResponse({"code": code, "error": message}, status_code=status)


async def _read_body(request: Request) -> bytes:
    # Read at most MAX_REQUEST_BYTES: nothing in front of this app bounds the body.
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_REQUEST_BYTES:
            raise RequestRefused(413, "size", f"request body over {MAX_REQUEST_BYTES} bytes")
    return bytes(body)


def _document_bytes(request: Request, body: bytes) -> bytes:
    """The document: the body (raw CBOR, hex or base64), or {"document": "<base64 or hex>"} in JSON.

    Both are read by nitro_attest.document_bytes, the library's one reading of the encodings enclaves
    send; what it cannot read is a MalformedDocument, answered 400 with its code.
    """
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        if not body:
            raise RequestRefused(400, "request", "empty body: send the attestation document")
        return nitro_attest.document_bytes(body)
    try:
        fields = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nesting deeper than json can parse
        raise RequestRefused(400, "request", "body is not valid JSON") from None
    encoded = fields.get("document") if isinstance(fields, dict) else None
    if not isinstance(encoded, str) or not encoded:
        raise RequestRefused(400, "request", 'expected {"document": "<base64 attestation document>"}')
    return nitro_attest.document_bytes(encoded)


def _seal_to_enclave(document: nitro_attest.VerifiedDocument, secret: bytes) -> bytes:
    """``secret`` sealed to the RSA public key the enclave put into its (verified) document."""
    try:
        return seal(secret, document)
    except RecipientError as error:  # no public key, not RSA, not 2048/3072/4096 bits
        raise RequestRefused(403, "public_key", error.message) from None


def create_app(config: ServiceConfig | None = None) -> FastAPI:
    """The service; ``config`` defaults to :func:`config_from_environment`."""
    config = config or config_from_environment()
    app = FastAPI(title="nitro_attest example relying party")

    @app.exception_handler(RequestRefused)
    async def refused(request: Request, error: RequestRefused) -> JSONResponse:
        return _refusal(error.status, error.code, error.message)

    @app.exception_handler(nitro_attest.NitroAttestError)
    async def rejected(request: Request, error: nitro_attest.NitroAttestError) -> JSONResponse:
        # Malformed bytes are the client's mistake (400); everything else is a
        # document that is not trusted: forged, expired, the wrong enclave, a replay (403).
        status = 400 if isinstance(error, nitro_attest.MalformedDocument) else 403
        return _refusal(status, error.code, error.message)

    if isinstance(config.challenger.store, RedisChallengeStore):
        import redis  # noqa: PLC0415 -- only with the Redis store

        @app.exception_handler(redis.RedisError)
        async def store_unavailable(request: Request, error: Exception) -> JSONResponse:
            # Without the store no nonce can be issued or consumed: refuse, and let the client retry later.
            return _refusal(503, "unavailable", "the challenge store is unavailable; try again later")

    @app.post("/challenge")
    async def challenge() -> dict[str, str]:
        issued = await run_in_threadpool(config.challenger.issue)
        return {"nonce": base64.b64encode(issued.nonce).decode(), "expires_at": issued.expires_at.isoformat()}

    @app.post("/attest")
    async def attest(request: Request) -> dict[str, Any]:
        data = _document_bytes(request, await _read_body(request))
        # Verification is CPU work and a Redis round trip: keep it off the event loop.
        document = await run_in_threadpool(config.challenger.verify, data, config.policy, roots=config.roots)
        sealed = _seal_to_enclave(document, config.secret)
        return {
            "sealed_secret": base64.b64encode(sealed).decode(),
            "sealing": SEALING,
            "module_id": document.module_id,
        }

    return app
