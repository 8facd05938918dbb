import json

import pytest

from signaling.exceptions import ProtocolError
from signaling.protocol import (
    MAX_DEPTH,
    Error,
    IceServers,
    IceServersRequest,
    Join,
    Joined,
    Leave,
    PeerJoined,
    PeerLeft,
    Relayed,
    Signal,
    parse_client,
    parse_server,
    valid_room,
)


@pytest.mark.parametrize(
    "frame, expected",
    [
        ('{"type":"join","room":"abc"}', Join("abc")),
        ('{"type":"signal","to":"p1","data":{"x":[1,2]}}', Signal("p1", {"x": [1, 2]})),
        ('{"type":"signal","to":"p1","data":null}', Signal("p1", None)),
        ('{"type":"leave"}', Leave()),
        ('{"type":"leave","future":"field"}', Leave()),
        ('{"type":"ice-servers"}', IceServersRequest()),
    ],
)
def test_parse_client_valid(frame, expected):
    assert parse_client(frame) == expected


@pytest.mark.parametrize(
    "frame, code",
    [
        ("not json", "bad-json"),
        ("", "bad-json"),
        ("[1,2]", "bad-message"),
        ('"join"', "bad-message"),
        ("{}", "bad-message"),
        ('{"type": 3}', "bad-message"),
        ('{"type":"dance"}', "bad-message"),
        ('{"type":"join"}', "bad-message"),
        ('{"type":"join","room":7}', "bad-message"),
        ('{"type":"join","room":true}', "bad-message"),
        ('{"type":"join","room":""}', "bad-room"),
        ('{"type":"join","room":"a b"}', "bad-room"),
        ('{"type":"join","room":"' + "x" * 65 + '"}', "bad-room"),
        ('{"type":"join","room":"../etc"}', "bad-room"),
        ('{"type":"signal","data":1}', "bad-message"),
        ('{"type":"signal","to":"x"}', "bad-message"),
        ('{"type":"signal","to":["x"],"data":1}', "bad-message"),
        (b'{"type":"leave"}', "binary-frame"),
        ("[" * 100000 + "]" * 100000, "too-deep"),
        ('{"type":"signal","to":"x","data":' + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "}", "too-deep"),
    ],
)
def test_parse_client_invalid(frame, code):
    with pytest.raises(ProtocolError) as info:
        parse_client(frame)
    assert info.value.code == code
    assert str(info.value)


def test_depth_limit_is_exact():
    ok = '{"type":"signal","to":"x","data":' + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "}"
    assert isinstance(parse_client(ok), Signal)


def test_room_names():
    assert valid_room("a") and valid_room("A-z_0.9") and valid_room("x" * 64)
    assert not valid_room("") and not valid_room("x" * 65) and not valid_room("é") and not valid_room(None)


@pytest.mark.parametrize(
    "message",
    [
        Joined("r", "id1", ("id0",), ({"urls": ["stun:h:1"]},)),
        Joined("r", "id1", (), ({"urls": ["turn:h:1"], "username": "1:id1", "credential": "c"},), 3600.0),
        IceServers(({"urls": ["turn:h:1"], "username": "2:id1", "credential": "d"},), 600.0),
        IceServers(),
        PeerJoined("id2"),
        PeerLeft("id2"),
        Relayed("id0", {"type": "offer", "sdp": "v=0"}),
        Error("room-full", "room 'r' is full"),
    ],
)
def test_server_messages_round_trip(message):
    assert parse_server(message.to_json()) == message


@pytest.mark.parametrize(
    "frame",
    [
        '{"type":"ice-servers","ice_servers":{}}',
        '{"type":"ice-servers","ice_servers":[],"ice_servers_ttl":"3600"}',
        '{"type":"ice-servers","ice_servers":[],"ice_servers_ttl":true}',
        '{"type":"ice-servers","ice_servers":[],"ice_servers_ttl":0}',
        '{"type":"ice-servers","ice_servers":[],"ice_servers_ttl":-5}',
        '{"type":"ice-servers","ice_servers":[],"ice_servers_ttl":1e300}',
        '{"type":"joined","room":"r","peer_id":"p","peers":[],"ice_servers":[],"ice_servers_ttl":[1]}',
        '{"type":"joined","room":"r","peer_id":"p","peers":[],"ice_servers":"stun:x"}',
    ],
)
def test_malformed_ice_servers_from_a_server_are_refused(frame):
    # A hostile or broken server must not make the client sleep for ever or for no time.
    with pytest.raises(ProtocolError) as info:
        parse_server(frame)
    assert info.value.code == "bad-message"


def test_serialized_forms_match_the_docs():
    assert json.loads(Relayed("a", 1).to_json()) == {"type": "signal", "from": "a", "data": 1}
    assert json.loads(Signal("b", 2).to_json()) == {"type": "signal", "to": "b", "data": 2}
    assert json.loads(Joined("r", "p").to_json()) == {
        "type": "joined", "room": "r", "peer_id": "p", "peers": [], "ice_servers": []}
    assert json.loads(Joined("r", "p", ice_servers_ttl=60).to_json())["ice_servers_ttl"] == 60
    assert json.loads(IceServersRequest().to_json()) == {"type": "ice-servers"}
    assert json.loads(IceServers((), 60).to_json()) == {"type": "ice-servers", "ice_servers": [], "ice_servers_ttl": 60}
