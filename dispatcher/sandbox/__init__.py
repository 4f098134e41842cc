"""Real local servers that stand in for the providers (SMTP, Phaxio fax, X API).

``Sandbox`` starts them inside the running event loop on loopback, records what they
accept under a directory a person can browse, and injects faults described by
``Faults``. See :class:`Sandbox` for the details a caller needs.
"""

from __future__ import annotations

from dispatcher.channels.phaxio import phaxio_signature, verify_phaxio_signature

from .core import CHANNELS, Sandbox, require_servers
from .faults import Faults
from .fax_gateway import SandboxFax

__all__ = [
    "CHANNELS",
    "Faults",
    "Sandbox",
    "SandboxFax",
    "phaxio_signature",
    "require_servers",
    "verify_phaxio_signature",
]
