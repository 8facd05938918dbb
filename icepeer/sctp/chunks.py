"""SCTP packets and chunks (RFC 9260 section 3), as small values. No I/O.

Only what WebRTC data channels use over DTLS (RFC 8261): the handshake
(INIT, INIT-ACK, COOKIE-ECHO, COOKIE-ACK), DATA and SACK, HEARTBEAT, ABORT,
ERROR, the SHUTDOWN sequence, FORWARD-TSN (RFC 3758) and RE-CONFIG (RFC
6525). :func:`parse_packet` checks the CRC32c and every length and raises
:class:`SctpMalformed` on anything wrong; :func:`serialize_packet` is its
inverse. The hot path (DATA and SACK) avoids classes: a DATA chunk parses to
a tuple, a SACK is built by :func:`sack_chunk` straight to bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from google_crc32c import value as crc32c

__all__ = [
    "SctpMalformed",
    "Chunk",
    "DataChunk",
    "InitChunk",
    "SackChunk",
    "ForwardTsnChunk",
    "Packet",
    "parse_packet",
    "serialize_packet",
    "sack_chunk",
    "data_chunk",
    "encode_params",
    "decode_params",
    "HEADER_LENGTH",
    "DATA_HEADER_LENGTH",
]

HEADER_LENGTH = 12  # common header: ports, verification tag, checksum
CHUNK_HEADER_LENGTH = 4
DATA_HEADER_LENGTH = 16

# Chunk types (RFC 9260 section 3.2, RFC 3758, RFC 6525, RFC 4820).
DATA, INIT, INIT_ACK, SACK, HEARTBEAT, HEARTBEAT_ACK, ABORT = 0, 1, 2, 3, 4, 5, 6
SHUTDOWN, SHUTDOWN_ACK, ERROR, COOKIE_ECHO, COOKIE_ACK = 7, 8, 9, 10, 11
SHUTDOWN_COMPLETE = 14
RECONFIG = 130
PAD = 132
FORWARD_TSN = 192

# DATA chunk flags (RFC 9260 section 3.3.1, RFC 7053).
FLAG_END, FLAG_BEGIN, FLAG_UNORDERED, FLAG_IMMEDIATE = 0x01, 0x02, 0x04, 0x08

# Parameters.
PARAM_STATE_COOKIE = 0x0007
PARAM_UNRECOGNIZED = 0x0008
PARAM_SUPPORTED_EXTENSIONS = 0x8008
PARAM_FORWARD_TSN_SUPPORTED = 0xC000
PARAM_OUTGOING_RESET = 0x000D
PARAM_INCOMING_RESET = 0x000E
PARAM_RECONFIG_RESPONSE = 0x0010
PARAM_ADD_OUTGOING_STREAMS = 0x0011
PARAM_HEARTBEAT_INFO = 0x0001

_HEADER = struct.Struct("!HHL")
_CHUNK = struct.Struct("!BBH")
_DATA = struct.Struct("!BBHLHHL")
_SACK = struct.Struct("!BBHLLHH")
_INIT = struct.Struct("!LLHHL")
_U32 = struct.Struct("!L")
_U16PAIR = struct.Struct("!HH")
_CHECKSUM = struct.Struct("<L")
_ZERO4 = b"\x00\x00\x00\x00"


class SctpMalformed(ValueError):
    """A packet that is not valid SCTP: bad checksum, length, or chunk."""


@dataclass
class Chunk:
    """Any chunk but DATA: its type, flags and value (parameters parsed by the receiver)."""

    type: int
    flags: int = 0
    body: bytes = b""

    def __bytes__(self) -> bytes:
        length = CHUNK_HEADER_LENGTH + len(self.body)
        return _CHUNK.pack(self.type, self.flags, length) + self.body + b"\x00" * (-length % 4)


#: A DATA chunk as parsed: (flags, tsn, stream id, stream sequence, PPID, user data).
DataChunk = tuple[int, int, int, int, int, bytes]


@dataclass
class InitChunk:
    """INIT or INIT-ACK (RFC 9260 sections 3.3.2 and 3.3.3)."""

    initiate_tag: int
    a_rwnd: int
    outbound_streams: int
    inbound_streams: int
    initial_tsn: int
    params: list[tuple[int, bytes]] = field(default_factory=list)

    @classmethod
    def parse(cls, body: bytes) -> InitChunk:
        if len(body) < _INIT.size:
            raise SctpMalformed("INIT chunk too short")
        tag, rwnd, out_streams, in_streams, tsn = _INIT.unpack_from(body)
        if tag == 0 or out_streams == 0 or in_streams == 0:
            raise SctpMalformed("INIT with a zero initiate tag or no streams (RFC 9260 section 3.3.2)")
        return cls(tag, rwnd, out_streams, in_streams, tsn, decode_params(body[_INIT.size:]))

    def chunk(self, kind: int) -> Chunk:
        body = _INIT.pack(self.initiate_tag, self.a_rwnd, self.outbound_streams, self.inbound_streams,
                          self.initial_tsn)
        return Chunk(kind, 0, body + encode_params(self.params))

    def serialize(self) -> bytes:
        """This INIT as on the wire, without the padding after its last parameter (SNAP's a=sctp-init).

        The chunk length leaves that padding out (RFC 9260 section 3.2), as libwebrtc's does.
        """
        body = self.chunk(INIT).body
        if self.params:
            body = body[:len(body) - (-len(self.params[-1][1]) % 4)]
        return _CHUNK.pack(INIT, 0, CHUNK_HEADER_LENGTH + len(body)) + body

    @classmethod
    def deserialize(cls, raw: bytes) -> InitChunk:
        """An INIT chunk serialized whole, with or without its padding; :class:`SctpMalformed` if not one."""
        if len(raw) < CHUNK_HEADER_LENGTH:
            raise SctpMalformed("too short for a chunk")
        kind, _, length = _CHUNK.unpack_from(raw)
        if kind != INIT:
            raise SctpMalformed(f"chunk type {kind}, not INIT (1)")
        if length < CHUNK_HEADER_LENGTH or length > len(raw) or len(raw) - length > 3:
            raise SctpMalformed(f"chunk length {length} does not match its {len(raw)} bytes")
        return cls.parse(raw[CHUNK_HEADER_LENGTH:length])


@dataclass
class SackChunk:
    """SACK (RFC 9260 section 3.3.4): gap blocks as (start, end) offsets from the cumulative TSN."""

    cumulative_tsn: int
    a_rwnd: int
    gaps: list[tuple[int, int]] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)

    @classmethod
    def parse(cls, body: bytes) -> SackChunk:
        if len(body) < 12:
            raise SctpMalformed("SACK chunk too short")
        cum, rwnd, ngaps, ndups = struct.unpack_from("!LLHH", body)
        if len(body) < 12 + 4 * ngaps + 4 * ndups:
            raise SctpMalformed("SACK chunk shorter than its gap and duplicate counts")
        gaps = [_U16PAIR.unpack_from(body, 12 + 4 * i) for i in range(ngaps)]
        base = 12 + 4 * ngaps
        dups = [_U32.unpack_from(body, base + 4 * i)[0] for i in range(ndups)]
        return cls(cum, rwnd, gaps, dups)


@dataclass
class ForwardTsnChunk:
    """FORWARD-TSN (RFC 3758 section 3.2): skip to ``cumulative_tsn``; (stream, sequence) pairs."""

    cumulative_tsn: int
    streams: list[tuple[int, int]] = field(default_factory=list)

    @classmethod
    def parse(cls, body: bytes) -> ForwardTsnChunk:
        if len(body) < 4 or (len(body) - 4) % 4:
            raise SctpMalformed("FORWARD-TSN chunk of a bad length")
        tsn = _U32.unpack_from(body)[0]
        return cls(tsn, [_U16PAIR.unpack_from(body, pos) for pos in range(4, len(body), 4)])

    def chunk(self) -> Chunk:
        body = _U32.pack(self.cumulative_tsn) + b"".join(_U16PAIR.pack(s, q) for s, q in self.streams)
        return Chunk(FORWARD_TSN, 0, body)


def data_chunk(flags: int, tsn: int, stream: int, ssn: int, ppid: int, payload: bytes) -> bytes:
    """A DATA chunk, serialized (RFC 9260 section 3.3.1)."""
    length = DATA_HEADER_LENGTH + len(payload)
    out = _DATA.pack(DATA, flags, length, tsn, stream, ssn, ppid) + payload
    pad = -length % 4
    return out + b"\x00" * pad if pad else out


def sack_chunk(cumulative_tsn: int, a_rwnd: int, gaps: list[tuple[int, int]], duplicates: list[int]) -> bytes:
    """A SACK chunk, serialized."""
    out = _SACK.pack(SACK, 0, 16 + 4 * (len(gaps) + len(duplicates)), cumulative_tsn, a_rwnd,
                     len(gaps), len(duplicates))
    if gaps:
        out += b"".join(_U16PAIR.pack(s, e) for s, e in gaps)
    if duplicates:
        out += b"".join(_U32.pack(d) for d in duplicates)
    return out


def decode_params(body: bytes) -> list[tuple[int, bytes]]:
    """TLV parameters (RFC 9260 section 3.2.1)."""
    params = []
    pos = 0
    while pos + 4 <= len(body):
        kind, length = _U16PAIR.unpack_from(body, pos)
        if length < 4 or pos + length > len(body):
            raise SctpMalformed(f"parameter {kind:#06x} of a bad length")
        params.append((kind, body[pos + 4:pos + length]))
        pos += length + (-length % 4)
    return params


def encode_params(params: list[tuple[int, bytes]]) -> bytes:
    out = b""
    for kind, value in params:
        length = 4 + len(value)
        out += _U16PAIR.pack(kind, length) + value + b"\x00" * (-length % 4)
    return out


@dataclass
class Packet:
    """One SCTP packet: ports, verification tag, DATA chunks (tuples) and the others."""

    source_port: int
    destination_port: int
    verification_tag: int
    data: list[DataChunk] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)
    #: Chunk types in the order they came (the handshake cares: RFC 9260 section 6.10).
    order: list[int] = field(default_factory=list)


def parse_packet(raw: bytes) -> Packet:
    """Parse and check one packet (RFC 9260 sections 3, 6.8 and 6.10)."""
    length = len(raw)
    if length < HEADER_LENGTH + CHUNK_HEADER_LENGTH:
        raise SctpMalformed(f"SCTP packet of {length} bytes is too short")
    (checksum,) = _CHECKSUM.unpack_from(raw, 8)
    if checksum != crc32c(b"".join((raw[:8], _ZERO4, raw[12:]))):
        raise SctpMalformed("SCTP packet with a bad CRC32c")
    source, destination, tag = _HEADER.unpack_from(raw)
    packet = Packet(source, destination, tag)
    pos = HEADER_LENGTH
    while pos + CHUNK_HEADER_LENGTH <= length:
        kind, flags, chunk_length = _CHUNK.unpack_from(raw, pos)
        end = pos + chunk_length
        if chunk_length < CHUNK_HEADER_LENGTH or end > length:
            raise SctpMalformed(f"chunk {kind} of length {chunk_length} does not fit the packet")
        packet.order.append(kind)
        if kind == DATA:
            if chunk_length <= DATA_HEADER_LENGTH:
                raise SctpMalformed("DATA chunk without user data (RFC 9260 section 3.3.1)")
            _, _, _, tsn, stream, ssn, ppid = _DATA.unpack_from(raw, pos)
            packet.data.append((flags, tsn, stream, ssn, ppid, raw[pos + DATA_HEADER_LENGTH:end]))
        else:
            packet.chunks.append(Chunk(kind, flags, raw[pos + CHUNK_HEADER_LENGTH:end]))
        pos = end + (-chunk_length % 4)
    if not packet.order:
        raise SctpMalformed("SCTP packet without chunks")
    return packet


def serialize_packet(source_port: int, destination_port: int, verification_tag: int, chunks: bytes) -> bytes:
    """A packet from already serialized ``chunks``, with its CRC32c (RFC 9260 appendix A)."""
    header = _HEADER.pack(source_port, destination_port, verification_tag)
    checksum = crc32c(b"".join((header, _ZERO4, chunks)))
    return b"".join((header, _CHECKSUM.pack(checksum), chunks))
