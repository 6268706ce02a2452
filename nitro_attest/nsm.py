"""The Nitro Secure Module: ask for an attestation document from inside an enclave.

An enclave gets its attestation document from the Nitro Secure Module (NSM)
through the ``/dev/nsm`` device: one ``ioctl`` carries a CBOR request and
returns a CBOR response, as defined by aws/aws-nitro-enclaves-nsm-api
(``src/api/mod.rs`` for the messages, ``src/driver/mod.rs`` for the call; the
Linux driver's ``include/uapi/linux/nsm.h`` has the same layout):

- the request is serde's externally tagged enum:
  ``{"Attestation": {"user_data": bytes|null, "nonce": bytes|null,
  "public_key": bytes|null}}``, at most :data:`MAX_REQUEST` bytes;
- the response is ``{"Attestation": {"document": bytes}}`` (a COSE_Sign1
  attestation document) or ``{"Error": "<ErrorCode>"}``, at most
  :data:`MAX_RESPONSE` bytes;
- the call is ``ioctl(fd, _IOWR(0x0A, 0, struct nsm_raw), &raw)``, where
  ``struct nsm_raw`` is two ``{u64 addr; u64 len}`` pairs: the request, and
  the response buffer, whose ``len`` the driver sets to the response's size.

:class:`Attester` is what needs a document asks for: :class:`NsmDevice` is
the real module, and :class:`nitro_attest.testing.TestEnclave` (whose
:meth:`~nitro_attest.testing.TestEnclave.attest` has the same signature) the
test one. :func:`encode_attestation_request` and
:func:`decode_attestation_response` are tested against the NSM API's
definitions; the device itself exists only inside a Nitro enclave and is not
exercised by this project's tests.
"""

from __future__ import annotations

import ctypes
import os
from typing import Protocol

import cbor2

from .errors import NitroAttestError

__all__ = [
    "DEVICE",
    "ERROR_CODES",
    "IOCTL_RAW",
    "MAX_FIELD",
    "MAX_REQUEST",
    "MAX_RESPONSE",
    "Attester",
    "NsmDevice",
    "NsmError",
    "decode_attestation_response",
    "encode_attestation_request",
]

#: The NSM device inside an enclave.
DEVICE = "/dev/nsm"
#: The largest request the driver takes (``NSM_REQUEST_MAX_SIZE``).
MAX_REQUEST = 0x1000
#: The size of the response buffer (``NSM_RESPONSE_MAX_SIZE``): no answer is longer.
MAX_RESPONSE = 0x3000
#: The largest ``user_data``, ``nonce`` and ``public_key`` the NSM puts in a document, in bytes.
MAX_FIELD = 1024
_MAX_DEPTH = 4
#: The NSM API's ``ErrorCode`` names, as a response's ``Error`` carries them.
ERROR_CODES = frozenset(
    {
        "Success",
        "InvalidArgument",
        "InvalidIndex",
        "InvalidResponse",
        "ReadOnlyIndex",
        "InvalidOperation",
        "BufferTooSmall",
        "InputTooLarge",
        "InternalError",
    }
)


class _Iovec(ctypes.Structure):
    _fields_ = (("addr", ctypes.c_uint64), ("len", ctypes.c_uint64))


class _NsmRaw(ctypes.Structure):
    _fields_ = (("request", _Iovec), ("response", _Iovec))


def _iowr(kind: int, number: int, size: int) -> int:
    # Linux's _IOWR: direction read|write (3) in bits 30-31, the argument's size in 16-29.
    return (3 << 30) | (size << 16) | (kind << 8) | number


#: ``NSM_IOCTL_RAW``: ``_IOWR(0x0A, 0, struct nsm_raw)``, 0xC0200A00.
IOCTL_RAW = _iowr(0x0A, 0, ctypes.sizeof(_NsmRaw))


class NsmError(NitroAttestError):
    """The Nitro Secure Module did not give an attestation document.

    ``device``: ``/dev/nsm`` cannot be opened or the ``ioctl`` failed (not in
    an enclave, or no driver); ``error``: the module answered with an
    ``ErrorCode`` (in the message); ``malformed``: the answer is not the NSM
    API's CBOR ``Attestation`` response.
    """

    codes = frozenset({"device", "error", "malformed"})


