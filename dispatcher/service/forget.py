"""A supporter deletes their personal data from one appeal, through the signed link in
their receipt (and on their status page). The counts stay: the report does not change."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from dispatcher.service.context import Service
from dispatcher.service.errors import ErrorKind, ServiceError


def _not_valid() -> ServiceError:
    return ServiceError(ErrorKind.NOT_FOUND, "no such appeal, or the link is not valid", "token")


def forget_token(service: Service, appeal_id: str) -> str:
    """The token that proves a deletion link came from us, for this appeal only."""
    return hmac.new(service.link_key, f"forget:{appeal_id}".encode(), hashlib.sha256).hexdigest()[
        :32
    ]


def forget_path(service: Service, appeal_id: str) -> str:
    """The deletion link's path (the status page links to it; receipts add the host)."""
    return f"/a/{appeal_id}/forget?token={forget_token(service, appeal_id)}"


def forget_link(service: Service, appeal_id: str) -> str:
    return service.public_url + forget_path(service, appeal_id)


def check_forget_token(service: Service, appeal_id: str, token: str) -> None:
    """ServiceError (not found) unless ``token`` is this appeal's: a wrong token says no
    more than an unknown appeal does."""
    # As bytes: compare_digest refuses str with characters outside ASCII (a 500, found by
    # schemathesis), and a token is whatever a link or a client sends.
    expected = forget_token(service, appeal_id).encode()
    if not hmac.compare_digest(token.encode("utf-8", "surrogateescape"), expected):
        raise _not_valid()


async def forget_appeal(service: Service, appeal_id: str, token: str) -> None:
    """Remove the appeal's name, email address, country, letter and post; its deliveries
    keep only a pseudonym. ServiceError: not found (or bad token), or conflict while a
    delivery is still on its way (its letter is needed to send it)."""
    check_forget_token(service, appeal_id, token)
    # A key for this deletion only, then forgotten: the pseudonym cannot be recomputed.
    done = await service.store.forget_appeal(appeal_id, key=secrets.token_bytes(32))
    if done is None:
        raise _not_valid()
    if done is False:
        raise ServiceError(
            ErrorKind.CONFLICT,
            "your messages are still being sent; your data can be deleted once each has been "
            "delivered or has failed (usually within minutes)",
            "appeal_id",
        )
