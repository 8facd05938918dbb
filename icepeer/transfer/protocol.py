"""The transfer protocol's messages and the byte stream's split into files, without I/O.

One reliable, ordered channel, ``transfer``. Text messages are JSON control
messages; binary messages are file bytes::

    sender                                     receiver
      offer {version, files: [{name, size, sha256}]}  ->
                                               <-  accept | reject {reason}
      bytes of file 0, then file 1, ...        ->      (sizes delimit the files)
                                               <-  ack {bytes}   (cumulative, every ACK_EVERY)
      [abort {reason}                          ->  ]  (a file changed or vanished)
                                               <-  done {files: [{name, ok, reason}]}

The sender keeps at most :data:`WINDOW` bytes beyond the last ack, so the
receiver never holds more than that in memory, however slow its disk.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import TransferProtocolError
from .manifest import Manifest

__all__ = [
    "ACK_EVERY",
    "LABEL",
    "VERSION",
    "WINDOW",
    "Abort",
    "Accept",
    "Ack",
    "Assembler",
    "Chunk",
    "Done",
    "FileEnd",
    "FileResult",
    "Message",
    "Offer",
    "Reject",
    "parse",
]

VERSION = 1
LABEL = "transfer"
#: Bytes the sender may have sent beyond the receiver's last ack.
WINDOW = 8 * 1024 * 1024
#: The receiver acks at least this often (and at the end of every file).
ACK_EVERY = 1024 * 1024


@dataclass(frozen=True)
class Offer:
    manifest: Manifest
    version: int = VERSION

    def to_json(self) -> str:
        return json.dumps({"type": "offer", "version": self.version, "files": self.manifest.to_list()})


@dataclass(frozen=True)
class Accept:
    def to_json(self) -> str:
        return '{"type":"accept"}'


@dataclass(frozen=True)
class Reject:
    reason: str

    def to_json(self) -> str:
        return json.dumps({"type": "reject", "reason": self.reason})


@dataclass(frozen=True)
class Ack:
    bytes: int

    def to_json(self) -> str:
        return json.dumps({"type": "ack", "bytes": self.bytes})


@dataclass(frozen=True)
class Abort:
    reason: str

    def to_json(self) -> str:
        return json.dumps({"type": "abort", "reason": self.reason})


@dataclass(frozen=True)
class FileResult:
    name: str
    ok: bool
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "reason": self.reason}


@dataclass(frozen=True)
class Done:
    files: tuple[FileResult, ...]

    @property
    def ok(self) -> bool:
        return all(result.ok for result in self.files)

    def to_json(self) -> str:
        return json.dumps({"type": "done", "files": [r.to_dict() for r in self.files]})


Message = Offer | Accept | Reject | Ack | Abort | Done


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise TransferProtocolError(f"{data.get('type')} message without a text {key!r}")
    return value[:1000]


def parse(message: str | bytes) -> Message:
    """A control message; :class:`TransferProtocolError` (or BadManifest for an offer) if it is not one."""
    if isinstance(message, bytes):
        raise TransferProtocolError("file bytes where a control message was expected")
    try:
        data = json.loads(message)
    except ValueError:
        raise TransferProtocolError("a control message that is not JSON") from None
    if not isinstance(data, dict):
        raise TransferProtocolError("a control message that is not a JSON object")
    kind = data.get("type")
    if kind == "offer":
        if data.get("version") != VERSION:
            raise TransferProtocolError(
                f"the sender speaks transfer protocol version {data.get('version')!r}, this side {VERSION}")
        return Offer(Manifest.from_list(data.get("files")))
    if kind == "accept":
        return Accept()
    if kind == "reject":
        return Reject(_text(data, "reason"))
    if kind == "abort":
        return Abort(_text(data, "reason"))
    if kind == "ack":
        value = data.get("bytes")
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise TransferProtocolError(f"ack of {value!r} bytes")
        return Ack(value)
    if kind == "done":
        files = data.get("files")
        if not isinstance(files, list):
            raise TransferProtocolError("done message without a list of files")
        results = []
        for item in files:
            if not isinstance(item, dict) or not isinstance(item.get("ok"), bool):
                raise TransferProtocolError("done message with a bad file result")
            results.append(FileResult(_text(item, "name"), item["ok"], str(item.get("reason", ""))[:1000]))
        return Done(tuple(results))
    raise TransferProtocolError(f"unknown control message {kind!r}")


# -- the byte stream ---------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    index: int
    data: bytes


@dataclass(frozen=True)
class FileEnd:
    index: int


class Assembler:
    """Splits the binary messages into the manifest's files, by their sizes."""

    def __init__(self, sizes: list[int]) -> None:
        self._sizes = sizes
        self.index = 0
        self.remaining = sizes[0] if sizes else 0
        self.received = 0

    @property
    def done(self) -> bool:
        return self.index >= len(self._sizes)

    def start(self) -> list[Chunk | FileEnd]:
        """The ends of the empty files at the front (call once, before any data)."""
        return self._skip_empty()

    def feed(self, data: bytes) -> list[Chunk | FileEnd]:
        out: list[Chunk | FileEnd] = []
        view = memoryview(data)
        while view:
            if self.done:
                raise TransferProtocolError("more bytes than the offer announced")
            take = min(len(view), self.remaining)
            out.append(Chunk(self.index, bytes(view[:take])))
            view = view[take:]
            self.remaining -= take
            self.received += take
            out += self._skip_empty()
        return out

    def _skip_empty(self) -> list[Chunk | FileEnd]:
        ends: list[Chunk | FileEnd] = []
        while not self.done and self.remaining == 0:
            ends.append(FileEnd(self.index))
            self.index += 1
            if not self.done:
                self.remaining = self._sizes[self.index]
        return ends
