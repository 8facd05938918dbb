"""Codes and the PAKE's key schedule and checks, by plain calls."""

from __future__ import annotations

import base64

import pytest

from icepeer.code import WORDS, Code, nameplate_candidates, new_code, parse_code
from icepeer.errors import AuthenticationFailed, BadDescription, ConfigError
from icepeer.pake import MISMATCH, Pake

pytestmark = pytest.mark.unit

SDP = "v=0\r\na=fingerprint:sha-256 AB:CD\r\na=setup:actpass\r\n"


def pair(a: bytes = b"guitar-ribbon", b: bytes = b"guitar-ribbon") -> tuple[Pake, Pake]:
    one, two = Pake(a), Pake(b)
    m1, m2 = one.message(), two.message()
    one.receive(m2)
    two.receive(m1)
    return one, two


# -- codes --------------------------------------------------------------------------


def test_codes_parse_forgivingly_and_say_what_is_wrong():
    assert parse_code(" 7-Guitar-RIBBON ") == Code(7, ("guitar", "ribbon"))
    assert parse_code("7 guitar ribbon") == Code(7, ("guitar", "ribbon"))
    with pytest.raises(ConfigError, match=r"'gutar' is not a word.*did you mean 'guitar'"):
        parse_code("7-gutar-ribbon")
    for bad in ("", "guitar-ribbon", "7-guitar", "x-guitar-ribbon", "0-guitar-ribbon", "7-guitar-ribbon-oak"):
        with pytest.raises(ConfigError):
            parse_code(bad)


def test_a_new_code_has_two_words_and_no_nameplate_until_the_server_gives_one():
    code = new_code()
    assert code.nameplate is None and len(code.words) == 2 and set(code.words) <= set(WORDS)
    placed = code.with_nameplate(42)
    assert str(placed) == f"42-{code.words[0]}-{code.words[1]}" and placed.room == "code-42"
    assert parse_code(str(placed)) == placed
    assert len(WORDS) == 256  # 16 bits of password: one guess per code


def test_nameplates_start_small():
    first = [n for _, n in zip(range(8), nameplate_candidates(), strict=False)]
    assert all(1 <= n <= 99 for n in first)


# -- the exchange -------------------------------------------------------------------------


def test_the_same_words_give_the_same_keys_and_verifier():
    a, b = pair()
    b.check("offer", SDP, a.seal("offer", SDP))
    a.check("answer", SDP, b.seal("answer", SDP))
    assert a.verifier() == b.verifier() and len(a.verifier()) == 12


def test_different_words_fail_the_first_check():
    a, b = pair(b"guitar-ribbon", b"guitar-robin")
    with pytest.raises(AuthenticationFailed, match=MISMATCH):
        b.check("offer", SDP, a.seal("offer", SDP))


def test_a_changed_sdp_or_a_mac_of_the_other_kind_fails():
    a, b = pair()
    with pytest.raises(AuthenticationFailed):
        b.check("offer", SDP.replace("AB:CD", "AB:CE"), a.seal("offer", SDP))
    with pytest.raises(AuthenticationFailed):
        b.check("answer", SDP, a.seal("offer", SDP))  # an offer reflected as an answer
    for mac in (None, "", "***", base64.b64encode(b"x" * 31).decode(), 5):
        with pytest.raises(AuthenticationFailed):
            b.check("offer", SDP, mac)


def test_the_confirmation_is_bound_to_the_dtls_session():
    a, b = pair()
    exporter = b"\x01" * 32
    tag = a.confirmation("offerer", exporter)
    b.check_confirmation("offerer", exporter, tag)
    with pytest.raises(AuthenticationFailed):  # another DTLS session: another exporter
        b.check_confirmation("offerer", b"\x02" * 32, tag)
    with pytest.raises(AuthenticationFailed):  # our own tag sent back
        b.check_confirmation("answerer", exporter, tag)
    with pytest.raises(AuthenticationFailed):
        b.check_confirmation("offerer", exporter, "not bytes")


@pytest.mark.parametrize(
    "message, words",
    [
        ({"type": "pake", "v": 2, "spake2": "AA=="}, "version 2"),
        ({"type": "pake", "v": 1}, "not a base64 string"),
        ({"type": "pake", "v": 1, "spake2": "%%%"}, "not base64"),
        ({"type": "pake", "v": 1, "spake2": base64.b64encode(b"x" * 10).decode()}, "10 bytes"),
        ({"type": "pake", "v": 1, "spake2": base64.b64encode(b"\xff" * 33).decode()}, "unusable"),
    ],
)
def test_malformed_pake_messages_are_clear_errors(message, words):
    with pytest.raises(BadDescription, match=words):
        Pake(b"w").receive(message)


def test_a_reflected_or_replayed_message_is_refused():
    a = Pake(b"w")
    with pytest.raises(BadDescription, match="reflected"):
        a.receive(a.message())
    b = Pake(b"w")
    a.receive(b.message())
    with pytest.raises(BadDescription, match="replay"):
        a.receive(b.message())


def test_nothing_is_sealed_before_the_key():
    with pytest.raises(BadDescription, match="before the PAKE"):
        Pake(b"w").seal("offer", SDP)
