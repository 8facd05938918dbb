"""RESP2 encoding and reply parsing (signaling/resp.py), by plain calls."""

import pytest

from signaling.resp import ReplyError, ReplyParser, RespProtocolError, encode


def test_encode_is_an_array_of_bulk_strings():
    assert encode("PUBLISH", "icepeer:to:n1", "S\tp\t{\"é\":1}") == (
        b"*3\r\n$7\r\nPUBLISH\r\n$13\r\nicepeer:to:n1\r\n$12\r\nS\tp\t{\"\xc3\xa9\":1}\r\n"
    )
    assert encode("SELECT", 3) == b"*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n"


def test_replies_whatever_the_split():
    stream = b"+OK\r\n:2\r\n-ERR wrong\r\n$5\r\nhe\r\nl\r\n$-1\r\n*2\r\n:1\r\n$1\r\nx\r\n*-1\r\n"
    expected = ["OK", 2, ReplyError("ERR wrong"), b"he\r\nl", None, [1, b"x"], None]
    for cut in range(len(stream) + 1):
        parser = ReplyParser()
        parser.feed(stream[:cut])
        got = parser.replies()
        parser.feed(stream[cut:])
        assert got + parser.replies() == expected, cut
    # Byte by byte too.
    parser, got = ReplyParser(), []
    for i in range(len(stream)):
        parser.feed(stream[i:i + 1])
        got += parser.replies()
    assert got == expected


def test_many_replies_in_one_read():
    parser = ReplyParser()
    parser.feed(b":1\r\n" * 10_000)
    assert parser.replies() == [1] * 10_000


@pytest.mark.parametrize("garbage", [b"?what\r\n", b":x\r\n", b"$abc\r\n", b"$999999999999\r\n",
                                     b"+" + b"a" * 70_000])
def test_garbage_is_a_protocol_error(garbage):
    with pytest.raises(RespProtocolError):
        ReplyParser().feed(garbage)
