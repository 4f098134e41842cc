"""The composition root: settings → service (store, campaigns), worker, embedded sandbox.

The CLI, the web app and the demo get everything they run on from here; this is the one
module above the store that opens it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import errno
import hashlib
import hmac
import secrets
import signal
from collections.abc import AsyncIterator, Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING

from dispatcher.campaigns import CampaignCatalog
from dispatcher.channels.email import EmailAdapter
from dispatcher.channels.registry import (
    CHANNELS,
    ConfigError,
    build_adapters,
    channel_providers,
    concurrency_limits,
    live,
    pacing_rules,
    poll_seconds,
    sandboxed_channels,
    x_oauth_client,
)
from dispatcher.fax_hours import FaxHours
from dispatcher.models import HAND_OFF, SANDBOX, Channel
from dispatcher.retry import RetryPolicy
from dispatcher.service import Service
from dispatcher.service.receipts import send_receipts
from dispatcher.service.x_accounts import StoredTokens
from dispatcher.settings import ConfigurationError, SandboxSettings, Settings
from dispatcher.store import Store
from dispatcher.store.engine import in_use_elsewhere
from dispatcher.supervisor import Supervisor
from dispatcher.worker import Worker, WorkerStats, WorkerStopped

if TYPE_CHECKING:
    from dispatcher.sandbox import Faults, Sandbox

# Without DISPATCHER_SECRET_KEY, links are signed with this process's own key: the same for
# its pages and its worker (serve's receipts link to its own pages), but not across
# processes or restarts.
_PROCESS_LINK_KEY = secrets.token_bytes(32)


@contextlib.asynccontextmanager
async def open_service(settings: Settings) -> AsyncIterator[Service]:
    """The service over the configured database and campaigns.

    The schema is brought up to date on the way in (first use needs no manual migration);
    the campaigns are loaded first, so a bad campaign file fails before anything opens.
    """
    catalog = load_catalog(settings)
    store = await Store.open(settings.database_url)
    store.x_connect_wait = dt.timedelta(minutes=settings.twitter.connect_wait_minutes)
    x_rehearsing = channel_providers(settings)[Channel.TWITTER] == SANDBOX
    x_oauth = x_oauth_client(settings, x_rehearsing)
    try:
        secret = settings.secret_key.get_secret_value() if settings.secret_key else None
        yield Service(
            store=store,
            catalog=catalog,
            policy=RetryPolicy.from_settings(settings.retry),
            poll_seconds=poll_seconds(settings),
            link_key=(
                hmac.new(secret.encode(), b"links", hashlib.sha256).digest()
                if secret
                else _PROCESS_LINK_KEY
            ),
            public_url=settings.public_url.rstrip("/"),
            providers=channel_providers(settings),
            x_organisation=x_rehearsing or settings.twitter.consumer_key is not None,
            x_oauth=x_oauth,
        )
    finally:
        if x_oauth is not None:
            await x_oauth.aclose()
        await store.close()


def channel_modes(settings: Settings) -> list[str]:
    """One line per channel: live (through which provider), rehearsal, or off."""
    lines = []
    for channel, provider in channel_providers(settings).items():
        if provider is None:
            lines.append(f"{channel.value}: off (no provider configured)")
        elif provider == HAND_OFF:
            lines.append(
                f"{channel.value}: hand-off only (no X app or account configured): supporters "
                "get the prepared post to send themselves, counted as unverified"
            )
        elif provider == SANDBOX:
            lines.append(
                f"{channel.value}: rehearsal on the sandbox, nothing reaches the officials"
            )
        else:
            lines.append(f"{channel.value}: live through {provider}")
    return lines


def announce_channel_modes(settings: Settings, announce: Callable[[str], None]) -> None:
    """Say each channel's mode (``serve`` and ``worker`` print them as they start)."""
    for line in channel_modes(settings):
        announce(line)


