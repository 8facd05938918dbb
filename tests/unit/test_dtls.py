"""icepeer's DTLS endpoint (icepeer.dtls), two of them wired by plain calls."""

from __future__ import annotations

import pytest
from OpenSSL import SSL

from icepeer.dtls import Certificate, DtlsEndpoint, DtlsState
from icepeer.dtls_record import prf

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


# -- False Start (RFC 7918): the client sends with its Finished -----------------------------------


class CbcOnly(Certificate):
    """A server that accepts only a CBC suite."""

    def context(self) -> SSL.Context:
        ctx = super().context()
        ctx.set_cipher_list(b"ECDHE-ECDSA-AES128-SHA")
        return ctx


def false_start_pair(*, server_certificate: Certificate | None = None,
                     announced: Certificate | None = None) -> tuple[DtlsEndpoint, DtlsEndpoint]:
    ca, cb = Certificate(), server_certificate or Certificate()
    fingerprint = (announced or cb).fingerprint()
    client = DtlsEndpoint(ca, server=False, remote_fingerprints=[("sha-256", fingerprint)], false_start=True)
    server = DtlsEndpoint(cb, server=True, remote_fingerprints=[("sha-256", ca.fingerprint())])
    client.start(0.0)
    server.start(0.0)
    return client, server


def records(datagrams: list[bytes]) -> list[int]:
    types: list[int] = []
    for d in datagrams:
        pos = 0
        while pos + 13 <= len(d):
            types.append(d[pos])
            pos += 13 + int.from_bytes(d[pos + 11:pos + 13], "big")
    return types


def test_a_false_start_client_sends_before_the_servers_last_flight_and_the_server_reads_it():
    client, server = false_start_pair()
    deliver(client, server)
    deliver(server, client)
    # The client's Finished is out: it may send, half a round trip before OpenSSL would let it.
    assert client.state is DtlsState.HANDSHAKING and client.can_send and client.false_started
    flight = client.datagrams()
    client.send(b"first")
    client.send(b"second")
    early = client.datagrams()
    assert records(early) == [23, 23]
    got = [m for d in flight + early for m in server.receive(d, 0.0)]
    assert server.state is DtlsState.CONNECTED and got == [b"first", b"second"]
    # The server's last flight ends the client's handshake; both ways work after it, the
    # client still sealing its records itself (its sequence numbers are its own now).
    deliver(server, client)
    assert client.state is DtlsState.CONNECTED
    client.send(b"third")
    server.send(b"back")
    assert deliver(client, server) == [b"third"] and deliver(server, client) == [b"back"]
    client.close()
    deliver(client, server)
    assert server.state is DtlsState.CLOSED and server.closed_by_peer


def test_false_start_data_that_overtakes_the_clients_flight_waits_for_it():
    client, server = false_start_pair()
    deliver(client, server)
    deliver(server, client)
    flight = client.datagrams()
    client.send(b"overtaking")
    early = client.datagrams()
    assert [m for d in early for m in server.receive(d, 0.0)] == []
    got = [m for d in flight for m in server.receive(d, 0.0)]
    assert server.state is DtlsState.CONNECTED and got == [b"overtaking"]


def test_no_false_start_toward_a_certificate_other_than_the_announced_one():
    # A man in the middle answers with its own certificate: the client must not
    # send a byte under keys it shares with that attacker.
    client, server = false_start_pair(announced=Certificate())
    deliver(client, server)
    deliver(server, client)
    assert client.state is DtlsState.FAILED and client.tampering and not client.can_send
    assert 23 not in records(client.datagrams())
    with pytest.raises(ConnectionError):
        client.send(b"secret")


def test_no_false_start_without_an_aead_suite():
    # RFC 7918 section 3: only forward-secret AEAD suites; with CBC the client waits as usual.
    client, server = false_start_pair(server_certificate=CbcOnly())
    deliver(client, server)
    deliver(server, client)
    assert client.state is DtlsState.HANDSHAKING and not client.can_send
    deliver(client, server)
    deliver(server, client)
    assert client.state is DtlsState.CONNECTED and client.can_send and not client.false_started
    client.send(b"late")
    assert deliver(client, server) == [b"late"]


