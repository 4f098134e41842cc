"""Pure functions: letter, tweet and font coverage; error classification; retry policy."""

from __future__ import annotations

import datetime as dt
import json
import random
import re

import aiosmtplib
import pytest

from dispatcher.channels.base import (
    DeliveryError,
    PermanentError,
    RateLimited,
    TransientError,
)
from dispatcher.channels.email import classify_smtp_error
from dispatcher.channels.fax import GatewayReply, classify_fax_failure, classify_http_status
from dispatcher.render.fax import uncovered_characters
from dispatcher.render.letter import letter_text, signature
from dispatcher.render.tweet import (
    MAX_WEIGHTED_LENGTH,
    compose_tweet,
    post_reference,
    weighted_length,
)
from dispatcher.retry import RetryPolicy, decide_retry
from tests.conftest import claimed_delivery as delivery

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def policy(**overrides: float) -> RetryPolicy:
    values: dict[str, float] = {
        "base_seconds": 30,
        "max_seconds": 3600,
        "max_attempts": 5,
        "fast_tries": 2,
        "fast_wait_seconds": 0,
        "fast_max_seconds": 5,
    }
    values.update(overrides)
    return RetryPolicy(**values)  # type: ignore[arg-type]


def response(status: int, message: str | None = None, **headers: str) -> GatewayReply:
    body = b"{}" if message is None else json.dumps({"message": message}).encode()
    return GatewayReply.of(status, body, **headers)


# --- letter and tweet ---------------------------------------------------------------


def test_letter_has_salutation_body_and_signature_with_country() -> None:
    text = letter_text(delivery(body="\n  First paragraph.\n\nSecond paragraph.  \n\n"))
    assert text == (
        "Dear President Xi,\n\n"
        "First paragraph.\n\nSecond paragraph.\n\n"
        "Sincerely,\n\n"
        "Ana Lima\nBrazil\n"
    )


def test_letter_signature_without_country_is_the_name_alone() -> None:
    assert letter_text(delivery(supporter_country=None)).endswith("Sincerely,\n\nAna Lima\n")
    assert letter_text(delivery(supporter_country="")).endswith("Sincerely,\n\nAna Lima\n")
    assert signature("王小明", "中国") == "王小明\n中国"


def test_tweet_is_handles_text_signature_and_the_appeals_reference() -> None:
    reference = post_reference("appeal-1")
    text = compose_tweet(
        "@ChineseEmbinUS @AmbCuiTiankai", "  Free them all. #Xinjiang \n", "Zoë", reference
    )
    assert (
        text == f"@ChineseEmbinUS @AmbCuiTiankai Free them all. #Xinjiang — Zoë (ref {reference})"
    )
    assert re.fullmatch(r"[a-z2-7]{5}", reference)
    assert reference == post_reference("appeal-1") != post_reference("appeal-2")
    # Weighed before the appeal exists: the placeholder weighs what any reference does.
    weighed = compose_tweet("@a", "text", "Zoë")
    assert weighted_length(weighed) == weighted_length(
        compose_tweet("@a", "text", "Zoë", reference)
    )


def test_weighted_length_counts_cjk_double() -> None:
    assert weighted_length("你好") == 4
    assert weighted_length("a" * 280) == MAX_WEIGHTED_LENGTH == 280
    assert weighted_length("a" * 281) == 281
    assert weighted_length("hi 你好") == 3 + 4
    # A URL counts 23 however long it is.
    assert weighted_length("https://example.org/" + "x" * 60) == 23


# --- fax font coverage ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Zoë Ünal, Łódź, São Paulo, straße",
        "我们强烈呼吁立即释放所有被任意拘押的人。",
        "Будь ласка, допоможіть — Ukraine",
        "Ελευθερία",
        "tabs\tand\nnew lines",
    ],
)
def test_fax_font_covers_latin_chinese_cyrillic_greek(text: str) -> None:
    assert uncovered_characters(text) == []


def test_fax_font_does_not_cover_uyghur_arabic_script() -> None:
    missing = uncovered_characters("Hello ئۇيغۇر ئۇيغۇر 你好")
    assert missing == sorted(set("ئۇيغۇر"))
    assert all("\u0600" <= ch <= "\u06ff" for ch in missing)


# --- SMTP errors -------------------------------------------------------------------


def test_smtp_4xx_reply_is_transient() -> None:
    error = classify_smtp_error(aiosmtplib.SMTPResponseException(451, "4.3.0 Try later"))
    assert type(error) is TransientError
    assert error.code == "451"
    assert error.outcome_unknown is False
    assert error.message == "SMTP 451 4.3.0 Try later"


