"""A real browser is a peer: headless Chromium's RTCPeerConnection against ``icepeer connect``.

Everything runs in a network namespace this test makes, holding only its own
loopback (nothing can leave it): the signaling server, a page server, Chromium
and icepeer. Both ways round: icepeer offering to the browser, and the
browser offering to icepeer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import require, require_root_netns

HERE = Path(__file__).with_name("browser")
CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # Host candidates as addresses (not mDNS names), loopback included: the
    # namespace has nothing else.
    "--disable-features=WebRtcHideLocalIpsWithMdns", "--allow-loopback-in-peer-connection",
]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    require(path is not None, "the browser test needs Chromium (apt-get install chromium)")
    assert path is not None
    return path


@contextlib.asynccontextmanager
async def namespace():
    name = "ipb" + secrets.token_hex(3)
    subprocess.run(["ip", "netns", "add", name], check=True)
    procs: list[asyncio.subprocess.Process] = []

    async def spawn(*argv: str, **kw):
        proc = await asyncio.create_subprocess_exec("ip", "netns", "exec", name, *argv, **kw)
        procs.append(proc)
        return proc

    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        yield spawn
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        subprocess.run(["ip", "netns", "del", name], check=False)


async def line_with(stream, text: str, timeout: float = 20) -> str:
    async with asyncio.timeout(timeout):
        while True:
            line = (await stream.readline()).decode()
            assert line, f"stream ended before {text!r}"
            if text in line:
                return line


#: Chromium's field trials for SNAP and SPED (off by default in Chromium 156).
WARP_TRIALS = "--force-fieldtrials=WebRTC-Sctp-Snap/Enabled/WebRTC-IceHandshakeDtls/Enabled/"


@pytest.mark.parametrize("trials", [False, True], ids=["standard", "snap+sped"])
@pytest.mark.parametrize("browser_offers", [False, True], ids=["icepeer-offers", "browser-offers"])
async def test_chromium_and_icepeer_talk(browser_offers: bool, trials: bool) -> None:
    require_root_netns()
    browser = chromium()
    pipe = asyncio.subprocess.PIPE
    async with namespace() as spawn:
        signaling = await spawn(sys.executable, "-m", "signaling", "--port", "8765", stdout=pipe, stderr=pipe)
        await line_with(signaling.stdout, "listening on")
        pages = await spawn(sys.executable, str(HERE / "server.py"), "8000", stdout=pipe)
        await line_with(pages.stdout, "serving")
        url = "http://127.0.0.1:8000/peer.html?signal=ws://127.0.0.1:8765&room=browser"
        peer_argv = [sys.executable, "-m", "icepeer", "connect", "--room", "browser", "--signal",
                     "ws://127.0.0.1:8765", "--host-address", "127.0.0.1", "--json", "--timeout", "20"]
        with tempfile.TemporaryDirectory() as profile:
            chrome_argv = [browser, *CHROMIUM_FLAGS, *([WARP_TRIALS] if trials else []),
                           f"--user-data-dir={profile}", url]
            if browser_offers:
                await spawn(*chrome_argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                await line_with(pages.stdout, "joined 0", timeout=30)  # the browser is in the room
                peer = await spawn(*peer_argv, stdin=pipe, stdout=pipe, stderr=pipe)
            else:
                peer = await spawn(*peer_argv, stdin=pipe, stdout=pipe, stderr=pipe)
                await asyncio.sleep(0.5)
                await spawn(*chrome_argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            connected = json.loads(await line_with(peer.stdout, '"connected"', timeout=30))
            assert connected["local"]["type"] == "host"
            # Chromium with its field trials answers (or offers) a=sctp-init and the sped ICE
            # option, and icepeer uses both with it; without them, the standard sequence.
            assert connected["accelerated"] == (["snap", "sped"] if trials else [])
            peer.stdin.write(b"hello from icepeer\n")
            await peer.stdin.drain()
            got = [json.loads(await line_with(peer.stdout, '"message"')) for _ in range(2)]
            assert sorted(g["data"] for g in got) == ["echo: hello from icepeer", "hello from the browser"]
            await line_with(pages.stdout, "got hello from icepeer")
            peer.stdin.close()
            out, err = await asyncio.wait_for(peer.communicate(), 15)
            assert peer.returncode == 0, err.decode()[-800:]
            assert json.loads(out.decode().splitlines()[-1])["event"] == "closed"
            await line_with(pages.stdout, "bye")  # our goodbye reached the browser
