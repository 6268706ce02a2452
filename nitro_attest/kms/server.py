"""A local AWS KMS endpoint that checks attestation documents, for boto3, the AWS CLI and the enclave SDKs.

It speaks KMS's JSON 1.1 protocol (``POST /``, ``X-Amz-Target:
TrentService.<Operation>``, ``application/x-amz-json-1.1``), so an unchanged
program reaches it with ``endpoint_url``. Operations: CreateKey, DescribeKey,
ListKeys, CreateAlias, ListAliases, PutKeyPolicy, GetKeyPolicy, EnableKey,
DisableKey, ScheduleKeyDeletion, Encrypt, Decrypt, ReEncrypt, GenerateDataKey,
GenerateDataKeyWithoutPlaintext and GenerateRandom, with AWS's member names,
types and limits (plaintext 1 to 4096 bytes, ciphertext up to 6144, data keys
and random bytes 1 to 1024, key policies up to 32 KB).

**Recipient.** Decrypt, GenerateDataKey and GenerateRandom take
``Recipient={"AttestationDocument": ..., "KeyEncryptionAlgorithm":
"RSAES_OAEP_SHA_256"}`` as KMS does: the document is verified with
:func:`nitro_attest.verify` against the configured roots (the AWS root unless
told otherwise; a :class:`~nitro_attest.testing.TestEnclave`'s for tests),
the key policy is evaluated with :func:`nitro_attest.kms.evaluate` with the
document's ``kms:RecipientAttestation:*`` keys, and the answer carries
``CiphertextForRecipient`` (:func:`nitro_attest.recipient.seal` to the
document's public key) and no ``Plaintext``. Like KMS, the document may come
from a debug-mode enclave and may be of any age its certificates allow.

**Key policies** are evaluated on every request that names a key, for the
action ``kms:<Operation>`` and the caller's principal. There is no IAM: a
statement naming an account (``arn:aws:iam::ACCOUNT:root``) covers that
account's root principal only, and a condition this library cannot evaluate
never allows (see :mod:`nitro_attest.kms`). A refusal is
``AccessDeniedException`` with KMS's message; which statement and condition
decided is written to the audit log, never into the answer. PutKeyPolicy
(and CreateKey with a ``Policy``) warns, on stderr and in the audit log, when
the policy lets a principal Decrypt, or ReEncryptFrom (which moves the
ciphertext to another key), without any attestation condition and no Deny
that applies to a request without one closes the gap.

**Errors** are KMS's: HTTP 400 with ``{"__type": ..., "message": ...}``
(:data:`ERROR_TYPES`), so boto3 raises the ``ClientError`` a program written
for AWS expects. Bodies over :data:`MAX_BODY` are refused before they are
read, malformed JSON is ``SerializationException``, an unknown target is
``UnknownOperationException``.

**Authentication.** With credentials (access key id -> secret key and
principal ARN), each request's SigV4 signature is recomputed with botocore's
signer and compared; the principal is the one key policies see. Without, any
signature is accepted, every request is made by ``principal`` (default the
account's root), the server binds only loopback addresses and answers only
requests whose ``Host`` names one (``127.0.0.0/8``, ``::1`` or ``localhost``):
a web page whose name an attacker re-points at 127.0.0.1 (DNS rebinding) is
refused. With credentials, an ``X-Amz-Content-SHA256`` header must be the
SHA-256 of the body (``UNSIGNED-PAYLOAD`` is refused), so that the signature
always covers the body.

**State** is in SQLite (``db``, default in memory): a file is created 0600,
runs in WAL mode and survives a restart. Ciphertext blobs are AES-256-GCM
under the key's material with the key id and the EncryptionContext as
associated data, so a tampered blob, a blob of another key or another context
is ``InvalidCiphertextException``.

The HTTP server is werkzeug's threaded WSGI server: a maintained, pure-Python
server that runs inside a test's process (:class:`LocalKms`) as well as from
``nitro-attest kms serve``, binds port 0 and stops on request. It is meant
for a laptop and CI, not for production traffic.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import re
import socket
import sys
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import Any, TextIO

from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.credentials import Credentials  # type: ignore[import-untyped]
from cryptography import x509
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Response

from .._verify import trusted_roots
from ..errors import ConfigurationError
from ._server_operations import ERROR_TYPES, KmsError, Operations, Settings
from ._server_store import Store

__all__ = [
    "DEFAULT_ACCOUNT",
    "DEFAULT_PORT",
    "DEFAULT_REGION",
    "ERROR_TYPES",
    "MAX_BODY",
    "Credential",
    "KmsServer",
    "LocalKms",
    "load_credentials",
]

#: The account in key ARNs unless another is configured (the one AWS's and moto's examples use).
DEFAULT_ACCOUNT = "123456789012"
#: The region in key ARNs and SigV4 scopes unless another is configured.
DEFAULT_REGION = "us-east-1"
#: The port of ``nitro-attest kms serve`` unless ``--port`` says otherwise.
DEFAULT_PORT = 4599
#: The largest request body read, in bytes: a 256 KiB attestation document in base64 fits, 1 MiB does not.
MAX_BODY = 512 * 1024

_JSON_TYPE = "application/x-amz-json-1.1"
_TARGET_PREFIX = "TrentService."
# A refused body this size or smaller is read and dropped, so that the client reads the answer
# instead of a connection reset; a larger one is answered at once and the connection closed.
_DRAIN_LIMIT = 8 * 1024 * 1024
_DRAIN_CHUNK = 64 * 1024
_SOCKET_TIMEOUT = 30  # seconds a connection may stall mid-request before it is dropped
_SIGNATURE_SKEW = timedelta(minutes=15)  # AWS's window for X-Amz-Date
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/,\s]+)/(?P<date>[0-9]{8})/(?P<region>[^/,\s]+)/(?P<service>[^/,\s]+)"
    r"/aws4_request,\s*SignedHeaders=(?P<headers>[a-z0-9;-]+),\s*Signature=(?P<signature>[0-9a-f]{64})"
)
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_MAX_CREDENTIALS_FILE = 1024 * 1024
_CONTENT_LENGTH = re.compile(r"[0-9]{1,12}")  # ASCII digits only: str.isdigit also takes "¹"
_PORT = re.compile(r"(:[0-9]{1,5})?")
_ACCOUNT = re.compile(r"[0-9]{12}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]")


@dataclass(frozen=True)
class Credential:
    """An access key the server accepts: its secret, and the principal ARN its requests are made by."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    principal: str