def test_smtp_5xx_reply_is_permanent() -> None:
    error = classify_smtp_error(aiosmtplib.SMTPDataError(550, "5.7.1 Rejected"))
    assert type(error) is PermanentError
    assert error.code == "550"


def test_smtp_reply_without_code_is_unknown_outcome() -> None:
    error = classify_smtp_error(aiosmtplib.SMTPResponseException(-1, "connection lost"))
    assert type(error) is TransientError
    assert error.outcome_unknown is True
    assert error.code is None


def test_smtp_refused_recipients() -> None:
    def refused(*codes: int) -> DeliveryError:
        recipients = [
            aiosmtplib.SMTPRecipientRefused(code, "no", f"r{i}@example.org")
            for i, code in enumerate(codes)
        ]
        return classify_smtp_error(aiosmtplib.SMTPRecipientsRefused(recipients))

    permanent = refused(550)
    assert type(permanent) is PermanentError
    assert permanent.code == "550"
    assert permanent.message == "recipient refused: 550 no"
    greylisted = refused(450, 451)
    assert type(greylisted) is TransientError and greylisted.code == "450"
    # One permanent refusal among temporary ones makes the whole send permanent.
    assert type(refused(450, 550)) is PermanentError


def test_smtp_connection_errors_are_transient() -> None:
    disconnected = classify_smtp_error(aiosmtplib.SMTPServerDisconnected("gone"))
    assert type(disconnected) is TransientError
    assert disconnected.outcome_unknown is True  # it may have dropped after DATA

    cannot_connect = classify_smtp_error(aiosmtplib.SMTPConnectError("refused"))
    assert type(cannot_connect) is TransientError
    assert cannot_connect.outcome_unknown is False  # nothing was sent

    read_timeout = classify_smtp_error(aiosmtplib.SMTPReadTimeoutError("slow"))
    assert type(read_timeout) is TransientError and read_timeout.outcome_unknown is True

    # A connect timeout is a connect error first: nothing was sent.
    connect_timeout = classify_smtp_error(aiosmtplib.SMTPConnectTimeoutError("slow"))
    assert type(connect_timeout) is TransientError
    assert connect_timeout.outcome_unknown is False


# --- fax errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error_type", "code", "message"),
    [
        ("lineErrorType", "34", "Busy"),
        ("lineErrorType", "35", "No answer"),
        ("lineErrorType", "36", "Something unusual happened on the line"),
        (None, None, None),
    ],
)
def test_fax_line_trouble_is_transient(
    error_type: str | None, code: str | None, message: str | None
) -> None:
    error = classify_fax_failure(error_type, code, message)
    assert type(error) is TransientError
    assert error.code == code
    assert error.message.startswith("fax failed: ")


@pytest.mark.parametrize(
    ("error_type", "code", "message"),
    [
        ("fatalErrorType", "43", "Phone number not operational"),
        ("lineErrorType", "41", "Invalid number"),
        ("fatalErrorType", "99", "Something unusual happened"),
        ("documentConversionErrorType", "12", "Bad file"),
    ],
)
def test_fax_bad_number_or_fatal_error_is_permanent(
    error_type: str, code: str, message: str
) -> None:
    error = classify_fax_failure(error_type, code, message)
    assert type(error) is PermanentError
    assert error.code == code
    assert error.message == f"fax failed: {message} ({error_type})"


def test_fax_words_match_whole_words_only() -> None:
    # "ring" inside "during" must not make a bad number look like a ringing line.
    error = classify_fax_failure(
        "fatalErrorType", "50", "Invalid number: rejected during call setup"
    )
    assert type(error) is PermanentError
    assert type(classify_fax_failure("lineErrorType", "7", "Ringing timed out")) is TransientError
    assert type(classify_fax_failure("lineErrorType", "8", "Number BLOCKED")) is PermanentError


def test_fax_http_429_is_rate_limited_with_retry_after() -> None:
    error = classify_http_status(response(429, "Slow down", **{"retry-after": "7"}))
    assert isinstance(error, RateLimited)
    assert error.retry_after == 7
    assert error.code == "429"
    assert error.message == "fax gateway answered HTTP 429: Slow down"

    no_header = classify_http_status(response(429))
    assert isinstance(no_header, RateLimited) and no_header.retry_after == 60
    assert no_header.message == "fax gateway answered HTTP 429: Too Many Requests"
    negative = classify_http_status(response(429, **{"retry-after": "-3"}))
    assert isinstance(negative, RateLimited) and negative.retry_after == 0


