"""What every service function works with, opened once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass

from dispatcher.campaigns import CampaignCatalog
from dispatcher.retry import RetryPolicy
from dispatcher.store import Store


@dataclass(frozen=True, slots=True)
class Service:
    """The store, the campaigns and the delivery rules, handed to every service function.

    The web app and the CLI receive one from :func:`dispatcher.runtime.open_service`; they
    pass it on and never reach into the store themselves.
    """

    store: Store
    catalog: CampaignCatalog
    policy: RetryPolicy
    # How long after an accepted fax its status is asked for again.
    poll_seconds: float
