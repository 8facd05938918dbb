"""The forward logic without I/O: frames, hello, flow-control windows, the UDP flow table, addresses."""

from __future__ import annotations

import pytest

from icepeer.errors import ConfigError, IcepeerError
from icepeer.forward import (
    Endpoint,
    FlowTable,
    HandshakeFailed,
    Hello,
    Mode,
    ProtocolViolation,
    ReceiveWindow,
    SendCredit,
    Transport,
    parse_endpoint,
)
from icepeer.forward.framing import (
    Data,
    Eof,
    Reset,
    Window,
    decode_datagram,
    encode_datagram,
    parse,
    serialize,
    stream_id,
    stream_label,
)

# -- frames ------------------------------------------------------------------------


@pytest.mark.parametrize("frame, wire", [
    (Data(b"abc"), b"\x00abc"),
    (Eof(), b"\x01"),
    (Window(65536), b"\x02\x00\x01\x00\x00"),
    (Reset("refused"), b"\x03refused"),
])
def test_frames_roundtrip(frame, wire):
    assert serialize(frame) == wire
    assert parse(wire) == frame


@pytest.mark.parametrize("message, words", [
    (b"", "empty message"),
    ("text", "text message"),
    (b"\x00", "empty DATA"),
    (b"\x01x", "EOF frame with a body"),
    (b"\x02\x00\x01", "WINDOW frame with a 2-byte body"),
    (b"\x02\x00\x00\x00\x00", "WINDOW frame of 0 bytes"),
    (b"\x09", "unknown frame type 9"),
])
def test_bad_frames_are_violations(message, words):
    with pytest.raises(ProtocolViolation, match=words):
        parse(message)


def test_reset_reason_is_bounded_and_never_breaks_decoding():
    assert len(serialize(Reset("x" * 5000))) == 1025
    assert parse(b"\x03\xff\xfe") == Reset("\ufffd\ufffd")


def test_stream_labels():
    assert stream_label(7) == "tcp/7" and stream_id("tcp/7") == 7
    for label in ("udp", "tcp/", "tcp/-1", "tcp/1x", "chat", "tcp/12345678901"):
        assert stream_id(label) is None


def test_datagrams_keep_their_bytes():
    assert encode_datagram(1, b"") == b"\x00\x00\x00\x01"
    assert decode_datagram(encode_datagram(0xFFFFFFFF, b"\x00payload")) == (0xFFFFFFFF, b"\x00payload")
    for bad in (b"\x00\x00\x01", "text"):
        with pytest.raises(ProtocolViolation):
            decode_datagram(bad)


# -- hello -------------------------------------------------------------------------


def test_hello_roundtrip_and_fit():
    listen = Hello(Mode.LISTEN, Transport.TCP, 1 << 20)
    connect = Hello(Mode.CONNECT, Transport.TCP, 4096)
    assert Hello.from_json(listen.to_json()) == listen
    listen.check(connect)
    connect.check(listen)


@pytest.mark.parametrize("mine, theirs, words", [
    (Hello(Mode.LISTEN, Transport.TCP, 1), Hello(Mode.LISTEN, Transport.TCP, 1), "both sides use --listen"),
    (Hello(Mode.CONNECT, Transport.UDP, 1), Hello(Mode.CONNECT, Transport.UDP, 1), "both sides use --connect"),
    (Hello(Mode.LISTEN, Transport.TCP, 1), Hello(Mode.CONNECT, Transport.UDP, 1), "forwards tcp, the peer udp"),
    (Hello(Mode.LISTEN, Transport.TCP, 1), Hello(Mode.CONNECT, Transport.TCP, 1, version=2), "version 2"),
])
def test_hello_misfits(mine, theirs, words):
    with pytest.raises(HandshakeFailed, match=words):
        mine.check(theirs)


@pytest.mark.parametrize("text", [
    "not json", "[]", '{"type":"chat"}', '{"type":"hello","version":1,"mode":"both","protocol":"tcp","window":1}',
    '{"type":"hello","version":1,"mode":"listen","protocol":"sctp","window":1}',
    '{"type":"hello","version":1,"mode":"listen","protocol":"tcp","window":0}',
    '{"type":"hello","version":1,"mode":"listen","protocol":"tcp","window":true}',
    '{"type":"hello","version":"1","mode":"listen","protocol":"tcp","window":1}',
])
def test_bad_hellos(text):
    with pytest.raises(HandshakeFailed, match="not an icepeer forward"):
        Hello.from_json(text)


def test_errors_are_icepeer_errors():
    assert issubclass(HandshakeFailed, IcepeerError) and issubclass(ProtocolViolation, IcepeerError)


# -- flow control --------------------------------------------------------------------


