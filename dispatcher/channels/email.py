"""Email over SMTP with aiosmtplib."""

from __future__ import annotations

import aiosmtplib

from dispatcher.channels.base import (
    DeliveryError,
    PermanentError,
    SendResult,
    TransientError,
)
from dispatcher.models import Channel, ClaimedDelivery
from dispatcher.render.email import build_email


def classify_smtp_error(exc: aiosmtplib.SMTPException) -> DeliveryError:
    """SMTP 4xx → transient, 5xx → permanent; connection trouble and timeouts → transient."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        text = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
        cls = TransientError if codes and all(400 <= c < 500 for c in codes) else PermanentError
        return cls(f"recipient refused: {text}", code=str(codes[0]) if codes else None)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        code = exc.code
        message = f"SMTP {code} {exc.message}"
        if 400 <= code < 500:
            return TransientError(message, code=str(code))
        if 500 <= code < 600:
            return PermanentError(message, code=str(code))
        # aiosmtplib uses code -1 for errors without a server reply (disconnects).
        return TransientError(message, outcome_unknown=True)
    if isinstance(exc, aiosmtplib.SMTPConnectError):
        return TransientError(f"cannot connect to the SMTP server: {exc}")
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | aiosmtplib.SMTPServerDisconnected):
        return TransientError(f"SMTP connection lost: {exc}", outcome_unknown=True)
    return TransientError(f"SMTP error: {exc}")


class EmailAdapter:
    """Sends one message per delivery; a new SMTP connection each time (simple, robust)."""

    channel = Channel.EMAIL

    def __init__(
        self,
        *,
        host: str,
        port: int,
        from_address: str,
        from_name: str,
        username: str | None = None,
        password: str | None = None,
        start_tls: bool | None = None,
        use_tls: bool = False,
        timeout: float = 30.0,
    ) -> None:
        self.host = host
        self.port = port
        self.from_address = from_address
        self.from_name = from_name
        self._username = username
        self._password = password
        self._start_tls = start_tls
        self._use_tls = use_tls
        self._timeout = timeout

    async def send(self, delivery: ClaimedDelivery) -> SendResult:
        message = build_email(delivery, from_address=self.from_address, from_name=self.from_name)
        try:
            _errors, response = await aiosmtplib.send(
                message,
                hostname=self.host,
                port=self.port,
                username=self._username,
                password=self._password,
                start_tls=self._start_tls,
                use_tls=self._use_tls,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPException as exc:
            raise classify_smtp_error(exc) from exc
        except OSError as exc:
            raise TransientError(
                f"cannot reach SMTP server {self.host}:{self.port}: {exc}"
            ) from exc
        return SendResult(
            confirmed=True, provider_ref=str(message["Message-ID"]), summary=response[:200]
        )

    async def check(self, delivery: ClaimedDelivery) -> SendResult:
        return SendResult(confirmed=True, provider_ref=delivery.provider_ref)

    async def aclose(self) -> None:
        return None
