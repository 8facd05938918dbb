"""``icepeer send`` and ``icepeer receive`` as subprocesses (and a hand-rolled sender that lies)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path

import icepeer
from icepeer.code import parse_code

from .cli import ICEPEER, Result, finish, run, start

HOST = "127.0.0.1"


def common(server) -> list[str]:
    return ["--signal", server.url, "--host-address", HOST]


def make(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def partials(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if p.name.endswith(".icepeer-partial")]


async def test_files_arrive_intact_with_a_printed_code(signaling_server, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    paths = [make(src / "big.bin", 4 * 1024 * 1024 + 5), make(src / "notes.txt", 1234), make(src / "empty", 0)]
    sender = await start("send", *map(str, paths), *common(signaling_server), "--json")
    assert sender.stdout is not None
    code_event = json.loads(await asyncio.wait_for(sender.stdout.readline(), 15))
    assert code_event["event"] == "code" and parse_code(code_event["code"]).nameplate  # 7-guitar-ribbon
    receiver = await start("receive", code_event["code"], "--output", str(dst),
                           *common(signaling_server), "--json")
    rs, rr = await asyncio.gather(finish(sender, timeout=60), finish(receiver, timeout=60))
    assert rs.code == 0, rs.stderr
    assert rr.code == 0, rr.stderr
    for path in paths:
        assert (dst / path.name).read_bytes() == path.read_bytes()
    assert partials(dst) == []

    received = rr.events
    offer = next(e for e in received if e["event"] == "offer")
    assert [f["name"] for f in offer["files"]] == ["big.bin", "notes.txt", "empty"]
    assert offer["files"][0]["sha256"] == hashlib.sha256(paths[0].read_bytes()).hexdigest()
    files = [e for e in received if e["event"] == "file"]
    assert [(f["file"], f["ok"], f["path"]) for f in files] == [
        (p.name, True, str(dst / p.name)) for p in paths]
    progress = [e for e in received if e["event"] == "progress"]
    assert progress and progress[-1]["bytes"] == progress[-1]["total"] == sum(p.stat().st_size for p in paths)
    done = received[-1]
    assert done["event"] == "done" and done["ok"] and done["files"] == 3 and done["MBps"] > 0
    assert rs.events[-1]["event"] == "done" and rs.events[-1]["ok"]
    assert "Traceback" not in rs.stderr + rr.stderr
    assert "on the other machine: icepeer receive " + code_event["code"] in rs.stderr


async def test_an_existing_file_is_refused(signaling_server, tmp_path):
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "report.pdf").write_text("the receiver's own")
    path = make(tmp_path / "report.pdf", 5000)
    sender = await start("send", str(path), "--room", "exists", *common(signaling_server))
    receiver = await start("receive", "--room", "exists", "-o", str(tmp_path / "inbox"), *common(signaling_server))
    rs, rr = await asyncio.gather(finish(sender), finish(receiver))
    assert rr.code == 1 and rs.code == 1
    assert "'report.pdf' already exists" in rr.stderr and "--overwrite" in rr.stderr
    assert "the receiver refused: 'report.pdf' already exists" in rs.stderr
    assert (tmp_path / "inbox" / "report.pdf").read_text() == "the receiver's own"
    assert partials(tmp_path / "inbox") == []


async def lying_sender(url: str, room: str, files: list[dict], data: bytes) -> dict:
    """An in-process sender that offers ``files`` and sends ``data``: the receiver's last word."""
    async with icepeer.connect(url, room, host_addresses=[HOST], timeout=15) as peer:
        channel = await peer.channel("transfer")
        await channel.send(json.dumps({"type": "offer", "version": 1, "files": files}))
        reply = json.loads(await channel.recv())
        if reply["type"] != "accept":
            return reply
        for i in range(0, len(data), 65536):
            await channel.send(data[i:i + 65536])
        while (message := json.loads(await channel.recv()))["type"] == "ack":
            pass
        return message


