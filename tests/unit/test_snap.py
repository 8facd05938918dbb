"""SNAP (draft-hancke-tsvwg-snap-00): the SCTP INIT in the SDP, no SCTP handshake. Plain calls."""

from __future__ import annotations

import base64

import pytest

from icepeer import sdp
from icepeer.errors import BadDescription
from icepeer.sctp import chunks as c
from icepeer.sctp.association import Association, State, new_tag
from icepeer.sctp.datachannels import ChannelParameters, DataChannels
from icepeer.session import SPED, Negotiation, Role

from .sctp_world import World

pytestmark = pytest.mark.unit

#: The offer's a=sctp-init of the draft's example (section 6).
DRAFT_INIT = "AQAAHols3R0AUAAA/////+B5ZR3AAAAEgAgABoLA"


def test_the_drafts_example_init_reads_and_writes_byte_for_byte():
    raw = base64.b64decode(DRAFT_INIT)
    init = c.InitChunk.deserialize(raw)
    assert (init.initiate_tag, init.a_rwnd, init.outbound_streams, init.inbound_streams, init.initial_tsn) == (
        0x896CDD1D, 0x00500000, 65535, 65535, 0xE079651D)
    assert init.params == [(c.PARAM_FORWARD_TSN_SUPPORTED, b""), (c.PARAM_SUPPORTED_EXTENSIONS, b"\x82\xc0")]
    assert init.serialize() == raw  # length 30: the last parameter's padding left out
    assert c.InitChunk.deserialize(raw + b"\x00\x00") == init  # padded, as in a packet


def test_our_init_has_what_we_support():
    init = Association.local_init(0x11223344, 7, 4 * 1024 * 1024)
    again = c.InitChunk.deserialize(init.serialize())
    assert again == init and again.a_rwnd == 4 * 1024 * 1024
    assert dict(again.params)[c.PARAM_SUPPORTED_EXTENSIONS] == bytes([c.RECONFIG, c.FORWARD_TSN])


@pytest.mark.parametrize("raw, why", [
    (b"\x02" + base64.b64decode(DRAFT_INIT)[1:], "not INIT"),
    (base64.b64decode(DRAFT_INIT)[:20], "does not match"),
    (b"\x01\x00", "too short"),
    (bytes.fromhex("0100001400000000000100000000ffff00000001"), "zero initiate tag"),
])
def test_what_is_not_an_init_is_refused(raw, why):
    with pytest.raises(c.SctpMalformed, match=why):
        c.InitChunk.deserialize(raw)


def description(**extra) -> sdp.Description:
    return sdp.Description("abcd", "a" * 22, (sdp.Fingerprint("sha-256", "AA:BB"),), "actpass", **extra)


def test_the_sdp_carries_the_init_and_the_sped_option():
    raw = base64.b64decode(DRAFT_INIT)
    text = description(sctp_init=raw, ice_options=("trickle", SPED)).to_sdp()
    assert f"a=sctp-init:{DRAFT_INIT}\r\n" in text and "a=ice-options:trickle sped\r\n" in text
    parsed = sdp.parse(text)
    assert parsed.sctp_init == raw and parsed.snap_init is not None and parsed.ice_options == ("trickle", SPED)
    plain = sdp.parse(description().to_sdp())
    assert plain.sctp_init is None and plain.snap_init is None and plain.ice_options == ("trickle",)


@pytest.mark.parametrize("value, why", [("not base64!", "not base64"), ("AgAAHg==", "not an SCTP INIT chunk")])
def test_a_bad_sctp_init_is_a_clear_error(value, why):
    text = description().to_sdp() + f"a=sctp-init:{value}\r\n"
    with pytest.raises(BadDescription, match=why):
        sdp.parse(text)