def test_send_credit_is_spent_and_returned():
    credit = SendCredit(100)
    assert credit.take(60) == 60 and credit.take(60) == 40 and credit.take(1) == 0
    credit.grant(70)
    assert credit.available == 70
    with pytest.raises(ProtocolViolation, match="more window than was spent"):
        credit.grant(31)


def test_receive_window_returns_credit_by_quarters():
    window = ReceiveWindow(100)
    window.received(60)
    assert window.consumed(20) == 0  # below a quarter
    assert window.consumed(10) == 30  # a quarter or more: give it back
    assert (window.buffered, window.unreturned, window.peak) == (30, 0, 60)
    window.received(70)  # 30 buffered + 70 = the whole window
    with pytest.raises(ProtocolViolation, match="beyond its window"):
        window.received(1)


def test_a_sender_and_a_receiver_never_exceed_the_window():
    """Simulate the two ends: whatever the receiver's pace, outstanding bytes stay within the window."""
    credit, window = SendCredit(1000), ReceiveWindow(1000)
    in_flight: list[int] = []
    for step in range(2000):
        n = credit.take(137)
        if n:
            window.received(n)
            in_flight.append(n)
        if step % 3 == 0 and in_flight:  # a slow reader: consumes one frame every third step
            increment = window.consumed(in_flight.pop(0))
            if increment:
                credit.grant(increment)
        assert window.outstanding + credit.available == 1000
        assert window.buffered <= 1000


# -- the UDP flow table ----------------------------------------------------------------


def test_flows_by_key_and_id_with_fresh_ids():
    table: FlowTable[tuple[str, int]] = FlowTable(idle_timeout=10)
    a, _ = table.open(("10.0.0.1", 5000), now=0)
    b, _ = table.open(("10.0.0.2", 5000), now=0)
    assert (a.id, b.id) == (1, 2)
    assert table.by_key(("10.0.0.1", 5000)) is a and table.by_id(2) is b
    with pytest.raises(KeyError):
        table.open(("10.0.0.1", 5000), now=1)
    table.remove(a)
    c, _ = table.open(("10.0.0.1", 5000), now=1)
    assert c.id == 3  # never the id of a flow that just went away


def test_idle_flows_expire_and_traffic_refreshes():
    table: FlowTable[str] = FlowTable(idle_timeout=30)
    a, _ = table.open("a", now=0)
    b, _ = table.open("b", now=10)
    assert table.next_expiry() == 30
    table.touch(a, now=25)
    assert table.expire(now=39) == []
    assert table.expire(now=40) == [b]
    assert table.next_expiry() == 55
    assert table.expire(now=55) == [a] and len(table) == 0 and table.next_expiry() is None


def test_a_full_table_evicts_the_least_recently_used():
    table: FlowTable[str] = FlowTable(idle_timeout=30, max_flows=2)
    a, _ = table.open("a", now=0)
    b, _ = table.open("b", now=1)
    table.touch(a, now=2)
    _, evicted = table.open("c", now=3)
    assert evicted is b and table.by_id(b.id) is None and [f.key for f in table] == ["a", "c"]


def test_given_ids_are_used_as_they_are():
    table: FlowTable[int] = FlowTable()
    flow, _ = table.open(77, now=0, flow_id=77)
    assert table.by_id(77) is flow is table.by_key(77)


def test_ids_wrap_around_and_skip_live_ones():
    table: FlowTable[int] = FlowTable()
    table._next_id = 0xFFFFFFFF
    first, _ = table.open(1, now=0)
    second, _ = table.open(2, now=0)
    assert (first.id, second.id) == (0xFFFFFFFF, 1)
    table._next_id = 1
    third, _ = table.open(3, now=0)
    assert third.id == 2


# -- addresses ---------------------------------------------------------------------------


@pytest.mark.parametrize("text, endpoint", [
    ("127.0.0.1:8080", Endpoint("127.0.0.1", 8080)),
    ("example.org:22", Endpoint("example.org", 22)),
    ("8080", Endpoint("127.0.0.1", 8080)),
    (":8080", Endpoint("127.0.0.1", 8080)),
    ("[::1]:53", Endpoint("::1", 53)),
    ("0.0.0.0:0", Endpoint("0.0.0.0", 0)),
])
def test_endpoints(text, endpoint):
    assert parse_endpoint(text, allow_port_zero=True) == endpoint


@pytest.mark.parametrize("text, words", [
    ("host:", "expected HOST:PORT"), ("host:http", "expected HOST:PORT"), ("::1:53", "brackets"),
    ("[::1]53", "IPv6"), ("host:70000", "bad port"), ("host:0", "bad port"),
])
def test_bad_endpoints(text, words):
    with pytest.raises(ConfigError, match=words):
        parse_endpoint(text)


def test_endpoint_text():
    assert str(Endpoint("::1", 53)) == "[::1]:53" and str(Endpoint("127.0.0.1", 80)) == "127.0.0.1:80"
