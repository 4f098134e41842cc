"""Intake: a supporter's appeal stored with all its deliveries in one step."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from dispatcher.campaigns import Campaign
from dispatcher.models import AppealReceipt
from dispatcher.render.tweet import compose_tweet, weighted_length
from dispatcher.service.context import Service
from dispatcher.service.validation import PLACEHOLDER, AppealRequest, validate_appeal


async def submit_appeal(
    service: Service, request: AppealRequest, *, now: dt.datetime | None = None
) -> AppealReceipt:
    """Validate, then store supporter, appeal and deliveries in one transaction.

    A repeat (same campaign, supporter email, target and channel) creates nothing and comes
    back as ``already_counted``; that is a success, not an error. Raises ServiceError, with
    nothing stored, for anything that is not accepted.
    """
    valid = validate_appeal(service.catalog, request, now=now)
    return await service.store.create_appeal(valid.appeal, valid.deliveries, now=now)


def tweet_lengths(
    campaign: Campaign,
    text: str | None,
    supporter_name: str,
    targets: Collection[str] | None = None,
    language: str | None = None,
) -> dict[str, int]:
    """Weighted length of the post each X target would get (handles + text + signature),
    for the ``targets`` chosen (all of them when None), with the text as intake cleans it
    (no text: the sample post for a letter in ``language``)."""
    tweet = campaign.tweet_in(language or campaign.default_language)
    if text is not None and text.strip():
        tweet = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    name = supporter_name.strip() or PLACEHOLDER
    return {
        target.id: weighted_length(compose_tweet(" ".join(target.twitter), tweet, name))
        for target in campaign.targets
        if target.twitter and (targets is None or target.id in targets)
    }
