"""The offer's list of files, and the rules a file name must pass, without I/O.

A name is one path component, refused (never rewritten) when it could reach
outside the target directory or confuse a file system: empty, ``.`` or
``..``, any ``/`` or ``\\`` (so no absolute path and no ``../``), a NUL or any
other control character, a Windows drive prefix such as ``C:``, or more
than 255 bytes of UTF-8 (the usual file system limit).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import BadManifest, UnsafeName

__all__ = ["MAX_FILES", "MAX_FILE_SIZE", "MAX_NAME_BYTES", "FileEntry", "Manifest", "check_name"]

MAX_FILES = 10_000
MAX_NAME_BYTES = 255
#: 2**53 - 1: the largest integer every JSON implementation reads exactly.
MAX_FILE_SIZE = 2**53 - 1
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")


def check_name(name: Any) -> str:
    """``name`` if it is a safe single file name; :class:`UnsafeName` says why not."""
    if not isinstance(name, str):
        raise UnsafeName(f"file name {name!r} is not a string")
    if name in ("", ".", ".."):
        raise UnsafeName(f"file name {name!r} is not a file name")
    if "/" in name or "\\" in name:
        raise UnsafeName(f"file name {name!r} contains a path separator")
    if _CONTROL.search(name):
        raise UnsafeName(f"file name {name!r} contains a control character")
    if _DRIVE.match(name):
        raise UnsafeName(f"file name {name!r} starts with a drive letter")
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafeName(f"file name {name!r} is not valid Unicode") from None
    if len(encoded) > MAX_NAME_BYTES:
        raise UnsafeName(f"file name {name[:40]!r}... is longer than {MAX_NAME_BYTES} bytes")
    return name


@dataclass(frozen=True)
class FileEntry:
    name: str
    size: int
    sha256: str  # lowercase hex

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "sha256": self.sha256}

    @classmethod
    def from_dict(cls, data: Any) -> FileEntry:
        if not isinstance(data, dict):
            raise BadManifest("a file entry is not an object")
        name = check_name(data.get("name"))
        size, digest = data.get("size"), data.get("sha256")
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_FILE_SIZE:
            raise BadManifest(f"{name!r}: bad size {size!r}")
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise BadManifest(f"{name!r}: bad sha256 {digest!r}")
        return cls(name, size, digest)


@dataclass(frozen=True)
class Manifest:
    files: tuple[FileEntry, ...]

    def __post_init__(self) -> None:
        if not self.files:
            raise BadManifest("the offer lists no files")
        if len(self.files) > MAX_FILES:
            raise BadManifest(f"the offer lists {len(self.files)} files (at most {MAX_FILES})")
        seen: set[str] = set()
        for entry in self.files:
            # Case-insensitive file systems would merge "a" and "A": refuse both.
            key = entry.name.casefold()
            if key in seen:
                raise BadManifest(f"the offer lists {entry.name!r} twice")
            seen.add(key)

    @property
    def total(self) -> int:
        return sum(entry.size for entry in self.files)

    def to_list(self) -> list[dict[str, Any]]:
        return [entry.to_dict() for entry in self.files]

    @classmethod
    def from_list(cls, items: Any) -> Manifest:
        if not isinstance(items, list):
            raise BadManifest("the offer's files are not a list")
        if len(items) > MAX_FILES:
            raise BadManifest(f"the offer lists {len(items)} files (at most {MAX_FILES})")
        return cls(tuple(FileEntry.from_dict(item) for item in items))
