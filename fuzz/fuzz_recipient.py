"""Fuzz nitro_attest.recipient: any bytes are inspected and opened, and only RecipientError escapes.

An input is a mode byte, then:

- mode 0: the envelope itself (the seeds: envelopes sealed to the harness's
  key, the real KMS envelopes of ../shared/kms);
- mode 1: a choice of one of the envelopes sealed at start-up (the KMS
  layout, 1 to 4200 bytes of secret), then up to eight byte edits of it
  (``_fuzz_common.mutate_bytes``, splices with the other envelopes).

Oracles:

1. ``inspect()`` and ``EnclaveKey.open()`` raise only RecipientError;
   ``inspect`` only ``malformed`` or ``unsupported``, and when it refuses,
   ``open`` refuses with the same code and message (inspect applies every
   rule open applies before the key);
2. when ``inspect`` accepts: a key size of 2048/3072/4096 bits, content a
   positive multiple of 16 within the bound; ``open`` then fails only with
   ``recipient`` or ``decrypt``, and every ``decrypt`` has the one message;
3. what ``open`` returns is at most ``MAX_PLAINTEXT`` bytes, seals again to
   the key and opens to itself; an unedited envelope opens to its secret.

The key is ``vectors/recipient/fuzz-key.pem``, so an artifact reproduces.
Run: ``python fuzz/fuzz_recipient.py [libFuzzer flags] [corpus dirs]``.
"""

from __future__ import annotations

from _fuzz_common import REPO_ROOT, ByteReader, Finding, fuzz_main, mutate_bytes, require, shared_root

from nitro_attest.recipient import KEY_SIZES, MAX_PLAINTEXT, EnclaveKey, RecipientError, inspect, seal

__all__ = ["KEY", "main", "own_seeds", "shared_seeds", "test_one_input"]

KEY = EnclaveKey.from_pem((REPO_ROOT / "vectors" / "recipient" / "fuzz-key.pem").read_bytes())
_SECRETS = (b"k" * 32, b"Hello, World", bytes(range(256)) * 4 + b"tail", b"x" * 4200, b"\x10" * 16)
_SEALED = tuple(seal(secret, KEY.public_key_der) for secret in _SECRETS)
_DECRYPT_MESSAGE: list[str] = []  # the one message of "decrypt", as first seen


def _check(data: bytes) -> None:
    try:
        info = inspect(data)
    except RecipientError as error:
        require(error.code in ("malformed", "unsupported"), f"inspect() raised {error!r}")
        try:
            KEY.open(data)
        except RecipientError as opened:
            require((opened.code, opened.message) == (error.code, error.message), f"{opened!r} != {error!r}")
            return
        raise Finding(f"open() accepted what inspect() refused: {error!r}") from None
    require(info.key_size in KEY_SIZES, f"key size {info.key_size}")
    require(0 < info.content_length <= MAX_PLAINTEXT + 16 and info.content_length % 16 == 0, "content length")
    try:
        plaintext = KEY.open(data)
    except RecipientError as error:
        require(error.code in ("recipient", "decrypt"), f"open() raised {error!r} after inspect() accepted")
        if error.code == "decrypt":
            _DECRYPT_MESSAGE[:] = _DECRYPT_MESSAGE or [error.message]
            require(error.message == _DECRYPT_MESSAGE[0], f"a second decrypt message: {error.message!r}")
        require(error.code != "recipient" or info.key_id != KEY.key_id, "refused as another's its own key id")
        return
    require(len(plaintext) <= MAX_PLAINTEXT, f"{len(plaintext)} bytes opened")
    require(data not in _SEALED or plaintext == _SECRETS[_SEALED.index(data)], "an unedited envelope opened wrong")
    require(KEY.open(seal(plaintext, KEY.public_key_der)) == plaintext, "the opened secret does not seal again")


def test_one_input(data: bytes) -> None:
    reader = ByteReader(data)
    if reader.integer(0, 1) == 0:
        _check(reader.rest())
        return
    envelope = reader.pick(_SEALED)
    for _ in range(reader.integer(0, 8)):
        envelope = mutate_bytes(reader, envelope, _SEALED)
    _check(envelope)


def own_seeds() -> list[tuple[str, bytes]]:
    """Envelopes sealed now to the harness's key, as they are and as mode-1 choices."""
    seeds = [(f"sealed-{len(secret)}", b"\x00" + sealed) for secret, sealed in zip(_SECRETS, _SEALED, strict=True)]
    seeds += [
        (f"built-{index}-{edits}", bytes((1, index, edits)) + bytes(range(7, 40)))
        for index in range(len(_SEALED))
        for edits in range(5)
    ]
    return seeds


def shared_seeds() -> list[tuple[str, bytes]]:
    """The real KMS envelopes of ../shared/kms; [] when it is absent."""
    directory = shared_root() / "kms"
    return (
        [(path.name, b"\x00" + path.read_bytes()) for path in sorted(directory.glob("*.ber"))]
        if directory.is_dir()
        else []
    )


def main() -> None:
    fuzz_main(test_one_input)


if __name__ == "__main__":
    main()
