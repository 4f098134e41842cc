"""Persistence: the only package that runs SQL."""

from dispatcher.store.engine import DatabaseUrlError
from dispatcher.store.records import (
    AppealReceipt,
    AttemptEntry,
    DeliverySummary,
    DeliveryUpdate,
    LogEntry,
    NewAppeal,
    NewDelivery,
)
from dispatcher.store.store import Store, utcnow

__all__ = [
    "AppealReceipt",
    "AttemptEntry",
    "DatabaseUrlError",
    "DeliverySummary",
    "DeliveryUpdate",
    "LogEntry",
    "NewAppeal",
    "NewDelivery",
    "Store",
    "utcnow",
]
