"""icepeer's DTLS endpoint (icepeer.dtls), two of them wired by plain calls."""

from __future__ import annotations

import pytest

from icepeer.dtls import Certificate, DtlsEndpoint, DtlsState

pytestmark = pytest.mark.unit


def pair() -> tuple[DtlsEndpoint, DtlsEndpoint]:
    ca, cb = Certificate(), Certificate()
    client = DtlsEndpoint(ca, server=False, remote_fingerprints=[("sha-256", cb.fingerprint())])
    server = DtlsEndpoint(cb, server=True, remote_fingerprints=[("sha-256", ca.fingerprint())])
    client.start(0.0)
    server.start(0.0)
    return client, server


def deliver(src: DtlsEndpoint, dst: DtlsEndpoint) -> list[bytes]:
    return [m for d in src.datagrams() for m in dst.receive(d, 0.0)]


def until_the_server_is_done() -> tuple[DtlsEndpoint, DtlsEndpoint, list[bytes]]:
    """Three flights delivered: the server is connected; its last flight is returned, not delivered."""
    client, server = pair()
    deliver(client, server)
    deliver(server, client)
    deliver(client, server)
    last_flight = server.datagrams()
    assert server.state is DtlsState.CONNECTED and client.state is DtlsState.HANDSHAKING and last_flight
    return client, server, last_flight


def test_the_handshake_takes_four_flights_and_no_cookie_exchange():
    client, server = pair()
    sizes = []
    for src, dst in ((client, server), (server, client), (client, server), (server, client)):
        datagrams = src.datagrams()
        sizes.append(len(datagrams))
        for d in datagrams:
            dst.receive(d, 0.0)
    assert client.state is server.state is DtlsState.CONNECTED
    assert all(sizes)  # ClientHello, server flight, client flight, server Finished: 2 round trips


def test_data_sent_before_the_clients_handshake_ends_is_delivered_with_the_last_flight():
    # The server is connected after the client's second flight and may send at
    # once (SNAP: no SCTP handshake to wait for). Its data reaches the client
    # before the server's last flight when that flight is lost or slower: OpenSSL
    # keeps such records until the handshake ends; they must come out then, not
    # when some later datagram happens to arrive.
    client, server, last_flight = until_the_server_is_done()
    early = [f"early {i}".encode() for i in range(5)]  # more records than the last flight has
    for message in early:
        server.send(message)
    assert deliver(server, client) == []
    got = [m for d in last_flight for m in client.receive(d, 0.0)]
    assert client.state is DtlsState.CONNECTED
    assert got == early


def test_a_lost_last_server_flight_is_sent_again_when_the_client_resends_its_own():
    # OpenSSL drops the client's resent flight (the same bytes: a replay) and
    # never answers it; the handshake would hang with the client waiting.
    client, server, _lost = until_the_server_is_done()
    client.handle_timer(10.0)  # the client's flight timer fires: it resends its flight
    deliver(client, server)
    deliver(server, client)
    assert client.state is DtlsState.CONNECTED
    assert server.flights_resent == 1
