"""The local file: one JSON object holding an object's S3 metadata and its body, so that it maps onto PutObject."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping

from ._envelope import MAX_BODY
from ._errors import BootSecretsError
from ._json import unique_keys

__all__ = ["FILE_FORMAT", "MAX_FILE", "dumps_file", "loads_file"]

#: The ``format`` member of a local file.
FILE_FORMAT = "nitro-attest/boot-secrets/1"
#: The largest local file read: the largest body in base64 and the metadata.
MAX_FILE = MAX_BODY * 4 // 3 + 64 * 1024
_MAX_METADATA = 64


def dumps_file(metadata: Mapping[str, str], body: bytes) -> bytes:
    """``{"format": ..., "metadata": {...}, "body_base64": ...}`` as UTF-8 JSON, one key per line at the top."""
    document = {"format": FILE_FORMAT, "metadata": dict(metadata), "body_base64": base64.b64encode(body).decode()}
    return (json.dumps(document, indent=1) + "\n").encode("utf-8")


def loads_file(data: bytes) -> tuple[dict[str, str], bytes]:
    """The metadata and body of a local file.

    :raises BootSecretsError: ``malformed``: over :data:`MAX_FILE`, not that JSON object, bad base64.
    """
    if len(data) > MAX_FILE:
        raise BootSecretsError("malformed", f"the file is {len(data)} bytes, over {MAX_FILE}")
    try:
        document = json.loads(data.decode("utf-8"), object_pairs_hook=unique_keys)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, a repeated key
        raise BootSecretsError(
            "malformed", "not a boot-secrets file: not a JSON object without repeated keys"
        ) from None
    if not isinstance(document, dict) or document.get("format") != FILE_FORMAT:
        raise BootSecretsError("malformed", f'not a boot-secrets file: no "format": "{FILE_FORMAT}"')
    if set(document) != {"format", "metadata", "body_base64"}:
        raise BootSecretsError("malformed", "a boot-secrets file has exactly format, metadata and body_base64")
    metadata, body = document["metadata"], document["body_base64"]
    if not isinstance(metadata, dict) or len(metadata) > _MAX_METADATA:
        raise BootSecretsError("malformed", f"metadata must be an object of at most {_MAX_METADATA} strings")
    if not all(isinstance(key, str) and isinstance(value, str) for key, value in metadata.items()):
        raise BootSecretsError("malformed", "metadata must map strings to strings")
    if not isinstance(body, str):
        raise BootSecretsError("malformed", "body_base64 must be a base64 string")
    try:
        return metadata, base64.b64decode(body.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise BootSecretsError("malformed", "body_base64 is not base64") from None
