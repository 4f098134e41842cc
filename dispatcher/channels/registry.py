"""The channels, described once: how each is labelled, built, paced and sandboxed.

Every other place that needs the set of channels (the worker's limits, the embedded
sandbox, the pages) reads :data:`CHANNELS`. Adding a channel means a ``Channel`` value,
its adapter module, and one :class:`ChannelSpec` here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import SecretStr

from dispatcher.campaigns import CampaignCatalog
from dispatcher.channels.base import ChannelAdapter
from dispatcher.i18n import N_
from dispatcher.models import HAND_OFF, SANDBOX, CampaignPacing, Channel, PacingRules
from dispatcher.settings import ConfigurationError, SandboxSettings, Settings, WorkerSettings

if TYPE_CHECKING:
    from dispatcher.channels.fax import FaxProvider
    from dispatcher.channels.x_oauth import XOAuthClient

DEFAULT_X_API = "https://api.twitter.com"
# The sandbox checks that credentials are present, not what they are.
# Not a secret: the sandbox accepts any credentials.
_SANDBOX_SECRET = "sandbox"  # noqa: S105


class ConfigError(ConfigurationError):
    """Provider settings are incomplete; the message names the missing variable."""


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """What the application needs to know about one channel besides its adapter's code."""

    channel: Channel
    label: str  # what supporters and operators read (translated where shown)
    configured: Callable[[Settings], bool]  # provider settings given
    provider: Callable[[Settings], str]  # the configured provider's name ("smtp", "x", …)
    # The provider's adapter, or (True) one that speaks to the sandbox.
    build: Callable[[Settings, bool], ChannelAdapter]
    sandbox_port: Callable[[SandboxSettings], int]
    concurrency: Callable[[WorkerSettings], int]  # sends in flight per worker


def _secret(value: SecretStr | None, env_name: str, channel: str) -> str:
    if value is None or not value.get_secret_value():
        raise ConfigError(f"{env_name} is required when {channel} is configured")
    return value.get_secret_value()


def _email_adapter(settings: Settings, sandboxed: bool) -> ChannelAdapter:
    # Imported here so commands that send nothing don't load aiosmtplib, aiohttp or tweepy.
    from dispatcher.channels.email import EmailAdapter

    email, sandbox = settings.email, settings.sandbox
    if email.host is not None and not sandboxed:
        host, port = email.host, email.port or (465 if email.use_tls else 587)
        username = email.username
        password = email.password.get_secret_value() if email.password else None
        start_tls, use_tls = email.start_tls, email.use_tls
        token_command, ca_file = email.oauth2_token_command, email.ca_file
        if token_command and (password or not username):
            raise ConfigError(
                "DISPATCHER_EMAIL__OAUTH2_TOKEN_COMMAND needs DISPATCHER_EMAIL__USERNAME (the "
                "mailbox) and replaces DISPATCHER_EMAIL__PASSWORD: set the one, unset the other"
            )
    else:  # the sandbox speaks plain SMTP on loopback and asks for no AUTH
        host, port = sandbox.host, sandbox.smtp_port
        username, password, start_tls, use_tls = None, None, False, False
        token_command, ca_file = None, None
    return EmailAdapter(
        provider=SANDBOX if sandboxed or email.rehearsal else "smtp",
        host=host,
        port=port,
        from_address=email.from_address,
        from_name=email.from_name,
        username=username,
        password=password,
        oauth2_token_command=token_command,
        start_tls=start_tls,
        use_tls=use_tls,
        ca_file=ca_file,
        timeout=email.timeout_seconds,
        pool_size=email.pool_size,
    )


def fax_provider(name: str) -> FaxProvider:
    """The fax provider plugin DISPATCHER_FAX__PROVIDER names: one module each."""
    # Imported here so commands that send nothing don't load httpx.
    from dispatcher.channels import phaxio, sinch, telnyx

    providers = {p.name: p for p in (phaxio.PROVIDER, sinch.PROVIDER, telnyx.PROVIDER)}
    return providers[name]


