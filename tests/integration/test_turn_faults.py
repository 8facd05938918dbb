"""The faults of aioice's TURN client that icepeer.turn repairs, each shown against a real coturn."""

from __future__ import annotations

import asyncio
import struct

import pytest
from aioice import stun, turn

from icepeer.coturn import Coturn, free_port
from icepeer.turn import TcpTurn, allocate
from tests.conftest import require_coturn

# A STUN response whose LIFETIME attribute is 2 bytes long: parse_message raises struct.error.
MALFORMED = struct.pack("!HHI12s", 0x0103, 8, stun.COOKIE, b"\x05" * 12) + struct.pack("!HHH", 0x000D, 2, 1) + b"\x00\x00"


class Sink(asyncio.DatagramProtocol):
    pass


def framed(message: bytes) -> bytes:
    # TURN over TCP carries STUN messages back to back (RFC 6062 section 4.2: padded to 4).
    return message + b"\x00" * (-len(message) % 4)


async def _client_after_malformed(protocol_class):
    """Connect a TURN/TCP client to a server that sends one malformed message; is it still open?"""

    async def serve(reader, writer):
        writer.write(framed(MALFORMED))
        await writer.drain()
        await asyncio.sleep(1)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_connection(
        lambda: protocol_class(("127.0.0.1", port), "u", "p", 600, 300), "127.0.0.1", port)
    await asyncio.sleep(0.2)
    alive = not transport.is_closing()
    transport.close()
    server.close()
    return alive, client


async def test_stock_tcp_client_dies_on_a_malformed_message():
    # aioice lets struct.error escape data_received: asyncio closes the TURN connection.
    alive, _ = await _client_after_malformed(turn.TurnClientTcpProtocol)
    assert not alive


async def test_repaired_tcp_client_drops_it_and_stays_connected():
    alive, client = await _client_after_malformed(TcpTurn)
    assert alive and client.malformed == 1


async def test_allocation_loss_is_noticed():
    require_coturn()
    async with Coturn(users={"u": "p"}, port=free_port()) as server:
        # Stock aioice: after the server restarts, a ChannelBind fails, and the
        # client still believes in its allocation.
        transport, _ = await turn.create_turn_endpoint(Sink, (server.host, server.port), "u", "p")
        stock = transport._TurnTransport__inner_protocol
        ours_lost: list[str] = []
        _, _, ours = await allocate(Sink, server=(server.host, server.port), username="u", password="p",
                                    on_lost=ours_lost.append)
        await server.restart()
        with pytest.raises(stun.TransactionFailed):
            await stock.channel_bind(0x4000, ("127.0.0.1", 9))
        assert not stock.transport.is_closing()  # nothing told anyone the relay is dead
        # Repaired: the same kind of request reports the loss.
        assert not await ours.probe()
        assert ours_lost and "allocation lost" in ours_lost[0]
        transport.close()
