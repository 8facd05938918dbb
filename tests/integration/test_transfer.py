"""send_files / receive_files between two real peers, and a hand-rolled sender that lies."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path

import pytest

from icepeer.transfer import (
    LABEL,
    BadManifest,
    IntegrityError,
    Refused,
    TransferError,
    describe_files,
    receive_files,
    send_files,
)

from .peers import channels, two_peers


def make(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".icepeer-partial"))


async def test_files_arrive_intact_with_progress(signaling_server, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    paths = [make(src / "big.bin", 3 * 1024 * 1024 + 17), make(src / "small.txt", 10), make(src / "empty", 0)]
    files = describe_files(paths)
    sent_progress: list[int] = []
    received_progress: list[int] = []
    async with two_peers(signaling_server.url) as (a, b):
        ca, cb = await channels(a, b, LABEL)
        sent, received = await asyncio.gather(
            send_files(ca, files, on_progress=sent_progress.append),
            receive_files(cb, dst, on_progress=received_progress.append),
        )
    assert sent == received and sent.ok and [r.name for r in sent.files] == ["big.bin", "small.txt", "empty"]
    for path in paths:
        assert (dst / path.name).read_bytes() == path.read_bytes()
    assert leftovers(dst) == []
    total = sum(p.stat().st_size for p in paths)
    assert received_progress[-1] == sent_progress[-1] == total
    assert len(received_progress) >= 3 and received_progress == sorted(received_progress)
    assert oct((dst / "small.txt").stat().st_mode & 0o777) != oct(0o600)  # not mkstemp's private mode


async def test_existing_file_is_refused_then_overwritten_on_request(signaling_server, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    (dst / "a.txt").write_text("keep me")
    files = describe_files([make(src / "a.txt", 100)])
    async with two_peers(signaling_server.url) as (a, b):
        ca, cb = await channels(a, b, LABEL)
        sent, received = await asyncio.gather(send_files(ca, files), receive_files(cb, dst),
                                              return_exceptions=True)
        assert isinstance(received, Refused) and "'a.txt' already exists" in str(received)
        assert isinstance(sent, Refused) and "the receiver refused: 'a.txt' already exists" in str(sent)
        assert (dst / "a.txt").read_text() == "keep me"

        ca, cb = await channels(a, b, LABEL + "2")
        done, _ = await asyncio.gather(send_files(ca, files), receive_files(cb, dst, overwrite=True))
        assert done.ok and (dst / "a.txt").read_bytes() == (src / "a.txt").read_bytes()


async def lying_sender(channel, files: list[dict], data: list[bytes]) -> dict:
    """Offer ``files`` and send ``data`` as they are, whatever the offer said; the receiver's last word."""
    await channel.send(json.dumps({"type": "offer", "version": 1, "files": files}))
    reply = json.loads(await channel.recv())
    if reply["type"] != "accept":
        return reply
    for blob in data:
        for i in range(0, len(blob), 65536):
            await channel.send(blob[i:i + 65536])
    while (message := json.loads(await channel.recv()))["type"] == "ack":
        pass
    return message


def entry(name: str, content: bytes, *, sha_of: bytes | None = None) -> dict:
    return {"name": name, "size": len(content), "sha256": hashlib.sha256(content if sha_of is None else sha_of).hexdigest()}