def load_credentials(path: str | os.PathLike[str]) -> tuple[Credential, ...]:
    """The credentials in a JSON file: ``{"ACCESS_KEY_ID": {"secret_access_key": ..., "principal": ARN}, ...}``.

    :raises ~nitro_attest.ConfigurationError: unreadable, not that shape, or empty.
    """
    try:
        with open(path, "rb") as stream:
            data = stream.read(_MAX_CREDENTIALS_FILE + 1)
    except OSError as error:
        raise ConfigurationError(f"cannot read credentials {path}: {error.strerror or error}") from None
    if len(data) > _MAX_CREDENTIALS_FILE:
        raise ConfigurationError(f"credentials {path}: over {_MAX_CREDENTIALS_FILE} bytes")
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ConfigurationError(f"credentials {path}: not JSON") from None
    shape = 'an object {"ACCESS_KEY_ID": {"secret_access_key": "...", "principal": "arn:aws:..."}}'
    if not isinstance(raw, dict) or not raw:
        raise ConfigurationError(f"credentials {path}: must be {shape}")
    credentials = []
    for key_id, entry in raw.items():
        secret = entry.get("secret_access_key") if isinstance(entry, dict) else None
        principal = entry.get("principal") if isinstance(entry, dict) else None
        if not key_id or not isinstance(secret, str) or not secret or not isinstance(principal, str):
            raise ConfigurationError(f"credentials {path}: {key_id!r} must be {shape}")
        if not principal.startswith("arn:"):
            raise ConfigurationError(f"credentials {path}: {key_id!r}: principal {principal!r} is not an ARN")
        credentials.append(Credential(key_id, secret, principal))
    return tuple(credentials)