def served_at(settings: Settings, host: str, port: int) -> Settings:
    """The settings for a web service on ``host:port``: the links in supporters' emails
    point there, unless DISPATCHER_PUBLIC_URL says where supporters reach it."""
    if "public_url" in settings.model_fields_set:
        return settings
    # S104: the wildcard addresses are compared here, not bound to.
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
    shown = f"[{shown}]" if ":" in shown else shown
    return settings.model_copy(update={"public_url": f"http://{shown}:{port}"})


def require_secret_when_live(settings: Settings) -> None:
    """In live mode every link in a supporter's email must outlive this process: refuse
    to start without DISPATCHER_SECRET_KEY (ConfigError)."""
    if live(settings) and settings.secret_key is None:
        raise ConfigError(
            "DISPATCHER_SECRET_KEY is required once a provider is configured: the links in "
            "supporters' emails and the forms must work after a restart and on every process "
            "(set it to a long random value, the same for every process)"
        )


def refuse_if_in_use(database: Path) -> None:
    """ConfigurationError if another process (``serve``, ``worker``) has the SQLite
    database open: deleting it under them would lose what they accept."""
    if in_use_elsewhere(database):
        raise ConfigurationError(
            f"{database} is in use by another process (a running `dispatcher serve` or "
            "`worker`?); stop it first, then run the demo again"
        )


def load_catalog(settings: Settings) -> CampaignCatalog:
    return CampaignCatalog.load(settings.campaigns_dir)


@contextlib.asynccontextmanager
async def embedded_sandbox(
    settings: Settings, announce: Callable[[str], None]
) -> AsyncIterator[list[Sandbox]]:
    """Start the sandbox servers for every channel that rehearses on the sandbox.

    A port that is already taken is assumed to be a ``dispatcher sandbox`` running
    separately; the worker then sends there.
    """
    cfg = settings.sandbox
    started: list[Sandbox] = []
    if not cfg.embedded:
        for channel in sandboxed_channels(settings):
            port = CHANNELS[channel].sandbox_port(cfg)
            announce(
                f"{channel.value}: rehearsal, sending to the sandbox at {cfg.host}:{port} "
                "(nothing reaches the officials)"
            )
        yield started
        return
    try:
        for channel in sandboxed_channels(settings):
            sandbox = sandbox_from_settings(
                cfg, channels=(channel.value,), fax_dialect=settings.fax.provider
            )
            try:
                await sandbox.start()
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                announce(
                    f"{channel.value}: using the sandbox already listening on "
                    f"{cfg.host}:{CHANNELS[channel].sandbox_port(cfg)}"
                )
                continue
            started.append(sandbox)
            announce(
                f"{channel.value}: rehearsal, sending to the embedded sandbox on "
                f"{cfg.host}:{CHANNELS[channel].sandbox_port(cfg)} (recorded in "
                f"{cfg.directory}/; nothing reaches the officials)"
            )
        yield started
    finally:
        for sandbox in started:
            await sandbox.stop()


def sandbox_from_settings(
    cfg: SandboxSettings,
    *,
    channels: Collection[str] | None = None,
    email_faults: Faults | None = None,
    fax_faults: Faults | None = None,
    x_faults: Faults | None = None,
    fax_dialect: str = "phaxio",
) -> Sandbox:
    """A sandbox (not started) where DISPATCHER_SANDBOX__* says, with optional faults; its
    fax gateway speaks ``fax_dialect`` (DISPATCHER_FAX__PROVIDER's API)."""
    from dispatcher.sandbox import CHANNELS, Faults, Sandbox

    return Sandbox(
        cfg.directory,
        host=cfg.host,
        smtp_port=cfg.smtp_port,
        fax_port=cfg.fax_port,
        x_port=cfg.x_port,
        fax_transmit_seconds=cfg.fax_transmit_seconds,
        fax_dialect=fax_dialect,
        channels=CHANNELS if channels is None else channels,
        email_faults=email_faults or Faults(),
        fax_faults=fax_faults or Faults(),
        x_faults=x_faults or Faults(),
    )


