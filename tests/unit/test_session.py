"""The offer/answer/trickle state machine and the SDP it speaks, with plain calls."""

from __future__ import annotations

import itertools

import pytest
from aioice import Candidate

from icepeer import sdp
from icepeer.errors import BadDescription
from icepeer.session import (
    AddRemoteCandidate,
    Negotiation,
    PeerBye,
    RestartIce,
    Role,
    Send,
    StartIce,
    candidate_from_json,
    candidate_to_json,
)

FP = (sdp.Fingerprint("sha-256", ":".join(["AB"] * 32)),)


def description(ufrag: str, setup: str = "actpass") -> sdp.Description:
    return sdp.Description(ice_ufrag=ufrag, ice_pwd=ufrag * 6, fingerprints=FP, setup=setup)


def negotiation(role: Role, name: str) -> Negotiation:
    counter = itertools.count(1)
    return Negotiation(role, description(f"{name}0000"),
                       new_credentials=lambda: (f"{name}{next(counter):04d}", f"{name}{next(counter):04d}" * 6))


def host(port: int) -> Candidate:
    return Candidate(foundation="1", component=1, transport="udp", priority=100, host="10.0.0.1", port=port,
                     type="host")


def sends(actions):
    return [a.data for a in actions if isinstance(a, Send)]


def wire(actions_a, b: Negotiation):
    """Deliver a's Send actions to b; return b's actions."""
    out = []
    for data in sends(actions_a):
        out += b.receive(data)
    return out


def test_offerer_offers_and_trickles_candidates_queued_before():
    a = negotiation(Role.OFFERER, "aaaa")
    assert a.local_candidate(host(1)) == []  # nothing goes out before the offer
    actions = a.start()
    offer, candidate = sends(actions)
    assert offer["type"] == "offer" and "a=setup:actpass" in offer["sdp"]
    assert candidate == {"candidate": f"candidate:{host(1).to_sdp()}", "sdpMid": "0", "sdpMLineIndex": 0,
                         "usernameFragment": "aaaa0000"}
    assert sends(a.local_candidate(None)) == [{"candidate": "", "sdpMid": "0", "sdpMLineIndex": 0,
                                               "usernameFragment": "aaaa0000"}]
    assert a.start() == []  # once


def test_answerer_answers_active_and_passes_candidates_on():
    a, b = negotiation(Role.OFFERER, "aaaa"), negotiation(Role.ANSWERER, "bbbb")
    assert b.start() == []
    b.local_candidate(host(2))
    offer_actions = a.start() + a.local_candidate(host(1)) + a.local_candidate(None)
    got = wire(offer_actions, b)
    assert isinstance(got[0], StartIce) and got[0].remote.ice_ufrag == "aaaa0000"
    answer, queued = sends(got)
    assert answer["type"] == "answer" and "a=setup:active" in answer["sdp"]
    assert queued["candidate"].endswith(host(2).to_sdp())
    remote = [a_ for a_ in got if isinstance(a_, AddRemoteCandidate)]
    assert [(r.candidate.port if r.candidate else None, r.ufrag) for r in remote] == [(1, "aaaa0000"), (None, "aaaa0000")]
    assert b.dtls_role == "client"
    back = wire(got, a)
    assert isinstance(back[0], StartIce) and back[0].remote.setup == "active"
    assert a.dtls_role == "server"


def test_candidates_before_the_description_are_kept():
    b = negotiation(Role.ANSWERER, "bbbb")
    early = candidate_to_json(host(7), "aaaa0000")
    assert b.receive(early) == []
    got = b.receive({"type": "offer", "sdp": description("aaaa0000").to_sdp()})
    remote = [a for a in got if isinstance(a, AddRemoteCandidate)]
    assert [(r.candidate.port, r.ufrag) for r in remote] == [(7, "aaaa0000")]


@pytest.mark.parametrize(
    "data",
    [
        {"candidate": "candidate:garbage"},
        {"candidate": "candidate:1 1 tcp 100 10.0.0.1 9 typ host tcptype active"},
    ],
)
def test_a_bad_candidate_is_skipped_not_fatal(data):
    b = negotiation(Role.ANSWERER, "bbbb")
    b.receive({"type": "offer", "sdp": description("aaaa0000").to_sdp()})
    assert b.receive({**data, "sdpMid": "0", "sdpMLineIndex": 0}) == []


def test_candidates_of_another_ice_generation_are_dropped():
    b = negotiation(Role.ANSWERER, "bbbb")
    b.receive({"type": "offer", "sdp": description("aaaa0000").to_sdp()})
    assert b.receive(candidate_to_json(host(1), "old00000")) == []


@pytest.mark.parametrize(
    "data, words",
    [
        ("offer", "must be an object"),
        ({"type": "dance"}, "unknown peer message"),
        ({"type": "offer"}, "without an 'sdp'"),
        ({"type": "offer", "sdp": "hello"}, "not an SDP"),
        ({"type": "answer", "sdp": description("aaaa0000").to_sdp()}, "unexpected answer"),
    ],
)
def test_malformed_peer_messages(data, words):
    b = negotiation(Role.ANSWERER, "bbbb")
    with pytest.raises(BadDescription, match=words):
        b.receive(data)


def test_bye():
    assert negotiation(Role.OFFERER, "aaaa").receive({"type": "bye"}) == [PeerBye()]


def connected_pair():
    a, b = negotiation(Role.OFFERER, "aaaa"), negotiation(Role.ANSWERER, "bbbb")
    wire(wire(a.start(), b), a)
    return a, b


