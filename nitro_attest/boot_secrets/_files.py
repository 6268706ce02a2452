"""Allow-lists, and writing a configuration's files all or nothing, without following symbolic links."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import posixpath
import secrets
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from ._config import SecretsConfig, _check_name, _check_path
from ._errors import BootSecretsError, SecretsConfigError

__all__ = ["AllowList", "install_files"]

_DIRECTORY_MODE = 0o700
_OPEN_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)


@dataclass(frozen=True)
class AllowList:
    """The environment variable names and file locations a configuration may set.

    ``files`` holds absolute normalised paths: a file may be written at one
    of them, or anywhere below one. Nothing is allowed unless listed. In an
    enclave the allow-lists belong on the image's command line, so that they
    are part of the measured image (PCR2).

    :raises SecretsConfigError: a name that is not an environment variable
        name, a path that is not absolute and normalised.
    :raises TypeError: ``env`` or ``files`` is a single string.
    """

    env: frozenset[str] = field(default_factory=frozenset)
    files: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # frozenset("DB_PASSWORD") would allow the names D, B, _, P...; tuple("/run") the paths /, r...
        if isinstance(self.env, (str, bytes)):
            raise TypeError("AllowList env must be a collection of names, not a single string")
        if isinstance(self.files, (str, bytes)):
            raise TypeError("AllowList files must be a collection of paths, not a single string")
        object.__setattr__(self, "env", frozenset(self.env))
        object.__setattr__(self, "files", tuple(self.files))
        for name in self.env:
            try:
                _check_name(name)
            except SecretsConfigError as error:
                raise SecretsConfigError("allow_env", str(error)) from None
        for path in self.files:
            if not isinstance(path, str):
                raise SecretsConfigError("allow_file", f"{path!r} is not a path")
            _check_path("allow_file", path)

    def check(self, config: SecretsConfig) -> None:
        """Refuses a configuration with any entry outside the lists (naming the first), before anything is done.

        :raises BootSecretsError: ``not_allowed``.
        """
        for name in config.env:
            if name not in self.env:
                raise BootSecretsError("not_allowed", f"env.{name} is not in the allowed environment names")
        for index, entry in enumerate(config.files):
            if self.base(entry.path) is None:
                raise BootSecretsError(
                    "not_allowed", f"files[{index}].path {entry.path!r} is not at or below an allowed file location"
                )

    def base(self, path: str) -> str | None:
        """The allowed location ``path`` is written from: the deepest listed directory above it, or itself."""
        found = [entry for entry in self.files if path == entry or path.startswith(entry.rstrip("/") + "/")]
        return max(found, key=len) if found else None


@dataclass
class _Pending:
    directory: int  # a descriptor of the file's directory, opened without following links
    name: str
    temporary: str  # the temporary file's name in ``directory``; "" once renamed (or never made)
    path: str
    kept: str = ""  # a hard link to the file being replaced, kept until the install is done
    placed: bool = False  # renamed into place


def _refuse(path: str, message: str) -> BootSecretsError:
    return BootSecretsError("path", f"{path}: {message}")


def _existing(path: str) -> str:
    """The deepest existing ancestor of ``path`` (itself when it exists)."""
    while not os.path.lexists(path):
        path = posixpath.dirname(path)
    return path


def _walk(base: str, parts: list[str], path: str, *, create: list[str] | None) -> int | None:
    """A descriptor of ``base/parts...``, every component below ``base`` opened without following links.

    ``base`` itself is opened without following a link as its last component
    (links above it belong to the image, such as /var/run). Missing
    directories are created (mode 0700, recorded in ``create``) when
    ``create`` is a list; otherwise None is returned for a missing one.
    """
    try:
        descriptor = os.open(base, _OPEN_DIRECTORY | _NO_FOLLOW)
    except FileNotFoundError:
        if create is None:
            ancestor = _existing(base)
            if not os.path.isdir(ancestor) or os.path.islink(ancestor):
                raise _refuse(path, f"{ancestor} is not a directory") from None
            return None
        missing = []
        ancestor = base
        while not os.path.lexists(ancestor):
            missing.append(ancestor)
            ancestor = posixpath.dirname(ancestor)
        for directory in reversed(missing):
            try:
                os.mkdir(directory, _DIRECTORY_MODE)
            except OSError as error:
                raise _refuse(path, f"cannot create {directory}: {error.strerror}") from None
            create.append(directory)
        return _walk(base, parts, path, create=create)
    except OSError as error:
        raise _refuse(path, _why(error, base, os.path.islink(base))) from None
    location = base
    for part in parts:
        location = posixpath.join(location, part)
        try:
            child = os.open(part, _OPEN_DIRECTORY | _NO_FOLLOW, dir_fd=descriptor)
        except FileNotFoundError:
            if create is None:
                os.close(descriptor)
                return None
            try:
                os.mkdir(part, _DIRECTORY_MODE, dir_fd=descriptor)
            except OSError as error:
                os.close(descriptor)
                raise _refuse(path, f"cannot create {location}: {error.strerror}") from None
            create.append(location)  # made: removed by the undo even if it cannot be opened
            try:
                child = os.open(part, _OPEN_DIRECTORY | _NO_FOLLOW, dir_fd=descriptor)
            except OSError as error:
                os.close(descriptor)
                raise _refuse(path, f"cannot open {location}, just made: {error.strerror}") from None
        except OSError as error:
            link = _is_link(descriptor, part)
            os.close(descriptor)
            raise _refuse(path, _why(error, location, link)) from None
        os.close(descriptor)
        descriptor = child
    return descriptor


def _is_link(descriptor: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=descriptor, follow_symlinks=False).st_mode)
    except OSError:  # it cannot even be looked at (a name too long, no search permission): not known to be a link
        return False


def _why(error: OSError, location: str, link: bool) -> str:
    # O_NOFOLLOW | O_DIRECTORY on a link fails with ENOTDIR on Linux, ELOOP elsewhere.
    if link or error.errno == errno.ELOOP:
        return f"{location} is a symbolic link, which is not followed"
    if error.errno == errno.ENOTDIR:
        return f"{location} is not a directory"
    return f"cannot open {location}: {error.strerror}"


def _split(allow: AllowList, path: str) -> tuple[str, list[str], str]:
    base = allow.base(path)
    assert base is not None  # AllowList.check ran first
    if base == path:
        return posixpath.dirname(path), [], posixpath.basename(path)
    below = path[len(base.rstrip("/")) + 1 :].split("/")
    return base, below[:-1], below[-1]


def _check_target(descriptor: int, name: str, path: str) -> None:
    try:
        status = os.stat(name, dir_fd=descriptor, follow_symlinks=False)
    except FileNotFoundError:
        return
    except OSError as error:  # a name too long for the filesystem, no search permission on the directory
        raise _refuse(path, f"cannot look at it: {error.strerror}") from None
    if stat.S_ISLNK(status.st_mode):
        raise _refuse(path, "is a symbolic link, which is not followed")
    if not stat.S_ISREG(status.st_mode):
        raise _refuse(path, "exists and is not a regular file")


def install_files(config: SecretsConfig, allow: AllowList) -> None:
    """Writes the configuration's files, all or none (as far as POSIX allows).

    First every path is checked: inside the allow-list, no symbolic link at
    or below the allowed location, no directory in the way. Then each file is
    written to a temporary file in its own directory (``O_EXCL``,
    ``O_NOFOLLOW``, its mode set before any byte is written, fsync); a file
    about to be replaced is kept under a second name (a hard link); only then
    is each temporary file renamed into place, the directories synced and the
    kept names removed. A failure at any step undoes the earlier ones: the
    temporary files and kept names removed, a replaced file given back its
    previous version, a new one removed, the directories made for them
    removed. What cannot be undone (the filesystem refusing that too) is named
    in the error.

    :raises BootSecretsError: ``not_allowed``, ``path``.
    """
    _install(config, allow).close()


class _Installation:
    """The files one :func:`_install` wrote, their directories still open so that they can be removed."""

    def __init__(self) -> None:
        self.pending: list[_Pending] = []
        self.created: list[str] = []

    def close(self) -> None:
        _close(item.directory for item in self.pending)
        self.pending = []

    def undo(self) -> list[str]:
        """Undoes every step, the last first, and closes; returns what could not be undone (normally nothing)."""
        left: list[str] = []
        for item in reversed(self.pending):
            here = item.directory
            if item.placed and item.kept:
                restore = functools.partial(os.rename, item.kept, item.name, src_dir_fd=here, dst_dir_fd=here)
                if _undo(left, f"cannot give {item.path} its previous version back", restore, gone_is_done=False):
                    item.placed, item.kept = False, ""
            if item.placed:
                _undo(left, f"cannot remove {item.path}", functools.partial(os.unlink, item.name, dir_fd=here))
                if item.kept:  # the only copy of the previous version now: left for the operator
                    left.append(f"the previous version of {item.path} is at {_beside(item, item.kept)}")
            elif item.kept:
                kept = functools.partial(os.unlink, item.kept, dir_fd=here)
                _undo(left, f"cannot remove {_beside(item, item.kept)}", kept)
            if item.temporary:
                temporary = functools.partial(os.unlink, item.temporary, dir_fd=here)
                _undo(left, f"cannot remove {_beside(item, item.temporary)}", temporary)
        self.close()
        for directory in reversed(self.created):
            with contextlib.suppress(OSError):  # not empty: something else wrote there meanwhile; left as found
                os.rmdir(directory)
        return left


def _beside(item: _Pending, name: str) -> str:
    return posixpath.join(posixpath.dirname(item.path), name)


def _undo(left: list[str], what: str, action: Callable[[], None], *, gone_is_done: bool = True) -> bool:
    """Runs one step of an undo; when it fails, says so in ``left``. A missing file counts as removed."""
    try:
        action()
    except FileNotFoundError:
        if not gone_is_done:
            left.append(f"{what}: it is gone")
        return gone_is_done
    except OSError as error:
        left.append(f"{what}: {error.strerror}")
        return False
    return True


@contextlib.contextmanager
def _refusing(path: str, why: str) -> Iterator[None]:
    try:
        yield
    except OSError as error:
        raise _refuse(path, f"{why}: {error.strerror}") from None


def _install(config: SecretsConfig, allow: AllowList) -> _Installation:
    """Writes the files as :func:`install_files` says, and returns them, so that a failed exec removes them."""
    allow.check(config)
    plans = [(_split(allow, entry.path), entry) for entry in config.files]
    for (base, parts, name), entry in plans:  # nothing is created before every path is known to be usable
        descriptor = _walk(base, parts, entry.path, create=None)
        if descriptor is not None:
            try:
                _check_target(descriptor, name, entry.path)
            finally:
                os.close(descriptor)
    installation = _Installation()
    try:
        for (base, parts, name), entry in plans:
            descriptor = _walk(base, parts, entry.path, create=installation.created)
            assert descriptor is not None  # create= makes what is missing
            item = _Pending(descriptor, name, f".{name}.{secrets.token_hex(8)}.tmp", entry.path)
            installation.pending.append(item)
            _check_target(descriptor, name, entry.path)
            _write_temporary(item, entry.content, entry.mode)
        for item in installation.pending:
            _keep(item)
        for item in installation.pending:
            with _refusing(item.path, "cannot rename it into place"):
                os.rename(item.temporary, item.name, src_dir_fd=item.directory, dst_dir_fd=item.directory)
            item.temporary, item.placed = "", True
        for item in installation.pending:
            with _refusing(item.path, "cannot sync its directory"):
                os.fsync(item.directory)
        for item in installation.pending:
            if item.kept:
                with _refusing(item.path, "cannot remove the kept previous version"):
                    os.unlink(item.kept, dir_fd=item.directory)
                item.kept = ""
    except BaseException as error:
        left = installation.undo()
        if left and isinstance(error, BootSecretsError):
            raise BootSecretsError(error.code, f"{error.message}; not undone: {'; '.join(left)}") from None
        raise
    return installation


def _keep(item: _Pending) -> None:
    """A second name for the file ``item`` replaces, so that a later failure can give it back."""
    kept = f".{item.name}.{secrets.token_hex(8)}.old"
    try:
        os.link(item.name, kept, src_dir_fd=item.directory, dst_dir_fd=item.directory, follow_symlinks=False)
    except FileNotFoundError:
        return  # nothing to replace
    except OSError as error:
        raise _refuse(item.path, f"cannot keep the existing file while replacing it: {error.strerror}") from None
    item.kept = kept


def _write_temporary(item: _Pending, content: bytes, mode: int) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | _NO_FOLLOW
    try:
        descriptor = os.open(item.temporary, flags, mode, dir_fd=item.directory)
    except OSError as error:
        item.temporary = ""  # nothing to remove
        raise _refuse(item.path, f"cannot create a temporary file beside it: {error.strerror}") from None
    try:
        os.fchmod(descriptor, mode)  # the umask may have narrowed it; never widened past the entry's
        view = memoryview(content)
        while view:
            view = view[os.write(descriptor, view) :]
        os.fsync(descriptor)
    except OSError as error:
        raise _refuse(item.path, f"cannot write: {error.strerror}") from None
    finally:
        os.close(descriptor)


def _close(descriptors: Iterable[int]) -> None:
    for descriptor in descriptors:
        os.close(descriptor)
