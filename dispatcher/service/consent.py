"""What the owner of an address decides through the links emailed to it: that officials
may reply to them ("confirm"), or that an appeal was not theirs ("this wasn't me")."""

from __future__ import annotations

from dispatcher.service.context import Service
from dispatcher.service.links import (
    address_alias,
    alias_key,
    check_link,
    is_alias,
    not_valid,
)


async def confirm_reply_to(service: Service, appeal_id: str, token: str) -> None:
    """The supporter confirmed their address: their emails to the officials go, with it in
    Reply-To. ServiceError (not found) for a wrong token or an appeal that did not ask."""
    check_link(service, "confirm", appeal_id, token)
    if not await service.store.confirm_reply_to(appeal_id):
        raise not_valid()


async def disown_appeal(service: Service, appeal_id: str, token: str) -> int:
    """ "This wasn't me": what has not gone out is cancelled, the address is suppressed
    (nothing is accepted or sent in its name again; only a keyed hash is kept) and the
    appeal's personal data is deleted. Returns how many deliveries were stopped."""
    check_link(service, "not-me", appeal_id, token)
    address = await service.store.appeal_address(appeal_id)
    if address is None:
        raise not_valid()
    alias = address if is_alias(address) else address_alias(service, address)
    stopped = await service.store.disown_appeal(appeal_id, alias=alias, key=alias_key(service))
    if stopped is None:
        raise not_valid()
    return stopped
