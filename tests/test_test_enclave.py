"""``TestEnclave``: documents that verify now, under a TEST root kept in a directory, with a chain that rolls."""

from __future__ import annotations

import json
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509

import nitro_attest
from nitro_attest import ConfigurationError, NitroAttestError, Policy
from nitro_attest.recipient import EnclaveKey, seal
from nitro_attest.testing import DEFAULT_PCRS, TestEnclave

PCR0 = "ab" * 48


def test_a_document_verifies_now_with_the_enclave_roots_only() -> None:
    enclave = TestEnclave.create(pcrs={0: PCR0})
    key = EnclaveKey.generate()
    data = enclave.attest(public_key=key.public_key_der, nonce=b"n", user_data=b"u")
    document = nitro_attest.verify(data, Policy({0: PCR0}, nonce=b"n", user_data=b"u"), roots=enclave.roots)
    assert abs(document.timestamp - datetime.now(timezone.utc)) < timedelta(minutes=1)
    assert document.pcrs[1] == DEFAULT_PCRS[1]
    assert key.open(seal(b"secret", document)) == b"secret"
    with pytest.raises(NitroAttestError) as excinfo:
        nitro_attest.verify(data, Policy({0: PCR0}))  # the AWS root
    assert excinfo.value.code == "chain"
    assert "TEST-ONLY" in enclave.root.subject.rfc4514_string()


def test_the_leaf_rolls_every_two_hours_and_each_document_lives_an_hour_at_least() -> None:
    enclave = TestEnclave.create()
    now = datetime.now(timezone.utc)
    leaves = {enclave.pki(now + timedelta(minutes=step * 30)).leaf for step in range(9)}
    assert len(leaves) == 3  # four hours of 30-minute steps cross two roll boundaries
    for step in range(9):
        moment = now + timedelta(minutes=step * 30)
        leaf = enclave.pki(moment).leaf
        assert leaf.not_valid_before_utc <= moment
        assert leaf.not_valid_after_utc - moment >= timedelta(hours=1)
        assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == timedelta(hours=3, seconds=3)


def test_an_old_document_is_expired_now() -> None:
    enclave = TestEnclave.create()
    data = enclave.attest(at=datetime.now(timezone.utc) - timedelta(hours=5))
    with pytest.raises(NitroAttestError) as excinfo:
        nitro_attest.verify(data, Policy.any_enclave(), roots=enclave.roots)
    assert excinfo.value.code == "expired"


def test_a_debug_enclave_has_zero_pcr0_to_2() -> None:
    enclave = TestEnclave.create(debug=True, pcrs={0: PCR0})
    assert enclave.debug and all(enclave.pcrs[index] == bytes(48) for index in (0, 1, 2))
    data = enclave.attest()
    with pytest.raises(NitroAttestError) as excinfo:
        nitro_attest.verify(data, Policy.any_enclave(), roots=enclave.roots)
    assert excinfo.value.code == "debug"
    assert nitro_attest.verify(data, Policy.any_enclave(allow_debug=True), roots=enclave.roots).is_debug


def test_create_writes_the_directory_with_private_keys_0600_and_load_attests_as_the_same_enclave(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "enclave"
    enclave = TestEnclave.create(directory, pcrs={0: PCR0, 8: "cd" * 48})
    first = enclave.attest()
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in directory.iterdir()}
    assert modes == {"root.pem": 0o644, "enclave.json": 0o644, "root-key.pem": 0o600, "chain.json": 0o600}
    assert x509.load_pem_x509_certificate((directory / "root.pem").read_bytes()) == enclave.root
    loaded = TestEnclave.load(directory)
    assert loaded.pcrs == enclave.pcrs and loaded.roots == enclave.roots and not loaded.debug
    second = loaded.attest()
    documents = [nitro_attest.verify(data, Policy({0: PCR0}), roots=loaded.roots) for data in (first, second)]
    assert documents[0].certificate == documents[1].certificate  # the stored leaf, not a new one
    assert loaded.directory == directory


def _broken(directory: Path, name: str, content: bytes) -> None:
    (directory / name).write_bytes(content)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("enclave.json", b"not json", "not JSON"),
        ("enclave.json", b"[]", "not a JSON object"),
        ("enclave.json", b'{"format": "other"}', "not a test enclave"),
        ("enclave.json", b'{"format": "nitro_attest test enclave 1", "pcrs": [], "debug": false}', "needs 'pcrs'"),
        ("enclave.json", b'{"format": "nitro_attest test enclave 1", "pcrs": {"x": "00"}, "debug": false}', "PCR"),
        ("enclave.json", b'{"format": "nitro_attest test enclave 1", "pcrs": {"0": "00"}, "debug": false}', "48 bytes"),
        ("enclave.json", b"x" * (64 * 1024 + 1), "over"),
        ("root.pem", b"not a certificate", "not a PEM certificate"),
        ("root-key.pem", b"not a key", "not an unencrypted PEM private key"),
        ("chain.json", b'{"window": 99999999999, "certificates": 1, "keys": {}}', "needs 'certificates'"),
    ],
)
def test_load_refuses_a_damaged_directory(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    enclave = TestEnclave.create(tmp_path)
    enclave.attest()
    if name == "chain.json":
        state = json.loads((tmp_path / name).read_text())
        content = json.dumps({**state, "certificates": 1}).encode()
    _broken(tmp_path, name, content)
    with pytest.raises(ConfigurationError, match=message):
        TestEnclave.load(tmp_path).attest()


def test_load_refuses_a_key_of_another_root_and_a_missing_directory(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    TestEnclave.create(first)
    TestEnclave.create(second)
    (first / "root-key.pem").write_bytes((second / "root-key.pem").read_bytes())
    with pytest.raises(ConfigurationError, match="is not the key of"):
        TestEnclave.load(first)
    with pytest.raises(ConfigurationError, match="cannot read"):
        TestEnclave.load(tmp_path / "missing")


def test_attest_refuses_oversized_fields_and_a_naive_time() -> None:
    enclave = TestEnclave.create()
    with pytest.raises(ValueError, match="at most 1024"):
        enclave.attest(nonce=b"x" * 1025)
    with pytest.raises(TypeError, match="timezone-aware"):
        enclave.attest(at=datetime(2030, 1, 1))