async def test_traversal_names_are_refused(signaling_server, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for room, name in (("trav1", "../escaped.txt"), ("trav2", "/tmp/absolute.txt"), ("trav3", "a\\b"), ("trav4", "")):
        receiver = await start("receive", "--room", room, "-o", str(inbox), *common(signaling_server), "--json")
        entry = {"name": name, "size": 5, "sha256": hashlib.sha256(b"owned").hexdigest()}
        verdict, result = await asyncio.gather(lying_sender(signaling_server.url, room, [entry], b"owned"),
                                               finish(receiver))
        assert verdict["type"] == "reject" and "file name" in verdict["reason"], verdict
        assert result.code == 1 and "file name" in result.stderr and "Traceback" not in result.stderr
        assert result.events[-1]["event"] == "error"
    assert list(inbox.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["inbox"]
    assert not Path("/tmp/absolute.txt").exists()


async def test_a_sha_mismatch_is_detected(signaling_server, tmp_path):
    data = os.urandom(300_000)
    entry = {"name": "data.bin", "size": len(data), "sha256": hashlib.sha256(b"something else").hexdigest()}
    receiver = await start("receive", "--room", "sha", "-o", str(tmp_path), *common(signaling_server), "--json")
    verdict, result = await asyncio.gather(lying_sender(signaling_server.url, "sha", [entry], data),
                                           finish(receiver))
    assert verdict == {"type": "done", "files": [{"name": "data.bin", "ok": False, "reason": verdict["files"][0]["reason"]}]}
    assert "SHA-256 mismatch" in verdict["files"][0]["reason"]
    assert result.code == 1
    assert "FAILED data.bin: 'data.bin': SHA-256 mismatch" in result.stderr
    assert list(tmp_path.iterdir()) == []  # neither the final name nor a partial file


async def test_progress_bar_on_a_terminal_and_lines_with_verbose(signaling_server, tmp_path):
    import pty

    (tmp_path / "dst").mkdir()
    path = make(tmp_path / "f.bin", 3 * 1024 * 1024)
    master, slave = pty.openpty()
    sender = await asyncio.create_subprocess_exec(
        *ICEPEER, "send", str(path), "--room", "bar", *common(signaling_server),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=slave)
    os.close(slave)
    receiver = await start("receive", "--room", "bar", "-o", str(tmp_path / "dst"), "-v", *common(signaling_server))
    rr = await finish(receiver, timeout=60)
    await asyncio.wait_for(sender.wait(), 30)
    terminal = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        terminal += chunk
    os.close(master)
    assert sender.returncode == 0 and rr.code == 0, rr.stderr
    text = terminal.decode()
    assert "\r[" in text and "#" in text and "3.1 MB / 3.1 MB" in text and "left" in text
    # Not a terminal, -v: plain lines, no carriage returns.
    assert "of 3.1 MB (" in rr.stderr and "\r" not in rr.stderr


async def test_usage_errors_exit_2(tmp_path):
    (tmp_path / "dir").mkdir()
    results: list[Result] = await asyncio.gather(
        run("send", str(tmp_path / "missing.txt")),
        run("send", str(tmp_path / "dir")),
        run("send"),
        run("receive", "--room", "r", "--output", str(tmp_path / "nowhere")),
        run("receive"),  # stdin is not a terminal: nobody to ask for the code
    )
    words = ["no such file", "is a directory", "the following arguments are required: FILE",
             "not a directory", "give the code that 'icepeer send' printed"]
    for result, expected in zip(results, words):
        assert result.code == 2 and expected in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


# -- codes against a wrong guess and a signaling server in the middle ------------------------


async def send_and_receive(server, src: Path, dst: Path, *, change=lambda code: code) -> tuple[Result, Result]:
    """``send`` makes a code; ``receive`` is given ``change(code)``; both results."""
    sender = await start("send", str(src), *common(server), "--json", "--timeout", "10")
    assert sender.stdout is not None
    event = json.loads(await asyncio.wait_for(sender.stdout.readline(), 15))
    assert event["event"] == "code"
    receiver = await start("receive", change(event["code"]), "--output", str(dst), *common(server), "--json",
                           "--timeout", "10")
    return await asyncio.gather(finish(sender, timeout=30), finish(receiver, timeout=30))


def wrong(code: str) -> str:
    nameplate, first, second = code.split("-")
    return f"{nameplate}-{first}-{'zebra' if second != 'zebra' else 'zipper'}"


async def test_a_wrong_code_writes_nothing_and_both_exit_1(signaling_server, tmp_path):
    src, dst = make(tmp_path / "secret.bin", 100_000), tmp_path / "dst"
    dst.mkdir()
    rs, rr = await send_and_receive(signaling_server, src, dst, change=wrong)
    assert rs.code == rr.code == 1, rs.stderr + rr.stderr
    message = "the code did not match, or someone interfered: no data was sent"
    assert message in rs.stderr and message in rr.stderr
    assert list(dst.iterdir()) == []
    assert "Traceback" not in rs.stderr + rr.stderr


async def test_a_signaling_server_in_the_middle_reads_nothing_and_nothing_is_written(tmp_path):
    # The attack that worked against --room: the server puts its own DTLS
    # certificate into each SDP to terminate DTLS towards both sides.
    from tests.integration.peers import server_with_hub
    from tests.integration.test_pake import MitmHub

    src, dst = make(tmp_path / "secret.bin", 100_000), tmp_path / "dst"
    dst.mkdir()
    async with server_with_hub(MitmHub(room_size=2)) as server:
        rs, rr = await send_and_receive(server, src, dst)
    assert rs.code == rr.code == 1, rs.stderr + rr.stderr
    assert "someone interfered" in rs.stderr and "someone interfered" in rr.stderr
    assert list(dst.iterdir()) == []


async def test_verify_prints_the_same_string_on_both_sides(signaling_server, tmp_path):
    src, dst = make(tmp_path / "a.bin", 1000), tmp_path / "dst"
    dst.mkdir()
    sender = await start("send", str(src), *common(signaling_server), "--json", "--verify")
    assert sender.stdout is not None
    event = json.loads(await asyncio.wait_for(sender.stdout.readline(), 15))
    receiver = await start("receive", "--code", event["code"], "-o", str(dst), *common(signaling_server),
                           "--json", "--verify")
    rs, rr = await asyncio.gather(finish(sender, timeout=30), finish(receiver, timeout=30))
    assert rs.code == rr.code == 0, rs.stderr + rr.stderr
    [vs] = [e["verifier"] for e in rs.events if e["event"] == "verifier"]
    [vr] = [e["verifier"] for e in rr.events if e["event"] == "verifier"]
    assert vs == vr and f"verify with the other side: {vs}" in rs.stderr
