"""Codes between real peers: the honest path, a wrong code, and a signaling server that attacks."""

from __future__ import annotations

import asyncio
import base64
import re
from typing import Any

import pytest

import icepeer
from icepeer.dtls import Certificate, DtlsEndpoint
from signaling.protocol import Relayed, Signal
from signaling.rooms import Hub, Outgoing

from .peers import LOOPBACK, channels, server_with_hub

pytestmark = pytest.mark.integration

MISMATCH = "the code did not match, or someone interfered: no data was sent"


async def code_pair(url: str, *, maker_code: icepeer.Code | None = None, joiner: Any = None,
                    timeout: float = 10) -> list[Any]:
    """A peer that makes a code and one that joins it (``joiner(code)`` may change it); both results."""
    maker = icepeer.connect(url, code=maker_code or icepeer.new_code(), host_addresses=LOOPBACK, timeout=timeout)
    made: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    maker.peer.on_code = made.set_result
    first = asyncio.ensure_future(maker)
    code = await asyncio.wait_for(made, 5)
    second = icepeer.connect(url, code=joiner(code) if joiner else code, host_addresses=LOOPBACK, timeout=timeout)
    results = await asyncio.gather(first, second, return_exceptions=True)
    return list(results)


async def close_all(results: list[Any]) -> None:
    for r in results:
        if isinstance(r, icepeer.Peer):
            await r.close()


async def test_the_same_code_connects_and_both_see_the_same_verifier(signaling_server):
    a, b = await code_pair(signaling_server.url)
    try:
        assert a.code == b.code and re.fullmatch(r"[0-9]+-[a-z]+-[a-z]+", a.code)
        assert a.room == b.room == "code-" + a.code.split("-")[0]  # all the server saw
        assert a.verifier == b.verifier is not None
        assert "authenticated" in a.report().timings_ms
        # No False Start with a code: the key confirmation is bound to the whole handshake.
        assert not any(p._conn.stack.dtls.false_started for p in (a, b))
        ca, cb = await channels(a, b, "chat")
        await ca.send("end to end")
        assert await cb.recv() == "end to end"
    finally:
        await close_all([a, b])


async def test_a_wrong_code_stops_both_sides_before_any_data(signaling_server):
    def typo(code: str) -> str:
        nameplate, first, second = code.split("-")
        return f"{nameplate}-{first}-{'zebra' if second != 'zebra' else 'zipper'}"

    results = await code_pair(signaling_server.url, joiner=typo)
    await close_all(results)
    assert all(isinstance(r, icepeer.AuthenticationFailed) and str(r) == MISMATCH for r in results), results


async def test_a_code_nobody_waits_with_is_a_clear_error(signaling_server):
    with pytest.raises(icepeer.ConnectFailed, match="nobody is waiting with code 4242"):
        await icepeer.connect(signaling_server.url, code="4242-guitar-ribbon", host_addresses=LOOPBACK, timeout=5)


async def test_a_code_is_used_once(signaling_server):
    a, b = await code_pair(signaling_server.url)
    code = a.code
    await close_all([a, b])
    with pytest.raises(icepeer.ConnectFailed, match="nobody is waiting"):
        await icepeer.connect(signaling_server.url, code=code, host_addresses=LOOPBACK, timeout=5)


# -- a signaling server that attacks ------------------------------------------------------


class MitmHub(Hub):
    """Relays the PAKE untouched (it cannot forge it) and puts its own DTLS certificate in every SDP,
    as a server must that wants to terminate DTLS towards both peers and read the channels."""

    fingerprint = Certificate().fingerprint()
    seen: list[str]

    def _signal(self, session, message: Signal) -> list[Outgoing]:
        data = message.data
        if isinstance(data, dict) and data.get("type") in ("offer", "answer"):
            sdp = re.sub(r"a=fingerprint:sha-256 \S+", f"a=fingerprint:sha-256 {self.fingerprint}", data["sdp"])
            message = Signal(message.to, {**data, "sdp": sdp})
        return super()._signal(session, message)


class ReflectingHub(Hub):
    """Sends each side's PAKE message back to it, as if the other side had sent it."""

    def _signal(self, session, message: Signal) -> list[Outgoing]:
        data = message.data
        if isinstance(data, dict) and data.get("type") == "pake":
            return [(session, Relayed(message.to, data))]
        return super()._signal(session, message)


class GarblingHub(Hub):
    """Replaces each PAKE message with garbage of the right shape."""

    def _signal(self, session, message: Signal) -> list[Outgoing]:
        data = message.data
        if isinstance(data, dict) and data.get("type") == "pake":
            message = Signal(message.to, {**data, "spake2": base64.b64encode(b"\x41" + b"\x07" * 32).decode()})
        return super()._signal(session, message)


async def test_a_server_that_swaps_the_dtls_certificate_is_caught():
    async with server_with_hub(MitmHub(room_size=2)) as server:
        results = await code_pair(server.url, timeout=5)
    await close_all(results)
    assert all(isinstance(r, icepeer.AuthenticationFailed) and str(r) == MISMATCH for r in results), results


async def test_two_dtls_sessions_are_caught_even_with_every_message_relayed(signaling_server, monkeypatch):
    # A party in the middle that relayed the PAKE and the SDP untouched and
    # still ran DTLS with each side would give each side another session:
    # another keying-material exporter (RFC 5705). One side sees another here.
    original = DtlsEndpoint.export_keying_material
    calls = []

    def other_session(self, label, length, context=None):
        material = original(self, label, length, context)
        calls.append(material)
        return material if len(calls) > 1 else bytes(b ^ 0xFF for b in material)

    monkeypatch.setattr(DtlsEndpoint, "export_keying_material", other_session)
    results = await code_pair(signaling_server.url, timeout=5)
    await close_all(results)
    assert len(calls) == 2
    assert all(isinstance(r, icepeer.AuthenticationFailed) for r in results), results


@pytest.mark.parametrize("hub, words", [(ReflectingHub, "reflected"), (GarblingHub, "unusable PAKE message")])
async def test_a_reflected_or_garbled_pake_message_is_a_clear_error(hub, words):
    async with server_with_hub(hub(room_size=2)) as server:
        results = await code_pair(server.url, timeout=3)
    await close_all(results)
    errors = [r for r in results if isinstance(r, icepeer.ConnectFailed)]
    assert errors and any(words in str(e) for e in errors), results
