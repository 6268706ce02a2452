"""The configuration a blob carries: environment variables and files, validated with bounds and named fields."""

from __future__ import annotations

import base64
import binascii
import functools
import json
import os
import posixpath
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ._errors import SecretsConfigError
from ._json import unique_keys

__all__ = [
    "FORMATS",
    "MAX_CONFIG",
    "MAX_ENV",
    "MAX_ENV_VALUE",
    "MAX_FILE",
    "MAX_FILES",
    "MAX_NAME",
    "MAX_PATH",
    "MAX_PATH_COMPONENT",
    "SecretFile",
    "SecretsConfig",
    "config_format",
    "parse_config",
]

#: The largest configuration, in bytes: as read (JSON, YAML, TOML) and as encrypted (canonical JSON).
MAX_CONFIG = 1024 * 1024
#: At most this many environment variables.
MAX_ENV = 256
#: The longest environment variable name.
MAX_NAME = 128
#: The longest environment variable value, in UTF-8 bytes.
MAX_ENV_VALUE = 64 * 1024
#: At most this many files.
MAX_FILES = 64
#: The longest file path, in UTF-8 bytes (Linux's PATH_MAX is 4096).
MAX_PATH = 1024
#: The longest component of a file path, in UTF-8 bytes (Linux's NAME_MAX).
MAX_PATH_COMPONENT = 255
#: The largest file content, in bytes.
MAX_FILE = 256 * 1024
#: The formats a configuration is read in; YAML and TOML need their parser (PyYAML; tomllib or tomli).
FORMATS = ("json", "yaml", "toml")

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MODE = re.compile(r"0?[0-7]{3}")
_DEFAULT_MODE = 0o600
_MAX_MODE = 0o600  # a secret is never readable by group or others, nor executable
_TOP_KEYS = frozenset({"env", "files"})
_FILE_KEYS = frozenset({"path", "content", "content_base64", "mode"})
_EXTENSIONS = {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".toml": "toml"}


@dataclass(frozen=True)
class SecretFile:
    """A file to write: absolute normalised ``path``, ``content`` and permission bits ``mode`` (at most 0600)."""

    path: str
    content: bytes = field(repr=False)
    mode: int = _DEFAULT_MODE


@dataclass(frozen=True)
class SecretsConfig:
    """What a blob holds: environment variables (``env``, name to value) and :class:`SecretFile` entries.

    The repr shows names and paths, never values or contents.
    """

    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    files: tuple[SecretFile, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "env", MappingProxyType(dict(self.env)))
        object.__setattr__(self, "files", tuple(self.files))
        _check(self)

    @property
    def env_names(self) -> tuple[str, ...]:
        return tuple(self.env)

    def to_json(self) -> bytes:
        """The canonical JSON that is encrypted: contents as ``content_base64``, modes as four octal digits."""
        document = {
            "env": dict(self.env),
            "files": [
                {
                    "path": entry.path,
                    "content_base64": base64.b64encode(entry.content).decode("ascii"),
                    "mode": f"{entry.mode:04o}",
                }
                for entry in self.files
            ],
        }
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def config_format(path: str | os.PathLike[str]) -> str:
    """The format a configuration file's extension names (``.json``, ``.yaml``/``.yml``, ``.toml``).

    :raises SecretsConfigError: another extension.
    """
    extension = os.path.splitext(os.fspath(path))[1].lower()
    if extension not in _EXTENSIONS:
        raise SecretsConfigError("", f"{os.fspath(path)}: name the format with .json, .yaml, .yml or .toml")
    return _EXTENSIONS[extension]


def parse_config(data: bytes, format: str = "json") -> SecretsConfig:
    """The configuration in ``data`` (``format``: one of :data:`FORMATS`).

    :raises SecretsConfigError: not that format, not the schema, over a bound;
        the error's ``field`` says where.
    """
    if format not in FORMATS:
        raise SecretsConfigError("", f"format must be one of {', '.join(FORMATS)}, not {format!r}")
    if len(data) > MAX_CONFIG:
        raise SecretsConfigError("", f"the configuration is {len(data)} bytes, over {MAX_CONFIG}")
    return _from_document(_load(data, format))