def test_ice_restart_from_either_side():
    for first in ("offerer", "answerer"):
        a, b = connected_pair()
        x, y = (a, b) if first == "offerer" else (b, a)
        offer = x.restart()
        assert sends(offer)[0]["type"] == "offer"
        new_ufrag = x.local.ice_ufrag
        got = wire(offer, y)
        assert isinstance(got[0], RestartIce) and got[0].remote.ice_ufrag == new_ufrag
        assert got[0].local == (y.local.ice_ufrag, y.local.ice_pwd)
        back = wire(got, x)
        assert isinstance(back[0], RestartIce) and back[0].local[0] == new_ufrag
        # DTLS roles do not move (RFC 8842: re-offers carry the settled setup).
        assert (a.dtls_role, b.dtls_role) == ("server", "client")
        assert "a=setup:actpass" not in sends(offer)[0]["sdp"]


def test_both_restart_at_once_the_answerer_yields():
    a, b = connected_pair()
    offer_a, offer_b = a.restart(), b.restart()
    assert wire(offer_b, a) == []  # the impolite offerer ignores the crossing offer
    got = wire(offer_a, b)  # the polite answerer rolls back and answers
    restart = next(x for x in got if isinstance(x, RestartIce))
    assert restart.local[0] == b.local.ice_ufrag
    assert sends(got)[0]["type"] == "answer"
    assert isinstance(wire(got, a)[0], RestartIce)


def test_re_offer_without_new_credentials_is_refused():
    a, b = connected_pair()
    with pytest.raises(BadDescription, match="new ICE credentials"):
        b.receive({"type": "offer", "sdp": a.local.to_sdp()})


# -- SDP ----------------------------------------------------------------------------

CHROME_OFFER = (
    "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
    "a=extmap-allow-mixed\r\na=msid-semantic: WMS\r\n"
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n"
    "a=candidate:1467250027 1 udp 2122260223 192.168.0.196 46243 typ host generation 0 network-id 1\r\n"
    "a=ice-ufrag:F7gI\r\na=ice-pwd:x9cml/YzichV2+XlhiMu8g\r\na=ice-options:trickle\r\n"
    "a=fingerprint:sha-256 49:66:12:17:0D:1C:91:AE:57:4C:C6:36:DD:D5:97:D2:7D:62:C9:9A:7F:B9:A3:F4:70:03:E7:43:91:73:23:5A\r\n"
    "a=setup:actpass\r\na=mid:0\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n"
)


def test_parse_a_browser_offer():
    d = sdp.parse(CHROME_OFFER)
    assert (d.ice_ufrag, d.setup, d.sctp_port, d.max_message_size) == ("F7gI", "actpass", 5000, 262144)
    assert d.fingerprints[0].algorithm == "sha-256" and d.fingerprints[0].value.startswith("49:66")
    assert [c.port for c in d.candidates] == [46243]


def test_sdp_round_trip():
    d = description("abcd1234", setup="active")
    assert sdp.parse(d.to_sdp()) == d


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda t: t.replace("m=application", "m=audio"), "no 'm=application"),
        (lambda t: t.replace("a=fingerprint", "a=nofingerprint"), "missing a=fingerprint"),
        (lambda t: t.replace("a=ice-ufrag:F7gI", "a=ice-ufrag:F7"), "not valid ICE credentials"),
        (lambda t: t.replace("a=setup:actpass", "a=setup:holdconn"), "a=setup:holdconn"),
        (lambda t: t.replace("a=sctp-port:5000", "a=sctp-port:x"), "sctp-port"),
        (lambda t: t.replace("a=fingerprint:sha-256 49", "a=fingerprint:sha-256 4Z"), "malformed a=fingerprint"),
        (lambda t: t.replace("a=sctp-port:5000", "a=sctp-port:70000"), r"a=sctp-port:70000 out of range"),
        # A negative or absurd max-message-size made every send fail: refused, naming the field.
        (lambda t: t.replace("max-message-size:262144", "max-message-size:-5"), "a=max-message-size:-5 is not"),
        (lambda t: t.replace("max-message-size:262144", "max-message-size:12"), "a=max-message-size:12 out of"),
        (lambda t: t.replace("max-message-size:262144", "max-message-size:99999999999"), "max-message-size"),
        (lambda t: t.replace("max-message-size:262144", "max-message-size:١٢٣٤٥"), "is not a number"),
    ],
)
def test_sdp_that_cannot_carry_channels_is_refused(edit, words):
    with pytest.raises(BadDescription, match=words):
        sdp.parse(edit(CHROME_OFFER))


def test_max_message_size_zero_means_no_limit():
    assert sdp.parse(CHROME_OFFER.replace("262144", "0")).max_message_size == sdp.DEFAULT_MAX_MESSAGE_SIZE
    assert sdp.parse(CHROME_OFFER.replace("262144", "4294967295")).max_message_size == 4294967295


@pytest.mark.parametrize("setup", ["actpass", "passive"])
def test_an_answer_must_take_the_other_dtls_role(setup):
    # RFC 8842 section 5.3: an answer says active or passive, never actpass;
    # our offer said actpass, which makes us passive when the answer says
    # passive too: both would be DTLS servers and the handshake never ends.
    a = negotiation(Role.OFFERER, "aaaa")
    a.start()
    if setup == "passive":
        a.local = description("aaaa0000", setup="passive")
    answer = description("bbbb0000", setup=setup)
    with pytest.raises(BadDescription, match=f"a=setup:{setup}"):
        a.receive({"type": "answer", "sdp": answer.to_sdp()})


def test_candidate_json_round_trip():
    with pytest.raises(BadDescription, match="needs a 'candidate' string"):
        candidate_from_json({"candidate": 5})
    c = host(5)
    assert candidate_from_json(candidate_to_json(c, "u")).to_sdp() == c.to_sdp()
    assert candidate_from_json(candidate_to_json(None, "u")) is None
