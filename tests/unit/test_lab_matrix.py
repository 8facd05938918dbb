"""Matrix pairs and reports: JSON, markdown and the PNG."""

from __future__ import annotations

import struct
import zlib

import pytest

from icepeer.lab import plot
from icepeer.lab.cell import CellResult, Mode
from icepeer.lab.kinds import NatKind
from icepeer.lab.matrix import COLOURS, Matrix, pairs
from icepeer.lab.png import Canvas, encode_png
from tests.conftest import require


def cell(a: str, b: str, mode: Mode, outcome: str, ms: float = 700, lost: int = 0) -> CellResult:
    if outcome == "failed":
        return CellResult(a, b, mode.value, False, error="timeout", sent=0)
    types = ("relay", "srflx") if outcome == "relay" else ("srflx", "prflx")
    return CellResult(a, b, mode.value, True, *types, "udp", ms, ms + 900, 6, lost, 2.0)


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + body)
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
            assert body[8:10] == b"\x08\x02"
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = 1 + 3 * width
    rows = [raw[i * stride:(i + 1) * stride] for i in range(height)]
    assert all(r[0] == 0 for r in rows)
    return width, height, [r[1:] for r in rows]


def test_pairs_are_unordered_and_shared_lan_pairs_with_itself() -> None:
    kinds = [NatKind.PRC, NatKind.SYM, NatKind.FULL, NatKind.SAME_LAN]
    got = pairs(kinds)
    assert got[:6] == [(NatKind.PRC, NatKind.PRC), (NatKind.PRC, NatKind.SYM), (NatKind.PRC, NatKind.FULL),
                       (NatKind.SYM, NatKind.SYM), (NatKind.SYM, NatKind.FULL), (NatKind.FULL, NatKind.FULL)]
    assert got[6:] == [(NatKind.SAME_LAN, NatKind.SAME_LAN)]
    assert len(pairs(list(NatKind))) == 7 * 8 // 2 + 2


def test_lookup_is_symmetric_and_json_round_trips() -> None:
    m = Matrix([NatKind.PRC, NatKind.SYM], [Mode.ICE], [cell("prc", "sym", Mode.ICE, "relay")])
    assert m.get(NatKind.SYM, NatKind.PRC, Mode.ICE) is m.get(NatKind.PRC, NatKind.SYM, Mode.ICE)
    again = Matrix.from_json(m.to_json(generated="now"))
    assert again.results == m.results and again.kinds == m.kinds


def test_markdown_table() -> None:
    m = Matrix([NatKind.PRC, NatKind.SYM, NatKind.SAME_LAN_HAIRPIN], [Mode.ICE, Mode.ICE_NO_TURN], [
        cell("prc", "prc", Mode.ICE, "direct", 1012),
        cell("prc", "sym", Mode.ICE, "relay", 715, lost=1),
        cell("sym", "sym", Mode.ICE_NO_TURN, "failed"),
        cell("same-lan-hairpin", "same-lan-hairpin", Mode.ICE, "direct", 40),
    ])
    md = m.markdown()
    assert "### ice\n" in md and "### ice-no-turn\n" in md
    assert "| a \\ b | prc | sym |" in md
    assert "| **prc** | srflx/prflx 1.0 s | relay/srflx 0.7 s, 1 lost |" in md
    assert "| **sym** |  | **fail** |" in md
    assert "- same-lan-hairpin: srflx/prflx 0.0 s" in md


def test_png_colours_follow_outcomes() -> None:
    m = Matrix([NatKind.PRC, NatKind.SYM], [Mode.ICE], [
        cell("prc", "prc", Mode.ICE, "direct"),
        cell("prc", "sym", Mode.ICE, "relay"),
    ])
    _, _, rows = decode_png(m.png(cell=10, gap=2, margin=4))

    def at(x: int, y: int) -> tuple[int, ...]:
        return tuple(rows[y][3 * x:3 * x + 3])

    # panel origin (4, 4); cell (i, j) at x = 4 + 12 j, y = 4 + 12 i
    assert at(4 + 5, 4 + 5) == COLOURS["direct"]
    assert at(4 + 12 + 5, 4 + 5) == COLOURS["relay"]
    assert at(4 + 5, 4 + 12 + 5) == COLOURS["relay"]  # mirrored
    assert at(4 + 12 + 5, 4 + 12 + 5) == COLOURS["none"]  # sym x sym not run
    assert at(0, 0) == (255, 255, 255)


def test_png_writer_checks_sizes() -> None:
    c = Canvas(3, 2)
    c.rect(1, 0, 5, 1, (1, 2, 3))
    assert c.pixel(2, 0) == (1, 2, 3) and c.pixel(0, 0) == (255, 255, 255)
    assert decode_png(c.png())[:2] == (3, 2)
    with pytest.raises(ValueError):
        encode_png(2, 1, [b"\x00" * 3])


def test_picture_has_a_panel_per_mode_coloured_by_outcome() -> None:
    require(plot.available(), "matplotlib is not installed (pip install matplotlib): the "
            "readable matrix picture needs it")
    import io

    import matplotlib.image

    m = Matrix([NatKind.PRC, NatKind.SYM, NatKind.SAME_LAN], [Mode.ICE, Mode.ICE_NO_TURN], [
        cell("prc", "prc", Mode.ICE, "direct", 262),
        cell("prc", "sym", Mode.ICE, "relay", 341),
        cell("sym", "sym", Mode.ICE_NO_TURN, "failed"),
    ])
    png = plot.draw(m, "profile test: 20 ms RTT")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = (matplotlib.image.imread(io.BytesIO(png))[:, :, :3] * 255).round().astype(int)

    def count(category: str) -> int:
        return int((abs(pixels - COLOURS[category]).sum(axis=2) <= 3).sum())

    # each outcome drawn as a cell-sized area (text on top takes a little of it)
    assert count("direct") > 2000 and count("relay") > 2000 and count("failed") > 2000
    assert count("lossy") < count("direct")  # only its legend swatch


def test_short_path_names_the_pair() -> None:
    relay_tcp = CellResult("udpblock", "prc", "ice", True, "relay", "srflx", "tcp", 120)
    assert plot.short_path(relay_tcp) == "r/s tcp"
    v6 = CellResult("sym", "sym", "ice", True, "host", "host", "udp", 90, ip_version=6)
    assert plot.short_path(v6) == "h/h v6"
    assert "h/h udp, IPv6" not in Matrix.cell_text(v6) and Matrix.cell_text(v6) == "host/host v6 0.1 s"
