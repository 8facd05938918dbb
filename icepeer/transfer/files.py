"""The file system side of a transfer: what to send, and how a received file takes its name.

A received file is written to a hidden temporary name in the target
directory, ``fsync``-ed, checked, and only then given its final name, with
``link()`` (which refuses to replace an existing name, even one created
meanwhile) or, with ``--overwrite``, ``rename()``. The directory is
``fsync``-ed after that, so that the name survives a crash too. A file that
fails its check is removed; its final name is never touched.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from .errors import BadManifest, IntegrityError, Refused, UnsafeName
from .manifest import FileEntry, Manifest, check_name

__all__ = ["READ_SIZE", "PartialFile", "SourceFile", "check_targets", "describe_files"]

READ_SIZE = 1024 * 1024


@dataclass(frozen=True)
class SourceFile:
    path: Path
    entry: FileEntry


def _sha256(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as f:
        while block := f.read(READ_SIZE):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def describe_files(paths: list[Path]) -> list[SourceFile]:
    """Check the files to send and hash them (blocking: run it in a thread)."""
    files: list[SourceFile] = []
    for path in paths:
        if path.is_dir():
            raise ConfigError(f"{path} is a directory: send files (archive a directory first)")
        if not path.exists():
            raise ConfigError(f"no such file: {path}")
        if not path.is_file():
            raise ConfigError(f"{path} is not a regular file")
        try:
            name = check_name(path.name)
        except UnsafeName as exc:
            raise ConfigError(f"cannot send {path}: {exc}") from None
        try:
            size, digest = _sha256(path)
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
        files.append(SourceFile(path, FileEntry(name, size, digest)))
    try:
        Manifest(tuple(f.entry for f in files))  # duplicates, limits
    except BadManifest as exc:
        raise ConfigError(str(exc)) from None
    return files


def check_targets(manifest: Manifest, output: Path, *, overwrite: bool) -> None:
    """Raise :class:`Refused` if the files cannot be received into ``output``."""
    for entry in manifest.files:
        target = output / entry.name
        if target.is_dir():
            raise Refused(f"{entry.name!r} is a directory in the receiver's {output}")
        if os.path.lexists(target) and not overwrite:
            raise Refused(f"{entry.name!r} already exists in the receiver's {output} "
                          "(the receiver can pass --overwrite)")
    try:
        free = os.statvfs(output).f_bavail * os.statvfs(output).f_frsize
    except OSError:
        return
    if manifest.total > free:
        raise Refused(f"not enough space in the receiver's {output}: {manifest.total} bytes offered, "
                      f"{free} free")


@functools.cache
def _file_mode() -> int:
    """What open() would have given (mkstemp makes files 0600)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


class PartialFile:
    """One file being received: a temporary name, a running SHA-256, then its final name."""

    def __init__(self, output: Path, entry: FileEntry) -> None:
        self.entry = entry
        self.final = output / entry.name
        fd, temp = tempfile.mkstemp(dir=output, prefix=f".{entry.name[:100]}.", suffix=".icepeer-partial")
        self.temp = Path(temp)
        os.fchmod(fd, _file_mode())
        self._file = os.fdopen(fd, "wb")
        self._digest = hashlib.sha256()
        self.written = 0

    def write(self, data: bytes) -> None:
        if self.written + len(data) > self.entry.size:
            raise IntegrityError(f"{self.entry.name!r}: more bytes than its size")
        self._file.write(data)
        self._digest.update(data)
        self.written += len(data)

    def flush_and_sync(self) -> None:
        """Blocking: run it in a thread."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def check(self) -> None:
        if self.written != self.entry.size:
            raise IntegrityError(f"{self.entry.name!r}: {self.written} bytes arrived, {self.entry.size} announced")
        digest = self._digest.hexdigest()
        if digest != self.entry.sha256:
            raise IntegrityError(f"{self.entry.name!r}: SHA-256 mismatch (got {digest[:16]}..., "
                                 f"expected {self.entry.sha256[:16]}...)")

    def publish(self, *, overwrite: bool) -> None:
        """Give the checked file its final name; :class:`Refused` if that name is taken."""
        if overwrite:
            os.replace(self.temp, self.final)
        else:
            try:
                os.link(self.temp, self.final)
            except FileExistsError:
                raise Refused(f"{self.entry.name!r} appeared in the target directory meanwhile") from None
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                    raise
                # No hard links on this file system: check, then rename (a small race).
                if os.path.lexists(self.final):
                    raise Refused(f"{self.entry.name!r} appeared in the target directory meanwhile") from None
                os.rename(self.temp, self.final)
            else:
                os.unlink(self.temp)
        _fsync_dir(self.final.parent)

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temp)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