async def test_sha_mismatch_is_detected_and_never_takes_the_name(signaling_server, tmp_path):
    good, bad = os.urandom(200_000), os.urandom(300_000)
    corrupted = bytearray(bad)
    corrupted[150_000] ^= 0xFF  # one flipped bit on the way
    async with two_peers(signaling_server.url) as (a, b):
        ca, cb = await channels(a, b, LABEL)
        verdict, done = await asyncio.gather(
            lying_sender(ca, [entry("bad.bin", bad), entry("good.bin", good)], [bytes(corrupted), good]),
            receive_files(cb, tmp_path))
    assert not done.ok
    assert done.files[0].name == "bad.bin" and not done.files[0].ok and "SHA-256 mismatch" in done.files[0].reason
    assert done.files[1].ok
    assert verdict["type"] == "done" and verdict["files"][0]["ok"] is False
    assert not (tmp_path / "bad.bin").exists() and (tmp_path / "good.bin").read_bytes() == good
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/passwd", "", "a\\b", "nul\x00byte", "..", "sub/dir.txt"])
async def test_traversal_names_are_refused(signaling_server, tmp_path, name):
    target = tmp_path / "inbox"
    target.mkdir()
    async with two_peers(signaling_server.url) as (a, b):
        ca, cb = await channels(a, b, LABEL)
        verdict, received = await asyncio.gather(
            lying_sender(ca, [entry(name, b"owned")], [b"owned"]), receive_files(cb, target),
            return_exceptions=True)
    assert isinstance(received, BadManifest)
    assert verdict["type"] == "reject" and "file name" in verdict["reason"]
    assert list(target.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["inbox"]


async def test_more_bytes_than_announced_is_a_protocol_error(signaling_server, tmp_path):
    async with two_peers(signaling_server.url) as (a, b):
        ca, cb = await channels(a, b, LABEL)
        sender = asyncio.create_task(lying_sender(ca, [entry("x", b"12345")], [b"1234567"]))
        with pytest.raises(TransferError, match="more bytes than the offer announced"):
            await receive_files(cb, tmp_path)
        sender.cancel()
    assert list(tmp_path.iterdir()) == []


async def test_a_file_changing_while_sent_fails_both_sides(signaling_server, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    paths = [make(src / "moving.bin", 500_000), make(src / "next.bin", 1000)]
    files = describe_files(paths)
    paths[0].write_bytes(os.urandom(500_000))  # same size, other bytes
    async with two_peers(signaling_server.url) as (a, b):
        ca, cb = await channels(a, b, LABEL)
        sent, received = await asyncio.gather(send_files(ca, files), receive_files(cb, dst),
                                              return_exceptions=True)
    assert isinstance(sent, IntegrityError) and "'moving.bin' changed while it was being sent" in str(sent)
    # The receiver checks the file itself before it hears the sender's abort; the rest is not sent.
    assert isinstance(received, TransferError) and "the sender aborted" in str(received)
    assert list(dst.iterdir()) == []


async def test_the_sender_waits_for_acks_beyond_its_window(signaling_server, tmp_path):
    """A receiver that stops reading holds the sender at one window, not the whole file."""
    path = make(tmp_path / "f.bin", 2 * 1024 * 1024)
    files = describe_files([path])
    async with two_peers(signaling_server.url) as (a, b):
        ca, cb = await channels(a, b, LABEL)
        sender = asyncio.create_task(send_files(ca, files, window=256 * 1024))
        offer = await cb.recv()
        assert json.loads(offer)["type"] == "offer"
        await cb.send('{"type":"accept"}')
        await asyncio.sleep(1.0)  # nobody acks
        assert not sender.done()
        assert 256 * 1024 <= ca.sent * 65536 <= 256 * 1024 + 2 * 65536  # one window and a message, then waiting
        sender.cancel()


async def test_two_senders_or_two_receivers_say_so(signaling_server, tmp_path):
    path = make(tmp_path / "f", 10)
    async with two_peers(signaling_server.url) as (a, b):
        ca, cb = await channels(a, b, LABEL)
        results = await asyncio.gather(send_files(ca, describe_files([path])), send_files(cb, describe_files([path])),
                                       return_exceptions=True)
        assert all(isinstance(r, TransferError) and "the peer is sending too" in str(r) for r in results)
        ca, cb = await channels(a, b, LABEL + "2")
        results = await asyncio.gather(receive_files(ca, tmp_path, offer_timeout=0.3),
                                       receive_files(cb, tmp_path, offer_timeout=0.3), return_exceptions=True)
        assert all(isinstance(r, TransferError) and "is it running 'icepeer send'?" in str(r) for r in results)
