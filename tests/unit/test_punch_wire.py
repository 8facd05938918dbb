"""Punch packets, offers and STUN Binding transactions: encode, decode, refuse."""

from __future__ import annotations

import pytest
from aioice import stun as codec

from icepeer.punch import BadOffer, Candidate, CandidateType, Offer
from icepeer.punch.binding import BindingTransaction, parse_stun
from icepeer.punch.wire import (
    OVERHEAD,
    BadTag,
    Flags,
    MalformedPacket,
    Packet,
    PacketType,
    peek_token,
    session_key,
)

KEY = session_key(b"a" * 16, b"b" * 16)
TO = bytes(range(8))


@pytest.mark.parametrize("packet", [
    Packet(PacketType.PROBE, TO, 7),
    Packet(PacketType.REPLY, TO, 7, observed=("203.0.113.7", 40000)),
    Packet(PacketType.REPLY, TO, 1, observed=("2001:db8::1", 1)),
    Packet(PacketType.DATA, TO, payload=b"\x00datagram", flags=Flags.NONE),
    Packet(PacketType.DATA, TO, payload="текст".encode(), flags=Flags.TEXT),
    Packet(PacketType.MSG, TO, 2**32 - 1, b"fragment", Flags.FIN | Flags.TEXT),
    Packet(PacketType.MSG, TO, 0, b"", Flags.FIN),
    Packet(PacketType.ACK, TO, 12),
    Packet(PacketType.BYE, TO, 3),
])
def test_roundtrip(packet):
    data = packet.serialize(KEY)
    assert data[:4] == b"IPUN" and peek_token(data) == TO
    assert Packet.parse(data, KEY) == packet
    body = {PacketType.DATA: 0, PacketType.REPLY: 4 + 3 + (4 if packet.observed and
                                                             "." in packet.observed[0] else 16)}
    assert len(data) == OVERHEAD + body.get(packet.type, 4) + len(packet.payload)


def test_key_is_symmetric_and_secret_dependent():
    assert session_key(b"a" * 16, b"b" * 16) == session_key(b"b" * 16, b"a" * 16)
    assert session_key(b"a" * 16, b"c" * 16) != KEY


def test_observed_address_is_not_in_clear():
    """XORed as XOR-MAPPED-ADDRESS is (RFC 8489 section 14.2): an ALG finds nothing to rewrite."""
    data = Packet(PacketType.REPLY, TO, 1, observed=("203.0.113.7", 40000)).serialize(KEY)
    assert bytes([203, 0, 113, 7]) not in data
    assert (40000).to_bytes(2, "big") not in data


def test_tampering_and_wrong_key_fail_the_tag():
    data = bytearray(Packet(PacketType.MSG, TO, 1, b"hello", Flags.FIN).serialize(KEY))
    with pytest.raises(BadTag):
        Packet.parse(bytes(data), session_key(b"x" * 16, b"y" * 16))
    data[-20] ^= 0x01  # a payload bit
    with pytest.raises(BadTag):
        Packet.parse(bytes(data), KEY)


@pytest.mark.parametrize("data", [
    b"",
    b"IPUN",
    Packet(PacketType.ACK, TO, 1).serialize(KEY)[:-1],
    b"XXXX" + Packet(PacketType.ACK, TO, 1).serialize(KEY)[4:],
])
def test_short_or_foreign_is_malformed(data):
    with pytest.raises((MalformedPacket, BadTag)):
        Packet.parse(data, KEY)


def test_valid_tag_but_bad_body_is_malformed():
    import hashlib
    import hmac

    def tagged(head_and_body: bytes) -> bytes:
        return head_and_body + hmac.new(KEY, head_and_body, hashlib.sha256).digest()[:16]

    head = b"IPUN" + bytes([1, PacketType.ACK, 0, 0]) + TO
    with pytest.raises(MalformedPacket, match="ACK body of 2 bytes"):
        Packet.parse(tagged(head + b"\x00\x01"), KEY)
    with pytest.raises(MalformedPacket, match="unknown packet type"):
        Packet.parse(tagged(b"IPUN" + bytes([1, 77, 0, 0]) + TO + b"\x00" * 4), KEY)
    with pytest.raises(MalformedPacket, match="unknown version"):
        Packet.parse(tagged(b"IPUN" + bytes([2, 1, 0, 0]) + TO + b"\x00" * 4), KEY)
    reply = b"IPUN" + bytes([1, PacketType.REPLY, 0, 0]) + TO + b"\x00\x00\x00\x01" + b"\x05\x00"
    with pytest.raises(MalformedPacket, match="bad address"):
        Packet.parse(tagged(reply), KEY)


# -- offers -------------------------------------------------------------------


def test_offer_roundtrip_through_json():
    offer = Offer.fresh([Candidate(CandidateType.HOST, "10.0.0.2", 5000),
                         Candidate(CandidateType.SRFLX, "203.0.113.7", 7000)])
    data = offer.to_json()
    assert set(data) == {"punch"} and data["punch"]["v"] == 1
    assert data["punch"]["candidates"][1] == {"type": "srflx", "address": "203.0.113.7",
                                              "port": 7000, "protocol": "udp"}
    assert Offer.from_json(data) == offer
    assert Offer.fresh().token != Offer.fresh().token