def _load(data: bytes, format: str) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretsConfigError("", "the configuration is not UTF-8 text") from None
    if format == "json":
        try:
            return json.loads(text, object_pairs_hook=unique_keys, parse_constant=_no_constant)
        except RecursionError:
            raise SecretsConfigError("", "the JSON is nested too deeply") from None
        except ValueError as error:  # JSONDecodeError, and the hooks' refusals
            raise SecretsConfigError("", f"not JSON: {error}") from None
    if format == "yaml":
        return _load_yaml(text)
    return _load_toml(text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _load_yaml(text: str) -> Any:
    try:
        import yaml  # type: ignore[import-untyped]  # noqa: PLC0415 -- optional
    except ImportError:
        raise SecretsConfigError("", "reading YAML needs PyYAML: pip install pyyaml") from None
    try:
        loader = _yaml_loader(yaml)(text)  # its reader refuses control characters at once
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except RecursionError:
        raise SecretsConfigError("", "the YAML is nested too deeply") from None
    except yaml.YAMLError as error:
        # PyYAML's message quotes the source line, which can be the secret: the position only.
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        if mark is not None:
            where = f"line {mark.line + 1}, column {mark.column + 1}"
        else:  # ReaderError: a character YAML does not allow
            where = f"character {getattr(error, 'position', '?')}"
        what = "a value the safe loader refuses" if isinstance(error, yaml.constructor.ConstructorError) else "syntax"
        raise SecretsConfigError("", f"not YAML ({what}): {where}") from None


@functools.cache
def _yaml_loader(yaml: Any) -> Any:
    """PyYAML's safe loader, where a value its constructors cannot build is an error naming its position.

    They raise what Python raises: ValueError for a date out of range, a
    5000-digit int (Python's limit) or ``!!int x``; AttributeError for
    ``!!timestamp x``. The message can quote the value, so only the tag is said.
    """

    class Loader(yaml.SafeLoader):  # type: ignore[misc,name-defined,unused-ignore]
        def construct_object(self, node: Any, deep: bool = False) -> Any:
            try:
                return super().construct_object(node, deep)
            except (ValueError, AttributeError):
                mark = node.start_mark
                tag = str(node.tag).rsplit(":", 1)[-1]
                raise SecretsConfigError(
                    "", f"not YAML: line {mark.line + 1}, column {mark.column + 1}: not a valid {tag[:40]}"
                ) from None

    return Loader


def _load_toml(text: str) -> Any:
    if sys.version_info >= (3, 11):
        import tomllib as toml  # noqa: PLC0415
    else:  # pragma: no cover -- Python 3.10
        try:
            import tomli as toml  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415
        except ImportError:
            raise SecretsConfigError("", "reading TOML on Python 3.10 needs tomli: pip install tomli") from None
    try:
        return toml.loads(text)
    except RecursionError:
        raise SecretsConfigError("", "the TOML is nested too deeply") from None
    except toml.TOMLDecodeError as error:
        raise SecretsConfigError("", f"not TOML: {error}") from None
    except ValueError:  # int() past Python's 4300 digits, which tomllib does not catch (nor say where)
        raise SecretsConfigError("", "not TOML: a number it cannot build (an integer over 4300 digits?)") from None


def _from_document(document: Any) -> SecretsConfig:
    if not isinstance(document, dict):
        raise SecretsConfigError("", 'the configuration must be an object {"env": {...}, "files": [...]}')
    unknown = sorted(str(key) for key in document if key not in _TOP_KEYS)
    if unknown:
        raise SecretsConfigError(unknown[0], "unknown key: a configuration has only 'env' and 'files'")
    env = document.get("env", {})
    if not isinstance(env, dict):
        raise SecretsConfigError("env", "must be an object of NAME: value")
    files = document.get("files", [])
    if not isinstance(files, list):
        raise SecretsConfigError("files", "must be a list of {path, content | content_base64, mode}")
    if len(files) > MAX_FILES:  # before any content is decoded
        raise SecretsConfigError("files", f"{len(files)} files, over {MAX_FILES}")
    return SecretsConfig(env=env, files=tuple(_file(index, entry) for index, entry in enumerate(files)))


def _file(index: int, entry: Any) -> SecretFile:
    where = f"files[{index}]"
    if not isinstance(entry, dict):
        raise SecretsConfigError(where, "must be an object {path, content | content_base64, mode}")
    unknown = sorted(str(key) for key in entry if key not in _FILE_KEYS)
    if unknown:
        raise SecretsConfigError(
            f"{where}.{unknown[0]}", "unknown key: a file has path, content or content_base64, mode"
        )
    path = entry.get("path")
    if not isinstance(path, str):
        raise SecretsConfigError(f"{where}.path", "required, a string")
    if ("content" in entry) == ("content_base64" in entry):
        raise SecretsConfigError(where, "give exactly one of content (text) and content_base64")
    if "content" in entry:
        text = entry["content"]
        if not isinstance(text, str):
            raise SecretsConfigError(f"{where}.content", "must be a string (use content_base64 for bytes)")
        content = _utf8(text, f"{where}.content")
    else:
        encoded = entry["content_base64"]
        if not isinstance(encoded, str):
            raise SecretsConfigError(f"{where}.content_base64", "must be a base64 string")
        try:
            content = base64.b64decode(encoded.encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error):
            raise SecretsConfigError(f"{where}.content_base64", "not base64 (standard alphabet, padded)") from None
    mode_text = entry.get("mode", f"{_DEFAULT_MODE:04o}")
    if not isinstance(mode_text, str) or not _MODE.fullmatch(mode_text):
        raise SecretsConfigError(f"{where}.mode", 'must be octal digits in a string, such as "0400"')
    return _checked_file(where, path, content, int(mode_text, 8))


def _utf8(text: str, where: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, from JSON's \ud800
        raise SecretsConfigError(where, "is not valid Unicode text") from None


def _check_name(name: object) -> None:
    if not isinstance(name, str) or len(name) > MAX_NAME or not _ENV_NAME.fullmatch(name):
        shown = repr(name)[:60]
        raise SecretsConfigError(
            f"env.{shown}", f"not an environment variable name ([A-Za-z_][A-Za-z0-9_]*, at most {MAX_NAME})"
        )


def _checked_file(where: str, path: str, content: bytes, mode: int) -> SecretFile:
    _check_path(f"{where}.path", path)
    if len(content) > MAX_FILE:
        raise SecretsConfigError(f"{where}.content", f"{len(content)} bytes, over {MAX_FILE}")
    if mode & ~_MAX_MODE:
        raise SecretsConfigError(
            f"{where}.mode", f"{mode:04o} is wider than 0600: secrets are readable by their owner only"
        )
    return SecretFile(path, content, mode)


def _check_path(where: str, path: str) -> None:
    if "\x00" in path or len(_utf8(path, where)) > MAX_PATH:
        raise SecretsConfigError(where, f"must be at most {MAX_PATH} bytes, without NUL")
    if not path.startswith("/") or path == "/":
        raise SecretsConfigError(where, f"{path!r} is not an absolute path to a file")
    if path.startswith("//"):  # kept by normpath: POSIX leaves a leading // to the implementation
        raise SecretsConfigError(where, f"{path[:60]!r} starts with '//'")
    components = path.split("/")
    if ".." in components:
        raise SecretsConfigError(where, f"{path!r} has a '..' component")
    if any(len(component.encode("utf-8")) > MAX_PATH_COMPONENT for component in components):
        raise SecretsConfigError(where, f"a component is over {MAX_PATH_COMPONENT} bytes")
    if posixpath.normpath(path) != path:
        raise SecretsConfigError(where, f"{path!r} is not normalised (write {posixpath.normpath(path)!r})")


def _check(config: SecretsConfig) -> None:
    """The bounds and rules for a configuration built in Python, as :func:`parse_config` applies them."""
    if len(config.env) > MAX_ENV:
        raise SecretsConfigError("env", f"{len(config.env)} variables, over {MAX_ENV}")
    for name, value in config.env.items():
        _check_name(name)
        if not isinstance(value, str):
            raise SecretsConfigError(f"env.{name}", "the value must be a string")
        if "\x00" in value or len(_utf8(value, f"env.{name}")) > MAX_ENV_VALUE:
            raise SecretsConfigError(f"env.{name}", f"the value must be at most {MAX_ENV_VALUE} bytes, without NUL")
    if len(config.files) > MAX_FILES:
        raise SecretsConfigError("files", f"{len(config.files)} files, over {MAX_FILES}")
    seen: set[str] = set()
    for index, entry in enumerate(config.files):
        if not isinstance(entry, SecretFile) or not isinstance(entry.content, bytes):
            raise SecretsConfigError(f"files[{index}]", "must be a SecretFile with bytes content")
        if type(entry.mode) is not int:
            raise SecretsConfigError(f"files[{index}].mode", "must be an int")
        _checked_file(f"files[{index}]", entry.path, entry.content, entry.mode)
        if entry.path in seen:
            raise SecretsConfigError(f"files[{index}].path", f"{entry.path!r} is listed twice")
        seen.add(entry.path)
    size = len(config.to_json())
    if size > MAX_CONFIG:
        raise SecretsConfigError("", f"the configuration is {size} bytes as JSON, over {MAX_CONFIG}")
