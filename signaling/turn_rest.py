"""Time-limited TURN credentials in coturn's REST scheme.

The scheme is draft-uberti-behave-turn-rest-00, as coturn implements it with
``--use-auth-secret --static-auth-secret=S``: the username is
``"<expiry unix time>:<name>"`` and the password is
``base64(HMAC-SHA1(S, username))``. The shared secret never leaves the
signaling server; a client gets credentials that stop working at expiry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["TurnCredentials", "mint"]


@dataclass(frozen=True)
class TurnCredentials:
    username: str
    password: str
    expires: int


def mint(
    secret: str,
    name: str,
    ttl: float,
    *,
    clock: Callable[[], float] = time.time,
) -> TurnCredentials:
    """Credentials for ``name`` valid for ``ttl`` seconds from now."""
    expires = int(clock() + ttl)
    username = f"{expires}:{name}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return TurnCredentials(username, base64.b64encode(digest).decode("ascii"), expires)