def good_offer() -> dict:
    return {"punch": {"v": 1, "token": "00" * 8, "key": "11" * 16,
                      "candidates": [{"type": "host", "address": "10.0.0.2", "port": 5000}]}}


@pytest.mark.parametrize("mutate, message", [
    (lambda o: o.update(punch=[]), "'punch' must be an object"),
    (lambda o: o["punch"].update(v=2), "version"),
    (lambda o: o["punch"].update(token="zz" * 8), "'token' must be 16 hex digits"),
    (lambda o: o["punch"].update(key="11"), "'key' must be 32 hex digits"),
    (lambda o: o["punch"].update(candidates="10.0.0.2"), "'candidates' must be a list"),
    (lambda o: o["punch"]["candidates"].append({"type": "relay", "address": "1.2.3.4", "port": 1}),
     "unknown candidate type"),
    (lambda o: o["punch"]["candidates"].append({"type": "prflx", "address": "1.2.3.4", "port": 1}),
     "learned, never offered"),
    (lambda o: o["punch"]["candidates"].append({"type": "host", "address": "example.org", "port": 1}),
     "IP literal"),
    (lambda o: o["punch"]["candidates"].append({"type": "host", "address": "1.2.3.4", "port": 0}),
     "bad candidate port"),
    (lambda o: o["punch"]["candidates"].append({"type": "host", "address": "1.2.3.4", "port": True}),
     "bad candidate port"),
    (lambda o: o["punch"]["candidates"].append(
        {"type": "host", "address": "1.2.3.4", "port": 1, "protocol": "tcp"}), "protocol"),
    (lambda o: o["punch"].update(candidates=[{"type": "host", "address": "10.0.0.1", "port": p}
                                             for p in range(1, 18)]), "at most 16"),
])
def test_bad_offers_are_refused(mutate, message):
    offer = good_offer()
    mutate(offer)
    with pytest.raises(BadOffer, match=message):
        Offer.from_json(offer)


def test_offer_dedupes_candidates():
    offer = good_offer()
    offer["punch"]["candidates"].append({"type": "srflx", "address": "10.0.0.2", "port": 5000})
    assert [c.type for c in Offer.from_json(offer).candidates] == [CandidateType.HOST]


# -- STUN Binding ---------------------------------------------------------------


def test_binding_schedule_and_success():
    tr = BindingTransaction(("192.0.2.1", 3478), 10.0, rto=0.1, timeout=1.0)
    assert tr.next_deadline() == 10.0
    (sent,) = tr.poll(10.0)
    request = codec.parse_message(sent[0])
    assert request.message_method == codec.Method.BINDING and "FINGERPRINT" in request.attributes
    assert tr.poll(10.05) == [] and tr.next_deadline() == pytest.approx(10.1)
    assert len(tr.poll(10.1)) == 1 and tr.next_deadline() == pytest.approx(10.3)
    other = codec.Message(codec.Method.BINDING, codec.Class.RESPONSE)
    other.attributes["XOR-MAPPED-ADDRESS"] = ("1.1.1.1", 1)
    assert not tr.response_received(other, ("192.0.2.1", 3478))  # another transaction id
    response = codec.Message(codec.Method.BINDING, codec.Class.RESPONSE,
                             transaction_id=tr.transaction_id)
    response.attributes["XOR-MAPPED-ADDRESS"] = ("203.0.113.7", 7000)
    parsed = parse_stun(bytes(response))
    assert parsed is not None and tr.response_received(parsed, ("192.0.2.1", 3478))
    assert tr.done and tr.mapped == ("203.0.113.7", 7000) and tr.next_deadline() is None


def test_binding_old_mapped_address_and_missing_address():
    for attrs, mapped in (({"MAPPED-ADDRESS": ("198.51.100.2", 9)}, ("198.51.100.2", 9)), ({}, None)):
        tr = BindingTransaction(("192.0.2.1", 3478), 0.0)
        response = codec.Message(codec.Method.BINDING, codec.Class.RESPONSE,
                                 transaction_id=tr.transaction_id, attributes=dict(attrs))
        assert tr.response_received(response, ("192.0.2.1", 3478))
        assert tr.mapped == mapped and (tr.error is None) == (mapped is not None)


def test_binding_stops_after_max_sends_and_times_out():
    tr = BindingTransaction(("192.0.2.1", 3478), 0.0, rto=0.01, timeout=5.0, max_sends=3)
    sends = [t / 100 for t in range(500) if tr.poll(t / 100)]
    assert sends == pytest.approx([0.0, 0.01, 0.03])
    assert not tr.done
    assert tr.poll(5.0) == [] and tr.done and "within 5 s" in (tr.error or "")


@pytest.mark.parametrize("data", [b"", b"\x00\x01\x00\x00", b"\x00" * 20, b"\x00\x01\x00\x04\x21\x12\xa4\x42"
                                  + b"\x00" * 12 + b"\x00\x24\x00\x00"])
def test_parse_stun_never_raises(data):
    assert parse_stun(data) is None
