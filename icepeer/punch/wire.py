"""The wire format of punch packets: one UDP datagram, one packet.

::

     0       1       2       3
    +-------+-------+-------+-------+
    |  'I'  |  'P'  |  'U'  |  'N'  |   magic: never a STUN message (RFC 8489 section 5:
    +-------+-------+-------+-------+   STUN's first two bits are zero; 'I' is 0x49)
    | ver=1 | type  | flags |   0   |
    +-------+-------+-------+-------+
    |                               |
    +   to: the receiver's token    +   8 bytes, announced by the receiver over signaling
    |                               |
    +-------+-------+-------+-------+
    |   body (depends on type) ...  |
    +-------+-------+-------+-------+
    |                               |
    +   tag: HMAC-SHA256(key, all   +   16 bytes; ``key`` comes from both peers' secrets,
    |   bytes before the tag)[:16]  |   which only travel over signaling
    +-------+-------+-------+-------+

The token lets a receiver drop other sessions' packets cheaply (like ICE's
USERNAME, RFC 8445 section 7.2.2); the tag authenticates every packet (like
STUN's MESSAGE-INTEGRITY, RFC 8489 section 14.5, with SHA-256 as in
MESSAGE-INTEGRITY-SHA256, section 14.6). Both directions share the key, so the
``to`` token is what stops a packet being reflected back to its sender.

Bodies (integers in network byte order):

=====  ==========  =====================================================
type   name        body
=====  ==========  =====================================================
1      PROBE       u32 id: punch packet, later keepalive; always answered
2      REPLY       u32 id echoed, then the address the PROBE came from:
                   u8 family (4|6), u16 port, 4|16 address bytes, XORed
                   with the magic as in XOR-MAPPED-ADDRESS (RFC 8489
                   section 14.2) so that ALGs leave it alone
3      DATA        payload: one unreliable datagram
4      MSG         u32 seq, payload: a fragment of an acknowledged message
5      ACK         u32 next sequence number expected (cumulative)
6      BYE         u32 next sequence number expected; the sender is leaving
=====  ==========  =====================================================

Flags: bit 0 (``FIN``) marks the last fragment of a message, bit 1
(``TEXT``) a UTF-8 text payload (DATA and MSG). Unknown flag bits are
ignored; the byte after the flags is reserved, sent as 0 and ignored.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
import struct
from dataclasses import dataclass

__all__ = [
    "HEADER_SIZE",
    "KEY_SIZE",
    "MAGIC",
    "OVERHEAD",
    "TAG_SIZE",
    "TOKEN_SIZE",
    "VERSION",
    "BadTag",
    "Flags",
    "MalformedPacket",
    "Packet",
    "PacketType",
    "is_punch_packet",
    "peek_token",
    "session_key",
]

MAGIC = b"IPUN"
VERSION = 1
TOKEN_SIZE = 8
KEY_SIZE = 16
TAG_SIZE = 16
HEADER_SIZE = 4 + 4 + TOKEN_SIZE
#: Bytes a packet adds around its body.
OVERHEAD = HEADER_SIZE + TAG_SIZE

_HEADER = struct.Struct("!4sBBBx8s")
_U32 = struct.Struct("!I")
Address = tuple[str, int]


class PacketType(enum.IntEnum):
    PROBE = 1
    REPLY = 2
    DATA = 3
    MSG = 4
    ACK = 5
    BYE = 6


class Flags(enum.IntFlag):
    NONE = 0
    FIN = 0x01
    TEXT = 0x02


class MalformedPacket(ValueError):
    """The datagram starts with our magic but is not a valid packet."""


class BadTag(ValueError):
    """The packet's tag does not match: a forgery, another session, or a corrupted datagram."""


def session_key(key_a: bytes, key_b: bytes) -> bytes:
    """The HMAC key both peers derive from their two secrets (order-independent)."""
    low, high = sorted((key_a, key_b))
    return hashlib.sha256(b"icepeer-punch-v1" + low + high).digest()


def is_punch_packet(data: bytes) -> bool:
    return data[:4] == MAGIC


