"""SPED (draft-hancke-webrtc-sped-00): DTLS inside the ICE checks. The state without I/O, and its STUN side."""

from __future__ import annotations

import struct

import pytest
from aioice import stun

from icepeer.sped import DTLS_IN_STUN, DTLS_IN_STUN_ACK, MAX_ACKS, Sped, crc32
from icepeer.sped_stun import SpedStun

pytestmark = pytest.mark.unit

HELLO = b"\x16\xfe\xff" + b"c" * 40
FLIGHT = [b"\x16\xfe\xfd" + bytes([i]) * 60 for i in range(3)]


def test_before_anything_is_sent_an_empty_datagram_says_we_speak_sped():
    s = Sped(dtls_server=True)
    assert s.embed() == {DTLS_IN_STUN_ACK: b"", DTLS_IN_STUN: b""}


def test_a_flight_goes_out_round_robin_until_acknowledged():
    s = Sped(dtls_server=False)
    s.flight(FLIGHT)
    sent = [s.embed()[DTLS_IN_STUN] for _ in range(4)]
    assert sent == [*FLIGHT, FLIGHT[0]]
    s.receive({DTLS_IN_STUN_ACK: struct.pack("!LL", crc32(FLIGHT[0]), crc32(FLIGHT[2]))})
    assert s.pending == [FLIGHT[1]]
    s.answered({DTLS_IN_STUN: FLIGHT[1]})  # the answer to the request that carried it
    assert s.pending == [] and s.embed()[DTLS_IN_STUN] == b""


def test_a_new_flight_or_a_resend_replaces_what_was_pending():
    s = Sped(dtls_server=False)
    s.flight(FLIGHT[:2])
    s.flight([HELLO])
    assert s.pending == [HELLO]


def test_received_datagrams_are_acknowledged_by_their_crc_at_most_four():
    s = Sped(dtls_server=True)
    datagrams = [b"\x16" + bytes([i]) * 30 for i in range(6)]
    assert [s.receive({DTLS_IN_STUN: d}) for d in datagrams] == datagrams
    assert s.receive({DTLS_IN_STUN: datagrams[0]}) is None  # a duplicate is not processed twice
    ack = s.embed()[DTLS_IN_STUN_ACK]
    assert len(ack) == 4 * MAX_ACKS
    assert struct.unpack("!4L", ack) == tuple(crc32(d) for d in datagrams[-4:])


@pytest.mark.parametrize("attributes", [
    {DTLS_IN_STUN: b""},                    # "nothing to send"
    {DTLS_IN_STUN: b"\x00not dtls"},          # first byte outside 20..63 (RFC 9443)
    {DTLS_IN_STUN: b"\x16x", DTLS_IN_STUN_ACK: b"\x01\x02\x03"},  # a bad ack is ignored, not the data
])
def test_what_is_not_dtls_is_discarded_and_a_bad_ack_ignored(attributes):
    s = Sped(dtls_server=True)
    s.flight([HELLO])
    got = s.receive(attributes)
    assert got == (b"\x16x" if attributes.get(DTLS_IN_STUN) == b"\x16x" else None)
    assert s.pending == [HELLO]


def test_an_oversized_ack_is_ignored():
    s = Sped(dtls_server=True)
    s.flight([HELLO])
    s.receive({DTLS_IN_STUN_ACK: struct.pack("!5L", *([crc32(HELLO)] * 5))})
    assert s.pending == [HELLO]


def test_the_closing_handshake_ends_the_embedding():
    client, server = Sped(dtls_server=False), Sped(dtls_server=True)
    client.flight([HELLO])
    client.dtls_connected()  # a DTLS 1.2 client has nothing more to send
    assert client.pending == [] and DTLS_IN_STUN not in client.embed()
    server.dtls_connected()
    server.flight(FLIGHT[:1])  # the server's last flight stays until acknowledged
    assert server.embed()[DTLS_IN_STUN] == FLIGHT[0]
    server.receive({DTLS_IN_STUN_ACK: b""})  # the client is done, but has not got our flight
    assert server.active and server.embed()[DTLS_IN_STUN] == FLIGHT[0]
    client.receive({DTLS_IN_STUN: FLIGHT[0]})
    server.receive(client.embed())  # its ack, and no datagram
    assert not server.active and server.embed() == {}


# -- on STUN messages ------------------------------------------------------------


def request(attributes: dict[str, object], *, password: str = "local-password-1234567", username="loc:rem"):
    message = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
    message.attributes["USERNAME"] = username
    message.attributes.update(attributes)
    message.add_message_integrity(password.encode())
    return stun.parse_message(bytes(message))


def test_the_attributes_survive_the_wire_and_only_a_signed_message_is_believed():
    side = SpedStun(dtls_server=True)
    kw = {"local_username": "loc", "local_password": "local-password-1234567", "remote_password": "r" * 22}
    signed = request({DTLS_IN_STUN: HELLO, DTLS_IN_STUN_ACK: b""})
    assert signed.attributes[DTLS_IN_STUN] == HELLO
    assert side.take(signed, ("1.2.3.4", 5), None, **kw) == HELLO
    forged = request({DTLS_IN_STUN: FLIGHT[0]}, password="not-the-password-000000")
    assert side.take(forged, ("1.2.3.4", 5), None, **kw) is None
    stranger = request({DTLS_IN_STUN: FLIGHT[1]}, username="other:rem")
    assert side.take(stranger, ("1.2.3.4", 5), None, **kw) is None


def test_a_response_is_signed_again_with_the_attributes_inside():
    side = SpedStun(dtls_server=True)
    side.flight(FLIGHT[:1])
    response = stun.Message(stun.Method.BINDING, stun.Class.RESPONSE)
    response.attributes["XOR-MAPPED-ADDRESS"] = ("1.2.3.4", 5)
    response.add_message_integrity(b"local-password-1234567")
    side.embed_in_response(response, "local-password-1234567")
    parsed = stun.parse_message(bytes(response))
    assert parsed.attributes[DTLS_IN_STUN] == FLIGHT[0]
    assert parsed.check_message_integrity(b"local-password-1234567")
    assert list(parsed.attributes)[-2:] == ["MESSAGE-INTEGRITY", "FINGERPRINT"]
