"""A supporter deletes their personal data from one appeal, through the signed link in
the emails to their address. The counts stay: the report does not change, and the
address is kept only as a keyed hash, so the same supporter is still counted once."""

from __future__ import annotations

from dispatcher.service.context import Service
from dispatcher.service.errors import ErrorKind, ServiceError
from dispatcher.service.links import alias_key, check_link, is_alias, link, not_valid


def forget_link(service: Service, appeal_id: str) -> str:
    return link(service, "forget", appeal_id)


def check_forget_token(service: Service, appeal_id: str, token: str) -> None:
    """ServiceError (not found) unless ``token`` is this appeal's: a wrong token says no
    more than an unknown appeal does."""
    check_link(service, "forget", appeal_id, token)


async def already_forgotten(service: Service, appeal_id: str) -> bool:
    """Whether the appeal's data was deleted already (its deliveries keep only an alias)."""
    address = await service.store.appeal_address(appeal_id)
    return address is not None and is_alias(address)


async def forget_appeal(service: Service, appeal_id: str, token: str) -> None:
    """Remove the appeal's name, email address, country, letter and post; its deliveries
    keep only the address's alias. ServiceError: not found (or bad token), or conflict
    while a delivery is still on its way (its letter is needed to send it)."""
    check_forget_token(service, appeal_id, token)
    done = await service.store.forget_appeal(appeal_id, key=alias_key(service))
    if done is None:
        raise not_valid()
    if done is False:
        raise ServiceError(
            ErrorKind.CONFLICT,
            "your messages are still being sent; your data can be deleted once each has been "
            "delivered or has failed (usually within minutes)",
            "appeal_id",
        )
