"""File transfer over a peer connection (``icepeer send`` / ``icepeer receive``).

Layers: :mod:`.manifest` (file names and the offer's rules), :mod:`.protocol`
(messages and the split of the byte stream into files) and :mod:`.progress`
hold the logic without I/O; :mod:`.files` is the file system side;
:mod:`.sender` and :mod:`.receiver` are asyncio glue. The protocol is
described in ``docs/transfer.md``.
"""

from __future__ import annotations

from .errors import (
    BadManifest,
    IntegrityError,
    Refused,
    TransferError,
    TransferProtocolError,
    UnsafeName,
)
from .files import SourceFile, describe_files
from .manifest import FileEntry, Manifest, check_name
from .protocol import LABEL, Done, FileResult
from .receiver import receive_files
from .sender import send_files

__all__ = [
    "LABEL",
    "BadManifest",
    "Done",
    "FileEntry",
    "FileResult",
    "IntegrityError",
    "Manifest",
    "Refused",
    "SourceFile",
    "TransferError",
    "TransferProtocolError",
    "UnsafeName",
    "check_name",
    "describe_files",
    "receive_files",
    "send_files",
]