def _fax_adapter(settings: Settings, sandboxed: bool | None = None) -> ChannelAdapter:
    """DISPATCHER_FAX__PROVIDER's adapter; to the sandbox when ``sandboxed`` (None: when
    no fax provider account is configured)."""
    if sandboxed is None:
        sandboxed = not settings.fax.configured
    return fax_provider(settings.fax.provider).build(settings, sandboxed)


# The sandbox X API's OAuth 2.0 app: it checks that a client id is given, not which.
SANDBOX_X_CLIENT_ID = "sandbox-app"


def _x_adapter(settings: Settings, sandboxed: bool) -> ChannelAdapter:
    from dispatcher.channels.twitter import OrganisationKeys, TwitterAdapter

    x = settings.twitter
    oauth = x_oauth_client(settings, sandboxed)
    if sandboxed:
        base_url = x_sandbox_url(settings.sandbox)
        organisation: OrganisationKeys | None = OrganisationKeys(*[_SANDBOX_SECRET] * 4)
    else:
        base_url = x.api_base_url or DEFAULT_X_API
        organisation = None
        if x.consumer_key is not None:
            what = "X's organisation account (DISPATCHER_TWITTER__CONSUMER_KEY)"
            organisation = OrganisationKeys(
                *[
                    _secret(getattr(x, name), f"DISPATCHER_TWITTER__{name.upper()}", what)
                    for name in (
                        "consumer_key",
                        "consumer_secret",
                        "access_token",
                        "access_token_secret",
                    )
                ]
            )
    return TwitterAdapter(
        provider=SANDBOX if sandboxed else "x",
        api_base_url=base_url,
        organisation=organisation,
        oauth=oauth,
        timeout=x.timeout_seconds,
    )


def x_sandbox_url(sandbox: SandboxSettings) -> str:
    return f"http://{sandbox.host}:{sandbox.x_port}"


def x_oauth_client(settings: Settings, sandboxed: bool) -> XOAuthClient | None:
    """The X app supporters connect their own accounts to: the sandbox's when X rehearses
    there, the configured one (DISPATCHER_TWITTER__CLIENT_ID), or None (hand-off)."""
    from dispatcher.channels.x_oauth import XOAuthClient

    x = settings.twitter
    redirect_uri = f"{settings.public_url.rstrip('/')}/x/connected"
    if sandboxed:
        base_url = x_sandbox_url(settings.sandbox)
        return XOAuthClient(
            api_base_url=base_url,
            authorize_url=f"{base_url}/i/oauth2/authorize",
            client_id=SANDBOX_X_CLIENT_ID,
            client_secret=None,
            redirect_uri=redirect_uri,
            timeout=x.timeout_seconds,
        )
    if x.client_id is None:
        return None
    return XOAuthClient(
        api_base_url=x.api_base_url or DEFAULT_X_API,
        authorize_url=x.authorize_url,
        client_id=x.client_id,
        client_secret=x.client_secret.get_secret_value() if x.client_secret else None,
        redirect_uri=redirect_uri,
        timeout=x.timeout_seconds,
    )


CHANNELS: dict[Channel, ChannelSpec] = {
    Channel.EMAIL: ChannelSpec(
        Channel.EMAIL,
        label=N_("Email"),
        configured=lambda s: s.email.configured,
        provider=lambda s: SANDBOX if s.email.rehearsal else "smtp",
        build=_email_adapter,
        sandbox_port=lambda sandbox: sandbox.smtp_port,
        concurrency=lambda worker: worker.email_concurrency,
    ),
    Channel.FAX: ChannelSpec(
        Channel.FAX,
        label=N_("Fax"),
        configured=lambda s: s.fax.configured,
        provider=lambda s: s.fax.provider,
        build=_fax_adapter,
        sandbox_port=lambda sandbox: sandbox.fax_port,
        concurrency=lambda worker: worker.fax_concurrency,
    ),
    Channel.TWITTER: ChannelSpec(
        Channel.TWITTER,
        label=N_("X (Twitter)"),
        configured=lambda s: s.twitter.configured,
        provider=lambda s: "x",
        build=_x_adapter,
        sandbox_port=lambda sandbox: sandbox.x_port,
        concurrency=lambda worker: worker.twitter_concurrency,
    ),
}
CHANNEL_LABELS = {channel: spec.label for channel, spec in CHANNELS.items()}


