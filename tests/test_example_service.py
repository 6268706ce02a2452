"""The example FastAPI service (examples/fastapi_service), end to end with documents from the test PKI.

The example is not a package: its modules are loaded from their files. The
tests skip when FastAPI or httpx (which FastAPI's TestClient needs) is absent.
"""

from __future__ import annotations

import base64
import importlib.util
import os
import sys
import uuid
import warnings
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import redis_unreachable

pytest.importorskip("fastapi", reason="the example service needs FastAPI (pip install 'nitro_attest[test]')")

with warnings.catch_warnings():
    # Newer Starlette prefers httpx2 and warns that httpx is deprecated; either works for these tests.
    warnings.filterwarnings("ignore", message=".*install `httpx2` instead", category=UserWarning)
    try:
        from fastapi.testclient import TestClient
    except (ImportError, RuntimeError) as error:  # RuntimeError: Starlette found neither httpx nor httpx2
        pytest.skip(f"FastAPI's TestClient is unavailable: {error}", allow_module_level=True)

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import nitro_attest
from nitro_attest.challenge import Challenger, MemoryChallengeStore, RedisChallengeStore
from nitro_attest.policy_file import dumps_policy
from nitro_attest.recipient import EnclaveKey, inspect
from nitro_attest.testing import DEFAULT_PCRS, TestPKI

EXAMPLE_DIR = Path(__file__).resolve().parents[1] / "examples" / "fastapi_service"
REDIS_URL = os.environ.get("NITRO_ATTEST_REDIS_URL", "redis://127.0.0.1:6379/0")
LIFETIME = timedelta(minutes=5)
SECRET = b"the demo secret"


def load_example(name: str) -> ModuleType:
    """examples/fastapi_service/<name>.py as a module of its own name (the directory is not a package)."""
    module_name = f"nitro_attest_example_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLE_DIR / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


app_module = load_example("app")
demo_client = load_example("demo_client")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI.create()


@pytest.fixture(scope="module")
def enclave_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def clock(pki: TestPKI) -> Clock:
    return Clock(pki.document_time)


@pytest.fixture
def policy() -> nitro_attest.Policy:
    return nitro_attest.Policy({0: DEFAULT_PCRS[0], 1: DEFAULT_PCRS[1], 2: DEFAULT_PCRS[2]})


def make_client(pki: TestPKI, policy: nitro_attest.Policy, challenger: Challenger) -> TestClient:
    config = app_module.ServiceConfig(challenger=challenger, policy=policy, secret=SECRET, roots=pki.roots)
    return TestClient(app_module.create_app(config))


@pytest.fixture
def client(pki: TestPKI, policy: nitro_attest.Policy, clock: Clock) -> Iterator[TestClient]:
    with make_client(pki, policy, Challenger(MemoryChallengeStore(), lifetime=LIFETIME, clock=clock)) as client:
        yield client


