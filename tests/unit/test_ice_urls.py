import pytest

from icecommon.urls import BadUrl, IceServerUrl, parse_ice_servers, parse_ice_url


@pytest.mark.parametrize(
    "text, expected",
    [
        ("stun:stun.example.org", IceServerUrl("stun", "stun.example.org", 3478)),
        ("stun:1.2.3.4:19302", IceServerUrl("stun", "1.2.3.4", 19302)),
        ("stuns:h", IceServerUrl("stuns", "h", 5349, "tcp")),
        ("turn:h:3479", IceServerUrl("turn", "h", 3479, "udp")),
        ("turn:h?transport=tcp", IceServerUrl("turn", "h", 3478, "tcp")),
        ("turns:h:443?transport=tcp", IceServerUrl("turns", "h", 443, "tcp")),
        ("turn:[2001:db8::1]:3478", IceServerUrl("turn", "2001:db8::1", 3478)),
        ("turn:u:p%40ss@h:9?transport=udp", IceServerUrl("turn", "h", 9, "udp", "u", "p@ss")),
        ("TURN:h", IceServerUrl("turn", "h", 3478)),
    ],
)
def test_valid(text, expected):
    assert parse_ice_url(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "", "h:3478", "http://h", "stun:", "stun:h:0", "stun:h:70000", "stun:h:abc",
        "stun:h?transport=udp", "turn:h?transport=sctp", "turn:h?foo=bar", "turns:h?transport=udp",
        "stun:u:p@h", "turn:user@h", "turn:h:1:2",
    ],
)
def test_invalid(text):
    with pytest.raises(BadUrl):
        parse_ice_url(text)


def test_url_round_trip_without_leaking_credentials():
    url = parse_ice_url("turn:u:p@h:9?transport=tcp")
    assert str(url) == "turn:h:9?transport=tcp"
    assert parse_ice_url(url.url(credentials=True)) == url


def test_rtc_ice_server_entries():
    urls = parse_ice_servers(
        [
            {"urls": "stun:a"},
            {"urls": ["turn:b", "turns:b"], "username": "1:x", "credential": "c"},
        ]
    )
    assert [(u.scheme, u.username, u.password) for u in urls] == [
        ("stun", None, None), ("turn", "1:x", "c"), ("turns", "1:x", "c")]
    with pytest.raises(BadUrl):
        parse_ice_servers([{"urls": []}])
    with pytest.raises(BadUrl):
        parse_ice_servers(["stun:a"])  # type: ignore[list-item]