def negotiate(offer_snap: bool, answer_snap: bool) -> tuple[Negotiation, Negotiation]:
    ours = Association.local_init(new_tag(), 1).serialize() if offer_snap else None
    theirs = Association.local_init(new_tag(), 2).serialize() if answer_snap else None
    offerer = Negotiation(Role.OFFERER, description(sctp_init=ours, ice_options=("trickle", SPED) if ours else ("trickle",)),
                          new_credentials=lambda: ("efgh", "b" * 22))
    answerer = Negotiation(Role.ANSWERER, description(sctp_init=theirs, ice_options=("trickle", SPED)),
                           new_credentials=lambda: ("ijkl", "c" * 22))
    [offer] = [a for a in offerer.start() if hasattr(a, "data")]
    answer = next(a for a in answerer.receive(offer.data) if hasattr(a, "data"))
    offerer.receive(answer.data)
    return offerer, answerer


def test_both_sides_with_snap_skip_the_handshake():
    offerer, answerer = negotiate(True, True)
    assert offerer.snap is not None and answerer.snap is not None
    assert offerer.snap.initiate_tag == c.InitChunk.deserialize(answerer.local.sctp_init).initiate_tag
    assert offerer.sped and answerer.sped


def test_an_offer_without_snap_gets_an_answer_without_it():
    # The draft's section 5.3: "MUST NOT include" it unless the offer had it;
    # likewise the sped ICE option (a browser or stock aiortc offering).
    offerer, answerer = negotiate(False, True)
    assert answerer.local.sctp_init is None and SPED not in answerer.local.ice_options
    assert offerer.snap is None and answerer.snap is None
    assert not offerer.sped and not answerer.sped


def test_an_answer_without_snap_means_the_standard_handshake():
    offerer, answerer = negotiate(True, False)
    assert offerer.snap is None and answerer.snap is None


def snap_world(loss: float = 0.0, seed: int = 1) -> World:
    w = World(loss=loss, seed=seed)
    tags = [(new_tag(), new_tag()) for _ in range(2)]
    for side, (tag, tsn) in zip((w.a, w.b), tags, strict=True):
        side.channels = DataChannels(side, dtls_client=side is w.a, local_tag=tag, initial_tsn=tsn)
    inits = [Association.local_init(tag, tsn) for tag, tsn in tags]
    w.a.channels.association.start_negotiated(c.InitChunk.deserialize(inits[1].serialize()))
    w.b.channels.association.start_negotiated(c.InitChunk.deserialize(inits[0].serialize()))
    return w


def test_with_snap_the_association_is_up_at_once_and_the_first_packet_carries_data():
    w = snap_world()
    assert w.a.up and w.b.up and w.a.channels.association.state is State.ESTABLISHED
    stream = w.a.channels.open(ChannelParameters(label="t"), w.now)
    w.a.channels.send(stream, "hello", w.now)
    w.pump()
    first = c.parse_packet(w.wire[0][2])
    assert c.INIT not in first.order and c.COOKIE_ECHO not in first.order and first.data
    w.run(lambda: w.b.messages != [], limit=1)
    assert w.b.messages == [(stream, "hello")] and w.now == pytest.approx(0.01)  # one way, no handshake
    w.b.channels.send(stream, "back", w.now)
    w.pump()
    w.run(lambda: w.a.messages != [], limit=1)
    assert w.a.messages == [(stream, "back")]


def test_with_snap_nothing_is_lost_under_loss():
    w = snap_world(loss=0.05, seed=4)
    stream = w.a.channels.open(ChannelParameters(label="t"), w.now)
    sent = [str(i) * 50 for i in range(500)]
    for message in sent:
        w.a.channels.send(stream, message, w.now)
    w.pump()
    w.run(lambda: len(w.b.messages) == len(sent), limit=120)
    assert [m for _, m in w.b.messages] == sent


def test_a_stray_init_after_snap_does_not_restart_the_association():
    w = snap_world()
    stranger = Association.local_init(new_tag(), 9).chunk(c.INIT)
    packet = c.serialize_packet(5000, 5000, 0, bytes(stranger))
    w.b.channels.association.receive(packet, w.now)
    assert w.b.channels.association.state is State.ESTABLISHED
    assert w.b.channels.association.remote_tag == w.a.channels.association.local_tag
