"""Which adapter serves which channel: the configured provider, or else the local sandbox."""

from __future__ import annotations

from pydantic import SecretStr

from dispatcher.channels.base import ChannelAdapter
from dispatcher.models import Channel
from dispatcher.settings import Settings

DEFAULT_X_API = "https://api.twitter.com"
# The sandbox checks that credentials are present, not what they are.
_SANDBOX_SECRET = "sandbox"  # noqa: S105 - not a secret: the local sandbox accepts any


class ConfigError(ValueError):
    """Provider settings are incomplete; the message names the missing variable."""


def _secret(value: SecretStr | None, env_name: str, channel: str) -> str:
    if value is None or not value.get_secret_value():
        raise ConfigError(f"{env_name} is required when {channel} is configured")
    return value.get_secret_value()


def sandboxed_channels(settings: Settings) -> list[Channel]:
    """Channels that have no provider settings and therefore go to the sandbox."""
    configured = {
        Channel.EMAIL: settings.email.configured,
        Channel.FAX: settings.fax.configured,
        Channel.TWITTER: settings.twitter.configured,
    }
    return [channel for channel, is_set in configured.items() if not is_set]


def build_adapters(settings: Settings) -> dict[Channel, ChannelAdapter]:
    """One adapter per channel. Raises ConfigError for half-given provider settings."""
    # Imported here so commands that send nothing don't load tweepy, aiohttp and httpx.
    from dispatcher.channels.email import EmailAdapter
    from dispatcher.channels.fax import FaxAdapter
    from dispatcher.channels.twitter import TwitterAdapter

    sandbox = settings.sandbox
    email = settings.email
    if email.configured:
        assert email.host is not None
        port = email.port or (465 if email.use_tls else 587)
        password = email.password.get_secret_value() if email.password else None
        email_adapter = EmailAdapter(
            host=email.host,
            port=port,
            from_address=email.from_address,
            from_name=email.from_name,
            username=email.username,
            password=password,
            start_tls=email.start_tls,
            use_tls=email.use_tls,
            timeout=email.timeout_seconds,
        )
    else:
        email_adapter = EmailAdapter(
            host=sandbox.host,
            port=sandbox.smtp_port,
            from_address=email.from_address,
            from_name=email.from_name,
            start_tls=False,
            timeout=email.timeout_seconds,
        )

    fax = settings.fax
    if fax.configured:
        assert fax.base_url is not None
        fax_adapter = FaxAdapter(
            base_url=fax.base_url,
            api_key=_secret(fax.api_key, "DISPATCHER_FAX__API_KEY", "DISPATCHER_FAX__BASE_URL"),
            api_secret=_secret(
                fax.api_secret, "DISPATCHER_FAX__API_SECRET", "DISPATCHER_FAX__BASE_URL"
            ),
            header_text=fax.header_text,
            callback_url=fax.callback_url,
            timeout=fax.timeout_seconds,
        )
    else:
        fax_adapter = FaxAdapter(
            base_url=f"http://{sandbox.host}:{sandbox.fax_port}",
            api_key=_SANDBOX_SECRET,
            api_secret=_SANDBOX_SECRET,
            header_text=fax.header_text,
            callback_url=fax.callback_url,
            timeout=fax.timeout_seconds,
        )

    tw = settings.twitter
    if tw.configured:
        what = "X (DISPATCHER_TWITTER__*)"
        twitter_adapter = TwitterAdapter(
            api_base_url=tw.api_base_url or DEFAULT_X_API,
            consumer_key=_secret(tw.consumer_key, "DISPATCHER_TWITTER__CONSUMER_KEY", what),
            consumer_secret=_secret(
                tw.consumer_secret, "DISPATCHER_TWITTER__CONSUMER_SECRET", what
            ),
            access_token=_secret(tw.access_token, "DISPATCHER_TWITTER__ACCESS_TOKEN", what),
            access_token_secret=_secret(
                tw.access_token_secret, "DISPATCHER_TWITTER__ACCESS_TOKEN_SECRET", what
            ),
            timeout=tw.timeout_seconds,
        )
    else:
        twitter_adapter = TwitterAdapter(
            api_base_url=f"http://{sandbox.host}:{sandbox.x_port}",
            consumer_key=_SANDBOX_SECRET,
            consumer_secret=_SANDBOX_SECRET,
            access_token=_SANDBOX_SECRET,
            access_token_secret=_SANDBOX_SECRET,
            timeout=tw.timeout_seconds,
        )
    return {
        Channel.EMAIL: email_adapter,
        Channel.FAX: fax_adapter,
        Channel.TWITTER: twitter_adapter,
    }


def poll_seconds(settings: Settings) -> float:
    """How often an accepted fax's status is polled (the sandbox transmits in well under that)."""
    if settings.fax.configured:
        return settings.fax.poll_seconds
    return min(settings.fax.poll_seconds, max(settings.sandbox.fax_transmit_seconds, 0.05))