def test_the_prf_is_the_one_openssl_uses():
    # RFC 5705's exporter is the PRF of the master secret over client random + server random.
    client, server = pair()
    for _ in range(2):
        deliver(client, server)
        deliver(server, client)
    ssl = client._ssl
    seed = ssl.client_random() + ssl.server_random()
    assert prf(ssl.master_key(), b"EXTRACTOR-test", seed, 77) == client.export_keying_material(b"EXTRACTOR-test", 77)


# -- records sealed and opened in Python once connected (icepeer.dtls_record) ---------------------


def connected_pair() -> tuple[DtlsEndpoint, DtlsEndpoint]:
    client, server = pair()
    for _ in range(2):
        deliver(client, server)
        deliver(server, client)
    assert client.connected and server.connected
    return client, server


def sent(endpoint: DtlsEndpoint, *messages: bytes) -> list[bytes]:
    for message in messages:
        endpoint.send(message)
    return endpoint.datagrams()


def test_records_out_of_order_arrive_and_replays_and_forgeries_do_not():
    client, server = connected_pair()
    d1, d2, d3 = sent(client, b"one", b"two", b"three")
    assert server.receive(d2, 0.0) == [b"two"]
    assert server.receive(d1, 0.0) == [b"one"]  # late, inside the window
    assert server.receive(d2, 0.0) == []  # a replay
    forged = bytearray(d3)
    forged[-1] ^= 1
    assert server.receive(bytes(forged), 0.0) == []  # fails its tag: dropped, nothing else happens
    assert server.receive(d3, 0.0) == [b"three"] and server.connected
    assert server._reader is not None and server._reader.dropped == 2
    # Short, cut, or a replay with bytes after it (not for OpenSSL either: it would open it again).
    for garbage in (b"\x17", b"\x17\xfe\xfd\x00\x01", d3[:20], d3 + b"\x17\xfe"):
        assert server.receive(garbage, 0.0) == [] and server.connected
    assert server._reader.dropped == 3


def test_a_record_older_than_the_replay_window_is_dropped():
    client, server = connected_pair()
    datagrams = sent(client, *[str(i).encode() for i in range(70)])
    assert [m for d in datagrams[1:] for m in server.receive(d, 0.0)] == [str(i).encode() for i in range(1, 70)]
    assert server.receive(datagrams[0], 0.0) == []  # 69 behind the newest: outside 64


def test_a_datagram_with_other_records_goes_to_openssl_which_reads_ours_too():
    # A handshake record (the peer's resent Finished) with application data
    # behind it in one datagram: OpenSSL reads the whole datagram.
    client, server = connected_pair()
    data = sent(server, b"with it")[0]
    record = b"\x16\xfe\xfd" + bytes(10)  # an empty handshake record of epoch 0: OpenSSL drops it
    assert client.receive(record + data, 0.0) == [b"with it"]
    assert client.connected


def test_both_directions_and_the_goodbye_without_openssl_writing():
    client, server = connected_pair()
    assert deliver(client, server) == [] and deliver(server, client) == []
    for _ in range(3):
        client.send(b"ping")
        assert deliver(client, server) == [b"ping"]
        server.send(b"pong")
        assert deliver(server, client) == [b"pong"]
    server.close()
    deliver(server, client)
    assert client.state is DtlsState.CLOSED and client.closed_by_peer


class ChachaOnly(Certificate):
    def context(self) -> SSL.Context:
        ctx = super().context()
        ctx.set_cipher_list(b"ECDHE-ECDSA-CHACHA20-POLY1305")
        return ctx


def test_a_chacha20_session_stays_with_openssl():
    # Its nonce is the sequence number (RFC 7905): never sealed beside OpenSSL.
    ca, cb = Certificate(), ChachaOnly()
    client = DtlsEndpoint(ca, server=False, remote_fingerprints=[("sha-256", cb.fingerprint())], false_start=True)
    server = DtlsEndpoint(cb, server=True, remote_fingerprints=[("sha-256", ca.fingerprint())])
    client.start(0.0)
    server.start(0.0)
    for _ in range(2):
        deliver(client, server)
        deliver(server, client)
    assert client.connected and client._writer is None and client._reader is None
    client.send(b"via openssl")
    assert deliver(client, server) == [b"via openssl"]
