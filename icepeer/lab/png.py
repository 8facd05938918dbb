"""A tiny PNG writer (RGB, 8 bits per channel), pure Python with zlib.

Enough for a picture of coloured cells; no text. PNG format: RFC 2083 / the
W3C PNG specification: signature, IHDR, one IDAT, IEND; every scanline
starts with filter type 0 (none).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

__all__ = ["RGB", "Canvas", "encode_png"]

RGB = tuple[int, int, int]
SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(width: int, height: int, rows: Sequence[bytes]) -> bytes:
    """A PNG of ``height`` rows of ``width`` RGB pixels (3 bytes each)."""
    if width <= 0 or height <= 0 or len(rows) != height:
        raise ValueError("bad image size")
    if any(len(r) != 3 * width for r in rows):
        raise ValueError("every row needs 3 bytes per pixel")
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit truecolour
    raw = b"".join(b"\x00" + bytes(r) for r in rows)
    return SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b"")


class Canvas:
    """A width x height RGB canvas to fill with rectangles."""

    def __init__(self, width: int, height: int, background: RGB = (255, 255, 255)) -> None:
        self.width, self.height = width, height
        self._rows = [bytearray(bytes(background) * width) for _ in range(height)]

    def rect(self, x: int, y: int, w: int, h: int, colour: RGB) -> None:
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + w, self.width), min(y + h, self.height)
        if x1 <= x0 or y1 <= y0:
            return
        span = bytes(colour) * (x1 - x0)
        for row in self._rows[y0:y1]:
            row[3 * x0:3 * x1] = span

    def pixel(self, x: int, y: int) -> RGB:
        r = self._rows[y]
        return (r[3 * x], r[3 * x + 1], r[3 * x + 2])

    def png(self) -> bytes:
        return encode_png(self.width, self.height, [bytes(r) for r in self._rows])
