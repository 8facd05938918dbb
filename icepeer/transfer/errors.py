"""What file transfer raises, below :class:`icepeer.IcepeerError`.

::

    IcepeerError
    └── TransferError           the transfer did not complete
        ├── BadManifest         the sender's offer is malformed or over the limits
        │   └── UnsafeName      a file name that could escape the target directory
        ├── Refused             the receiver said no (an existing file, no space, ...)
        ├── IntegrityError      a file arrived with the wrong size or SHA-256
        └── TransferProtocolError   a message out of place, or more bytes than announced
"""

from __future__ import annotations

from ..errors import IcepeerError

__all__ = ["BadManifest", "IntegrityError", "Refused", "TransferError", "TransferProtocolError", "UnsafeName"]


class TransferError(IcepeerError):
    """The transfer did not complete."""


class BadManifest(TransferError):
    """The offer does not describe files we can accept."""


class UnsafeName(BadManifest):
    """A file name with a path in it, or one that no file system should see."""


class Refused(TransferError):
    """The receiver refused the offer."""


class IntegrityError(TransferError):
    """A file's bytes do not match its size or SHA-256."""


class TransferProtocolError(TransferError):
    """The peer broke the transfer protocol."""