def public_key_der(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def get_nonce(client: TestClient) -> bytes:
    response = client.post("/challenge")
    assert response.status_code == 200
    return base64.b64decode(response.json()["nonce"])


def answer(client: TestClient, pki: TestPKI, enclave_key: rsa.RSAPrivateKey, **changes: Any) -> bytes:
    """The enclave's side: a challenge from the service, a document with its nonce and the enclave's key."""
    fields: dict[str, Any] = {"nonce": get_nonce(client), "public_key": public_key_der(enclave_key), **changes}
    return pki.document(**fields)


def post_document(client: TestClient, document: bytes) -> Any:
    return client.post("/attest", json={"document": base64.b64encode(document).decode()})


def decrypt(enclave_key: rsa.RSAPrivateKey, body: dict[str, Any]) -> bytes:
    """The enclave's side: open the sealed secret, a KMS-layout envelope, with the enclave's key."""
    assert body["sealing"].startswith("KMS CiphertextForRecipient")
    sealed = base64.b64decode(body["sealed_secret"])
    assert inspect(sealed).key_id == EnclaveKey(enclave_key).key_id
    return EnclaveKey(enclave_key).open(sealed)


def assert_refused(response: Any, status: int, code: str, words: str = "") -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    assert words in body["error"], body
    assert "sealed_secret" not in body


# --- Accepted ----------------------------------------------------------------------------------------


def test_challenge_gives_a_nonce_and_its_expiry(client: TestClient, clock: Clock) -> None:
    body = client.post("/challenge").json()
    assert len(base64.b64decode(body["nonce"])) == 32
    assert datetime.fromisoformat(body["expires_at"]) == clock.now + LIFETIME


def test_attested_enclave_gets_the_secret_encrypted_to_its_key(
    client: TestClient, pki: TestPKI, enclave_key: rsa.RSAPrivateKey
) -> None:
    response = post_document(client, answer(client, pki, enclave_key))
    assert response.status_code == 200, response.text
    assert decrypt(enclave_key, response.json()) == SECRET
    assert response.json()["module_id"] == nitro_attest.parse(pki.document()).module_id


def test_document_as_raw_body(client: TestClient, pki: TestPKI, enclave_key: rsa.RSAPrivateKey) -> None:
    document = answer(client, pki, enclave_key)
    response = client.post("/attest", content=document, headers={"content-type": "application/cbor"})
    assert response.status_code == 200, response.text
    assert decrypt(enclave_key, response.json()) == SECRET


# --- Refused -----------------------------------------------------------------------------------------


def test_replayed_document_is_refused(client: TestClient, pki: TestPKI, enclave_key: rsa.RSAPrivateKey) -> None:
    document = answer(client, pki, enclave_key, high_s=False)
    assert post_document(client, document).status_code == 200
    assert_refused(post_document(client, document), 403, "nonce", "already used")
    # The signature's twin is other bytes with the same payload: refused all the same.
    twin = pki.document(nonce=nitro_attest.parse(document).nonce, public_key=public_key_der(enclave_key), high_s=True)
    assert twin != document
    assert_refused(post_document(client, twin), 403, "nonce", "already used")


def test_wrong_pcr_is_refused(client: TestClient, pki: TestPKI, enclave_key: rsa.RSAPrivateKey) -> None:
    document = answer(client, pki, enclave_key, pcrs={**DEFAULT_PCRS, 2: b"\x02" * 48})
    assert_refused(post_document(client, document), 403, "pcr", "PCR2")


def test_expired_challenge_is_refused(
    client: TestClient, pki: TestPKI, enclave_key: rsa.RSAPrivateKey, clock: Clock
) -> None:
    issued_at = clock.now
    # A fresh document, but made and sent after the challenge expired.
    document = answer(client, pki, enclave_key, timestamp=issued_at + LIFETIME)
    clock.now = issued_at + LIFETIME + timedelta(seconds=1)
    assert_refused(post_document(client, document), 403, "nonce", "expired")


def test_nonce_the_service_never_issued_is_refused(
    client: TestClient, pki: TestPKI, enclave_key: rsa.RSAPrivateKey
) -> None:
    document = pki.document(nonce=b"\x07" * 32, public_key=public_key_der(enclave_key))
    assert_refused(post_document(client, document), 403, "nonce", "unknown")


def test_document_without_nonce_is_refused(client: TestClient, pki: TestPKI, enclave_key: rsa.RSAPrivateKey) -> None:
    assert_refused(post_document(client, pki.document(public_key=public_key_der(enclave_key))), 403, "nonce")


def test_forged_signature_is_refused(
    client: TestClient, pki: TestPKI, enclave_key: rsa.RSAPrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    # One bit flipped: setting the last byte to 0 would leave one signature in 256 unchanged.
    document = answer(client, pki, enclave_key, signature=lambda sig: sig[:-1] + bytes([sig[-1] ^ 0x01]))
    with caplog.at_level("WARNING", logger="nitro_attest.example"):
        assert_refused(post_document(client, document), 403, "signature")
    assert [record.getMessage().split(":")[0] for record in caplog.records] == ["refused 403 [signature]"]


def test_document_under_another_root_is_refused(
    pki: TestPKI, policy: nitro_attest.Policy, clock: Clock, enclave_key: rsa.RSAPrivateKey
) -> None:
    config = app_module.ServiceConfig(challenger=Challenger(clock=clock), policy=policy, secret=SECRET)  # AWS root
    with TestClient(app_module.create_app(config)) as client:
        assert_refused(post_document(client, answer(client, pki, enclave_key)), 403, "chain")


@pytest.mark.parametrize(
    ("public_key", "words"),
    [
        (None, "carries no public_key"),
        (b"not DER", "not a SubjectPublicKeyInfo"),
        ("ec", "not an RSA key"),
        ("rsa-1024", "1024-bit RSA key: only 2048, 3072 or 4096"),
    ],
)
def test_no_usable_enclave_key_no_secret(client: TestClient, pki: TestPKI, public_key: Any, words: str) -> None:
    if public_key == "ec":
        public_key = public_key_der(ec.generate_private_key(ec.SECP384R1()))
    elif public_key == "rsa-1024":
        public_key = public_key_der(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    document = pki.document(nonce=get_nonce(client), public_key=public_key)
    assert_refused(post_document(client, document), 403, "public_key", words)


@pytest.mark.parametrize(
    ("request_arguments", "status", "code"),
    [
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, "request"),
        ({"content": b"[" * 50_000, "headers": {"content-type": "application/json"}}, 400, "request"),
        ({"json": ["document"]}, 400, "request"),
        ({"json": {"doc": "AAAA"}}, 400, "request"),
        ({"json": {"document": ""}}, 400, "request"),
        ({"json": {"document": 12}}, 400, "request"),
        ({"json": {"document": "not base64!"}}, 400, "cbor"),
        ({"content": b"", "headers": {"content-type": "application/cbor"}}, 400, "request"),
        ({"content": b"\xff\xff", "headers": {"content-type": "application/cbor"}}, 400, "cbor"),
        ({"json": {"document": base64.b64encode(b"\x84\x40\xa0\x40\x40").decode()}}, 400, "cose"),
        ({"content": b"\x00" * (64 * 1024 + 1), "headers": {"content-type": "application/cbor"}}, 413, "size"),
    ],
    ids=[
        "bad-json",
        "json-nested-past-the-recursion-limit",
        "json-list",
        "no-document",
        "empty-document",
        "document-number",
        "bad-base64",
        "empty-body",
        "not-cbor",
        "not-cose",
        "too-large",
    ],
)
def test_malformed_request_is_refused(
    client: TestClient, request_arguments: dict[str, Any], status: int, code: str
) -> None:
    assert_refused(client.post("/attest", **request_arguments), status, code)


@pytest.mark.parametrize(
    "encode",
    [
        lambda data: {"json": {"document": base64.urlsafe_b64encode(data).decode().rstrip("=")}},
        lambda data: {"json": {"document": data.hex()}},
        lambda data: {"content": base64.b64encode(data), "headers": {"content-type": "text/plain"}},
        lambda data: {"content": data, "headers": {"content-type": "application/cbor"}},
    ],
    ids=["json-urlsafe-unpadded", "json-hex", "body-base64", "body-raw"],
)
def test_every_encoding_an_enclave_sends_is_read(
    client: TestClient, pki: TestPKI, enclave_key: rsa.RSAPrivateKey, encode: Any
) -> None:
    response = client.post("/attest", **encode(answer(client, pki, enclave_key)))
    assert response.status_code == 200, response.json()
    assert decrypt(enclave_key, response.json()) == SECRET


def test_a_refused_document_does_not_burn_the_challenge(
    client: TestClient, pki: TestPKI, enclave_key: rsa.RSAPrivateKey
) -> None:
    nonce = get_nonce(client)
    key = public_key_der(enclave_key)
    wrong = pki.document(nonce=nonce, public_key=key, pcrs={**DEFAULT_PCRS, 0: b"\x05" * 48})
    assert_refused(post_document(client, wrong), 403, "pcr")
    assert post_document(client, pki.document(nonce=nonce, public_key=key)).status_code == 200


# --- Redis -------------------------------------------------------------------------------------------


def test_unreachable_redis_store_is_503(pki: TestPKI) -> None:
    redis = pytest.importorskip("redis", reason="redis-py is not installed")
    unreachable = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    config = app_module.ServiceConfig(
        challenger=Challenger(
            RedisChallengeStore(unreachable, prefix="nitro_attest_test:unreachable:"), clock=lambda: pki.document_time
        ),
        policy=nitro_attest.Policy({0: DEFAULT_PCRS[0]}),
        secret=SECRET,
        roots=pki.roots,
    )
    with TestClient(app_module.create_app(config)) as client:
        assert_refused(client.post("/challenge"), 503, "unavailable")
        # A document that verifies still cannot be accepted without the store to consume its nonce in.
        assert_refused(post_document(client, pki.document(nonce=b"n" * 32)), 503, "unavailable")


def test_a_policy_that_pins_a_nonce_is_refused_at_start(tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(dumps_policy(nitro_attest.Policy({0: DEFAULT_PCRS[0]}, nonce=b"n")))
    with pytest.raises(ValueError, match="pins a nonce"):
        app_module.config_from_environment({"NITRO_ATTEST_POLICY": str(policy_file)})


@pytest.fixture
def redis_prefix() -> Iterator[tuple[Any, str]]:
    redis = pytest.importorskip("redis", reason="redis-py is not installed")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as error:
        client.close()
        redis_unreachable(f"no Redis server reachable at {REDIS_URL} (set NITRO_ATTEST_REDIS_URL): {error}")
    prefix = f"nitro_attest_test:{uuid.uuid4().hex}:"
    yield redis, prefix
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


def test_two_workers_sharing_redis_accept_a_document_once(
    redis_prefix: tuple[Any, str],
    pki: TestPKI,
    policy: nitro_attest.Policy,
    clock: Clock,
    enclave_key: rsa.RSAPrivateKey,
) -> None:
    redis, prefix = redis_prefix
    connections = [redis.Redis.from_url(REDIS_URL) for _ in range(2)]
    workers = [
        make_client(pki, policy, Challenger(RedisChallengeStore(connection, prefix=prefix), clock=clock))
        for connection in connections
    ]
    try:
        document = answer(workers[0], pki, enclave_key)  # challenge from one worker...
        response = post_document(workers[1], document)  # ...answered to the other
        assert response.status_code == 200, response.text
        assert decrypt(enclave_key, response.json()) == SECRET
        assert_refused(post_document(workers[0], document), 403, "nonce", "already used")
    finally:
        for worker, connection in zip(workers, connections, strict=True):
            worker.close()
            connection.close()


# --- Configuration and the demo client ---------------------------------------------------------------


def test_demo_setup_and_client_against_the_environment_configured_service(
    tmp_path: Path, enclave_key: rsa.RSAPrivateKey
) -> None:
    """What README.md walks through, with TestClient in place of uvicorn and the real clock."""
    demo_client.setup(tmp_path)
    config = app_module.config_from_environment(
        {
            "NITRO_ATTEST_POLICY": str(tmp_path / "policy.json"),
            "NITRO_ATTEST_UNSAFE_ROOTS_PEM": str(tmp_path / "test-root.pem"),
            "NITRO_ATTEST_DEMO_SECRET": "s3cret",
        }
    )
    assert isinstance(config.challenger.store, MemoryChallengeStore)
    now = config.challenger.now()
    with TestClient(app_module.create_app(config)) as client:
        document = demo_client.enclave_answer(client, demo_client.live_test_pki(now), enclave_key, now)
        assert demo_client.release_secret(client, document, enclave_key) == (200, b"s3cret")
        status, body = demo_client.release_secret(client, document, enclave_key)
        assert (status, body["code"]) == (403, "nonce")


def test_environment_selects_the_redis_store(tmp_path: Path) -> None:
    pytest.importorskip("redis", reason="redis-py is not installed")
    demo_client.setup(tmp_path)
    config = app_module.config_from_environment(
        {"NITRO_ATTEST_POLICY": str(tmp_path / "policy.json"), "NITRO_ATTEST_REDIS_URL": REDIS_URL}
    )
    assert isinstance(config.challenger.store, RedisChallengeStore)
    assert config.roots is None  # the AWS root
    assert len(config.secret) == 32  # random when not configured


def test_environment_without_a_policy_is_refused() -> None:
    with pytest.raises(RuntimeError, match="NITRO_ATTEST_POLICY"):
        app_module.config_from_environment({})