class Attester(Protocol):
    """What makes attestation documents: the NSM (:class:`NsmDevice`) or a test enclave.

    ``attest`` returns a COSE_Sign1 attestation document (bytes) carrying the
    given fields, each at most :data:`MAX_FIELD` bytes or None.
    """

    def attest(
        self, *, public_key: bytes | None = None, nonce: bytes | None = None, user_data: bytes | None = None
    ) -> bytes: ...


def _check_field(name: str, value: bytes | None) -> None:
    if value is not None and (not isinstance(value, bytes) or len(value) > MAX_FIELD):
        raise ValueError(f"{name} must be bytes of at most {MAX_FIELD} or None")


def encode_attestation_request(
    *, public_key: bytes | None = None, nonce: bytes | None = None, user_data: bytes | None = None
) -> bytes:
    """The CBOR of ``Request::Attestation``, fields in the NSM API's order (as serde_cbor writes it).

    :raises ValueError: a field that is not bytes of at most :data:`MAX_FIELD`.
    """
    for name, value in (("public_key", public_key), ("nonce", nonce), ("user_data", user_data)):
        _check_field(name, value)
    fields = {"user_data": user_data, "nonce": nonce, "public_key": public_key}
    return cbor2.dumps({"Attestation": fields})


def decode_attestation_response(data: bytes) -> bytes:
    """The document in the CBOR of ``Response::Attestation``.

    :raises NsmError: ``error`` for ``{"Error": CODE}``, ``malformed`` for anything else.
    """
    if len(data) > MAX_RESPONSE:
        raise NsmError("malformed", f"the response is {len(data)} bytes, over {MAX_RESPONSE}")
    try:
        # The answer nests three deep; cbor2 refuses deeper nesting, repeated keys and lengths past the data.
        response = cbor2.loads(data, allow_duplicate_keys=False, max_depth=_MAX_DEPTH)
    except cbor2.CBORDecodeError as error:
        raise NsmError("malformed", f"the response is not CBOR: {error}") from None
    if isinstance(response, dict) and set(response) == {"Error"}:
        code = response["Error"]
        name = code if isinstance(code, str) and code in ERROR_CODES else "an unknown code"
        raise NsmError("error", f"the NSM answered Error: {name}")
    body = response.get("Attestation") if isinstance(response, dict) and len(response) == 1 else None
    document = body.get("document") if isinstance(body, dict) and set(body) == {"document"} else None
    if not isinstance(document, bytes) or not document:
        raise NsmError("malformed", 'the response is not {"Attestation": {"document": bytes}}')
    return document


class NsmDevice:
    """The enclave's Nitro Secure Module at ``path`` (default :data:`DEVICE`), as an :class:`Attester`.

    The device is opened for each request and closed after it. Outside a
    Nitro enclave there is no such device: :meth:`attest` raises
    :class:`NsmError` ``device``.
    """

    def __init__(self, path: str = DEVICE) -> None:
        self._path = path

    def attest(
        self, *, public_key: bytes | None = None, nonce: bytes | None = None, user_data: bytes | None = None
    ) -> bytes:
        """A fresh attestation document carrying these fields, signed by the NSM.

        :raises NsmError: no device, the ``ioctl`` failed, or the NSM answered an error.
        :raises ValueError: a field that is not bytes of at most :data:`MAX_FIELD`.
        """
        request = encode_attestation_request(public_key=public_key, nonce=nonce, user_data=user_data)
        return decode_attestation_response(self._call(request))

    def _call(self, request: bytes) -> bytes:
        import fcntl  # noqa: PLC0415 -- POSIX only; importing this module must work everywhere

        if len(request) > MAX_REQUEST:
            raise NsmError("device", f"the request is {len(request)} bytes, over the driver's {MAX_REQUEST}")
        request_buffer = ctypes.create_string_buffer(request, len(request))
        response_buffer = ctypes.create_string_buffer(MAX_RESPONSE)
        raw = _NsmRaw(
            _Iovec(ctypes.addressof(request_buffer), len(request)),
            _Iovec(ctypes.addressof(response_buffer), MAX_RESPONSE),
        )
        try:
            descriptor = os.open(self._path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as error:
            raise NsmError("device", f"cannot open {self._path}: {error.strerror or error}") from None
        try:
            fcntl.ioctl(descriptor, IOCTL_RAW, raw, True)
        except OSError as error:
            raise NsmError("device", f"the NSM ioctl on {self._path} failed: {error.strerror or error}") from None
        finally:
            os.close(descriptor)
        size = min(int(raw.response.len), MAX_RESPONSE)
        return response_buffer.raw[:size]
