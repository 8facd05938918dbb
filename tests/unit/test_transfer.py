"""The transfer logic with plain calls: names, the manifest, messages, the byte split, progress, files."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from icepeer.errors import ConfigError, IcepeerError
from icepeer.transfer import (
    BadManifest,
    Done,
    FileEntry,
    FileResult,
    IntegrityError,
    Manifest,
    Refused,
    TransferProtocolError,
    UnsafeName,
    check_name,
    describe_files,
)
from icepeer.transfer.files import PartialFile, check_targets
from icepeer.transfer.progress import (
    Meter,
    Snapshot,
    format_bytes,
    format_duration,
    format_rate,
    render_bar,
    render_line,
)
from icepeer.transfer.protocol import (
    Abort,
    Accept,
    Ack,
    Assembler,
    Chunk,
    FileEnd,
    Offer,
    Reject,
    parse,
)

SHA = "0" * 64


# -- names -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a.txt", "photo 2026.jpg", ".bashrc", "naïve résumé.pdf", "日本語.txt",
                                  "-rf", "a" * 255, "x..y", "...", "COM1"])
def test_good_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name, words", [
    ("", "not a file name"), (".", "not a file name"), ("..", "not a file name"),
    ("../etc/passwd", "path separator"), ("/etc/passwd", "path separator"), ("a/b", "path separator"),
    ("..\\windows", "path separator"), ("C:\\x", "path separator"), ("C:evil", "drive letter"),
    ("nul\x00byte", "control character"), ("new\nline", "control character"), ("bell\x07", "control character"),
    ("del\x7f", "control character"), ("é" * 128, "longer than 255 bytes"), ("\udc80", "not valid Unicode"),
    (None, "not a string"), (42, "not a string"),
])
def test_unsafe_names_are_refused(name, words):
    with pytest.raises(UnsafeName, match=words):
        check_name(name)


# -- the manifest ------------------------------------------------------------------------


def test_manifest_roundtrip_and_total():
    manifest = Manifest((FileEntry("a", 3, SHA), FileEntry("b", 0, "f" * 64)))
    assert Manifest.from_list(json.loads(json.dumps(manifest.to_list()))) == manifest
    assert manifest.total == 3


@pytest.mark.parametrize("items, words", [
    ([], "no files"),
    ("a.txt", "not a list"),
    (["a.txt"], "not an object"),
    ([{"name": "a", "size": 1, "sha256": SHA}, {"name": "A", "size": 1, "sha256": SHA}], "twice"),
    ([{"name": "a", "size": -1, "sha256": SHA}], "bad size"),
    ([{"name": "a", "size": 1.5, "sha256": SHA}], "bad size"),
    ([{"name": "a", "size": True, "sha256": SHA}], "bad size"),
    ([{"name": "a", "size": 2**53, "sha256": SHA}], "bad size"),
    ([{"name": "a", "size": 1, "sha256": "F" * 64}], "bad sha256"),
    ([{"name": "a", "size": 1, "sha256": "0" * 63}], "bad sha256"),
    ([{"name": "../a", "size": 1, "sha256": SHA}], "path separator"),
    ([{"name": f"f{i}", "size": 0, "sha256": SHA} for i in range(10_001)], "at most 10000"),
])
def test_bad_manifests(items, words):
    with pytest.raises(BadManifest, match=words):
        Manifest.from_list(items)


def test_errors_are_icepeer_errors():
    for cls in (BadManifest, UnsafeName, Refused, IntegrityError, TransferProtocolError):
        assert issubclass(cls, IcepeerError)


# -- messages -----------------------------------------------------------------------------


def test_messages_roundtrip():
    manifest = Manifest((FileEntry("a", 3, SHA),))
    done = Done((FileResult("a", True), FileResult("b", False, "SHA-256 mismatch")))
    for message in (Offer(manifest), Accept(), Reject("exists"), Ack(123), Abort("changed"), done):
        assert parse(message.to_json()) == message
    assert not done.ok and Done((FileResult("a", True),)).ok


@pytest.mark.parametrize("message, words", [
    (b"bytes", "file bytes where a control message"), ("{", "not JSON"), ("[]", "not a JSON object"),
    ('{"type":"hello"}', "unknown control message 'hello'"), ('{"type":"ack","bytes":-1}', "ack of -1"),
    ('{"type":"ack","bytes":"1"}', "ack of '1'"), ('{"type":"reject"}', "without a text 'reason'"),
    ('{"type":"offer","version":2,"files":[]}', "version 2"), ('{"type":"done","files":[{"name":"a"}]}', "bad file"),
])
def test_bad_messages(message, words):
    with pytest.raises(TransferProtocolError, match=words):
        parse(message)


def test_an_offer_with_an_unsafe_name_is_a_bad_manifest():
    with pytest.raises(UnsafeName):
        parse(json.dumps({"type": "offer", "version": 1, "files": [{"name": "../x", "size": 1, "sha256": SHA}]}))


# -- splitting the byte stream into files ---------------------------------------------------


def test_the_assembler_splits_by_size_across_messages():
    assembler = Assembler([3, 0, 5, 0])
    assert assembler.start() == []
    assert assembler.feed(b"ab") == [Chunk(0, b"ab")]
    assert assembler.feed(b"cdef") == [Chunk(0, b"c"), FileEnd(0), FileEnd(1), Chunk(2, b"def")]
    assert not assembler.done
    assert assembler.feed(b"gh") == [Chunk(2, b"gh"), FileEnd(2), FileEnd(3)]
    assert assembler.done and assembler.received == 8
    with pytest.raises(TransferProtocolError, match="more bytes than the offer announced"):
        assembler.feed(b"!")


def test_leading_empty_files_end_at_once():
    assembler = Assembler([0, 0, 2])
    assert assembler.start() == [FileEnd(0), FileEnd(1)]
    assert assembler.feed(b"xy") == [Chunk(2, b"xy"), FileEnd(2)]
    only_empty = Assembler([0])
    assert only_empty.start() == [FileEnd(0)] and only_empty.done


# -- progress -------------------------------------------------------------------------------


@pytest.mark.parametrize("count, text", [(0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (1_234_567, "1.2 MB"),
                                         (32 * 1024 * 1024, "33.6 MB"), (5e12, "5.0 TB"), (5e15, "5000.0 TB")])
def test_format_bytes(count, text):
    assert format_bytes(count) == text


@pytest.mark.parametrize("seconds, text", [(None, "--:--"), (0, "0:00"), (4.6, "0:05"), (61, "1:01"),
                                           (3600, "1:00:00"), (3725, "1:02:05"), (1e9, "--:--"),
                                           (float("nan"), "--:--")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_format_rate():
    assert format_rate(None) == "-- B/s" and format_rate(2_500_000) == "2.5 MB/s"


def test_the_meter_follows_the_recent_rate():
    meter = Meter(100_000_000, start=0.0, window=3.0)
    meter.update(10_000_000, now=1.0)  # 10 MB/s at first
    snap = meter.update(20_000_000, now=2.0)
    assert snap.rate == pytest.approx(10_000_000) and snap.eta == pytest.approx(8.0)
    for t in range(3, 10):  # then 1 MB/s
        snap = meter.update(20_000_000 + (t - 2) * 1_000_000, now=float(t))
    assert snap.rate == pytest.approx(1_000_000) and snap.eta == pytest.approx(73.0)
    assert snap.elapsed == 9.0 and snap.fraction == pytest.approx(0.27)


def test_the_meter_before_any_time_passed_and_at_the_end():
    meter = Meter(10, start=5.0)
    first = meter.update(0, now=5.0)
    assert first.rate is None and first.eta is None
    assert meter.update(10, now=6.0).eta == 0.0
    assert Meter(0, start=0).update(0, now=0).fraction == 1.0


def test_render_bar_fits_the_width_and_shows_everything():
    snap = Snapshot(done=12_300_000, total=32_000_000, elapsed=3.0, rate=4_100_000, eta=4.8)
    for width in (60, 80, 120):
        line = render_bar(snap, width)
        assert len(line) <= width
        assert "12.3 MB / 32.0 MB" in line and "4.1 MB/s" in line and "0:05 left" in line and "38%" in line
    assert render_bar(snap, 80).startswith("[" + "#" * 11)
    assert len(render_bar(snap, 30)) == 30 and "[" not in render_bar(snap, 30)  # too narrow for a bar: words only
    assert render_line(snap) == "12.3 MB of 32.0 MB (38%), 4.1 MB/s, 0:05 left"


def test_snapshot_as_json():
    snap = Snapshot(done=5, total=10, elapsed=1.23456, rate=None, eta=None)
    assert snap.to_dict() == {"bytes": 5, "total": 10, "elapsed_s": 1.235, "rate_Bps": None, "eta_s": None}


# -- files ------------------------------------------------------------------------------------


def test_describe_files_hashes_and_checks(tmp_path):
    (tmp_path / "a").write_bytes(b"abc")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a").write_bytes(b"other")
    (tmp_path / "back\\slash").write_bytes(b"x")
    (files,) = [describe_files([tmp_path / "a"])]
    assert files[0].entry == FileEntry("a", 3, hashlib.sha256(b"abc").hexdigest())
    for paths, words in (([tmp_path / "missing"], "no such file"), ([tmp_path / "sub"], "is a directory"),
                         ([tmp_path / "a", tmp_path / "sub" / "a"], "twice"),
                         ([tmp_path / "back\\slash"], "path separator")):
        with pytest.raises(ConfigError, match=words):
            describe_files(paths)


def test_partial_file_takes_its_name_only_when_checked(tmp_path):
    data = os.urandom(1000)
    partial = PartialFile(tmp_path, FileEntry("f.bin", 1000, hashlib.sha256(data).hexdigest()))
    partial.write(data[:500])
    assert not (tmp_path / "f.bin").exists() and partial.temp.parent == tmp_path
    assert partial.temp.name.startswith(".f.bin.") and partial.temp.name.endswith(".icepeer-partial")
    partial.write(data[500:])
    with pytest.raises(IntegrityError, match="more bytes than its size"):
        partial.write(b"!")
    partial.flush_and_sync()
    partial.check()
    partial.publish(overwrite=False)
    assert (tmp_path / "f.bin").read_bytes() == data and list(tmp_path.iterdir()) == [tmp_path / "f.bin"]


def test_a_corrupt_partial_file_fails_its_check(tmp_path):
    partial = PartialFile(tmp_path, FileEntry("f", 3, hashlib.sha256(b"abc").hexdigest()))
    partial.write(b"abd")
    partial.flush_and_sync()
    with pytest.raises(IntegrityError, match="SHA-256 mismatch"):
        partial.check()
    partial.discard()
    assert list(tmp_path.iterdir()) == []
    short = PartialFile(tmp_path, FileEntry("g", 3, SHA))
    short.write(b"ab")
    with pytest.raises(IntegrityError, match="2 bytes arrived, 3 announced"):
        short.check()
    short.discard()


def test_publishing_never_replaces_a_name_that_appeared_meanwhile(tmp_path):
    partial = PartialFile(tmp_path, FileEntry("f", 1, hashlib.sha256(b"x").hexdigest()))
    partial.write(b"x")
    partial.flush_and_sync()
    (tmp_path / "f").write_text("someone else's")
    with pytest.raises(Refused, match="appeared in the target directory meanwhile"):
        partial.publish(overwrite=False)
    assert (tmp_path / "f").read_text() == "someone else's"
    partial.publish(overwrite=True)
    assert (tmp_path / "f").read_bytes() == b"x"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_check_targets(tmp_path):
    manifest = Manifest((FileEntry("a", 1, SHA), FileEntry("d", 1, SHA), FileEntry("link", 1, SHA)))
    check_targets(manifest, tmp_path, overwrite=False)
    (tmp_path / "a").write_text("x")
    with pytest.raises(Refused, match=r"'a' already exists .* --overwrite"):
        check_targets(manifest, tmp_path, overwrite=False)
    check_targets(manifest, tmp_path, overwrite=True)
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")  # a dangling symlink counts as existing
    (tmp_path / "a").unlink()
    with pytest.raises(Refused, match="'link' already exists"):
        check_targets(manifest, tmp_path, overwrite=False)
    (tmp_path / "d").mkdir()
    with pytest.raises(Refused, match="'d' is a directory"):
        check_targets(manifest, tmp_path, overwrite=True)
    huge = Manifest((FileEntry("big", 2**52, SHA),))
    with pytest.raises(Refused, match="not enough space"):
        check_targets(huge, tmp_path, overwrite=False)
