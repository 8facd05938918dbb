import itertools

import pytest

from signaling.limits import TokenBucket
from signaling.protocol import Error, Join, Joined, Leave, PeerJoined, PeerLeft, Relayed, Signal
from signaling.rooms import Hub, Session, new_peer_id
from signaling.turn_rest import mint


def make_hub(**kw):
    counter = itertools.count()
    return Hub(new_id=lambda: f"p{next(counter)}", **kw)


def test_join_then_second_peer_is_announced():
    hub = make_hub(ice_servers=lambda pid: [{"urls": ["stun:s"], "for": pid}])
    a, b = Session(), Session()
    (out,) = hub.receive(a, Join("r"))
    assert out == (a, Joined("r", "p0", (), ({"urls": ["stun:s"], "for": "p0"},)))
    out = hub.receive(b, Join("r"))
    assert out[0] == (b, Joined("r", "p1", ("p0",), ({"urls": ["stun:s"], "for": "p1"},)))
    assert out[1] == (a, PeerJoined("p1"))
    assert hub.members("r") == ["p0", "p1"]


def test_room_full_and_room_size():
    hub = make_hub()
    a, b, c = Session(), Session(), Session()
    hub.receive(a, Join("r"))
    hub.receive(b, Join("r"))
    ((who, err),) = hub.receive(c, Join("r"))
    assert who is c and isinstance(err, Error) and err.code == "room-full"
    assert not c.joined
    big = make_hub(room_size=3)
    for s in (a, b, c):
        s.room = s.peer_id = None
        assert isinstance(big.receive(s, Join("r"))[0][1], Joined)


def test_signal_routing_and_errors():
    hub = make_hub()
    a, b, stranger = Session(), Session(), Session()
    hub.receive(a, Join("r"))
    hub.receive(b, Join("r"))
    assert hub.receive(a, Signal("p1", {"sdp": 1})) == [(b, Relayed("p0", {"sdp": 1}))]
    assert hub.relayed == 1
    assert hub.receive(a, Signal("nobody", 1))[0][1].code == "unknown-peer"
    assert hub.receive(a, Signal("p0", 1))[0][1].code == "unknown-peer"  # not to yourself
    assert hub.receive(stranger, Signal("p0", 1))[0][1].code == "not-joined"
    # A peer in another room is unknown too.
    hub.receive(stranger, Join("other"))
    assert hub.receive(stranger, Signal("p0", 1))[0][1].code == "unknown-peer"
    assert hub.receive(a, Join("again"))[0][1].code == "already-joined"


def test_leave_and_disconnect_notify_and_forget_rooms():
    hub = make_hub()
    a, b = Session(), Session()
    hub.receive(a, Join("r"))
    hub.receive(b, Join("r"))
    assert hub.receive(a, Leave()) == [(b, PeerLeft("p0"))]
    assert not a.joined and hub.room_count == 1
    assert hub.disconnect(b) == []
    assert hub.room_count == 0
    assert hub.disconnect(b) == []  # twice is harmless
    # After leaving, the session may join again.
    assert isinstance(hub.receive(a, Join("r"))[0][1], Joined)


def test_peer_ids_are_unguessable():
    ids = {new_peer_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(len(i) >= 22 for i in ids)


def test_token_bucket():
    now = [0.0]
    bucket = TokenBucket(rate=10, burst=3, clock=lambda: now[0])
    assert [bucket.allow() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.1
    assert bucket.allow() and not bucket.allow()
    now[0] += 100
    assert sum(bucket.allow() for _ in range(10)) == 3
    with pytest.raises(ValueError):
        TokenBucket(rate=0, burst=1)


def test_turn_rest_credentials_match_coturn_scheme():
    # Worked example computed independently with:
    #   printf '%s' '1700000060:peer' | openssl dgst -sha1 -hmac s3cret -binary | base64
    creds = mint("s3cret", "peer", 60, clock=lambda: 1700000000.4)
    assert creds.username == "1700000060:peer"
    assert creds.expires == 1700000060
    assert creds.password == "LamMc4BTN21UScpvj+PIGGZX5/k="