def live(settings: Settings) -> bool:
    """Live mode: some real provider is configured. Then a channel without provider
    settings is off, unless DISPATCHER_SANDBOX__CHANNELS routes it to the sandbox."""
    return any(
        spec.configured(settings) and spec.provider(settings) != SANDBOX
        for spec in CHANNELS.values()
    )


def channel_providers(settings: Settings) -> dict[Channel, str | None]:
    """Where each channel sends: its provider's name, ``sandbox`` (a rehearsal), or None
    (off), or for X ``hand_off`` (every post is handed to its supporter). With no provider
    configured at all, every channel rehearses on the sandbox."""
    is_live = live(settings)
    routed = settings.sandbox.channel_names
    providers: dict[Channel, str | None] = {}
    for channel, spec in CHANNELS.items():
        if spec.configured(settings) and channel.value not in routed:
            providers[channel] = spec.provider(settings)
        elif not is_live or channel.value in routed:
            providers[channel] = SANDBOX
        elif channel is Channel.TWITTER:
            # A post needs no provider to be handed to its supporter to send themselves.
            providers[channel] = HAND_OFF
        else:
            providers[channel] = None
    return providers


def sandboxed_channels(settings: Settings) -> list[Channel]:
    """Channels sent to the built-in sandbox servers: all without provider settings when
    nothing is live, else those DISPATCHER_SANDBOX__CHANNELS names. (A mail catcher set
    as the relay, DISPATCHER_EMAIL__REHEARSAL, is a rehearsal too, on its own server.)"""
    providers = channel_providers(settings)
    return [
        channel
        for channel, spec in CHANNELS.items()
        if providers[channel] not in (None, HAND_OFF)
        and (not spec.configured(settings) or channel.value in settings.sandbox.channel_names)
    ]


def build_adapters(settings: Settings) -> dict[Channel, ChannelAdapter]:
    """One adapter per channel that is on. Raises ConfigError for half-given provider
    settings."""
    providers = channel_providers(settings)
    builtin = sandboxed_channels(settings)
    return {
        channel: spec.build(settings, channel in builtin)
        for channel, spec in CHANNELS.items()
        if providers[channel] not in (None, HAND_OFF)
    }


def concurrency_limits(settings: WorkerSettings) -> dict[Channel, int]:
    """Sends in flight per channel per worker."""
    return {channel: spec.concurrency(settings) for channel, spec in CHANNELS.items()}


def poll_seconds(settings: Settings) -> float:
    """How often an accepted fax's status is polled (the sandbox transmits in well under that)."""
    if settings.fax.configured:
        return settings.fax.poll_seconds
    return min(settings.fax.poll_seconds, max(settings.sandbox.fax_transmit_seconds, 0.05))


# Posts a minute from the organisation's X account when neither the campaign nor the
# settings say: well inside X's automation rules (see the README, "How a post goes out on
# X"). Only when posting to X itself: a rehearsal on the sandbox is not paced.
ORGANISATION_POSTS_PER_MINUTE = 1


def pacing_rules(settings: Settings, catalog: CampaignCatalog) -> PacingRules:
    """The send rates of the settings, with each campaign's own where it sets them."""
    campaigns = {}
    posting_to_x = channel_providers(settings)[Channel.TWITTER] == "x"
    for campaign in catalog:
        own = campaign.pacing
        posts = own.twitter_per_minute
        if posts is None and posting_to_x and campaign.x_mode == "organisation":
            posts = settings.twitter.per_minute or ORGANISATION_POSTS_PER_MINUTE
        per_account = {
            channel: rate
            for channel, rate in (
                (Channel.EMAIL, own.email_per_minute),
                (Channel.FAX, own.fax_per_minute),
                (Channel.TWITTER, posts),
            )
            if rate is not None
        }
        if own.email_per_recipient_per_minute is not None or per_account:
            campaigns[campaign.id] = CampaignPacing(own.email_per_recipient_per_minute, per_account)
    return PacingRules(
        per_recipient=settings.email.per_recipient_per_minute,
        per_account={
            Channel.EMAIL: settings.email.per_minute,
            Channel.FAX: settings.fax.per_minute,
            Channel.TWITTER: settings.twitter.per_minute,
        },
        campaigns=campaigns,
    )
