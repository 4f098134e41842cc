"""What a supporter sees after sending: each delivery of their appeal, with a reason."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from dispatcher.models import Channel, DeliveryStatus, LogEntry
from dispatcher.service.context import Service
from dispatcher.service.errors import ErrorKind, ServiceError

_NOT_ARRIVED = {DeliveryStatus.FAILED, DeliveryStatus.EXPIRED, DeliveryStatus.CANCELLED}


class AppealDelivery(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    target: str
    target_name: str
    channel: Channel
    status: DeliveryStatus
    reason: str | None


class AppealStatus(BaseModel):
    """An appeal's deliveries in the order they were created."""

    model_config = ConfigDict(frozen=True)

    appeal_id: str
    campaign: str
    deliveries: list[AppealDelivery]

    @property
    def settled(self) -> bool:
        return all(d.status.settled for d in self.deliveries)


def reason(entry: LogEntry) -> str | None:
    """A plain-language reason for a delivery that did not arrive, or will be tried again."""
    if entry.status in _NOT_ARRIVED:
        return entry.last_error.message if entry.last_error else entry.status.value
    if entry.status is DeliveryStatus.QUEUED and entry.last_error is not None:
        return f"will try again: {entry.last_error.message}"
    return None


async def appeal_status(service: Service, appeal_id: str) -> AppealStatus:
    """ServiceError (not found) for an unknown appeal id."""
    campaign_id = await service.store.appeal_campaign(appeal_id)
    if campaign_id is None:
        raise ServiceError(ErrorKind.NOT_FOUND, "no such appeal", "appeal_id")
    campaign = service.catalog.get(campaign_id)
    names = {t.id: t.name for t in campaign.targets} if campaign else {}
    entries = await service.store.list_deliveries(appeal_id=appeal_id)
    return AppealStatus(
        appeal_id=appeal_id,
        campaign=campaign_id,
        deliveries=[
            AppealDelivery(
                id=e.id,
                target=e.target_id,
                target_name=names.get(e.target_id, e.target_id),
                channel=e.channel,
                status=e.status,
                reason=reason(e),
            )
            for e in sorted(entries, key=lambda e: e.id)
        ],
    )
