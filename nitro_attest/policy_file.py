"""Policies in files: a small, versioned format for :class:`~nitro_attest.Policy`, in JSON or TOML.

A policy file states which enclaves are acceptable, so it is read strictly:
an unknown key, a value of the wrong type, a malformed hex digest or a
missing version is a :class:`PolicyFileError` naming the file and the key
(``any_of[1].pcrs.0``), never a silently weaker policy.

The format (the same keys in JSON and TOML)::

    nitro_attest_policy = 1           # required: the format version
    pcrs = { "0" = "<96 hex>", "1" = ["<96 hex>", "<96 hex>"] }
                                      # PCR index (a string "0".."31") -> one allowed value or a list of them
    image_sha384 = "<96 hex>"         # optional: PCR0 under its KMS name (a string or a list)
    any_enclave = true                # instead of pcrs/image_sha384: accept any measurements
    module_id = "i-*"                 # optional: IAM StringLike pattern (* any run, ? one character)
    nonce = "<hex>"                   # optional: the document's nonce must equal these bytes
    user_data = "<hex>"               # optional
    public_key = "<hex>"              # optional
    max_age_seconds = 300             # optional: a number >= 0 (to the microsecond)
    allow_debug = false               # optional: accept debug-mode enclaves (PCR0 all zero)
    any_of = [ {<policy table>}, ... ]  # alternatives (Policy.any_of); excludes every key above
                                        # except nitro_attest_policy

Each PCR value is 96 hex digits (SHA-384), either case; a list allows any of
its values. ``nonce``, ``user_data`` and ``public_key`` are hex of at most
1024 bytes (the document's limit). A policy table must pin at least one PCR
(``pcrs`` or ``image_sha384``) or say ``any_enclave = true``: an empty file
is an error, not a wildcard. The alternatives of ``any_of`` are policy tables
without ``nitro_attest_policy`` and without a nested ``any_of``.

JSON::

    {
      "nitro_attest_policy": 1,
      "pcrs": {
        "0": "<96 hex digits>",
        "8": "<96 hex digits>"
      },
      "max_age_seconds": 300
    }

TOML (Python 3.11 or later: it uses :mod:`tomllib`)::

    nitro_attest_policy = 1
    max_age_seconds = 300

    [pcrs]
    0 = "<96 hex digits>"
    8 = "<96 hex digits>"

:func:`load_policy` also reads an AWS KMS key policy (a ``.json`` file with a
top-level ``Statement``), returning :class:`nitro_attest.kms.KeyPolicy` for
:func:`nitro_attest.kms.evaluate`. :func:`dumps_policy` writes the format,
and ``loads_policy(dumps_policy(p), format=...) == p``.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal, NoReturn, TypeAlias

from .document import MAX_PCR_INDEX, PCR_SIZE
from .errors import ConfigurationError
from .kms import KeyPolicy, KmsPolicyError, parse_key_policy
from .policy import Policy

__all__ = [
    "FORMAT_VERSION",
    "MAX_POLICY_FILE_SIZE",
    "PolicyFileError",
    "PolicyFormat",
    "dumps_policy",
    "load_policy",
    "loads_policy",
]

#: The ``nitro_attest_policy`` version this module reads and writes.
FORMAT_VERSION = 1

#: Largest policy file read (bytes; characters for ``str``). Real policies are a few KiB;
#: the cap keeps a wrong path (a disk image, /dev/zero) from being read into memory.
MAX_POLICY_FILE_SIZE = 1024 * 1024

PolicyFormat: TypeAlias = Literal["json", "toml"]

_VERSION_KEY = "nitro_attest_policy"
_ANY_OF = "any_of"
# The keys of one policy table, in the order dumps_policy writes them.
_POLICY_KEYS = (
    "any_enclave",
    "pcrs",
    "image_sha384",
    "module_id",
    "nonce",
    "user_data",
    "public_key",
    "max_age_seconds",
    "allow_debug",
)
_TOP_KEYS = (_VERSION_KEY, *_POLICY_KEYS, _ANY_OF)
_BYTES_KEYS = ("nonce", "user_data", "public_key")
# A document carries at most 1024 bytes in each of these: a longer value could never match.
_MAX_FIELD_BYTES = 1024
_PCR_INDEX = re.compile(r"0|[1-9][0-9]?")
_HEX = re.compile(r"[0-9a-fA-F]*")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
# Whole seconds above timedelta's range (computed exactly: total_seconds() is a float).
_MAX_AGE_LIMIT = timedelta.max // timedelta(seconds=1) + 1


class PolicyFileError(ConfigurationError):
    """A policy file that cannot be read as a policy.

    ``str(error)`` is ``"<source>: <where>: <problem>"``: ``source`` is the
    file name (or ``<string>``), ``where`` the key path (``key``, e.g.
    ``any_of[1].pcrs.0``) or, for a syntax error, ``line N, column M``
    (``line``, ``column``); ``problem`` says what is wrong and what is expected.
    """

    def __init__(
        self,
        source: str,
        problem: str,
        *,
        key: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        where = key if key is not None else f"line {line}, column {column}" if line is not None else None
        super().__init__(f"{source}: {where}: {problem}" if where else f"{source}: {problem}")
        self.source = source
        self.problem = problem
        self.key = key
        self.line = line
        self.column = column

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # The default pickling passes only the message back to __init__: keep errors picklable
        # (they cross process pools like the library's other errors).
        rebuild = functools.partial(type(self), key=self.key, line=self.line, column=self.column)
        return (rebuild, (self.source, self.problem))


class _Invalid(Exception):
    """A problem at a key path, before the source name is known to the raiser."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(problem)
        self.key = key
        self.problem = problem