def _is_loopback(host: str) -> bool:
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except socket.gaierror:
        return False
    return bool(addresses) and all(ipaddress.ip_address(address.split("%")[0]).is_loopback for address in addresses)


def _is_loopback_host_header(value: str) -> bool:
    """True when a ``Host`` header names a loopback literal or ``localhost``, with or without a port.

    Never resolved: under DNS rebinding the attacker's name does resolve to 127.0.0.1.
    """
    if value.startswith("["):
        name, _, port = value[1:].partition("]")
    elif value.count(":") == 1:
        name, _, rest = value.partition(":")
        port = ":" + rest
    else:
        name, port = value, ""  # a name, or a bare IPv6 literal such as ::1
    if not _PORT.fullmatch(port):
        return False
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _checked_roots(roots: Sequence[x509.Certificate] | None) -> tuple[x509.Certificate, ...] | None:
    """``roots`` as a tuple; refused when empty, which no document could ever chain to."""
    if roots is None:
        return None
    try:
        return tuple(trusted_roots(roots))
    except ValueError as error:
        raise ConfigurationError(str(error)) from None


class _AuditLog:
    """JSON lines, one per request and one per warning, to a file (mode 0600) or nowhere."""

    def __init__(self, path: str | os.PathLike[str] | None, warnings: TextIO | None) -> None:
        self._lock = threading.Lock()
        self._warnings = warnings
        self._stream: TextIO | None = None
        if path is not None:
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            except OSError as error:
                raise ConfigurationError(f"cannot open the audit log {path}: {error.strerror or error}") from None
            self._stream = os.fdopen(descriptor, "a", encoding="utf-8")

    def write(self, record: Mapping[str, Any]) -> None:
        if self._stream is None:
            return
        line = json.dumps({"time": datetime.now(timezone.utc).isoformat(), **record}, default=str)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    def warn(self, message: str, details: Mapping[str, Any]) -> None:
        # Resolved when written, so that a test capturing sys.stderr sees the warning.
        stream = self._warnings if self._warnings is not None else sys.stderr
        with self._lock:
            print(f"warning: {message}", file=stream, flush=True)
        self.write({"event": "warning", "message": message, **details})

    def close(self) -> None:
        with self._lock:
            if self._stream is not None:
                self._stream.close()
                self._stream = None


