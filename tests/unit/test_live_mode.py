"""Live mode is explicit and whole: with no provider at all every channel rehearses on the
sandbox; once any real provider is configured, a channel without provider settings is off
unless DISPATCHER_SANDBOX__CHANNELS routes it to the sandbox (then it is a rehearsal), and
the processes that send refuse to start without DISPATCHER_SECRET_KEY."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from dispatcher.channels.registry import ConfigError, channel_providers, live, sandboxed_channels
from dispatcher.models import Channel
from dispatcher.runtime import channel_modes, require_secret_when_live, served_at
from dispatcher.settings import Settings

SMTP = {"email": {"host": "smtp.example.org", "username": "u", "password": "p"}}


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_with_no_provider_everything_is_a_rehearsal_on_the_sandbox() -> None:
    plain = settings()
    assert not live(plain)
    assert channel_providers(plain) == dict.fromkeys(Channel, "sandbox")
    assert sandboxed_channels(plain) == list(Channel)
    require_secret_when_live(plain)  # the demo and a fresh clone need no secret
    assert channel_modes(plain)[0] == (
        "email: rehearsal on the sandbox, nothing reaches the officials"
    )


def test_once_a_provider_is_given_the_channels_without_one_are_off() -> None:
    mixed = settings(**SMTP, secret_key="k" * 32)
    assert live(mixed)
    assert channel_providers(mixed) == {
        Channel.EMAIL: "smtp",
        Channel.FAX: None,
        Channel.TWITTER: "hand_off",  # a post needs no provider to be handed to its author
    }
    assert sandboxed_channels(mixed) == []
    assert channel_modes(mixed) == [
        "email: live through smtp",
        "fax: off (no provider configured)",
        "twitter: hand-off only (no X app or account configured): supporters get the "
        "prepared post to send themselves, counted as unverified",
    ]


def test_a_channel_routed_to_the_sandbox_is_a_rehearsal_beside_live_ones() -> None:
    routed = settings(**SMTP, secret_key="k" * 32, sandbox={"channels": "fax"})
    assert channel_providers(routed) == {
        Channel.EMAIL: "smtp",
        Channel.FAX: "sandbox",
        Channel.TWITTER: "hand_off",
    }
    assert sandboxed_channels(routed) == [Channel.FAX]


def test_a_mail_catcher_is_a_rehearsal_and_does_not_make_the_service_live() -> None:
    catcher = settings(email={"host": "mailpit", "port": 1025, "rehearsal": True})
    assert not live(catcher)
    assert channel_providers(catcher) == dict.fromkeys(Channel, "sandbox")
    assert sandboxed_channels(catcher) == [Channel.FAX, Channel.TWITTER]


def test_live_mode_needs_the_secret_key() -> None:
    with pytest.raises(ConfigError, match="DISPATCHER_SECRET_KEY is required once a provider"):
        require_secret_when_live(settings(**SMTP))


def test_an_unknown_channel_to_rehearse_is_refused_by_name() -> None:
    with pytest.raises(ValidationError, match="'post' is not a channel; DISPATCHER_SANDBOX__"):
        settings(sandbox={"channels": "fax,post"})


def test_a_service_on_another_port_links_there_unless_the_public_url_is_given() -> None:
    # Issue 18, item 7: `demo --serve --port 19010` emailed links to :8000 (dead).
    assert served_at(settings(), "127.0.0.1", 19010).public_url == "http://127.0.0.1:19010"
    assert served_at(settings(), "0.0.0.0", 8080).public_url == "http://127.0.0.1:8080"  # noqa: S104
    given = settings(public_url="https://appeals.example.org")
    assert served_at(given, "0.0.0.0", 8080).public_url == "https://appeals.example.org"  # noqa: S104