# --------------------------------------------------------------------------- reading


def loads_policy(text: str | bytes, *, format: PolicyFormat, source: str = "<string>") -> Policy:
    """The :class:`Policy` that ``text`` (a policy in ``format``) states.

    ``source`` names the text in error messages (e.g. its file name). Raises
    :class:`PolicyFileError` for text over :data:`MAX_POLICY_FILE_SIZE`,
    syntax errors (with line and column), duplicate JSON keys, unknown keys,
    wrong types or values, and an AWS KMS key policy (read those with
    :func:`load_policy` or :func:`nitro_attest.kms.parse_key_policy`).
    """
    table = _parse(text, format, source)
    if format == "json" and _is_key_policy(table):
        raise PolicyFileError(
            source,
            "this is an AWS KMS key policy (it has Statement/Version), not a nitro_attest policy: "
            "read it with load_policy() or nitro_attest.kms.parse_key_policy()",
        )
    return _build(table, source)


def load_policy(path: str | os.PathLike[str]) -> Policy | KeyPolicy:
    """The policy in the file at ``path``: a :class:`Policy`, or a KMS :class:`~nitro_attest.kms.KeyPolicy`.

    The format follows the extension: ``.json`` or ``.toml``. A JSON object
    with ``Statement`` or ``Version`` and no ``nitro_attest_policy`` is an AWS
    KMS key policy: it is validated by :func:`nitro_attest.kms.parse_key_policy`
    (whose :class:`~nitro_attest.kms.KmsPolicyError` then names the file) and
    returned for :func:`nitro_attest.kms.evaluate`.

    Raises :class:`PolicyFileError` as :func:`loads_policy` does and for an
    unknown extension, and ``OSError`` when the file cannot be read.
    """
    source = os.fspath(path)
    extension = os.path.splitext(source)[1].lower()
    if extension not in (".json", ".toml"):
        raise PolicyFileError(source, "unknown policy file type: expected a .json or .toml file name")
    with open(path, "rb") as stream:
        data = stream.read(MAX_POLICY_FILE_SIZE + 1)
    fmt: PolicyFormat = "json" if extension == ".json" else "toml"
    table = _parse(data, fmt, source)
    if fmt == "json" and _is_key_policy(table):
        try:
            # The text, not the parsed object: KMS's own limits (32 KB, characters) apply to the text.
            return parse_key_policy(data)
        except KmsPolicyError as error:
            raise KmsPolicyError(f"{source}: {error}") from error
    return _build(table, source)


def _is_key_policy(table: Mapping[str, Any]) -> bool:
    return _VERSION_KEY not in table and ("Statement" in table or "Version" in table)


