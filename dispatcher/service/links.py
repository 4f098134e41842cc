"""The signed links that reach a supporter only by email, at the address they gave.

Each link proves it came from us, for one appeal and one purpose: following the appeal
(status), deleting its data (forget), confirming that officials may reply to the address
(confirm), and "this wasn't me" (not-me). Nothing the service answers to whoever submits
an appeal carries any of them, so knowing an email address shows nothing about its owner.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Literal

from dispatcher.service.context import Service
from dispatcher.service.errors import ErrorKind, ServiceError
from dispatcher.store import PURGED, pseudonym

Purpose = Literal["status", "forget", "confirm", "not-me"]
_PATHS: dict[str, str] = {
    "status": "/a/{id}?token={token}",
    "forget": "/a/{id}/forget?token={token}",
    "confirm": "/a/{id}/confirm?token={token}",
    "not-me": "/a/{id}/not-me?token={token}",
}


def not_valid() -> ServiceError:
    """What a wrong token, and an unknown appeal, both get: neither says more."""
    return ServiceError(ErrorKind.NOT_FOUND, "no such appeal, or the link is not valid", "token")


def link_token(service: Service, purpose: Purpose, appeal_id: str) -> str:
    """The token that proves a link came from us, for this appeal and purpose only."""
    message = f"{purpose}:{appeal_id}".encode()
    return hmac.new(service.link_key, message, hashlib.sha256).hexdigest()[:32]


def link_path(service: Service, purpose: Purpose, appeal_id: str) -> str:
    return _PATHS[purpose].format(id=appeal_id, token=link_token(service, purpose, appeal_id))


def link(service: Service, purpose: Purpose, appeal_id: str) -> str:
    """The whole link, as an email to the supporter carries it."""
    return service.public_url + link_path(service, purpose, appeal_id)


def check_link(service: Service, purpose: Purpose, appeal_id: str, token: str) -> None:
    """ServiceError (not found) unless ``token`` is this appeal's for ``purpose``."""
    # As bytes: compare_digest refuses str with characters outside ASCII (a 500, found by
    # schemathesis), and a token is whatever a link or a client sends.
    expected = link_token(service, purpose, appeal_id).encode()
    if not hmac.compare_digest(token.encode("utf-8", "surrogateescape"), expected):
        raise not_valid()


def alias_key(service: Service) -> bytes:
    """The key of the address aliases: kept (derived from DISPATCHER_SECRET_KEY), so a
    supporter who deleted their data is still counted once, and a suppressed address is
    recognised, without keeping the address."""
    return hmac.new(service.link_key, b"address-alias", hashlib.sha256).digest()


def address_alias(service: Service, email: str) -> str:
    return pseudonym(alias_key(service), email.lower())


def is_alias(address: str) -> bool:
    """An address already replaced by its alias (its owner deleted their data)."""
    return address.startswith(PURGED)


def new_appeal_id(service: Service, campaign_id: str, idempotency_key: str | None) -> str:
    """The id a submission answers with. With an idempotency key, the same for every
    request that carries it, whether that request stored an appeal or was a repeat:
    the answer never tells the two apart."""
    if idempotency_key is None:
        return secrets.token_urlsafe(16)
    message = f"appeal:{campaign_id}:{idempotency_key}".encode()
    digest = hmac.new(service.link_key, message, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")
