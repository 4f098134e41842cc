"""How a campaign's X posts go out (its x_mode) with the settings given: from the
supporter's account, handed off, or from the organisation's account paced well inside X's
automation rules when it posts to X itself."""

from __future__ import annotations

from pathlib import Path

from dispatcher.campaigns import CampaignCatalog
from dispatcher.channels.registry import (
    ORGANISATION_POSTS_PER_MINUTE,
    pacing_rules,
    x_oauth_client,
)
from dispatcher.channels.x_limits import limits_stated
from dispatcher.models import Channel
from dispatcher.settings import Settings
from tests.conftest import OPEN_CAMPAIGN, write_open_campaign

X_KEYS = {
    "consumer_key": "ck",
    "consumer_secret": "cs",
    "access_token": "at",
    "access_token_secret": "ats",
}


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, secret_key="k" * 32, **values)  # type: ignore[call-arg, arg-type]


def test_the_organisation_account_is_paced_inside_xs_rules_only_when_posting_to_x(
    tmp_path: Path,
) -> None:
    write_open_campaign(tmp_path, x_mode="organisation")
    catalog = CampaignCatalog.load(tmp_path)
    live = pacing_rules(settings(twitter=X_KEYS), catalog)
    assert live.account_rate(OPEN_CAMPAIGN, Channel.TWITTER) == ORGANISATION_POSTS_PER_MINUTE
    rehearsal = pacing_rules(settings(), catalog)
    assert rehearsal.account_rate(OPEN_CAMPAIGN, Channel.TWITTER) == 0


def test_own_accounts_are_not_paced_as_one_account(tmp_path: Path) -> None:
    write_open_campaign(tmp_path, x_mode="own_account")
    rules = pacing_rules(settings(twitter=X_KEYS), CampaignCatalog.load(tmp_path))
    assert rules.account_rate(OPEN_CAMPAIGN, Channel.TWITTER) == 0


def test_the_app_supporters_connect_to_is_the_configured_one_or_none() -> None:
    assert x_oauth_client(settings(twitter=X_KEYS), False) is None  # hand-off
    app = x_oauth_client(
        settings(twitter={"client_id": "app-1", "client_secret": "s"}, public_url="https://a.org"),
        False,
    )
    assert app is not None and app.client_id == "app-1"
    assert app.redirect_uri == "https://a.org/x/connected"
    assert app.authorize_url == "https://x.com/i/oauth2/authorize"
    link = app.authorize_link("state-1", "v" * 43)
    assert "code_challenge_method=S256" in link and "offline.access" in link.replace("+", " ")


def test_xs_limit_headers_are_read_for_the_account_and_the_app() -> None:
    stated = limits_stated(
        {
            "x-rate-limit-remaining": "3",
            "x-rate-limit-reset": "2000000000",
            "x-app-limit-24hour-remaining": "0",
            "x-app-limit-24hour-reset": "2000000100",
            "x-user-limit-24hour-remaining": "not a number",
        }
    )
    assert [(scope, left) for scope, left, _when, _what in stated] == [("account", 3), ("app", 0)]
    assert stated[1][1] == 0 and stated[1][2].timestamp() == 2000000100
