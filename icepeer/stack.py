"""The transport setup: DTLS over the ICE path, SCTP over DTLS (RFC 8261, RFC 8831).

Built once per connection, after the first ICE path is selected; an ICE
restart moves the :class:`~icepeer.transport.IceTransport` underneath to a
new agent and neither DTLS nor SCTP notices. The DTLS role comes from
``a=setup`` (RFC 8842 section 5), the peer's certificate must match the
fingerprints of its SDP (RFC 8122), and a failure says its real cause.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from aiortc import RTCCertificate, RTCDataChannel, RTCDataChannelParameters, RTCDtlsTransport
from aiortc.rtcdtlstransport import RTCDtlsFingerprint, RTCDtlsParameters
from aiortc.rtcsctptransport import RTCSctpCapabilities

from . import sdp
from .agent import Agent
from .compat.aiortc import SctpTransport, dtls_failure, sctp_idle, set_dtls_role
from .errors import DtlsFailed, FingerprintMismatch
from .transport import IceTransport

__all__ = ["Stack"]

logger = logging.getLogger(__name__)


class Stack:
    """DTLS and SCTP for one connection."""

    def __init__(self) -> None:
        self.certificate = RTCCertificate.generateCertificate()
        self.transport: IceTransport | None = None
        self.dtls: RTCDtlsTransport | None = None
        self.sctp: SctpTransport | None = None

    def fingerprints(self) -> tuple[sdp.Fingerprint, ...]:
        return tuple(sdp.Fingerprint(f.algorithm, f.value) for f in self.certificate.getFingerprints())

    async def start_dtls(
        self,
        agent: Agent,
        *,
        controlling: bool,
        dtls_role: str,
        remote: sdp.Description,
        on_state: Callable[[], None],
    ) -> None:
        """The DTLS handshake over ``agent``'s selected pair; :class:`DtlsFailed` with its cause."""
        self.transport = IceTransport(agent, controlling=controlling)
        self.dtls = dtls = RTCDtlsTransport(self.transport, [self.certificate])  # type: ignore[arg-type]
        set_dtls_role(dtls, dtls_role)
        dtls.on("statechange", on_state)
        fingerprints = [RTCDtlsFingerprint(f.algorithm, f.value) for f in remote.fingerprints]
        try:
            await dtls.start(RTCDtlsParameters(fingerprints=fingerprints))
        finally:
            self.transport.handshake_done()
        if dtls.state == "failed":
            failure = dtls_failure(dtls, [(f.algorithm, f.value) for f in remote.fingerprints])
            raise (FingerprintMismatch if failure.tampering else DtlsFailed)(failure.reason)

    async def start_sctp(self, remote: sdp.Description, on_channel: Callable[[RTCDataChannel], None]) -> None:
        """The SCTP association (RFC 8831 section 5), with the peer's max-message-size."""
        assert self.dtls is not None
        self.sctp = SctpTransport(self.dtls)
        self.sctp.on("datachannel", on_channel)
        await self.sctp.start(RTCSctpCapabilities(maxMessageSize=remote.max_message_size), remote.sctp_port)

    def open_channel(self, parameters: RTCDataChannelParameters) -> RTCDataChannel:
        assert self.sctp is not None
        return RTCDataChannel(self.sctp, parameters)

    def switch(self, agent: Agent) -> None:
        """Carry DTLS over ``agent`` from now on (after an ICE restart)."""
        if self.transport is not None:
            self.transport.switch(agent)

    def idle(self) -> bool:
        """Nothing waits to be sent or acknowledged."""
        return self.sctp is None or sctp_idle(self.sctp)

    def closed_by_peer(self) -> bool:
        """DTLS closed while its path still worked: the peer sent close_notify."""
        transport = self.transport
        return transport is not None and transport.agent.connected and not transport.agent.is_closed

    async def stop(self) -> None:
        if self.sctp is not None:
            with contextlib.suppress(Exception):
                await self.sctp.stop()
        if self.dtls is not None:
            with contextlib.suppress(Exception):
                await self.dtls.stop()
        if self.transport is not None:
            self.transport.close()
