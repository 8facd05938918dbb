"""The real signaling server on a free loopback port, driven by real websocket clients."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from signaling.client import ServerRefused, SignalingClient, SignalingUnavailable, join
from signaling.protocol import IceServers, PeerJoined, PeerLeft, Relayed
from signaling.server import ServerConfig, SignalingServer


async def recv_json(ws, timeout=2.0):
    async with asyncio.timeout(timeout):
        return json.loads(await ws.recv())


async def raw_join(url, room, **kw):
    ws = await connect(url, **kw)
    await ws.send(json.dumps({"type": "join", "room": room}))
    joined = await recv_json(ws)
    assert joined["type"] == "joined"
    return ws, joined


async def test_happy_path(signaling_server):
    url = signaling_server.url
    async with join(url, "room1") as a:
        assert a.peers == [] and a.room == "room1" and a.ice_servers == []
        async with join(url, "room1") as b:
            assert b.peers == [a.peer_id]
            assert await a.recv() == PeerJoined(b.peer_id)
            await a.signal(b.peer_id, {"type": "offer", "sdp": "v=0\r\n"})
            assert await b.recv() == Relayed(a.peer_id, {"type": "offer", "sdp": "v=0\r\n"})
            await b.signal(a.peer_id, {"candidate": "", "sdpMid": "0", "sdpMLineIndex": 0})
            assert (await a.recv()).data["candidate"] == ""
        assert await a.recv() == PeerLeft(b.peer_id)
        assert a.peers == []


async def test_subprotocol_negotiation(signaling_server):
    url = signaling_server.url
    async with connect(url, subprotocols=["icepeer.v1"]) as ws:
        assert ws.subprotocol == "icepeer.v1"
    async with connect(url) as ws:  # none asked for: v1
        assert ws.subprotocol is None
        await ws.send('{"type":"join","room":"x"}')
        assert (await recv_json(ws))["type"] == "joined"
    with pytest.raises(InvalidStatus) as info:
        async with connect(url, subprotocols=["icepeer.v2"]):
            pass
    assert info.value.response.status_code == 400


async def test_third_joiner_gets_room_full(signaling_server):
    url = signaling_server.url
    async with join(url, "full"), join(url, "full"):
        with pytest.raises(ServerRefused) as info:
            await SignalingClient.connect(url, "full")
        assert info.value.code == "room-full"


@pytest.mark.parametrize(
    "frame, code",
    [
        ("{oops", "bad-json"),
        ("[]", "bad-message"),
        ('{"no":"type"}', "bad-message"),
        ('{"type":"hug"}', "bad-message"),
        ('{"type":"join","room":42}', "bad-message"),
        ('{"type":"join","room":"bad room!"}', "bad-room"),
        ('{"type":"signal","to":"x","data":1}', "not-joined"),
        (b"\x00\x01binary", "binary-frame"),
        ("[" * 20000 + "]" * 20000, "too-deep"),
    ],
)
async def test_bad_input_gets_an_error_and_the_session_goes_on(signaling_server, frame, code):
    url = signaling_server.url
    async with join(url, "bystanders") as other, connect(url) as ws:
        await ws.send(frame)
        reply = await recv_json(ws)
        assert reply["type"] == "error" and reply["code"] == code and reply["message"]
        # The same connection still works, and so does everybody else's.
        await ws.send('{"type":"join","room":"bystanders"}')
        joined = await recv_json(ws)
        assert joined["type"] == "joined" and joined["peers"] == [other.peer_id]
        assert await other.recv() == PeerJoined(joined["peer_id"])
    metrics = await fetch(signaling_server, "/metrics")
    assert f'icepeer_signaling_errors_total{{code="{code}"}} 1' in metrics


async def test_unknown_peer(signaling_server):
    async with join(signaling_server.url, "r") as a:
        await a.signal("not-a-peer", {"x": 1})
        event = await a.recv()
        assert event.code == "unknown-peer"


async def test_oversized_frame_closes_with_1009():
    async with SignalingServer(ServerConfig(port=0, max_message_size=4096)) as server:
        async with join(server.url, "r") as bystander:
            ws, _ = await raw_join(server.url, "r")
            await ws.send(json.dumps({"type": "signal", "to": bystander.peer_id, "data": "x" * 5000}))
            with pytest.raises(ConnectionClosed):
                await recv_json(ws)
            assert ws.close_code == 1009
            assert isinstance(await bystander.recv(), PeerJoined)
            assert isinstance(await bystander.recv(), PeerLeft)
            # The server is fine: a frame under the limit is relayed.
            ws2, j2 = await raw_join(server.url, "r")
            await ws2.send(json.dumps({"type": "signal", "to": bystander.peer_id, "data": "y" * 3000}))
            assert isinstance(await bystander.recv(), PeerJoined)
            assert (await bystander.recv()).data == "y" * 3000
            await ws2.close()


async def test_flood_is_rate_limited_then_closed_with_1008():
    async with SignalingServer(ServerConfig(port=0, rate=5, burst=10)) as server:
        async with join(server.url, "r") as victim:
            ws, _ = await raw_join(server.url, "r")
            assert isinstance(await victim.recv(), PeerJoined)
            for _ in range(40):
                await ws.send(json.dumps({"type": "signal", "to": victim.peer_id, "data": 1}))
            codes = []
            with pytest.raises(ConnectionClosed):
                while True:
                    codes.append((await recv_json(ws))["code"])
            assert ws.close_code == 1008
            assert "rate-limited" in codes
            # The victim received at most the burst (minus the join) and is still connected.
            relayed = 0
            while True:
                event = await victim.recv()
                if isinstance(event, PeerLeft):
                    break
                relayed += 1
            assert 1 <= relayed <= 10


async def test_connection_that_never_joins_is_closed():
    async with SignalingServer(ServerConfig(port=0, join_timeout=0.3)) as server:
        async with connect(server.url) as ws:
            with pytest.raises(ConnectionClosed):
                await recv_json(ws, timeout=3)
            assert ws.close_code == 1008
        # One that joins in time stays.
        async with join(server.url, "r") as client:
            await asyncio.sleep(0.5)
            await client.signal("nobody", 1)
            assert (await client.recv()).code == "unknown-peer"


async def test_allowed_origin():
    async with SignalingServer(ServerConfig(port=0, allowed_origins=["https://app.example"])) as server:
        async with connect(server.url, origin="https://app.example"):
            pass
        async with connect(server.url):  # non-browser clients send no Origin
            pass
        with pytest.raises(InvalidStatus) as info:
            async with connect(server.url, origin="https://evil.example"):
                pass
        assert info.value.response.status_code == 403


async def fetch(server, path):
    def get():
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=5) as resp:
            return resp.status, resp.headers.get("Content-Type"), resp.read().decode()

    status, ctype, body = await asyncio.to_thread(get)
    assert status == 200
    if path == "/metrics":
        assert ctype.startswith("text/plain; version=0.0.4")
    return body


async def test_healthz_and_metrics(signaling_server):
    assert await fetch(signaling_server, "/healthz") == "ok\n"
    async with join(signaling_server.url, "m") as a, join(signaling_server.url, "m") as b:
        await a.recv()
        await b.signal(a.peer_id, "hi")
        await a.recv()
        body = await fetch(signaling_server, "/metrics")
    assert "icepeer_signaling_connections 2" in body
    assert "icepeer_signaling_rooms 1" in body
    assert "icepeer_signaling_messages_relayed_total 1" in body
    assert "icepeer_signaling_connections_total 2" in body


async def test_unreachable_server_is_a_clear_error():
    from icepeer.coturn import free_port

    port = free_port()
    with pytest.raises(SignalingUnavailable, match="cannot reach"):
        await SignalingClient.connect(f"ws://127.0.0.1:{port}", "r", timeout=2)


async def test_ice_servers_are_handed_out(signaling_server):
    config = ServerConfig(port=0, ice_servers=["stun:198.51.100.1:3478"], turn_secret="s",
                          turn_urls=["turn:198.51.100.1:3478?transport=udp"], turn_ttl=600)
    async with SignalingServer(config) as server, join(server.url, "r") as client:
        stun_entry, turn_entry = client.ice_servers
        assert stun_entry == {"urls": ["stun:198.51.100.1:3478"]}
        assert turn_entry["urls"] == ["turn:198.51.100.1:3478?transport=udp"]
        expiry, _, name = turn_entry["username"].partition(":")
        assert name == client.peer_id and int(expiry) > 0
        assert turn_entry["credential"] != "s"


async def test_fresh_ice_servers_on_request(signaling_server):
    config = ServerConfig(port=0, turn_secret="s", turn_urls=["turn:198.51.100.1:3478?transport=udp"], turn_ttl=600)
    async with SignalingServer(config) as server, join(server.url, "r") as client:
        assert client.ice_servers_ttl == 600
        first = client.ice_servers
        await asyncio.sleep(1.1)  # the expiry is in whole seconds
        await client.request_ice_servers()
        event = await asyncio.wait_for(client.recv(), 5)
        assert isinstance(event, IceServers) and event.ice_servers_ttl == 600
        assert client.ice_servers == list(event.ice_servers) != first
        expiry, _, name = client.ice_servers[0]["username"].partition(":")
        assert name == client.peer_id and int(expiry) > int(first[0]["username"].partition(":")[0])
    # Without credentials that expire, no TTL is given (and a client has nothing to refresh).
    async with join(signaling_server.url, "r2") as client:
        assert client.ice_servers_ttl is None


async def test_fresh_ice_servers_only_for_a_joined_peer(signaling_server):
    async with connect(signaling_server.url) as ws:
        await ws.send('{"type":"ice-servers"}')
        answer = await recv_json(ws)
        assert answer["type"] == "error" and answer["code"] == "not-joined"
        await ws.send('{"type":"join","room":"r"}')  # the session goes on
        assert (await recv_json(ws))["type"] == "joined"


# -- joining in the handshake: one round trip fewer ----------------------------------------


async def test_a_join_in_the_url_is_answered_without_a_join_frame(signaling_server):
    async with connect(signaling_server.url + "/?join=early") as ws:
        assert ws.response.headers["Icepeer-Joined"] == "1"
        joined = await recv_json(ws)
        assert joined["type"] == "joined" and joined["room"] == "early" and joined["peers"] == []
    async with connect(signaling_server.url + "/?join=bad%20name") as ws:  # checked like a frame
        assert (await recv_json(ws))["type"] == "error"
    async with connect(signaling_server.url) as ws:  # no join in the URL: no header, as before
        assert "Icepeer-Joined" not in ws.response.headers


async def test_the_client_joins_in_the_url_and_still_joins_a_server_that_ignores_it():
    from websockets.asyncio.server import serve

    frames = []

    async def older_server(ws):
        # A server from before: it waits for the join frame whatever the URL says.
        frame = json.loads(await ws.recv())
        frames.append(frame)
        await ws.send(json.dumps({"type": "joined", "room": frame["room"], "peer_id": "p1", "peers": [],
                                  "ice_servers": []}))
        await ws.wait_closed()

    async with serve(older_server, "127.0.0.1", 0, subprotocols=["icepeer.v1"]) as server:
        port = server.sockets[0].getsockname()[1]
        async with join(f"ws://127.0.0.1:{port}", "room-x") as client:
            assert client.room == "room-x" and client.peer_id == "p1"
    assert frames == [{"type": "join", "room": "room-x"}]


async def test_the_client_sends_no_join_frame_to_a_server_that_took_it_from_the_url(signaling_server):
    async with join(signaling_server.url, "room-y") as a:
        async with join(signaling_server.url, "room-y") as b:
            assert b.peers == [a.peer_id]
            assert await a.recv() == PeerJoined(b.peer_id)
            # A second join (a frame after the URL's) would be answered with an error.
            for client in (a, b):
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(client.recv(), 0.3)