class _RequestHandler(WSGIRequestHandler):
    # A stalled client holds its thread this long at most.
    timeout = _SOCKET_TIMEOUT

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Not logged: the audit log says what each request did."""


def _error(type_: str, message: str, *, close: bool = False) -> Response:
    response = Response(json.dumps({"__type": type_, "message": message}), status=400, content_type=_JSON_TYPE)
    if close:
        response.headers["Connection"] = "close"
    return response


def _headers(environ: Mapping[str, Any]) -> dict[str, str]:
    headers = {name[5:].replace("_", "-").lower(): value for name, value in environ.items() if name.startswith("HTTP_")}
    for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(name):
            headers[name.replace("_", "-").lower()] = environ[name]
    return headers


class KmsServer:
    """The local KMS on ``host:port`` (``port=0``: a free one); :meth:`serve_forever` runs it until :meth:`shutdown`.

    ``roots``: the certificates Recipient documents must chain to (None: the
    AWS root). ``credentials``: the access keys whose SigV4 signatures are
    checked; without them any signature is accepted, requests are made by
    ``principal`` (default ``arn:aws:iam::ACCOUNT:root``) and ``host`` must be
    a loopback address. ``db``: the SQLite file (None: in memory).
    ``audit_log``: a JSON-lines file. ``warnings``: where warnings are
    printed (None: stderr).

    :raises ~nitro_attest.ConfigurationError: a non-loopback ``host`` without
        credentials, an account or region of the wrong shape, empty
        ``roots``, an unusable database, audit log or address.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        db: str | os.PathLike[str] | None = None,
        roots: Sequence[x509.Certificate] | None = None,
        credentials: Iterable[Credential] = (),
        audit_log: str | os.PathLike[str] | None = None,
        account: str = DEFAULT_ACCOUNT,
        region: str = DEFAULT_REGION,
        principal: str | None = None,
        warnings: TextIO | None = None,
    ) -> None:
        if not _ACCOUNT.fullmatch(account):
            raise ConfigurationError(f"account must be 12 digits, not {account!r}")
        if not _REGION.fullmatch(region):
            raise ConfigurationError(f"region must look like us-east-1, not {region!r}")
        roots_tuple = _checked_roots(roots)
        self._credentials = {credential.access_key_id: credential for credential in credentials}
        if not self._credentials and not _is_loopback(host):
            raise ConfigurationError(
                f"refusing to serve on {host} without credentials: anyone who reaches it could use every key; "
                "give credentials (SigV4 is then checked) or bind a loopback address such as 127.0.0.1"
            )
        if principal is not None and not principal.startswith("arn:"):
            raise ConfigurationError(f"principal must be an ARN, not {principal!r}")
        self._principal = principal or f"arn:aws:iam::{account}:root"
        self._region = region
        self._audit = _AuditLog(audit_log, warnings)
        try:
            self._store = Store(db, account=account, region=region)
        except ConfigurationError:
            self._audit.close()
            raise
        self._operations = Operations(self._store, Settings(account, region, roots_tuple), self._audit.warn)
        try:
            # Bound here, not by werkzeug, which answers a busy port with sys.exit.
            family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
            with socket.create_server((host, port), family=family) as listener:
                self._server: BaseWSGIServer = make_server(
                    host, port, self._application, threaded=True, request_handler=_RequestHandler, fd=listener.fileno()
                )
        except OSError as error:  # socket.gaierror included
            self._store.close()
            self._audit.close()
            raise ConfigurationError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None

    @property
    def host(self) -> str:
        return str(self._server.host)

    @property
    def port(self) -> int:
        """The port listened on (the one picked when ``port=0``)."""
        return int(self._server.port)

    @property
    def endpoint_url(self) -> str:
        """``http://HOST:PORT``: what to give boto3's and the AWS CLI's ``endpoint_url``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def notes(self) -> tuple[str, ...]:
        """What the server says when it starts: how requests are authenticated."""
        if self._credentials:
            return (f"SigV4 signatures checked for {len(self._credentials)} access key(s), region {self._region}",)
        return (
            f"no credentials: any signature is accepted and every request is made by {self._principal}; loopback only",
        )

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def shutdown(self) -> None:
        """Stops :meth:`serve_forever` (from another thread) and releases the port, the database and the log."""
        self._server.shutdown()
        self.close()

    def close(self) -> None:
        self._server.server_close()
        self._store.close()
        self._audit.close()

    # ------------------------------------------------------------------ one request

    def _application(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request_id = str(uuid.uuid4())
        # "error" until an answer is made: a request whose handling raised is still in the audit log.
        record: dict[str, Any] = {"request_id": request_id, "outcome": "error"}
        try:
            response = self._respond(environ, record)
        finally:
            self._audit.write(record)
        response.headers["x-amzn-RequestId"] = request_id
        result: Iterable[bytes] = response(environ, start_response)
        return result

    def _respond(self, environ: dict[str, Any], record: dict[str, Any]) -> Response:
        body = self._body(environ)
        if isinstance(body, Response):
            record["outcome"] = "ValidationException"
            return body
        headers = _headers(environ)
        try:
            principal = self._authenticate(environ, headers, body)
            record["principal"] = principal
            operation = self._operation(environ, headers)
            record["operation"] = operation
            request = _json_body(body)
            answer = self._operations.call(operation, request, principal, record)
        except KmsError as error:
            record["outcome"] = error.type
            record["message"] = error.message
            return _error(error.type, error.message)
        record["outcome"] = "ok"
        return Response(json.dumps(answer), status=200, content_type=_JSON_TYPE)

    def _body(self, environ: dict[str, Any]) -> bytes | Response:
        """The request body, read only when it is at most :data:`MAX_BODY` bytes; else the answer refusing it."""
        stream = environ["wsgi.input"]
        length_text = environ.get("CONTENT_LENGTH") or ""
        if not length_text:
            return _chunked_body(stream) if environ.get("wsgi.input_terminated") else b""
        if not _CONTENT_LENGTH.fullmatch(length_text):
            return _error("ValidationException", "Content-Length is not a number", close=True)
        length = int(length_text)
        if length > MAX_BODY:
            if length <= _DRAIN_LIMIT:
                while length > 0:
                    chunk = stream.read(min(_DRAIN_CHUNK, length))
                    if not chunk:
                        break
                    length -= len(chunk)
            return _error(
                "ValidationException", f"the request body is {length_text} bytes, over {MAX_BODY}", close=True
            )
        data: bytes = stream.read(length)
        return data

    def _operation(self, environ: Mapping[str, Any], headers: Mapping[str, str]) -> str:
        target = headers.get("x-amz-target", "")
        operation = target.removeprefix(_TARGET_PREFIX)
        if environ.get("REQUEST_METHOD") != "POST" or not target.startswith(_TARGET_PREFIX):
            raise KmsError("UnknownOperationException", "requests are POST / with X-Amz-Target: TrentService.<Op>")
        if operation not in self._operations.names:
            raise KmsError("UnknownOperationException", f"unknown or unsupported operation {operation!r}")
        return operation

    def _authenticate(self, environ: Mapping[str, Any], headers: Mapping[str, str], body: bytes) -> str:
        """The principal the request is made by; with credentials, only once its SigV4 signature is right."""
        if not self._credentials:
            host = headers.get("host")
            if host is not None and not _is_loopback_host_header(host):
                raise KmsError(
                    "UnrecognizedClientException",
                    f"Host {host!r} is not a loopback address or localhost: without credentials this local KMS "
                    "answers only requests for loopback (a guard against DNS rebinding)",
                )
            return self._principal
        authorization = headers.get("authorization")
        if authorization is None:
            raise KmsError("MissingAuthenticationTokenException", "Missing Authentication Token")
        match = _AUTHORIZATION.fullmatch(authorization.strip())
        if match is None:
            raise KmsError("IncompleteSignatureException", "the Authorization header is not an AWS4-HMAC-SHA256 one")
        credential = self._credentials.get(match["key"])
        if credential is None:
            raise KmsError("UnrecognizedClientException", "The security token included in the request is invalid.")
        amz_date = headers.get("x-amz-date", "")
        try:
            signed_at = datetime.strptime(amz_date, _AMZ_DATE).replace(tzinfo=timezone.utc)
        except ValueError:
            raise KmsError("IncompleteSignatureException", "X-Amz-Date is missing or not YYYYMMDDTHHMMSSZ") from None
        if abs(datetime.now(timezone.utc) - signed_at) > _SIGNATURE_SKEW:
            raise KmsError("InvalidSignatureException", f"Signature expired: {amz_date} is more than 15 minutes away")
        if (match["date"], match["region"], match["service"]) != (amz_date[:8], self._region, "kms"):
            raise KmsError(
                "InvalidSignatureException",
                f"Credential should be scoped to {amz_date[:8]}/{self._region}/kms, not "
                f"{match['date']}/{match['region']}/{match['service']}",
            )
        content_hash = headers.get("x-amz-content-sha256")
        if content_hash is not None and content_hash != hashlib.sha256(body).hexdigest():  # not a secret
            # botocore's canonical request takes this header as the payload's hash unchecked: unchecked, a body
            # swapped in flight (or UNSIGNED-PAYLOAD) would pass under a signature that never covered it.
            raise KmsError("InvalidSignatureException", "X-Amz-Content-SHA256 is not the SHA-256 of the request body")
        signed_names = match["headers"].split(";")
        if "host" not in signed_names or any(name not in headers for name in signed_names):
            raise KmsError("IncompleteSignatureException", "a signed header is missing from the request (or host)")
        query = environ.get("QUERY_STRING") or ""
        url = f"http://{headers['host']}{environ.get('PATH_INFO') or '/'}" + (f"?{query}" if query else "")
        request = AWSRequest(
            method=environ.get("REQUEST_METHOD", ""),
            url=url,
            data=body,
            headers={name: headers[name] for name in signed_names},
        )
        request.context["timestamp"] = amz_date
        signer = SigV4Auth(Credentials(credential.access_key_id, credential.secret_access_key), "kms", self._region)
        canonical = signer.canonical_request(request)
        expected: str = signer.signature(signer.string_to_sign(request, canonical), request)
        if signer.signed_headers(signer.headers_to_sign(request)) != match["headers"] or not _same(
            expected, match["signature"]
        ):
            raise KmsError(
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided.",
            )
        return credential.principal


def _chunked_body(stream: Any) -> bytes | Response:
    try:
        data: bytes = stream.read(MAX_BODY + 1)  # chunked: the server ends the stream
    except OSError:  # werkzeug's dechunker: a chunk size that is not hex, or a stream cut short
        return _error("ValidationException", "the chunked request body is malformed", close=True)
    if len(data) > MAX_BODY:
        return _error("ValidationException", f"the request body is over {MAX_BODY} bytes", close=True)
    return data


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode("ascii"), given.encode("ascii"))


def _json_body(body: bytes) -> Mapping[str, Any]:
    if not body.strip():
        return {}
    try:
        value = json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, NaN; or nesting too deep
        raise KmsError("SerializationException", "the request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise KmsError("SerializationException", "the request body must be a JSON object")
    try:
        # JSON's \ud800 escapes decode to lone surrogates, which no UTF-8 consumer (SQLite, a hash) can take.
        # No deeper than json.loads went, which counts nesting as json.dumps does: no RecursionError here.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise KmsError("SerializationException", "the request body holds a lone surrogate (\\ud800-\\udfff)") from None
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class LocalKms:
    """A :class:`KmsServer` on a free loopback port, served by a thread of this process, as a context manager.

    >>> with LocalKms(roots=enclave.roots) as kms:  # doctest: +SKIP
    ...     client = kms.client()
    ...     key_id = client.create_key()["KeyMetadata"]["KeyId"]

    Arguments are :class:`KmsServer`'s (``port`` defaults to 0, a free port).
    """

    def __init__(
        self,
        *,
        roots: Sequence[x509.Certificate] | None = None,
        db: str | os.PathLike[str] | None = None,
        credentials: Iterable[Credential] = (),
        audit_log: str | os.PathLike[str] | None = None,
        account: str = DEFAULT_ACCOUNT,
        region: str = DEFAULT_REGION,
        principal: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        warnings: TextIO | None = None,
    ) -> None:
        self._options: dict[str, Any] = {
            "roots": _checked_roots(roots),
            "db": db,
            "audit_log": audit_log,
            "account": account,
            "region": region,
            "principal": principal,
            "host": host,
            "port": port,
            "warnings": warnings,
        }
        self._credentials = tuple(credentials)
        self._server: KmsServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LocalKms:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("this LocalKms is already running")
        self._server = KmsServer(credentials=self._credentials, **self._options)
        self._thread = threading.Thread(target=self._server.serve_forever, name="nitro_attest LocalKms", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.shutdown()
        self._thread.join()
        self._server, self._thread = None, None

    @property
    def region(self) -> str:
        region: str = self._options["region"]
        return region

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT`` while running."""
        if self._server is None:
            raise RuntimeError("this LocalKms is not running: use it in a with block")
        return self._server.endpoint_url

    def client(self, *, access_key_id: str | None = None, **options: Any) -> Any:
        """A boto3 KMS client for this server, signing with ``access_key_id``'s credential (default the first).

        Without server credentials it signs with a placeholder key, which the
        server accepts. ``options`` go to ``boto3.client``.
        """
        import boto3  # type: ignore[import-untyped]  # noqa: PLC0415 -- only LocalKms users need boto3

        if self._credentials:
            chosen = next(
                (c for c in self._credentials if access_key_id in (None, c.access_key_id)),
                None,
            )
            if chosen is None:
                raise ConfigurationError(f"no credential with access key id {access_key_id!r}")
            key_id, secret = chosen.access_key_id, chosen.secret_access_key
        else:
            key_id, secret = "nitro-attest-local", "nitro-attest-local"
        return boto3.client(
            "kms",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            **options,
        )
