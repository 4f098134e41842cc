"""``Sandbox``: the SMTP sink, fax gateway and X API stand-ins started together."""

from __future__ import annotations

import shutil
from collections.abc import Collection
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from dispatcher.settings import ConfigurationError

from .faults import Faults
from .fax_gateway import FaxGateway, SandboxFax
from .fax_phaxio import PhaxioGateway
from .fax_sinch import SinchGateway
from .fax_telnyx import TelnyxGateway
from .x_api import XApi

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from .smtp import SmtpSink

CHANNELS = ("email", "fax", "twitter")
"""Channel names accepted by ``Sandbox(channels=...)``; each records into the
sub-folder of the same name."""
FAX_DIALECTS = ("phaxio", "sinch", "telnyx")
"""The fax providers' APIs the fax gateway can speak (``Sandbox(fax_dialect=...)``)."""


class Sandbox:
    """Local stand-ins for the providers, run inside the caller's event loop.

    Everything binds to ``host`` (loopback by default); a port of 0 picks a free one,
    and ``smtp_port``, ``fax_base_url`` and ``x_base_url`` give the real values once
    started. Only the servers named in ``channels`` start; asking for the address of
    one that is not running raises ``RuntimeError``.

    What the servers accept is kept in ``emails``, ``faxes`` and ``tweets`` and written
    under ``directory`` (``email/``, ``fax/``, ``twitter/``); ``clear=True`` empties
    those three sub-folders at ``start()``. Use as ``async with Sandbox(...) as box:``
    or call ``start()`` and ``stop()``.
    """

    def __init__(
        self,
        directory: Path,
        *,
        host: str = "127.0.0.1",
        smtp_port: int = 0,
        fax_port: int = 0,
        x_port: int = 0,
        email_faults: Faults = Faults(),  # noqa: B008 - Faults is frozen, sharing is safe
        fax_faults: Faults = Faults(),  # noqa: B008
        x_faults: Faults = Faults(),  # noqa: B008
        fax_transmit_seconds: float = 0.5,
        fax_callback_token: str | None = None,
        fax_dialect: str = "phaxio",
        fax_signing_key: Ed25519PrivateKey | None = None,
        channels: Collection[str] = CHANNELS,
        clear: bool = False,
    ) -> None:
        unknown = set(channels) - set(CHANNELS)
        if unknown:
            raise ValueError(f"unknown sandbox channel(s) {sorted(unknown)}; use {CHANNELS}")
        self.directory = directory
        self.channels = frozenset(channels)
        self._clear = clear
        self.emails: list[EmailMessage] = []
        self.faxes: list[SandboxFax] = []
        self.tweets: list[dict[str, str]] = []
        self._smtp = (
            _smtp_sink(
                directory / "email",
                faults=email_faults,
                messages=self.emails,
                host=host,
                port=smtp_port,
            )
            if "email" in self.channels
            else None
        )
        if fax_dialect not in FAX_DIALECTS:
            raise ValueError(f"unknown fax dialect {fax_dialect!r}; use one of {FAX_DIALECTS}")
        self.fax_dialect = fax_dialect
        fax_options: dict[str, Any] = {
            "faults": fax_faults,
            "faxes": self.faxes,
            "host": host,
            "port": fax_port,
            "transmit_seconds": fax_transmit_seconds,
        }
        self._fax = _fax_gateway(
            fax_dialect, directory / "fax", fax_options, fax_callback_token, fax_signing_key
        )
        self._x = XApi(
            directory / "twitter",
            faults=x_faults,
            tweets=self.tweets,
            host=host,
            port=x_port,
        )
        self._started: set[str] = set()

    @property
    def x_api(self) -> XApi | None:
        """The X API stand-in (its OAuth state and the exchanges it saw), if it runs."""
        return self._x if "twitter" in self.channels else None

    @property
    def smtp_port(self) -> int:
        """The SMTP sink's bound port."""
        return self._running_smtp().port

    def drop_smtp_connections(self) -> int:
        """Close every open SMTP session from the server's side; returns how many."""
        return self._running_smtp().drop_connections()

    def _running_smtp(self) -> SmtpSink:
        self._require("email")
        assert self._smtp is not None  # started, so it was made
        return self._smtp

    @property
    def fax_base_url(self) -> str:
        """``http://host:port`` of the fax gateway (the chosen dialect's API base URL)."""
        self._require("fax")
        return self._fax.base_url

    @property
    def fax_callback_answers(self) -> list[tuple[int, int, Any]]:
        """How the receiver answered each fax callback: (fax id, HTTP status, JSON body)."""
        self._require("fax")
        return self._fax.callback_answers

    @property
    def fax_webhook_public_key(self) -> str:
        """The key the Telnyx dialect's webhooks are signed with (base64 Ed25519)."""
        if not isinstance(self._fax, TelnyxGateway):
            raise RuntimeError(f"the {self.fax_dialect} fax dialect signs no webhooks")
        return self._fax.webhook_public_key

    @property
    def fax_port(self) -> int:
        """The fax gateway's bound port."""
        self._require("fax")
        return self._fax.port

    @property
    def x_port(self) -> int:
        """The X API stand-in's bound port."""
        self._require("twitter")
        return self._x.port

    @property
    def x_base_url(self) -> str:
        """``http://host:port`` of the X API stand-in."""
        self._require("twitter")
        return self._x.base_url

    def delivered_counts(self) -> dict[str, int]:
        """Accepted emails, faxes that ended in ``success``, and accepted tweets."""
        self._fax.advance_all()
        return {
            "email": len(self.emails),
            "fax": sum(1 for fax in self.faxes if fax.status == "success"),
            "twitter": len(self.tweets),
        }

    async def start(self) -> None:
        """Bind every chosen server.

        Raises ``OSError`` if a port is taken; servers already started are stopped
        again first, so a failed start leaves nothing running.
        """
        if self._clear and not self._started:
            for channel in CHANNELS:
                shutil.rmtree(self.directory / channel, ignore_errors=True)
        servers: dict[str, SmtpSink | FaxGateway | XApi | None] = {
            "email": self._smtp,
            "fax": self._fax,
            "twitter": self._x,
        }
        try:
            for channel in CHANNELS:
                server = servers[channel]
                if server is not None and channel in self.channels and channel not in self._started:
                    await server.start()
                    self._started.add(channel)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Close every server and its connections; cancel pending fax transmissions
        and callbacks. Safe to call twice. Recorded data stays available."""
        if "fax" in self._started:
            await self._fax.stop()
        if "twitter" in self._started:
            await self._x.stop()
        if "email" in self._started and self._smtp is not None:
            await self._smtp.stop()
        self._started.clear()

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _require(self, channel: str) -> None:
        if channel not in self._started:
            raise RuntimeError(f"the sandbox {channel} server is not running")


def _fax_gateway(
    dialect: str,
    directory: Path,
    options: dict[str, Any],
    callback_token: str | None,
    signing_key: Ed25519PrivateKey | None,
) -> FaxGateway:
    """The sandbox gateway that speaks ``dialect``'s API."""
    if dialect == "sinch":
        return SinchGateway(directory, **options)
    if dialect == "telnyx":
        return TelnyxGateway(directory, signing_key=signing_key, **options)
    return PhaxioGateway(directory, callback_token=callback_token, **options)


def require_servers(channels: Collection[str]) -> None:
    """ConfigurationError, in one sentence, when a server ``channels`` needs is not
    installed: the SMTP sink runs on aiosmtpd, which comes with the ``sandbox`` extra."""
    if "email" in channels:
        _smtp_sink_class()


def _smtp_sink(directory: Path, **options: Any) -> SmtpSink:
    return _smtp_sink_class()(directory, **options)


def _smtp_sink_class() -> type[SmtpSink]:
    try:
        from .smtp import SmtpSink
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.partition(".")[0] != "aiosmtpd":
            raise
        raise ConfigurationError(
            "the sandbox's SMTP server needs aiosmtpd, which is not installed: install it "
            "with pip install 'appeal-dispatcher[sandbox]'"
        ) from None
    return SmtpSink
