"""Email over SMTP with aiosmtplib, through a pool of connections kept open between sends."""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import ssl
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from dispatcher.channels.base import (
    UNGUARDED,
    DeliveryError,
    LeaseGuard,
    PermanentError,
    SendResult,
    TransientError,
    ensure_lease_held,
)
from dispatcher.channels.smtp_relay import (
    AccessTokens,
    RelayLogin,
    client_tls_context,
    connection_failure,
)
from dispatcher.models import Channel, ClaimedDelivery
from dispatcher.render.email import email_bytes, message_id

_SIGN_IN_SETTINGS = (
    "DISPATCHER_EMAIL__USERNAME with DISPATCHER_EMAIL__PASSWORD or "
    "DISPATCHER_EMAIL__OAUTH2_TOKEN_COMMAND, over DISPATCHER_EMAIL__START_TLS or __USE_TLS"
)


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
        if code == 530:  # RFC 4954: "Authentication required" (or STARTTLS first)
            return PermanentError(
                f"the relay wants us to sign in first ({message}): set {_SIGN_IN_SETTINGS}",
                code=str(code),
            )
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


class Outgoing:
    """A delivery's message in wire form: made once for 8BITMIME relays, once for the rest."""

    def __init__(self, delivery: ClaimedDelivery, from_address: str, from_name: str) -> None:
        self._delivery = delivery
        self._from = (from_address, from_name)
        self.message_id = message_id(delivery, from_address)
        self._data: dict[bool, bytes] = {}

    def data(self, *, eight_bit: bool) -> bytes:
        if eight_bit not in self._data:
            from_address, from_name = self._from
            self._data[eight_bit] = email_bytes(
                self._delivery, from_address=from_address, from_name=from_name, eight_bit=eight_bit
            )
        return self._data[eight_bit]


class _Prepared:
    """A message already in wire form (7-bit safe), the same for every relay."""

    def __init__(self, data: bytes) -> None:
        self._bytes = data

    def data(self, *, eight_bit: bool) -> bytes:
        return self._bytes


class _Stale(Exception):
    """A kept connection turned out closed before the message went out: use a new one."""


