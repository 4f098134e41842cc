"""The operators' audit log: who signed in, retried, cancelled or exported what, and when."""

from __future__ import annotations

from dispatcher.i18n import N_
from dispatcher.models import utcnow
from dispatcher.service.context import Service
from dispatcher.store.operators import AuditEntry

__all__ = ["ACTIONS", "AuditEntry", "recent", "record"]

# What an entry's action is, in the words the dashboard shows.
ACTIONS = {
    "sign-in": N_("signed in"),
    "sign-in-failed": N_("failed to sign in"),
    "sign-out": N_("signed out"),
    "retry": N_("retried"),
    "cancel": N_("cancelled"),
    "export": N_("exported"),
    "approve": N_("approved"),
    "reject": N_("rejected"),
}


async def record(
    service: Service, operator: str, action: str, subject: str, *, address: str | None = None
) -> None:
    """Add one entry (``action`` is one of ACTIONS)."""
    assert action in ACTIONS, action
    entry = AuditEntry(utcnow(), operator, action, subject[:500], address)
    await service.store.record_audit(entry)


async def recent(service: Service, *, limit: int = 50) -> list[AuditEntry]:
    """The newest entries first."""
    return await service.store.list_audit(limit=limit)