def build_worker(
    settings: Settings,
    service: Service,
    *,
    name: str | None = None,
    on_attempt: Callable[[Channel, float], None] | None = None,
) -> Worker:
    """A worker on the service's store. Raises ConfigError for half-given provider settings."""
    adapters = build_adapters(settings)
    x = adapters.get(Channel.TWITTER)
    if x is not None:
        # Imported only where X posts are sent (tweepy and aiohttp add to every start-up).
        from dispatcher.channels.twitter import TwitterAdapter

        if isinstance(x, TwitterAdapter):  # posts from supporters' own accounts read tokens
            x.accounts = StoredTokens(service)
            x.limits = service.store  # X's limits, kept in the store's pacing for every worker
            x.modes = {campaign.id: campaign.x_mode for campaign in service.catalog}
    return Worker(
        service.store,
        adapters,
        policy=service.policy,
        settings=settings.worker,
        concurrency=concurrency_limits(settings.worker),
        poll_seconds=service.poll_seconds,
        name=name,
        on_attempt=on_attempt,
        pacing=pacing_rules(settings, service.catalog),
        fax_hours=fax_lines(service.catalog),
        confirm_timeout=settings.fax.confirm_timeout_seconds,
    )


def fax_lines(catalog: CampaignCatalog) -> dict[tuple[str, str], FaxHours]:
    """Each fax line's hours from the campaign files: (campaign id, number) → window."""
    return {
        (campaign.id, target.fax): window
        for campaign in catalog
        for target in campaign.targets
        if target.fax is not None and (window := target.fax_window) is not None
    }


def supervised_worker(
    settings: Settings,
    service: Service,
    *,
    on_attempt: Callable[[Channel, float], None] | None = None,
) -> Supervisor:
    """``serve``'s worker under a supervisor: a new worker (and adapters) for every start.
    The first is built here, so half-given provider settings fail before anything runs."""
    first: list[Worker] = [build_worker(settings, service, on_attempt=on_attempt)]

    async def run_once(stop: asyncio.Event) -> None:
        worker = first.pop() if first else build_worker(settings, service, on_attempt=on_attempt)
        try:
            await run_with_receipts(worker, settings, service, stop=stop)
        finally:
            await close_adapters(worker)

    return Supervisor(
        "the worker",
        run_once,
        give_up_after=settings.worker.restart_limit,
        expected=(WorkerStopped,),
    )


async def run_with_receipts(
    worker: Worker,
    settings: Settings,
    service: Service,
    *,
    stop: asyncio.Event,
    drain: bool = False,
) -> WorkerStats:
    """The worker, and beside it the supporters' receipts over its email relay (when it
    sends email); they stop together, the receipts after one last round."""
    email = worker.adapters.get(Channel.EMAIL)
    done = asyncio.Event()
    receipts = None
    if isinstance(email, EmailAdapter):
        receipts = asyncio.create_task(
            send_receipts(
                service,
                email,
                from_address=settings.email.from_address,
                from_name=settings.email.from_name,
                stop=done,
                interval=settings.worker.idle_seconds,
            ),
            name="receipts",
        )
    try:
        return await worker.run(drain=drain, stop=stop)
    finally:
        done.set()
        if receipts is not None:
            await receipts


async def close_adapters(worker: Worker) -> None:
    for adapter in worker.adapters.values():
        await adapter.aclose()


def install_stop_handlers(
    stop: asyncio.Event, task: asyncio.Task[object] | None = None
) -> Callable[[], None]:
    """SIGINT/SIGTERM once: finish the sends in flight and exit. Twice: cancel (sends cut off
    are recorded as outcome unknown, due again at once).

    Returns a function that removes the handlers again (for code that runs on afterwards).
    """
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set() and task is not None:
            task.cancel()
        stop.set()

    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, on_signal)

    def remove() -> None:
        for sig in signals:
            loop.remove_signal_handler(sig)

    return remove