class SmtpPool:
    """Up to ``size`` open SMTP connections to one relay, reused across deliveries.

    A connection goes back to the pool after a send that left it in a known state (sent, or
    refused and reset); one that failed midway is closed. One the server closed while it
    sat in the pool is noticed on its next use, before the message is handed over, and
    replaced by a new connection.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        size: int,
        login: RelayLogin,
        start_tls: bool | None,
        use_tls: bool,
        tls_context: ssl.SSLContext | None,
        timeout: float,
    ) -> None:
        self.host = host
        self.port = port
        self.size = size
        self._login = login
        self._start_tls = start_tls
        self._use_tls = use_tls
        self._tls_context = tls_context
        self._timeout = timeout
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(size)
        self.opened = 0  # connections opened over the pool's life (for tests and metrics)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[tuple[aiosmtplib.SMTP, bool]]:
        """A connection and whether it was kept from an earlier send. The caller closes it
        (``discard``) when it must not be reused."""
        async with self._slots:
            smtp, reused = None, False
            while self._idle and smtp is None:
                candidate = self._idle.pop()
                if candidate.is_connected:
                    smtp, reused = candidate, True
            if smtp is None:
                smtp = await self._open()
            try:
                yield smtp, reused
            finally:
                if smtp.is_connected:
                    self._idle.append(smtp)

    async def _open(self) -> aiosmtplib.SMTP:
        """A new connection, encrypted as configured and signed in. Raises PermanentError
        naming the setting to fix for an untrusted certificate or refused credentials."""
        smtp = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            start_tls=self._start_tls,
            use_tls=self._use_tls,
            tls_context=self._tls_context,
            timeout=self._timeout,
        )
        try:
            await smtp.connect()
            await self._login.sign_in(smtp)
        except (aiosmtplib.SMTPException, OSError) as exc:
            smtp.close()
            failure = connection_failure(exc)
            if failure is None:
                raise
            raise failure from exc
        except BaseException:
            smtp.close()
            raise
        self.opened += 1
        return smtp

    @staticmethod
    def discard(smtp: aiosmtplib.SMTP) -> None:
        smtp.close()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for smtp in idle:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await smtp.quit()
            smtp.close()


class EmailAdapter:
    """Sends one message per delivery over a pooled connection to the relay.

    SMTP has no way to ask whether a message arrived: a send after an unknown outcome goes
    out again with the same Message-ID (mail clients thread or drop the repeat) and the
    delivery is marked a possible duplicate.
    """

    channel = Channel.EMAIL
    finds_earlier = False

    def __init__(
        self,
        *,
        host: str,
        port: int,
        from_address: str,
        from_name: str,
        username: str | None = None,
        password: str | None = None,
        oauth2_token_command: str | None = None,
        start_tls: bool | None = None,
        use_tls: bool = False,
        ca_file: Path | None = None,
        timeout: float = 30.0,
        pool_size: int = 10,
        provider: str = "smtp",
    ) -> None:
        """``start_tls``: None upgrades when the relay offers it (and then credentials are
        sent only once it has), False never. Certificates are always verified (against
        the system's CAs and ``ca_file``). With ``oauth2_token_command`` the login is
        XOAUTH2 (``username`` is the mailbox) instead of PLAIN/LOGIN with ``password``.
        Raises ConfigurationError for a ``ca_file`` that cannot be read."""
        self.provider = provider
        self.host = host
        self.port = port
        self.from_address = from_address
        self.from_name = from_name
        self.pool = SmtpPool(
            host=host,
            port=port,
            size=pool_size,
            login=RelayLogin(
                username=username,
                password=password,
                tokens=(
                    AccessTokens(oauth2_token_command, timeout=timeout)
                    if oauth2_token_command
                    else None
                ),
                plain_allowed=start_tls is False,
            ),
            start_tls=start_tls,
            use_tls=use_tls,
            # Built once, here: it reads certificate files.
            tls_context=client_tls_context(ca_file) if use_tls or start_tls is not False else None,
            timeout=timeout,
        )

    async def send(self, delivery: ClaimedDelivery, lease: LeaseGuard = UNGUARDED) -> SendResult:
        message = Outgoing(delivery, self.from_address, self.from_name)
        message.data(eight_bit=True)  # a message that cannot be written fails before any I/O
        reply = await self._deliver(delivery.address, message, lease)
        return SendResult(confirmed=True, provider_ref=message.message_id, summary=reply[:200])

    async def send_message(self, recipient: str, message: EmailMessage) -> str:
        """A message of our own (a receipt to a supporter), over the same pooled relay;
        the server's reply. Raises DeliveryError as ``send`` does."""
        return await self._deliver(recipient, _Prepared(message.as_bytes(policy=email.policy.SMTP)))

    async def _deliver(
        self, recipient: str, message: Outgoing | _Prepared, lease: LeaseGuard = UNGUARDED
    ) -> str:
        """The transfer, on a new connection if a kept one turns out stale; the server's
        reply, or the failure classified."""
        try:
            # A kept connection the server has closed meanwhile is replaced at once; at most
            # every kept one can be stale, so this ends.
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(_Stale),
                stop=stop_after_attempt(self.pool.size + 1),
                reraise=True,
            ):
                with attempt:
                    return await self._transfer(recipient, message, lease)
            raise AssertionError("unreachable: the last try returns or raises")
        except aiosmtplib.SMTPException as exc:
            raise classify_smtp_error(exc) from exc
        except OSError as exc:
            raise TransientError(
                f"cannot reach SMTP server {self.host}:{self.port}: {exc}"
            ) from exc

    async def _transfer(
        self, recipient: str, message: Outgoing | _Prepared, lease: LeaseGuard
    ) -> str:
        """MAIL, RCPT and DATA on one pooled connection; the server's final reply."""
        async with self.pool.connection() as (smtp, reused):
            ensure_lease_held(lease)  # waiting for a connection may have taken a while
            eight_bit = smtp.supports_extension("8bitmime")
            try:
                await smtp.mail(self.from_address, options=["BODY=8BITMIME"] if eight_bit else [])
                await smtp.rcpt(recipient)
            except aiosmtplib.SMTPServerDisconnected as exc:
                SmtpPool.discard(smtp)
                if reused:
                    raise _Stale() from exc  # nothing was handed over yet
                raise
            except aiosmtplib.SMTPResponseException as exc:
                await _reset_or_discard(smtp)
                if isinstance(exc, aiosmtplib.SMTPRecipientRefused):
                    raise aiosmtplib.SMTPRecipientsRefused([exc]) from exc
                raise
            except BaseException:
                SmtpPool.discard(smtp)
                raise
            try:
                reply = await smtp.data(message.data(eight_bit=eight_bit))
            except aiosmtplib.SMTPResponseException as exc:
                if exc.code > 0:
                    await _reset_or_discard(smtp)
                else:
                    SmtpPool.discard(smtp)
                raise
            except BaseException:
                SmtpPool.discard(smtp)
                raise
        return f"{reply.code} {reply.message}"

    async def check(self, delivery: ClaimedDelivery) -> SendResult:
        return SendResult(confirmed=True, provider_ref=delivery.provider_ref)

    async def find_earlier(self, delivery: ClaimedDelivery) -> SendResult | None:
        return None

    async def aclose(self) -> None:
        await self.pool.aclose()


async def _reset_or_discard(smtp: aiosmtplib.SMTP) -> None:
    """After a refusal the connection is still good once RSET is accepted."""
    try:
        await smtp.rset()
    except (aiosmtplib.SMTPException, OSError):
        SmtpPool.discard(smtp)