@pytest.mark.parametrize("status", [500, 502, 503, 408])
def test_fax_http_server_errors_are_transient(status: int) -> None:
    error = classify_http_status(response(status))
    assert type(error) is TransientError
    assert error.code == str(status)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_fax_http_client_errors_are_permanent(status: int) -> None:
    error = classify_http_status(response(status, "nope"))
    assert type(error) is PermanentError
    assert error.code == str(status)
    assert error.message.endswith(": nope")


# --- retry policy ----------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 42, 2026])
def test_backoff_is_between_half_and_all_of_the_capped_exponential(seed: int) -> None:
    rules = policy(base_seconds=30, max_seconds=3600)
    rng = random.Random(seed)
    for attempts_made in range(1, 16):
        ceiling = min(3600.0, 30.0 * 2 ** (attempts_made - 1))
        delay = rules.backoff_seconds(attempts_made, rng)
        assert ceiling / 2 <= delay <= ceiling, (attempts_made, delay)


def test_backoff_is_reproducible_capped_and_sane_at_the_edges() -> None:
    rules = policy(base_seconds=30, max_seconds=3600)
    assert rules.backoff_seconds(4, random.Random(7)) == rules.backoff_seconds(4, random.Random(7))
    # attempts_made 0 behaves like 1; a huge count does not overflow.
    assert 15 <= rules.backoff_seconds(0, random.Random(1)) <= 30
    assert 1800 <= rules.backoff_seconds(10_000, random.Random(1)) <= 3600
    assert policy(base_seconds=0, max_seconds=0).backoff_seconds(3, random.Random(1)) == 0


def test_decide_retry_gives_up_at_the_attempt_cap() -> None:
    decision = decide_retry(
        policy(max_attempts=5),
        attempts_made=5,
        error=TransientError("SMTP 451 busy"),
        now=NOW,
        expires_at=NOW + dt.timedelta(days=1),
    )
    assert decision.retry_at is None
    assert decision.expired is False
    assert decision.reason == "gave up after 5 attempts; last error: SMTP 451 busy"


def test_decide_retry_schedules_within_the_backoff_window() -> None:
    decision = decide_retry(
        policy(base_seconds=30, max_seconds=3600),
        attempts_made=3,
        error=TransientError("busy"),
        now=NOW,
        expires_at=NOW + dt.timedelta(days=1),
        rng=random.Random(3),
    )
    assert decision.retry_at is not None
    assert NOW + dt.timedelta(seconds=60) <= decision.retry_at <= NOW + dt.timedelta(seconds=120)
    assert decision.expired is False
    assert decision.reason == "busy"


def test_decide_retry_past_the_deadline_is_expired() -> None:
    decision = decide_retry(
        policy(base_seconds=600, max_seconds=600),
        attempts_made=1,
        error=TransientError("busy"),
        now=NOW,
        expires_at=NOW + dt.timedelta(seconds=200),  # the earliest retry is NOW + 300 s
        rng=random.Random(0),
    )
    assert decision.retry_at is None
    assert decision.expired is True
    assert decision.reason.startswith("the campaign deadline passes before a retry")
    assert decision.reason.endswith("last error: busy")


def test_rate_limit_raises_the_delay() -> None:
    rules = policy(base_seconds=1, max_seconds=1)
    decision = decide_retry(
        rules,
        attempts_made=1,
        error=RateLimited("slow down", retry_after=900),
        now=NOW,
        expires_at=NOW + dt.timedelta(days=1),
        rng=random.Random(0),
    )
    assert decision.retry_at == NOW + dt.timedelta(seconds=900)
    # A short rate limit does not shorten the backoff.
    short = decide_retry(
        policy(base_seconds=100, max_seconds=100),
        attempts_made=1,
        error=RateLimited("slow down", retry_after=1),
        now=NOW,
        expires_at=NOW + dt.timedelta(days=1),
        rng=random.Random(0),
    )
    assert short.retry_at is not None and short.retry_at >= NOW + dt.timedelta(seconds=50)
    # A rate limit that reaches past the deadline expires the delivery.
    late = decide_retry(
        rules,
        attempts_made=1,
        error=RateLimited("slow down", retry_after=900),
        now=NOW,
        expires_at=NOW + dt.timedelta(seconds=600),
    )
    assert late.expired is True and late.retry_at is None
