"""Fax hours (when a line may be called), their validation in campaign files, and the
decisions that bound a fax's waits: retries inside the window, the confirmation's timeout."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from dispatcher.campaigns import CampaignError, load_campaign
from dispatcher.channels.base import PermanentError, SendResult
from dispatcher.fax_hours import FAX_HOURS, FaxHours
from dispatcher.i18n import speaking
from dispatcher.models import (
    AttemptOutcome,
    Channel,
    DeliveryStatus,
    DeliveryUpdate,
    ErrorInfo,
    LogEntry,
)
from dispatcher.outcomes import UNCONFIRMED, confirmation_update, within_fax_hours
from dispatcher.retry import RetryPolicy
from dispatcher.service.status import reason
from dispatcher.settings import RetrySettings
from tests.conftest import claimed_delivery, write_open_campaign

BEIJING = FaxHours.parse("08:00-20:00", "Asia/Shanghai")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("when", "goes"),
    [
        (utc(2026, 12, 7, 23, 59), utc(2026, 12, 8, 0, 0)),  # 07:59 in Beijing
        (utc(2026, 12, 8, 0, 0), utc(2026, 12, 8, 0, 0)),  # 08:00: open
        (utc(2026, 12, 8, 11, 59), utc(2026, 12, 8, 11, 59)),  # 19:59: open
        (utc(2026, 12, 8, 12, 0), utc(2026, 12, 9, 0, 0)),  # 20:00: closed till morning
    ],
)
def test_the_next_opening_of_a_beijing_office_line(when: dt.datetime, goes: dt.datetime) -> None:
    assert BEIJING.next_opening(when) == goes
    assert BEIJING.is_open(when) is (when == goes)


def test_a_window_across_midnight_is_open_overnight() -> None:
    night = FaxHours.parse("22:00-06:00", "Europe/London")
    assert night.is_open(utc(2026, 12, 8, 23, 0)) and night.is_open(utc(2026, 12, 9, 5, 59))
    assert not night.is_open(utc(2026, 12, 9, 6, 0))
    assert night.next_opening(utc(2026, 12, 9, 12, 0)) == utc(2026, 12, 9, 22, 0)


def test_the_opening_follows_the_lines_clock_across_daylight_saving() -> None:
    washington = FaxHours.parse("09:00-17:00", "America/New_York")
    # Saturday 7 March 2026 17:00 EST; the clocks go forward that night.
    assert washington.next_opening(utc(2026, 3, 7, 22, 0)) == utc(2026, 3, 8, 13, 0)
    # An opening the clocks skip (02:30 on 8 March) is the first open moment after it.
    small_hours = FaxHours.parse("02:30-05:00", "America/New_York")
    goes = small_hours.next_opening(utc(2026, 3, 8, 6, 0))  # 01:00 EST
    assert small_hours.is_open(goes) and utc(2026, 3, 8, 7, 0) <= goes <= utc(2026, 3, 8, 7, 30)


def with_target_fields(tmp_path: Path, fields: str) -> Path:
    path = write_open_campaign(tmp_path)
    text = path.read_text(encoding="utf-8")
    text = text.replace('timezone = "Asia/Shanghai"\n', "", 1)
    text = text.replace('fax = "+86 10 6238 1025"\n', f'fax = "+86 10 6238 1025"\n{fields}\n', 1)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        (
            'timezone = "Beijing"\nfax_hours = "08:00-20:00"',
            "targets.0.timezone: 'Beijing' is not an IANA time zone (write a name such as "
            "'Asia/Shanghai'",
        ),
        (
            'timezone = "Asia/Shanghai"\nfax_hours = "8-20"',
            "targets.0.fax_hours: '8-20' is not a daily window: write \"HH:MM-HH:MM\" in "
            '24-hour time, such as "08:00-20:00" (or "22:00-06:00" overnight)',
        ),
        (
            'timezone = "Asia/Shanghai"\nfax_hours = "24:00-08:00"',
            "targets.0.fax_hours: '24:00-08:00' is not a daily window",
        ),
        (
            'timezone = "Asia/Shanghai"\nfax_hours = "08:00-08:00"',
            "targets.0.fax_hours: '08:00-08:00' opens and closes at the same time",
        ),
        ('fax_hours = "08:00-20:00"', "targets.0: fax_hours needs timezone"),
    ],
)
def test_a_bad_zone_or_window_is_refused_naming_the_file_and_field(
    tmp_path: Path, fields: str, said: str
) -> None:
    path = with_target_fields(tmp_path, fields)
    with pytest.raises(CampaignError) as refused:
        load_campaign(path)
    assert str(refused.value).startswith(f"{path}: ")
    assert said in str(refused.value)


def test_the_shipped_campaign_gives_both_lines_office_hours() -> None:
    campaign = load_campaign(Path("config/campaigns/ua-61-21.toml"))
    windows = {t.id: t.fax_window for t in campaign.targets}
    assert windows == {
        "xi-jinping": FaxHours.parse("08:00-20:00", "Asia/Shanghai"),
        "cui-tiankai": FaxHours.parse("09:00-17:00", "America/New_York"),
    }


def test_a_retry_due_while_the_line_is_closed_waits_for_its_opening() -> None:
    retry = DeliveryUpdate(7, DeliveryStatus.QUEUED, next_attempt_at=utc(2026, 12, 8, 13, 0))
    assert within_fax_hours(retry, BEIJING).next_attempt_at == utc(2026, 12, 9, 0, 0)
    in_hours = dataclasses.replace(retry, next_attempt_at=utc(2026, 12, 8, 3, 0))
    assert within_fax_hours(in_hours, BEIJING) == in_hours
    assert within_fax_hours(retry, None) == retry  # a line without hours: any time
    polling = DeliveryUpdate(7, DeliveryStatus.AWAITING_CONFIRMATION, utc(2026, 12, 8, 13, 0))
    assert within_fax_hours(polling, BEIJING) == polling  # a status poll calls no line


ACCEPTED = utc(2026, 12, 8, 1, 0)
FAX = claimed_delivery(
    channel=Channel.FAX,
    address="+861062381025",
    status=DeliveryStatus.AWAITING_CONFIRMATION,
    attempts=1,
    provider_ref="17",
    accepted_at=ACCEPTED,
)
POLICY = RetryPolicy.from_settings(RetrySettings())
IN_PROGRESS = SendResult(False, "17", "gateway status inprogress")


def confirm(
    verdict: SendResult | PermanentError, after: dt.timedelta, timeout: float | None = 7200
) -> DeliveryUpdate:
    return confirmation_update(
        POLICY, FAX, verdict, now=ACCEPTED + after, poll_seconds=60, confirm_timeout=timeout
    )


def test_polls_before_the_timeout_wait_and_the_last_one_falls_on_it() -> None:
    early = confirm(IN_PROGRESS, dt.timedelta(minutes=10))
    assert early.status is DeliveryStatus.AWAITING_CONFIRMATION
    assert early.next_attempt_at == ACCEPTED + dt.timedelta(minutes=11)
    late = confirm(IN_PROGRESS, dt.timedelta(seconds=7170))
    assert late.next_attempt_at == ACCEPTED + dt.timedelta(hours=2)  # not a minute later


def test_still_in_progress_or_no_answer_at_the_timeout_ends_failed_and_unknown() -> None:
    unavailable = SendResult(False, "17", "status unavailable, will ask again: cannot reach")
    for last_word in (IN_PROGRESS, unavailable):
        update = confirm(last_word, dt.timedelta(hours=2))
        assert update.status is DeliveryStatus.FAILED
        assert update.attempt_outcome is AttemptOutcome.UNKNOWN
        assert update.error == ErrorInfo(
            UNCONFIRMED,
            None,
            "the gateway did not confirm the fax within 2 h of accepting it "
            f"(last look-up: {last_word.summary})",
        )


def test_a_definite_answer_at_the_timeout_counts_as_always() -> None:
    done = confirm(SendResult(True, "17", "transmitted (1 pages)"), dt.timedelta(hours=3))
    assert done.status is DeliveryStatus.DELIVERED
    refused = confirm(PermanentError("number not operational", code="43"), dt.timedelta(hours=3))
    assert refused.status is DeliveryStatus.FAILED
    assert refused.error is not None and refused.error.message == "number not operational"


def test_without_a_bound_or_an_acceptance_time_a_fax_is_polled_on() -> None:
    assert confirm(IN_PROGRESS, dt.timedelta(days=1), timeout=None).status is (
        DeliveryStatus.AWAITING_CONFIRMATION
    )
    update = confirmation_update(
        POLICY,
        dataclasses.replace(FAX, accepted_at=None),
        IN_PROGRESS,
        now=ACCEPTED + dt.timedelta(days=1),
        poll_seconds=60,
        confirm_timeout=7200,
    )
    assert update.status is DeliveryStatus.AWAITING_CONFIRMATION


def waiting_fax(next_attempt_at: dt.datetime, note: bool = False) -> LogEntry:
    error = ErrorInfo(FAX_HOURS, None, "not sent: …") if note else None
    return LogEntry(
        id=1,
        appeal_id="a",
        campaign_id="ua-open",
        target_id="xi-jinping",
        channel=Channel.FAX,
        address="+861062381025",
        status=DeliveryStatus.QUEUED,
        attempts=0,
        provider_ref=None,
        last_error=error,
        next_attempt_at=next_attempt_at,
        updated_at=next_attempt_at,
    )


def test_the_status_page_says_when_a_waiting_fax_will_go_in_its_language() -> None:
    evening = utc(2026, 12, 8, 13, 0)  # 21:00 in Beijing
    entry = waiting_fax(evening)
    assert reason(entry, now=evening) is None  # no window known: all is well
    with speaking("en"):
        assert reason(entry, BEIJING, now=evening) == (
            "This fax line is called only between 08:00 and 20:00, China Time. It will go "
            "after 2026-12-09 00:00:00 UTC."
        )
    with speaking("zh"):
        assert reason(entry, BEIJING, now=evening) == (
            "这条传真线路只在中国时间 08:00至20:00之间拨打。"
            "这份传真将在 2026-12-09 00:00:00 UTC 之后发出。"
        )
    # Held until the opening, and read at that very moment: still waiting for it.
    held = waiting_fax(utc(2026, 12, 9, 0, 0), note=True)
    assert "after 2026-12-09 00:00:00 UTC" in (reason(held, BEIJING, now=evening) or "")
    # A fax due in the window has nothing to say.
    assert reason(waiting_fax(utc(2026, 12, 9, 1, 0)), BEIJING, now=evening) is None
