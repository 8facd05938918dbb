"""The lab's exceptions.

::

    IcepeerError
    └── LabError              a lab step failed (a command, a server that would not start)
        └── LabUnavailable    this machine cannot run the lab (not root, a tool or kernel feature missing)
"""

from __future__ import annotations

from ..errors import IcepeerError

__all__ = ["LabError", "LabUnavailable"]


class LabError(IcepeerError):
    """A lab step failed."""


class LabUnavailable(LabError):
    """The lab cannot run here: not root, or a tool or kernel feature is missing."""
