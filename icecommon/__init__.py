"""What icepeer and its signaling server share, so that neither imports the other's internals.

- :mod:`icecommon.urls`: STUN and TURN server URLs (RFC 7064, RFC 7065) and
  RTCIceServer entries, parsed into :class:`~icecommon.urls.IceServerUrl`;
- :mod:`icecommon.options`: argparse options that also read an environment
  variable (flags > environment > defaults), so every ``--help`` reads alike.

Nothing here does I/O, and nothing here imports :mod:`icepeer` or :mod:`signaling`.
"""
