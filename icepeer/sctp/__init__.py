"""icepeer's SCTP for WebRTC data channels (RFC 9260, RFC 8261, RFC 8831, RFC 8832), with no I/O.

::

    chunks.py        packets and chunks, CRC32c                        RFC 9260 section 3
    association.py   handshake, dispatch, timers                      RFC 9260 sections 5, 8
    sender.py        TSNs, bundling, retransmission, PR-SCTP          RFC 9260 section 6, RFC 3758, RFC 8985
    outgoing.py      the messages and chunks a sender keeps
    congestion.py    cwnd, ssthresh, fast recovery, RTO               RFC 9260 sections 6.3, 7.2
    receiver.py      reassembly, order, SACKs, the bounded window     RFC 9260 section 6
    reconfig.py      stream resets (how a channel closes)             RFC 6525
    datachannels.py  channels over streams, DCEP                      RFC 8831, RFC 8832
    ranges.py        TSN ranges (gap blocks); serial.py: serial arithmetic

:mod:`icepeer.stack` is the asyncio glue that moves packets between this
and DTLS (:mod:`icepeer.dtls`).
"""
