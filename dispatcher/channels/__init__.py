"""Channel adapters: one per provider, behind the ChannelAdapter protocol."""

from dispatcher.channels.base import (
    ChannelAdapter,
    DeliveryError,
    DuplicateContent,
    PermanentError,
    RateLimited,
    SendResult,
    TransientError,
)

__all__ = [
    "ChannelAdapter",
    "DeliveryError",
    "DuplicateContent",
    "PermanentError",
    "RateLimited",
    "SendResult",
    "TransientError",
]