def peek_token(data: bytes) -> bytes | None:
    """The ``to`` token of a datagram that looks like a punch packet, else None."""
    if len(data) < OVERHEAD or data[:4] != MAGIC:
        return None
    return data[8:HEADER_SIZE]


def _xor(data: bytes) -> bytes:
    mask = (MAGIC * (len(data) // 4 + 1))[: len(data)]
    return bytes(a ^ b for a, b in zip(data, mask))


def pack_address(addr: Address) -> bytes:
    ip = ipaddress.ip_address(addr[0])
    raw = ip.packed
    return bytes([ip.version]) + _xor(struct.pack("!H", addr[1]) + raw)


def unpack_address(data: bytes) -> Address:
    if not data:
        raise MalformedPacket("missing address")
    family, rest = data[0], _xor(data[1:])
    size = {4: 4, 6: 16}.get(family)
    if size is None or len(rest) != 2 + size:
        raise MalformedPacket(f"bad address (family {family}, {len(rest)} bytes)")
    (port,) = struct.unpack("!H", rest[:2])
    return str(ipaddress.ip_address(rest[2:])), port


@dataclass(frozen=True)
class Packet:
    """One punch packet. ``number`` is the PROBE/REPLY id, the MSG seq or the ACK/BYE ack."""

    type: PacketType
    to: bytes
    number: int = 0
    payload: bytes = b""
    flags: Flags = Flags.NONE
    observed: Address | None = None

    def serialize(self, key: bytes) -> bytes:
        """The datagram, tagged with ``key`` (see :func:`session_key`)."""
        if len(self.to) != TOKEN_SIZE:
            raise ValueError(f"a token is {TOKEN_SIZE} bytes")
        head = _HEADER.pack(MAGIC, VERSION, int(self.type), int(self.flags), self.to)
        if self.type is PacketType.PROBE:
            body = _U32.pack(self.number)
        elif self.type is PacketType.REPLY:
            if self.observed is None:
                raise ValueError("a REPLY carries the observed address")
            body = _U32.pack(self.number) + pack_address(self.observed)
        elif self.type is PacketType.DATA:
            body = self.payload
        elif self.type is PacketType.MSG:
            body = _U32.pack(self.number) + self.payload
        else:  # ACK, BYE
            body = _U32.pack(self.number)
        data = head + body
        return data + hmac.new(key, data, hashlib.sha256).digest()[:TAG_SIZE]

    @classmethod
    def parse(cls, data: bytes, key: bytes) -> Packet:
        """Check the tag and decode; raise :class:`MalformedPacket` or :class:`BadTag`."""
        if len(data) < OVERHEAD:
            raise MalformedPacket(f"{len(data)} bytes is too short for a punch packet")
        magic, version, kind, flags, to = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise MalformedPacket("not a punch packet")
        if version != VERSION:
            raise MalformedPacket(f"unknown version {version}")
        body, tag = data[HEADER_SIZE:-TAG_SIZE], data[-TAG_SIZE:]
        expected = hmac.new(key, data[:-TAG_SIZE], hashlib.sha256).digest()[:TAG_SIZE]
        if not hmac.compare_digest(tag, expected):
            raise BadTag("bad tag")
        try:
            ptype = PacketType(kind)
        except ValueError:
            raise MalformedPacket(f"unknown packet type {kind}") from None
        fl = Flags(flags & (Flags.FIN | Flags.TEXT))
        if ptype is PacketType.DATA:
            return cls(ptype, to, 0, body, fl)
        if len(body) < 4:
            raise MalformedPacket(f"{ptype.name} body of {len(body)} bytes")
        (number,) = _U32.unpack_from(body)
        if ptype is PacketType.REPLY:
            return cls(ptype, to, number, b"", fl, unpack_address(body[4:]))
        if ptype is PacketType.MSG:
            return cls(ptype, to, number, body[4:], fl)
        if len(body) != 4:
            raise MalformedPacket(f"{ptype.name} body of {len(body)} bytes")
        return cls(ptype, to, number, b"", fl)
