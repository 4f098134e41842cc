"""The operators' audit log: who signed in (or tried to), viewed supporters' data,
retried, cancelled, reviewed or exported what, when, and from which client address."""

from __future__ import annotations

from contextvars import ContextVar

from dispatcher.i18n import N_
from dispatcher.models import utcnow
from dispatcher.service.context import Service
from dispatcher.store.operators import AuditEntry

__all__ = ["ACTIONS", "AuditEntry", "acting_from", "recent", "record"]

# What an entry's action is, in the words the dashboard shows.
ACTIONS = {
    "sign-in": N_("signed in"),
    "sign-in-failed": N_("failed to sign in"),
    "sign-in-refused": N_("was refused"),
    "sign-out": N_("signed out"),
    "view": N_("viewed"),
    "retry": N_("retried"),
    "cancel": N_("cancelled"),
    "export": N_("exported"),
    "approve": N_("approved"),
    "reject": N_("rejected"),
}

# The client address of the request being answered. The web layer sets it where it
# identifies the operator, so that what the services record on that request's behalf
# (a retry, a review, an export) says where it came from without every service function
# taking the address; a context variable is per request (per task), and unset (None) for
# the CLI, whose entries name the login instead.
_client_address: ContextVar[str | None] = ContextVar("audit_client_address", default=None)


def acting_from(address: str | None) -> None:
    """Entries recorded from here on in this request (task) carry ``address``."""
    _client_address.set(address)


async def record(
    service: Service, operator: str, action: str, subject: str, *, address: str | None = None
) -> None:
    """Add one entry (``action`` is one of ACTIONS); ``address`` defaults to the
    request's (see acting_from)."""
    assert action in ACTIONS, action
    where = address if address is not None else _client_address.get()
    entry = AuditEntry(utcnow(), operator, action, subject[:500], where)
    await service.store.record_audit(entry)


async def recent(service: Service, *, limit: int = 50) -> list[AuditEntry]:
    """The newest entries first."""
    return await service.store.list_audit(limit=limit)