def _parse(text: str | bytes, fmt: PolicyFormat, source: str) -> Mapping[str, Any]:
    """The top-level table of ``text``, syntax checked; values not yet validated."""
    if len(text) > MAX_POLICY_FILE_SIZE:
        raise PolicyFileError(source, f"larger than {MAX_POLICY_FILE_SIZE >> 20} MiB: not a policy file")
    if isinstance(text, bytes):
        try:
            # utf-8-sig: editors on Windows start files with a byte order mark.
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise PolicyFileError(source, f"not UTF-8 text (byte {exc.start})") from None
    else:
        text = text.removeprefix("\ufeff")
    if fmt == "json":
        table = _parse_json(text, source)
    elif fmt == "toml":
        table = _parse_toml(text, source)
    else:
        raise ValueError(f"format must be 'json' or 'toml', not {fmt!r}")
    if not isinstance(table, Mapping):
        raise PolicyFileError(source, f"expected a JSON object at the top level, got {_type_name(table)}")
    return table


class _JsonObject(dict[str, Any]):
    """A JSON object that remembers the keys it repeated."""

    repeated: tuple[str, ...] = ()


def _json_object(pairs: list[tuple[str, Any]]) -> _JsonObject:
    # JSON parsers disagree on repeated keys (first or last wins), so a repeated
    # key is refused. It is recorded here and reported when the object is
    # validated, where the key path is known.
    table = _JsonObject(pairs)
    if len(table) != len(pairs):
        seen: set[str] = set()
        repeated = []
        for key, _ in pairs:
            if key in seen:
                repeated.append(key)
            seen.add(key)
        table.repeated = tuple(repeated)
    return table


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _parse_json(text: str, source: str) -> Any:
    try:
        # Decimal keeps max_age_seconds exact (a float would round microseconds).
        return json.loads(text, object_pairs_hook=_json_object, parse_float=Decimal, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise PolicyFileError(source, f"not valid JSON: {exc.msg}", line=exc.lineno, column=exc.colno) from None
    except RecursionError:
        raise PolicyFileError(source, "not a policy: JSON nested too deeply") from None
    except ValueError as exc:  # NaN/Infinity, or an integer too long to convert
        raise PolicyFileError(source, f"not valid JSON: {exc}") from None


def _parse_toml(text: str, source: str) -> Any:
    try:
        # Imported by name: tomllib exists from Python 3.11, and the package supports 3.10.
        tomllib = importlib.import_module("tomllib")
    except ModuleNotFoundError:
        raise PolicyFileError(source, "TOML policies need Python 3.11 or later; use JSON") from None
    try:
        return tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        position = _TOML_POSITION.search(message)
        if position is None:  # e.g. "(at end of document)"
            raise PolicyFileError(source, f"not valid TOML: {message}") from None
        raise PolicyFileError(
            source,
            f"not valid TOML: {message[: position.start()]}",
            line=int(position.group(1)),
            column=int(position.group(2)),
        ) from None
    except RecursionError:
        raise PolicyFileError(source, "not a policy: TOML nested too deeply") from None


# --------------------------------------------------------------------------- validation


def _build(table: Mapping[str, Any], source: str) -> Policy:
    try:
        return _top_policy(table)
    except _Invalid as invalid:
        raise PolicyFileError(source, invalid.problem, key=invalid.key) from None


def _top_policy(table: Mapping[str, Any]) -> Policy:
    _check_keys(table, "", _TOP_KEYS)
    if _VERSION_KEY not in table:
        raise _Invalid(
            _VERSION_KEY,
            f"missing: a nitro_attest policy starts with {_VERSION_KEY} = {FORMAT_VERSION} (the format version)",
        )
    version = table[_VERSION_KEY]
    if type(version) is not int:
        raise _Invalid(_VERSION_KEY, f"expected the integer {FORMAT_VERSION}, got {_type_name(version)}")
    if version != FORMAT_VERSION:
        raise _Invalid(
            _VERSION_KEY,
            f"version {version} is not supported by this nitro_attest (it reads version {FORMAT_VERSION})",
        )
    if _ANY_OF not in table:
        return _policy(table, "")
    others = [key for key in _POLICY_KEYS if key in table]
    if others:
        raise _Invalid(
            others[0],
            f"cannot be combined with {_ANY_OF}: each alternative states its whole policy, so put it in each one",
        )
    alternatives = table[_ANY_OF]
    if not isinstance(alternatives, list):
        raise _Invalid(_ANY_OF, f"expected a list of policy tables, got {_type_name(alternatives)}")
    if not alternatives:
        raise _Invalid(_ANY_OF, "empty: list at least one policy table")
    policies = []
    for position, alternative in enumerate(alternatives):
        path = f"{_ANY_OF}[{position}]"
        if not isinstance(alternative, Mapping):
            raise _Invalid(path, f"expected a policy table, got {_type_name(alternative)}")
        for key, why in (
            (_VERSION_KEY, "the version is stated once, at the top level"),
            (_ANY_OF, "alternatives do not nest: list every alternative in the top-level any_of"),
        ):
            if key in alternative:
                raise _Invalid(_join(path, key), f"not allowed in an alternative: {why}")
        _check_keys(alternative, path, _POLICY_KEYS)
        policies.append(_policy(alternative, path))
    return Policy.any_of(*policies)


def _policy(table: Mapping[str, Any], path: str) -> Policy:
    """One policy table (keys already checked) as a Policy."""
    options: dict[str, Any] = {key: _bytes_value(table[key], _join(path, key)) for key in _BYTES_KEYS if key in table}
    if "module_id" in table:
        options["module_id"] = _module_id(table["module_id"], _join(path, "module_id"))
    if "max_age_seconds" in table:
        options["max_age"] = _max_age(table["max_age_seconds"], _join(path, "max_age_seconds"))
    if "allow_debug" in table:
        options["allow_debug"] = _bool(table["allow_debug"], _join(path, "allow_debug"))
    any_enclave = _bool(table["any_enclave"], _join(path, "any_enclave")) if "any_enclave" in table else False
    pcrs = _pcrs(table["pcrs"], _join(path, "pcrs")) if "pcrs" in table else None
    image = _pins(table["image_sha384"], _join(path, "image_sha384")) if "image_sha384" in table else None
    if any_enclave:
        pinned = [key for key in ("pcrs", "image_sha384") if key in table]
        if pinned:
            raise _Invalid(
                _join(path, "any_enclave"),
                f"cannot be combined with {pinned[0]}: any_enclave accepts every measurement; remove one of them",
            )
        return Policy.any_enclave(**options)
    if pcrs is None and image is None:
        raise _Invalid(
            _join(path, "pcrs"),
            "missing: pin at least one PCR (pcrs or image_sha384), or set any_enclave = true to accept "
            "any measurements",
        )
    if pcrs is not None and not pcrs and image is None:
        raise _Invalid(
            _join(path, "pcrs"),
            "empty: pin at least one PCR, or set any_enclave = true (and remove pcrs) to accept any measurements",
        )
    try:
        return Policy(pcrs, image_sha384=image, **options)
    except ValueError as exc:  # the one conflict left: image_sha384 and pcrs.0 allow no common value
        raise _Invalid(_join(path, "image_sha384"), str(exc)) from None


def _check_repeated(table: Mapping[str, Any], path: str) -> None:
    if isinstance(table, _JsonObject) and table.repeated:
        repeated = ", ".join(json.dumps(key) for key in table.repeated)
        raise _Invalid(path or "(top level)", f"repeated key {repeated}: each key may appear once")


def _check_keys(table: Mapping[str, Any], path: str, allowed: Sequence[str]) -> None:
    _check_repeated(table, path)
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"expected one of {', '.join(allowed)}"
            # A misspelt key must not be ignored: the constraint it meant would silently not apply.
            raise _Invalid(_join(path, key), f"unknown key: {hint}")


def _pcrs(value: Any, path: str) -> dict[int, frozenset[bytes]]:
    if not isinstance(value, Mapping):
        raise _Invalid(path, f"expected a table of PCR index -> hex value(s), got {_type_name(value)}")
    _check_repeated(value, path)
    pins: dict[int, frozenset[bytes]] = {}
    for key, allowed in value.items():
        where = _join(path, key)
        if not _PCR_INDEX.fullmatch(key) or int(key) > MAX_PCR_INDEX:
            raise _Invalid(where, f"not a PCR index: expected 0..{MAX_PCR_INDEX} (decimal, no leading zeros)")
        pins[int(key)] = _pins(allowed, where)
    return pins


def _pins(value: Any, path: str) -> frozenset[bytes]:
    """One hex digest or a non-empty list of them."""
    if isinstance(value, str):
        return frozenset({_digest(value, path)})
    if not isinstance(value, list):
        raise _Invalid(path, f"expected {2 * PCR_SIZE} hex digits or a list of them, got {_type_name(value)}")
    if not value:
        raise _Invalid(path, "empty list: it would reject every document; list at least one value")
    pins: set[bytes] = set()
    for position, item in enumerate(value):
        where = f"{path}[{position}]"
        if not isinstance(item, str):
            raise _Invalid(where, f"expected {2 * PCR_SIZE} hex digits, got {_type_name(item)}")
        digest = _digest(item, where)
        if digest in pins:
            # Most likely a copy meant to be edited into the other value.
            raise _Invalid(where, "listed twice (hex compares ignoring case)")
        pins.add(digest)
    return frozenset(pins)


def _digest(text: str, path: str) -> bytes:
    if len(text) != 2 * PCR_SIZE:
        raise _Invalid(path, f"expected {2 * PCR_SIZE} hex digits (a SHA-384 value), got {len(text)} characters")
    return _hex(text, path)


def _hex(text: str, path: str) -> bytes:
    if not _HEX.fullmatch(text):
        position = next(index for index, char in enumerate(text) if not _HEX.fullmatch(char))
        raise _Invalid(path, f"not hex: character {position + 1} is {text[position]!r}")
    if len(text) % 2:
        raise _Invalid(path, f"odd number of hex digits ({len(text)}): two digits per byte")
    return bytes.fromhex(text)


def _bytes_value(value: Any, path: str) -> bytes:
    if not isinstance(value, str):
        raise _Invalid(path, f"expected a hex string, got {_type_name(value)}")
    data = _hex(value, path)
    if len(data) > _MAX_FIELD_BYTES:
        raise _Invalid(
            path, f"{len(data)} bytes: a document carries at most {_MAX_FIELD_BYTES}, so it could never match"
        )
    return data


def _module_id(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise _Invalid(path, f"expected a non-empty pattern string, got {_type_name(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a JSON \ud800 escape: matches no module ID
        raise _Invalid(path, "not valid Unicode (a lone surrogate escape)") from None
    return value


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(path, f"expected true or false, got {_type_name(value)}")
    return value


def _max_age(value: Any, path: str) -> timedelta:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise _Invalid(path, f"expected a number of seconds >= 0, got {_type_name(value)}")
    if not Decimal(value).is_finite() or value < 0:
        raise _Invalid(path, f"expected a number of seconds >= 0, got {value}")
    if value >= _MAX_AGE_LIMIT:  # before the exact conversion below, which would build huge integers
        raise _Invalid(path, f"{value} seconds is more than a timedelta holds")
    # Exact integer arithmetic: Decimal multiplication would round to its context precision.
    _, digits, exponent = Decimal(value).as_tuple()
    assert isinstance(exponent, int)  # finite, checked above
    coefficient = int("".join(map(str, digits)))
    shift = exponent + 6  # to microseconds
    if shift >= 0:
        microseconds = coefficient * 10**shift
    else:
        microseconds, rest = divmod(coefficient, 10**-shift)
        if rest:
            raise _Invalid(path, f"{value} is finer than a microsecond")
    return timedelta(microseconds=microseconds)  # below the limit and whole microseconds: within timedelta.max


def _join(path: str, key: str) -> str:
    # Keys that are not plain words are quoted, so that "a.b" cannot pass for a nested key.
    shown = key if _BARE_KEY.fullmatch(key) else json.dumps(key)
    return f"{path}.{shown}" if path else shown


# What a parsed value is called in messages; bool before int, as True is an int.
_TYPE_NAMES: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (type(None), "null"),
    (bool, "a boolean"),
    (int, "an integer"),
    (Decimal, "a number with a fraction"),
    (str, "a string"),
    (list, "a list"),
    (Mapping, "a table (object)"),
    ((datetime, date, time), "a date or time"),
)


def _type_name(value: object) -> str:
    return next((name for kind, name in _TYPE_NAMES if isinstance(value, kind)), type(value).__name__)


# --------------------------------------------------------------------------- writing


class _Number(str):
    """A number literal written as is (exact seconds: no float rounding)."""

    __slots__ = ()


_Value: TypeAlias = "str | int | bool | _Number | list[str] | Mapping[str, _Value] | list[Mapping[str, _Value]]"


def dumps_policy(policy: Policy, *, format: PolicyFormat = "json") -> str:
    """``policy`` in the policy file format (``"json"`` or ``"toml"``), ending with a newline.

    PCR0 is written under ``pcrs`` (``image_sha384`` is read, never written).
    ``loads_policy(dumps_policy(policy, format=f), format=f) == policy``.
    """
    if not isinstance(policy, Policy):
        raise TypeError(f"dumps_policy takes a Policy, not {type(policy).__name__}")
    table: dict[str, _Value] = {_VERSION_KEY: FORMAT_VERSION}
    if policy.alternatives:
        alternatives: list[Mapping[str, _Value]] = [_table(alternative) for alternative in policy.alternatives]
        table[_ANY_OF] = alternatives
    else:
        table.update(_table(policy))
    if format == "json":
        return _json_text(table, "") + "\n"
    if format == "toml":
        return "\n".join(_toml_lines(table, None, array=False)) + "\n"
    raise ValueError(f"format must be 'json' or 'toml', not {format!r}")


def _table(policy: Policy) -> dict[str, _Value]:
    table: dict[str, _Value] = {}
    if not policy.pcrs:
        table["any_enclave"] = True
    else:
        pcrs: dict[str, _Value] = {}
        for index, allowed in policy.pcrs.items():
            values = sorted(pin.hex() for pin in allowed)
            pcrs[str(index)] = values[0] if len(values) == 1 else values
        table["pcrs"] = pcrs
    if policy.module_id is not None:
        table["module_id"] = policy.module_id
    for key in _BYTES_KEYS:
        value: bytes | None = getattr(policy, key)
        if value is not None:
            table[key] = value.hex()
    if policy.max_age is not None:
        table["max_age_seconds"] = _seconds_literal(policy.max_age)
    if policy.allow_debug:
        table["allow_debug"] = True
    return table


def _seconds_literal(age: timedelta) -> _Number:
    seconds, microseconds = divmod(age // timedelta(microseconds=1), 1_000_000)
    return _Number(str(seconds) if not microseconds else f"{seconds}.{microseconds:06d}".rstrip("0"))


def _json_text(value: _Value, indent: str) -> str:
    inner = indent + "  "
    if isinstance(value, _Number):
        return str(value)
    if isinstance(value, Mapping):
        items = [f"{inner}{json.dumps(key)}: {_json_text(item, inner)}" for key, item in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(value, list):
        items = [f"{inner}{_json_text(item, inner)}" for item in value]
        return "[\n" + ",\n".join(items) + f"\n{indent}]"
    return json.dumps(value)


def _toml_lines(table: Mapping[str, _Value], name: str | None, *, array: bool) -> list[str]:
    """``table`` as TOML: its plain values, then its sub-tables under ``[name.key]`` / ``[[name.key]]`` headers."""
    lines = [] if name is None else ["", f"[[{name}]]" if array else f"[{name}]"]
    nested: list[tuple[str, Mapping[str, _Value], bool]] = []
    for key, value in table.items():
        if isinstance(value, Mapping):
            nested.append((key, value, False))
        elif isinstance(value, list) and value and isinstance(value[0], Mapping):
            nested.extend((key, item, True) for item in value if isinstance(item, Mapping))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for key, value, is_array in nested:
        # Inside [[any_of]], [any_of.pcrs] is the sub-table of the alternative just opened.
        lines += _toml_lines(value, key if name is None else f"{name}.{key}", array=is_array)
    return lines


def _toml_value(value: _Value) -> str:
    if isinstance(value, _Number):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):  # of PCR values: one per line, as in the JSON
        return "[\n" + "".join(f"  {_toml_value(item)},\n" for item in value) + "]"
    raise TypeError(f"not a TOML scalar or array: {type(value).__name__}")


def _toml_string(text: str) -> str:
    # A TOML basic string: quote, backslash and control characters (DEL included, tab too
    # for simplicity) must be escaped; everything else is written as is.
    escaped = []
    for char in text:
        if char in '"\\':
            escaped.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\u{ord(char):04x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'
