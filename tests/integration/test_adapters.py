"""Each channel adapter against the sandbox servers, over real sockets, for every fault kind."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import email.policy
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest

from dispatcher.channels.base import (
    UNGUARDED,
    DeliveryError,
    DuplicateContent,
    PermanentError,
    RateLimited,
    SendResult,
    TransientError,
)
from dispatcher.channels.email import EmailAdapter
from dispatcher.channels.phaxio import PhaxioAdapter as FaxAdapter
from dispatcher.channels.twitter import OrganisationKeys, TwitterAdapter
from dispatcher.models import (
    AttemptOutcome,
    Channel,
    ClaimedDelivery,
    DeliveryStatus,
    DeliveryUpdate,
    Settlement,
)
from dispatcher.outcomes import send_update
from dispatcher.render.email import build_email, message_id
from dispatcher.render.letter import letter_text
from dispatcher.render.tweet import compose_tweet, post_reference
from dispatcher.retry import RetryPolicy, SendAttempt, send_with_fast_retries
from dispatcher.sandbox import Faults, Sandbox
from tests.waiting import eventually

FROM_ADDRESS = "appeals@dispatch.example.org"
FROM_NAME = "Appeal Dispatcher"
HEADER_TEXT = "Urgent appeal"
TARGET_EMAIL = "minister@gov.example"
TARGET_FAX = "+12024952138"
TARGET_HANDLES = "@ChineseEmbinUS @AmbCuiTiankai"
TWEET = "Release everyone arbitrarily detained in Xinjiang. #Xinjiang"
CHINESE_NAME = "王小明"
CHINESE_BODY = "我们强烈呼吁立即释放所有被任意拘押的人，并告知其家属他们的下落。"

FAST = RetryPolicy(
    base_seconds=0,
    max_seconds=0,
    max_attempts=3,
    fast_tries=3,
    fast_wait_seconds=0,
    fast_max_seconds=5,
)


def delivery(
    channel: Channel = Channel.EMAIL,
    *,
    delivery_id: int = 7,
    address: str | None = None,
    **overrides: object,
) -> ClaimedDelivery:
    """A claimed delivery as the store would hand it to a worker."""
    default_address = {
        Channel.EMAIL: TARGET_EMAIL,
        Channel.FAX: TARGET_FAX,
        Channel.TWITTER: TARGET_HANDLES,
    }[channel]
    base = ClaimedDelivery(
        id=delivery_id,
        appeal_id="3f2b8c1e-0d4a-4e8b-9a51-2c6f1b7d9e10",
        campaign_id="ua-open",
        target_id="cui-tiankai",
        target_name="Cui Tiankai",
        salutation="Dear Ambassador",
        channel=channel,
        address=default_address if address is None else address,
        status=DeliveryStatus.SENDING,
        attempts=0,
        provider_ref=None,
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=30),
        supporter_name="Ana Lima",
        supporter_email="ana@example.org",
        supporter_country="Brazil",
        language="en",
        subject="Release those arbitrarily detained in Xinjiang",
        body="I urge you to release everyone detained arbitrarily.\n\nThank you.",
        tweet=TWEET if channel is Channel.TWITTER else None,
        earlier_outcome_unknown=False,
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


def closed_port() -> int:
    """A loopback port nobody listens on (bound, read, released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def email_adapter(port: int, pool_size: int = 10, timeout: float = 10) -> EmailAdapter:
    return EmailAdapter(
        host="127.0.0.1",
        port=port,
        from_address=FROM_ADDRESS,
        from_name=FROM_NAME,
        start_tls=False,
        timeout=timeout,
        pool_size=pool_size,
    )


def fax_adapter(base_url: str, timeout: float = 10, **options: str) -> FaxAdapter:
    kwargs: dict[str, str] = {"api_key": "k", "api_secret": "s", **options}
    return FaxAdapter(base_url=base_url, header_text=HEADER_TEXT, timeout=timeout, **kwargs)


def x_adapter(base_url: str, timeout: float = 10) -> TwitterAdapter:
    return TwitterAdapter(
        api_base_url=base_url,
        organisation=OrganisationKeys("ck", "cs", "at", "ats"),
        default_mode="organisation",
        timeout=timeout,
    )


@pytest.fixture
async def email_box(tmp_path: Path) -> AsyncIterator[Sandbox]:
    async with Sandbox(tmp_path / "sandbox", channels=("email",)) as box:
        yield box


def sandbox_with(tmp_path: Path, channel: str, faults: Faults, **options: float) -> Sandbox:
    """A single-channel sandbox with ``faults``; use it as ``async with``."""
    keyword = {"email": "email_faults", "fax": "fax_faults", "twitter": "x_faults"}[channel]
    return Sandbox(tmp_path / "sandbox", channels=(channel,), **{keyword: faults}, **options)  # type: ignore[arg-type]


async def raised(call: Callable[[], Awaitable[SendResult]]) -> DeliveryError:
    """The DeliveryError ``call`` raises (the test fails if it returns or raises another)."""
    with pytest.raises(DeliveryError) as info:
        await call()
    return info.value


async def check_until_final_failure(adapter: FaxAdapter, claimed: ClaimedDelivery) -> None:
    """check() until the gateway reports the fax failed."""

    async def failed() -> bool:
        try:
            await adapter.check(claimed)
        except DeliveryError:
            return True
        return False

    await eventually(failed, what=f"fax {claimed.provider_ref} failing", every=0.01)


async def check_until_final(adapter: FaxAdapter, claimed: ClaimedDelivery) -> list[SendResult]:
    """check() until it confirms (or raises); every answer in order."""
    answers: list[SendResult] = []

    async def confirmed() -> bool:
        answers.append(await adapter.check(claimed))
        return answers[-1].confirmed

    await eventually(confirmed, what=f"fax {claimed.provider_ref} confirmed", every=0.01)
    return answers


# --- email ----------------------------------------------------------------------


async def test_email_arrives_with_dmarc_safe_headers_and_letter(email_box: Sandbox) -> None:
    adapter = email_adapter(email_box.smtp_port)
    claimed = delivery(reply_to=True)  # the supporter chose it and confirmed it
    try:
        result = await adapter.send(claimed)
    finally:
        await adapter.aclose()

    expected_id = message_id(claimed, FROM_ADDRESS)
    assert result.confirmed is True
    assert result.provider_ref == expected_id
    (message,) = email_box.emails
    (sender,) = message["From"].addresses
    assert sender.display_name == f"Ana Lima via {FROM_NAME}"
    assert sender.addr_spec == FROM_ADDRESS
    (reply_to,) = message["Reply-To"].addresses
    assert (reply_to.display_name, reply_to.addr_spec) == ("Ana Lima", "ana@example.org")
    (to,) = message["To"].addresses
    assert (to.display_name, to.addr_spec) == ("Cui Tiankai", TARGET_EMAIL)
    assert message["Subject"] == claimed.subject
    # The header is folded (it is longer than 78 characters); unfolding leaves the space.
    assert message["Message-ID"].strip() == expected_id
    assert message["Content-Language"] == "en"
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    body = message.get_content().replace("\r\n", "\n")
    assert body == letter_text(claimed)
    assert body.startswith("Dear Ambassador,\n\nI urge you")
    assert body.endswith("Sincerely,\n\nAna Lima\nBrazil\n")
    # The sink saw the envelope recipient too (its file is named after it).
    (eml,) = (email_box.directory / "email").iterdir()
    assert eml.name == f"00001-{TARGET_EMAIL}.eml"


async def test_email_message_id_is_stable_across_sends(email_box: Sandbox) -> None:
    adapter = email_adapter(email_box.smtp_port)
    claimed = delivery(delivery_id=42)
    try:
        first = await adapter.send(claimed)
        second = await adapter.send(claimed)
        other = await adapter.send(delivery(delivery_id=43))
    finally:
        await adapter.aclose()

    ids = [m["Message-ID"].strip() for m in email_box.emails]
    assert ids[0] == ids[1] == first.provider_ref == second.provider_ref
    assert ids[0] == message_id(claimed, FROM_ADDRESS)
    assert ids[0].endswith("@dispatch.example.org>") and "delivery-42." in ids[0]
    assert ids[2] != ids[0] and other.provider_ref == ids[2]


async def test_email_chinese_name_and_body_arrive_intact(email_box: Sandbox) -> None:
    adapter = email_adapter(email_box.smtp_port)
    claimed = delivery(
        reply_to=True,
        supporter_name=CHINESE_NAME,
        supporter_country="中国",
        language="zh",
        subject="请释放在新疆被任意拘押的人",
        salutation="尊敬的大使",
        body=CHINESE_BODY,
    )
    try:
        await adapter.send(claimed)
    finally:
        await adapter.aclose()

    # Re-parse the raw bytes on disk with the default policy, as a mail client would.
    (eml,) = (email_box.directory / "email").iterdir()
    raw = eml.read_bytes()
    message = BytesParser(_class=EmailMessage, policy=email.policy.default).parsebytes(raw)
    assert message["From"].addresses[0].display_name == f"{CHINESE_NAME} via {FROM_NAME}"
    assert message["Reply-To"].addresses[0].display_name == CHINESE_NAME
    assert message["Subject"] == "请释放在新疆被任意拘押的人"
    body = message.get_content().replace("\r\n", "\n")
    # A Chinese letter opens and closes as Chinese letters do.
    assert body == f"尊敬的大使：\n\n{CHINESE_BODY}\n\n此致\n敬礼！\n\n{CHINESE_NAME}\n中国\n"


def test_email_header_injection_in_supporter_name_is_refused() -> None:
    # Intake refuses such names; should one get through, building the message fails
    # instead of adding a Bcc header.
    claimed = delivery(supporter_name="Ana\r\nBcc: x@y.example")
    with pytest.raises(ValueError, match="CR or LF"):
        build_email(claimed, from_address=FROM_ADDRESS, from_name=FROM_NAME)


def test_email_declares_the_letter_language() -> None:
    # set_content() drops every Content-* header, so the language must be set after it.
    message = build_email(delivery(language="zh"), from_address=FROM_ADDRESS, from_name=FROM_NAME)
    assert message["Content-Language"] == "zh"
    assert message.get_content_type() == "text/plain"


async def test_email_transient_failure_is_451(tmp_path: Path) -> None:
    async with sandbox_with(tmp_path, "email", Faults(fail_first=1)) as box:
        adapter = email_adapter(box.smtp_port)
        try:
            error = await raised(lambda: adapter.send(delivery()))
            assert type(error) is TransientError
            assert error.code == "451"
            assert error.outcome_unknown is False
            assert "451" in error.message
            assert box.emails == []
            # The fault is used up: the next send goes through.
            assert (await adapter.send(delivery())).confirmed
            assert len(box.emails) == 1
        finally:
            await adapter.aclose()


async def test_email_refused_recipient_is_permanent_550(tmp_path: Path) -> None:
    async with sandbox_with(tmp_path, "email", Faults(refuse=frozenset({TARGET_EMAIL}))) as box:
        adapter = email_adapter(box.smtp_port)
        try:
            error = await raised(lambda: adapter.send(delivery()))
        finally:
            await adapter.aclose()
    assert type(error) is PermanentError
    assert error.code == "550"
    assert "recipient refused" in error.message
    assert box.emails == []


async def test_email_nothing_listening_is_transient() -> None:
    adapter = email_adapter(closed_port())
    try:
        error = await raised(lambda: adapter.send(delivery()))
    finally:
        await adapter.aclose()
    assert type(error) is TransientError
    assert error.outcome_unknown is False
    assert error.code is None


async def test_email_connections_are_kept_and_replaced_when_the_server_closes_them(
    email_box: Sandbox,
) -> None:
    adapter = email_adapter(email_box.smtp_port, pool_size=3)
    try:
        claims = [delivery(delivery_id=n, address=f"t{n}@gov.example") for n in range(30)]
        results = await asyncio.gather(*(adapter.send(c) for c in claims))
        assert all(r.confirmed for r in results)
        assert adapter.pool.opened == 3  # 30 messages over 3 connections
        # The relay closes them (an idle timeout); the next sends open new ones, and
        # nothing is lost or sent twice on the way.
        assert email_box.drop_smtp_connections() == 3
        again = [delivery(delivery_id=n, address=f"u{n}@gov.example") for n in range(6)]
        assert all(r.confirmed for r in await asyncio.gather(*(adapter.send(c) for c in again)))
        assert 3 < adapter.pool.opened <= 6
    finally:
        await adapter.aclose()
    received = sorted(str(m["To"]).split("<")[1].rstrip(">") for m in email_box.emails)
    expected = sorted(
        [f"t{n}@gov.example" for n in range(30)] + [f"u{n}@gov.example" for n in range(6)]
    )
    assert received == expected


async def test_email_refusal_leaves_the_connection_usable(tmp_path: Path) -> None:
    faults = Faults(fail_first=1, refuse=frozenset({"nobody@gov.example"}))
    async with sandbox_with(tmp_path, "email", faults) as box:
        adapter = email_adapter(box.smtp_port, pool_size=1)
        try:
            assert type(await raised(lambda: adapter.send(delivery()))) is TransientError
            refused = delivery(address="nobody@gov.example")
            assert type(await raised(lambda: adapter.send(refused))) is PermanentError
            assert (await adapter.send(delivery())).confirmed
        finally:
            await adapter.aclose()
    assert adapter.pool.opened == 1
    assert len(box.emails) == 1


# --- fax ------------------------------------------------------------------------


async def test_fax_send_posts_pdf_and_fields_then_check_confirms(tmp_path: Path) -> None:
    # Long enough that the first check certainly sees "queued", short enough for a fast test.
    async with sandbox_with(tmp_path, "fax", Faults(), fax_transmit_seconds=0.3) as box:
        adapter = fax_adapter(box.fax_base_url)
        claimed = delivery(Channel.FAX)
        try:
            sent = await adapter.send(claimed)
            assert sent == SendResult(False, "1", "Fax queued for sending")
            (fax,) = box.faxes
            assert fax.to == TARGET_FAX
            assert fax.header_text == HEADER_TEXT
            assert fax.tags == {"delivery_id": "7", "appeal_id": claimed.appeal_id}
            assert fax.callback_url is None
            assert fax.pdf.startswith(b"%PDF-")
            assert b"/FontFile2" in fax.pdf  # the TrueType font is embedded
            assert b"WenQuanYi" in fax.pdf

            answers = await check_until_final(
                adapter, dataclasses.replace(claimed, provider_ref="1")
            )
        finally:
            await adapter.aclose()

    *pending, final = answers
    assert pending, "the first check must find the fax still transmitting"
    assert pending[0].summary == "gateway status queued"
    assert all(a.confirmed is False and a.provider_ref == "1" for a in pending)
    statuses = [a.summary for a in pending]
    assert set(statuses) <= {"gateway status queued", "gateway status inprogress"}
    assert statuses == sorted(statuses, key=lambda s: s.endswith("inprogress"))
    assert final == SendResult(True, "1", "transmitted (1 pages)")


async def test_fax_busy_line_is_transient(tmp_path: Path) -> None:
    async with sandbox_with(
        tmp_path, "fax", Faults(busy_first=1), fax_transmit_seconds=0.05
    ) as box:
        adapter = fax_adapter(box.fax_base_url)
        try:
            sent = await adapter.send(delivery(Channel.FAX))
            claimed = delivery(Channel.FAX, provider_ref=sent.provider_ref)
            with pytest.raises(TransientError) as info:
                await check_until_final(adapter, claimed)
        finally:
            await adapter.aclose()
    assert type(info.value) is TransientError
    assert "Busy" in info.value.message
    assert info.value.code == "34"


async def test_fax_refused_number_is_permanent(tmp_path: Path) -> None:
    faults = Faults(refuse=frozenset({TARGET_FAX}))
    async with sandbox_with(tmp_path, "fax", faults, fax_transmit_seconds=0.05) as box:
        adapter = fax_adapter(box.fax_base_url)
        try:
            sent = await adapter.send(delivery(Channel.FAX))
            assert sent.confirmed is False  # the gateway accepts first, fails on transmission
            claimed = delivery(Channel.FAX, provider_ref=sent.provider_ref)
            with pytest.raises(PermanentError) as info:
                await check_until_final(adapter, claimed)
        finally:
            await adapter.aclose()
    assert "not operational" in info.value.message
    assert "fatalErrorType" in info.value.message


async def test_fax_rate_limit_carries_retry_after(tmp_path: Path) -> None:
    faults = Faults(rate_limit_first=1, rate_limit_reset_seconds=7)
    async with sandbox_with(tmp_path, "fax", faults) as box:
        adapter = fax_adapter(box.fax_base_url)
        try:
            error = await raised(lambda: adapter.send(delivery(Channel.FAX)))
            assert box.faxes == []
            assert (await adapter.send(delivery(Channel.FAX))).provider_ref == "1"
        finally:
            await adapter.aclose()
    assert isinstance(error, RateLimited)
    assert error.retry_after == 7.0
    assert error.code == "429"
    assert "Rate limit exceeded" in error.message


async def test_fax_gateway_failure_is_transient_503(tmp_path: Path) -> None:
    async with sandbox_with(tmp_path, "fax", Faults(fail_first=1)) as box:
        adapter = fax_adapter(box.fax_base_url)
        try:
            error = await raised(lambda: adapter.send(delivery(Channel.FAX)))
        finally:
            await adapter.aclose()
    assert type(error) is TransientError
    assert error.code == "503"
    assert error.outcome_unknown is False
    assert box.faxes == []


async def test_fax_bad_credentials_and_bad_number_are_permanent(sandbox: Sandbox) -> None:
    anonymous = fax_adapter(sandbox.fax_base_url, api_key="", api_secret="")
    adapter = fax_adapter(sandbox.fax_base_url)
    try:
        unauthorized = await raised(lambda: anonymous.send(delivery(Channel.FAX)))
        bad_number = await raised(lambda: adapter.send(delivery(Channel.FAX, address="2025550")))
    finally:
        await anonymous.aclose()
        await adapter.aclose()
    assert type(unauthorized) is PermanentError and unauthorized.code == "401"
    assert "Invalid API credentials" in unauthorized.message
    assert type(bad_number) is PermanentError and bad_number.code == "422"
    assert "Invalid phone number" in bad_number.message
    assert sandbox.faxes == []


async def test_fax_chinese_letter_renders_and_is_transmitted(sandbox: Sandbox) -> None:
    adapter = fax_adapter(sandbox.fax_base_url)
    claimed = delivery(
        Channel.FAX,
        supporter_name=CHINESE_NAME,
        supporter_country="中国",
        salutation="尊敬的大使",
        subject="请释放在新疆被任意拘押的人",
        body=CHINESE_BODY,
        language="zh",
    )
    try:
        sent = await adapter.send(claimed)
        answers = await check_until_final(
            adapter, dataclasses.replace(claimed, provider_ref=sent.provider_ref)
        )
    finally:
        await adapter.aclose()
    (fax,) = sandbox.faxes
    assert fax.pdf.startswith(b"%PDF-") and b"/FontFile2" in fax.pdf
    assert answers[-1].confirmed is True
    assert sandbox.delivered_counts()["fax"] == 1


async def test_fax_callback_url_is_passed_through(sandbox: Sandbox) -> None:
    callback = "https://dispatch.example.org/phaxio/callback?token=abc"
    adapter = fax_adapter(sandbox.fax_base_url, callback_url=callback)
    try:
        await adapter.send(delivery(Channel.FAX))
    finally:
        await adapter.aclose()
    assert sandbox.faxes[0].callback_url == callback


async def test_fax_check_of_unknown_fax_and_unreachable_gateway(sandbox: Sandbox) -> None:
    adapter = fax_adapter(sandbox.fax_base_url)
    unreachable = fax_adapter(f"http://127.0.0.1:{closed_port()}")
    try:
        with pytest.raises(TransientError, match="does not know fax 99"):
            await adapter.check(delivery(Channel.FAX, provider_ref="99"))
        # A status poll that cannot reach the gateway is "not yet", not a failure.
        answer = await unreachable.check(delivery(Channel.FAX, provider_ref="1"))
        assert answer.confirmed is False
        assert answer.provider_ref == "1"
        assert answer.summary.startswith("status unavailable, will ask again")
        error = await raised(lambda: unreachable.send(delivery(Channel.FAX)))
    finally:
        await adapter.aclose()
        await unreachable.aclose()
    assert type(error) is TransientError
    assert error.outcome_unknown is False


# --- X (Twitter) ------------------------------------------------------------------


async def test_tweet_is_posted_through_rewritten_host(sandbox: Sandbox) -> None:
    adapter = x_adapter(sandbox.x_base_url)
    claimed = delivery(Channel.TWITTER)
    try:
        result = await adapter.send(claimed)
        checked = await adapter.check(
            dataclasses.replace(claimed, provider_ref=result.provider_ref)
        )
    finally:
        await adapter.aclose()
    (tweet,) = sandbox.tweets
    reference = post_reference(claimed.appeal_id)
    assert tweet["text"] == f"{TARGET_HANDLES} {TWEET} — Ana Lima (ref {reference})"
    assert tweet["text"] == compose_tweet(TARGET_HANDLES, TWEET, "Ana Lima", reference)
    assert result.confirmed is True
    assert result.provider_ref == tweet["id"]
    assert result.summary == f"tweet {tweet['id']}"
    assert checked == SendResult(True, tweet["id"])


async def test_tweet_rate_limit_reports_reset(tmp_path: Path) -> None:
    faults = Faults(rate_limit_first=1, rate_limit_reset_seconds=30)
    async with sandbox_with(tmp_path, "twitter", faults) as box:
        adapter = x_adapter(box.x_base_url)
        try:
            error = await raised(lambda: adapter.send(delivery(Channel.TWITTER)))
        finally:
            await adapter.aclose()
    assert isinstance(error, RateLimited)
    assert error.code == "429"
    # The reset is whole epoch seconds, so up to a second is lost to rounding.
    assert 28 <= error.retry_after <= 30
    assert box.tweets == []


async def test_tweet_server_failure_is_transient_503(tmp_path: Path) -> None:
    async with sandbox_with(tmp_path, "twitter", Faults(fail_first=1)) as box:
        adapter = x_adapter(box.x_base_url)
        try:
            error = await raised(lambda: adapter.send(delivery(Channel.TWITTER)))
        finally:
            await adapter.aclose()
    assert type(error) is TransientError
    assert error.code == "503"
    assert error.outcome_unknown is False
    assert box.tweets == []


async def test_tweet_refused_handle_is_permanent_403(tmp_path: Path) -> None:
    async with sandbox_with(
        tmp_path, "twitter", Faults(refuse=frozenset({"AmbCuiTiankai"}))
    ) as box:
        adapter = x_adapter(box.x_base_url)
        try:
            error = await raised(lambda: adapter.send(delivery(Channel.TWITTER)))
        finally:
            await adapter.aclose()
    assert type(error) is PermanentError
    assert error.code == "403"
    assert "not permitted" in error.message


async def test_same_tweet_twice_is_duplicate_content(sandbox: Sandbox) -> None:
    adapter = x_adapter(sandbox.x_base_url)
    try:
        await adapter.send(delivery(Channel.TWITTER))
        error = await raised(lambda: adapter.send(delivery(Channel.TWITTER, delivery_id=8)))
        # Another supporter's signature makes the text distinct.
        other = await adapter.send(delivery(Channel.TWITTER, supporter_name="Zoë Kim"))
    finally:
        await adapter.aclose()
    assert isinstance(error, DuplicateContent)
    assert error.code == "403"
    assert other.confirmed is True
    assert len(sandbox.tweets) == 2


async def test_dropped_connection_is_unknown_outcome_but_tweet_exists(tmp_path: Path) -> None:
    async with sandbox_with(tmp_path, "twitter", Faults(drop_first=1)) as box:
        adapter = x_adapter(box.x_base_url)
        try:
            error = await raised(lambda: adapter.send(delivery(Channel.TWITTER)))
        finally:
            await adapter.aclose()
    assert type(error) is TransientError
    assert error.outcome_unknown is True
    reference = post_reference(delivery(Channel.TWITTER).appeal_id)
    expected = compose_tweet(TARGET_HANDLES, TWEET, "Ana Lima", reference)
    assert [t["text"] for t in box.tweets] == [expected]


async def test_unreachable_x_api_is_transient_and_known_not_sent() -> None:
    adapter = x_adapter(f"http://127.0.0.1:{closed_port()}")
    try:
        error = await raised(lambda: adapter.send(delivery(Channel.TWITTER)))
    finally:
        await adapter.aclose()
    assert type(error) is TransientError
    assert error.outcome_unknown is False
    assert "cannot reach the X API" in error.message


async def test_x_adapter_reopens_its_session_after_aclose(sandbox: Sandbox) -> None:
    adapter = x_adapter(sandbox.x_base_url)
    try:
        await adapter.send(delivery(Channel.TWITTER))
        await adapter.aclose()
        await adapter.send(delivery(Channel.TWITTER, supporter_name="Zoë Kim"))
    finally:
        await adapter.aclose()
    assert len(sandbox.tweets) == 2


# --- fast retries with a real adapter -----------------------------------------------


async def attempt_once(
    adapter: EmailAdapter | FaxAdapter | TwitterAdapter, claimed: ClaimedDelivery
) -> tuple[SendAttempt, DeliveryUpdate]:
    """One attempt as the worker makes it, and the update the outcome rules decide on."""
    attempt = await send_with_fast_retries(adapter, claimed, FAST, UNGUARDED)
    now = dt.datetime.now(dt.UTC)
    return attempt, send_update(FAST, claimed, attempt, now=now, poll_seconds=60)


async def test_fast_retries_get_email_through_two_transient_failures(tmp_path: Path) -> None:
    async with sandbox_with(tmp_path, "email", Faults(fail_first=2)) as box:
        adapter = email_adapter(box.smtp_port)
        try:
            attempt, update = await attempt_once(adapter, delivery())
        finally:
            await adapter.aclose()
    assert update.attempt_outcome is AttemptOutcome.DELIVERED
    assert attempt.tries == 3
    assert attempt.error is None
    assert len(box.emails) == 1


async def test_fast_retries_end_transient_when_faults_outlast_tries(tmp_path: Path) -> None:
    async with sandbox_with(tmp_path, "email", Faults(fail_first=5)) as box:
        adapter = email_adapter(box.smtp_port)
        try:
            attempt, update = await attempt_once(adapter, delivery())
        finally:
            await adapter.aclose()
    assert update.attempt_outcome is AttemptOutcome.TRANSIENT
    assert attempt.tries == 3
    assert isinstance(attempt.error, TransientError) and attempt.error.code == "451"
    assert box.emails == []


async def test_dropped_tweet_then_duplicate_counts_as_delivered(tmp_path: Path) -> None:
    async with sandbox_with(tmp_path, "twitter", Faults(drop_first=1)) as box:
        adapter = x_adapter(box.x_base_url)
        try:
            attempt, update = await attempt_once(adapter, delivery(Channel.TWITTER))
        finally:
            await adapter.aclose()
    assert update.attempt_outcome is AttemptOutcome.DELIVERED
    assert attempt.tries == 2
    assert update.status is DeliveryStatus.DELIVERED
    assert update.response_summary is not None
    assert "duplicate content" in update.response_summary
    assert update.settlement is Settlement.RECONCILED
    assert len(box.tweets) == 1  # posted once, not twice


async def test_dropped_fax_is_found_by_its_tag_not_sent_again(tmp_path: Path) -> None:
    async with sandbox_with(tmp_path, "fax", Faults(drop_first=1), fax_transmit_seconds=0) as box:
        adapter = fax_adapter(box.fax_base_url)
        try:
            attempt, update = await attempt_once(adapter, delivery(Channel.FAX, delivery_id=31))
            _, rescued = await attempt_once(
                adapter, delivery(Channel.FAX, delivery_id=31, earlier_outcome_unknown=True)
            )
        finally:
            await adapter.aclose()
    # The first try's answer was lost; the second asked the gateway and found the fax.
    assert attempt.tries == 2 and attempt.reconciled
    assert update.settlement is Settlement.RECONCILED
    assert update.provider_ref == str(box.faxes[0].id)
    # A rescue after a crash finds it the same way, now transmitted.
    assert rescued.status is DeliveryStatus.DELIVERED
    assert rescued.settlement is Settlement.RECONCILED
    assert len(box.faxes) == 1


async def test_fax_found_failed_on_the_gateway_is_sent_again(tmp_path: Path) -> None:
    async with sandbox_with(tmp_path, "fax", Faults(busy_first=1), fax_transmit_seconds=0) as box:
        adapter = fax_adapter(box.fax_base_url)
        try:
            first = await adapter.send(delivery(Channel.FAX, delivery_id=5))
            await check_until_final_failure(
                adapter, delivery(Channel.FAX, delivery_id=5, provider_ref=first.provider_ref)
            )
            attempt, update = await attempt_once(
                adapter, delivery(Channel.FAX, delivery_id=5, earlier_outcome_unknown=True)
            )
        finally:
            await adapter.aclose()
    assert not attempt.reconciled and update.settlement is None
    assert update.status is DeliveryStatus.AWAITING_CONFIRMATION
    assert len(box.faxes) == 2


async def test_email_after_an_unknown_outcome_is_marked_a_possible_duplicate(
    email_box: Sandbox,
) -> None:
    adapter = email_adapter(email_box.smtp_port)
    try:
        attempt, update = await attempt_once(adapter, delivery(earlier_outcome_unknown=True))
        _, normal = await attempt_once(adapter, delivery(delivery_id=8))
    finally:
        await adapter.aclose()
    assert attempt.possible_duplicate and update.settlement is Settlement.POSSIBLE_DUPLICATE
    assert update.status is DeliveryStatus.DELIVERED
    assert normal.settlement is None
    assert len(email_box.emails) == 2


async def test_duplicate_without_unknown_outcome_is_permanent(sandbox: Sandbox) -> None:
    adapter = x_adapter(sandbox.x_base_url)
    try:
        await adapter.send(delivery(Channel.TWITTER, delivery_id=1))
        attempt, update = await attempt_once(adapter, delivery(Channel.TWITTER, delivery_id=2))
    finally:
        await adapter.aclose()
    assert update.attempt_outcome is AttemptOutcome.PERMANENT
    assert isinstance(attempt.error, DuplicateContent)
    assert attempt.tries == 1


async def test_duplicate_after_earlier_unknown_attempt_is_delivered(sandbox: Sandbox) -> None:
    adapter = x_adapter(sandbox.x_base_url)
    claimed = delivery(Channel.TWITTER)
    try:
        # A previous attempt went out, but the worker never learned it.
        await adapter.send(claimed)
        retried = dataclasses.replace(claimed, attempts=1, earlier_outcome_unknown=True)
        attempt, update = await attempt_once(adapter, retried)
    finally:
        await adapter.aclose()
    assert update.attempt_outcome is AttemptOutcome.DELIVERED
    assert attempt.tries == 1
    assert len(sandbox.tweets) == 1


async def test_permanent_refusal_is_not_retried(tmp_path: Path) -> None:
    async with sandbox_with(tmp_path, "email", Faults(refuse=frozenset({TARGET_EMAIL}))) as box:
        adapter = email_adapter(box.smtp_port)
        try:
            attempt, update = await attempt_once(adapter, delivery())
            # The fault counter shows no other try was made: the next message is the first.
            later = await adapter.send(delivery(address="other@gov.example"))
        finally:
            await adapter.aclose()
    assert update.attempt_outcome is AttemptOutcome.PERMANENT
    assert attempt.tries == 1
    assert isinstance(attempt.error, PermanentError) and attempt.error.code == "550"
    assert later.confirmed and len(box.emails) == 1


async def test_a_short_rate_limit_still_pauses_the_channel_not_only_this_fax(
    tmp_path: Path,
) -> None:
    """Even a 429 asking for no wait at all ends the attempt: every worker must hear it."""
    faults = Faults(rate_limit_first=1, rate_limit_reset_seconds=0)
    async with sandbox_with(tmp_path, "fax", faults) as box:
        adapter = fax_adapter(box.fax_base_url)
        try:
            attempt, update = await attempt_once(adapter, delivery(Channel.FAX))
        finally:
            await adapter.aclose()
    assert update.attempt_outcome is AttemptOutcome.RATE_LIMITED
    assert attempt.tries == 1 and box.faxes == []
    assert update.status is DeliveryStatus.QUEUED
    assert update.pause_until is not None and update.pause_until == update.next_attempt_at


async def test_rate_limit_longer_than_fast_budget_ends_the_attempt(tmp_path: Path) -> None:
    faults = Faults(rate_limit_first=1, rate_limit_reset_seconds=60)
    async with sandbox_with(tmp_path, "fax", faults) as box:
        adapter = fax_adapter(box.fax_base_url)
        try:
            attempt, update = await attempt_once(adapter, delivery(Channel.FAX))
        finally:
            await adapter.aclose()
    assert update.attempt_outcome is AttemptOutcome.RATE_LIMITED
    assert attempt.tries == 1
    assert isinstance(attempt.error, RateLimited) and attempt.error.retry_after == 60
    assert box.faxes == []


@pytest.mark.parametrize("fault", ["garble_first", "no_id_first"])
async def test_a_fax_accepted_with_an_unreadable_answer_is_found_not_sent_twice(
    tmp_path: Path, fault: str
) -> None:
    faults = Faults(**{fault: 1})  # type: ignore[arg-type]
    async with sandbox_with(tmp_path, "fax", faults, fax_transmit_seconds=0) as box:
        adapter = fax_adapter(box.fax_base_url)
        try:
            error = await raised(lambda: adapter.send(delivery(Channel.FAX, delivery_id=41)))
            attempt, update = await attempt_once(
                adapter, delivery(Channel.FAX, delivery_id=41, earlier_outcome_unknown=True)
            )
        finally:
            await adapter.aclose()
    assert type(error) is TransientError and error.outcome_unknown is True
    assert "no fax id" in error.message
    assert attempt.reconciled and update.settlement is Settlement.RECONCILED
    assert len(box.faxes) == 1


@pytest.mark.parametrize("fault", ["garble_first", "no_id_first"])
async def test_a_post_accepted_with_an_unreadable_answer_counts_once(
    tmp_path: Path, fault: str
) -> None:
    faults = Faults(**{fault: 1})  # type: ignore[arg-type]
    async with sandbox_with(tmp_path, "twitter", faults) as box:
        adapter = x_adapter(box.x_base_url)
        try:
            error = await raised(lambda: adapter.send(delivery(Channel.TWITTER)))
            _, update = await attempt_once(
                adapter, delivery(Channel.TWITTER, earlier_outcome_unknown=True)
            )
        finally:
            await adapter.aclose()
    assert type(error) is TransientError and error.outcome_unknown is True
    assert update.status is DeliveryStatus.DELIVERED
    assert update.settlement is Settlement.RECONCILED
    assert len(box.tweets) == 1
