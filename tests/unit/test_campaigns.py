from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from dispatcher.campaigns import CampaignCatalog, CampaignError, ChoiceError, load_campaign
from dispatcher.demo import write_demo_campaign
from dispatcher.models import Channel
from tests.conftest import SHIPPED_CAMPAIGNS


def test_shipped_urgent_action_has_every_address_from_the_seed() -> None:
    campaign = load_campaign(SHIPPED_CAMPAIGNS / "ua-61-21.toml")
    assert campaign.deadline == dt.date(2021, 9, 10)
    assert not campaign.is_open()
    xi, cui = campaign.targets
    assert (xi.email, xi.fax) == ("english@mail.gov.cn", "+861062381025")
    assert xi.channels == (Channel.EMAIL, Channel.FAX)
    assert xi.postal is not None and "Zhongnanhai" in xi.postal
    assert cui.salutation == "Dear Ambassador"
    assert (cui.email, cui.fax, cui.phone) == (
        "chinaembpress_us@mfa.gov.cn",
        "+12024952138",
        "+12024952266",
    )
    assert cui.twitter == ("@ChineseEmbinUS", "@AmbCuiTiankai")
    assert "3505 International Place NW" in (cui.postal or "")
    body = campaign.letter["en"].body
    assert body.startswith("I am distressed") and "Dear" not in body and "Sincerely" not in body


def test_deadline_day_is_the_last_open_day() -> None:
    campaign = load_campaign(SHIPPED_CAMPAIGNS / "ua-61-21.toml")
    assert campaign.is_open(dt.datetime(2021, 9, 10, 23, 59, tzinfo=dt.UTC))
    assert not campaign.is_open(dt.datetime(2021, 9, 11, 0, 0, tzinfo=dt.UTC))


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


VALID = """
id = "c1"
title = "T"
organisation = "O"
deadline = 2099-01-01
tweet = "Free them"
[letter.en]
subject = "S"
body = "B"
[[targets]]
id = "t1"
name = "N"
salutation = "Dear N"
fax = "{fax}"
"""


def test_error_names_file_field_and_problem(tmp_path: Path) -> None:
    path = _write(tmp_path, "c1", VALID.format(fax="12345"))
    with pytest.raises(CampaignError) as info:
        load_campaign(path)
    message = str(info.value)
    assert str(path) in message
    assert "targets.0.fax" in message
    assert "'12345'" in message


def test_fax_is_stored_in_e164(tmp_path: Path) -> None:
    campaign = load_campaign(_write(tmp_path, "c1", VALID.format(fax="+44 20 7946 0018")))
    assert campaign.targets[0].fax == "+442079460018"


def test_invalid_toml_and_id_mismatch_are_reported(tmp_path: Path) -> None:
    with pytest.raises(CampaignError, match="not valid TOML"):
        load_campaign(_write(tmp_path, "bad", "id = "))
    with pytest.raises(CampaignError, match="must match the file name"):
        load_campaign(_write(tmp_path, "other", VALID.format(fax="+442079460018")))


def test_missing_directory_says_which_setting(tmp_path: Path) -> None:
    with pytest.raises(CampaignError, match="DISPATCHER_CAMPAIGNS_DIR"):
        CampaignCatalog.load(tmp_path / "nope")


def test_subject_lines_spread_evenly_and_merge_fields_are_checked_when_loading(
    tmp_path: Path,
) -> None:
    shipped = load_campaign(SHIPPED_CAMPAIGNS / "ua-61-21.toml")
    for lang in ("en", "zh"):  # UA 61.21: three subject lines and a call script each
        letter = shipped.letter[lang]
        assert len(letter.subject_lines) == 3 and letter.call_script
        picked = [letter.subject_for(f"ua-61-21\nsupporter{i}@example.org") for i in range(900)]
        assert {line: picked.count(line) for line in letter.subject_lines} == pytest.approx(
            dict.fromkeys(letter.subject_lines, 300), abs=60
        )
        assert letter.subject_for("ua-61-21\nana@example.org") == letter.subject_for(
            "ua-61-21\nana@example.org"
        )  # the same supporter, the same line
    bad = VALID.format(fax="+442079460018").replace(
        'body = "B"', 'body = "Dear {target.name}, from {supporter.firstname}"'
    )
    with pytest.raises(CampaignError) as info:
        load_campaign(_write(tmp_path, "c1", bad))
    message = str(info.value)
    assert str(tmp_path / "c1.toml") in message and "letter.en" in message
    assert "{supporter.firstname}, which is not a merge field" in message
    assert "accepted: {supporter.first_name}, {supporter.country}, {target.name}" in message
    none = VALID.format(fax="+442079460018").replace('subject = "S"\n', "")
    with pytest.raises(CampaignError, match="a letter needs a subject line"):
        load_campaign(_write(tmp_path, "c1", none))


def test_the_demo_copy_is_labelled_in_every_language(tmp_path: Path) -> None:
    path = write_demo_campaign(SHIPPED_CAMPAIGNS, tmp_path, dt.date(2026, 12, 7))
    demo = load_campaign(path)
    assert demo.title.startswith("[DEMO COPY, deadline moved] ")
    assert demo.title_in("zh").startswith("[演示副本，截止日期已推迟] ")


# ---------------------------------------------------------------- what a campaign decides


def test_the_sample_letter_is_the_one_in_the_language_asked_for_else_the_campaigns() -> None:
    campaign = load_campaign(SHIPPED_CAMPAIGNS / "ua-61-21.toml")
    assert campaign.sample_language("fr", "zh") == "zh"  # the first one it has
    assert campaign.sample_language("fr", None) == campaign.default_language == "en"
    assert campaign.sample_letter("zh") is campaign.letter["zh"]
    assert campaign.sample_letter("fr") is campaign.letter["en"]
    sample = campaign.letter["en"].body
    # As a browser sends a textarea back: CRLF line endings, a blank line after it.
    assert campaign.is_sample(sample.replace("\n", "\r\n") + "\r\n", "en")
    assert not campaign.is_sample(sample + " Thank you.", "en")
    assert not campaign.is_sample(sample, "zh")  # not the Chinese sample
    assert not campaign.is_sample(sample, "fr")  # no sample in French at all


def test_a_choice_fans_out_to_the_pairs_the_officials_can_be_reached_by() -> None:
    campaign = load_campaign(SHIPPED_CAMPAIGNS / "ua-61-21.toml")

    def pairs(**choice: list[str] | list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(t.id, c.value) for t, c in campaign.choose_pairs(**choice)]  # type: ignore[arg-type]

    everyone = pairs()
    assert everyone == [("xi-jinping", "email"), ("xi-jinping", "fax"), ("cui-tiankai", "email"),
                        ("cui-tiankai", "fax"), ("cui-tiankai", "twitter")]  # fmt: skip
    assert pairs(channels=["twitter"]) == [("cui-tiankai", "twitter")]  # who lacks it: skipped
    assert pairs(targets=["xi-jinping"]) == [("xi-jinping", "email"), ("xi-jinping", "fax")]
    picked = [("cui-tiankai", "fax"), ("xi-jinping", "email"), ("cui-tiankai", "fax")]
    assert pairs(picked=picked) == [("cui-tiankai", "fax"), ("xi-jinping", "email")]


@pytest.mark.parametrize(
    ("choice", "field", "reason", "says"),
    [
        ({"targets": ["mayor"]}, "targets", "unknown_target", "known targets: xi-jinping, cui"),
        ({"channels": ["pigeon"]}, "channels", "unknown_channel", "accepted: email, fax, twitter"),
        ({"channels": ["phone"]}, "channels", "unknown_channel", "reported, not sent"),
        (
            {"targets": ["xi-jinping"], "channels": ["twitter"]},
            "channels",
            "channel_unavailable",
            "'xi-jinping' cannot be reached by twitter; its channels: email, fax",
        ),
        ({"picked": [("xi-jinping", "twitter")]}, "channels", "channel_unavailable", "twitter"),
    ],
)
def test_a_choice_the_campaign_cannot_deliver_is_refused_naming_it(
    choice: dict[str, list[str]], field: str, reason: str, says: str
) -> None:
    campaign = load_campaign(SHIPPED_CAMPAIGNS / "ua-61-21.toml")
    with pytest.raises(ChoiceError) as info:
        campaign.choose_pairs(**choice)  # type: ignore[arg-type]
    assert (info.value.field, info.value.reason) == (field, reason)
    assert says in info.value.message
