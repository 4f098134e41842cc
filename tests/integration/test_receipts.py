"""Receipts end to end over real SMTP: the worker's relay carries, to the supporter only,
a notice when a delivery fails for good while others are on their way, then the receipt
once all have settled; a supporter who opted out gets nothing; each message goes once."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from pathlib import Path

from dispatcher.campaigns import CampaignCatalog
from dispatcher.retry import RetryPolicy
from dispatcher.runtime import run_with_receipts
from dispatcher.sandbox import Faults, Sandbox
from dispatcher.service import Service
from dispatcher.service.consent import confirm_reply_to
from dispatcher.service.links import link_token
from dispatcher.service.operator import cancel_delivery
from dispatcher.service.review import decide_letter
from dispatcher.store import Store
from tests.conftest import FAST_RETRY, settings_for, submitted
from tests.integration.conftest import MakeWorker, appeal

URL = re.compile(r"https?://\S+")


async def drain(
    service: Service, make_worker: MakeWorker, sandbox: Sandbox, campaigns_dir: Path
) -> None:
    """The worker with the receipts beside it, until nothing is left to send."""
    worker = make_worker(sandbox, max_attempts=1)
    worker.pacing = None
    settings = settings_for(sandbox, database_url="unused", campaigns_dir=campaigns_dir)
    await asyncio.wait_for(
        run_with_receipts(worker, settings, service, stop=asyncio.Event(), drain=True),
        timeout=60,
    )


async def test_a_failure_notice_then_the_receipt_and_nothing_for_those_who_opted_out(
    store: Store, service: Service, make_worker: MakeWorker, campaigns_dir: Path, tmp_path: Path
) -> None:
    async with Sandbox(
        tmp_path / "box",
        channels=["email", "fax"],
        email_faults=Faults(refuse=frozenset({"english@mail.gov.cn"})),
        fax_transmit_seconds=1.0,  # the fax is still on its way when the email fails
    ) as sandbox:
        ana = appeal(targets=["xi-jinping"], channels=["email", "fax"])
        bo = dataclasses.replace(
            ana, supporter_name="Bo Li", supporter_email="bo@example.org", receipt=False
        )
        kept = await submitted(service, ana)
        await submitted(service, bo)
        await drain(service, make_worker, sandbox, campaigns_dir)
        to_supporters = [m for m in sandbox.emails if "@example." in str(m["To"])]
    assert [str(m["To"]) for m in to_supporters] == ["ana@example.org", "ana@example.org"]
    notice, receipt = to_supporters
    assert str(notice["Subject"]).startswith("Not delivered: part of your appeal")
    assert (
        "- Xi Jinping, by Email: not delivered. The official's mail server refused the email."
        in (notice.get_content())
    )
    assert str(receipt["Subject"]) == "Your appeal: Missing and arbitrarily detained in Xinjiang"
    text = receipt.get_content()
    # Sent to the sandbox, a rehearsal: never "delivered" to the official.
    assert "- Xi Jinping, by Fax: received by our test server (a rehearsal" in text
    assert "- Xi Jinping, by Email: not delivered." in text
    # Anyone can type an address: unconfirmed, it gets nothing the supporter wrote (no
    # name, letter or post) and no link but ours: the status link and "this wasn't me".
    assert text.startswith("Hello,")
    assert "Ana Lima" not in text and "I am distressed to learn" not in text
    assert f"/a/{kept.appeal_id}?token={link_token(service, 'status', kept.appeal_id)}" in text
    assert (
        f"/a/{kept.appeal_id}/not-me?token={link_token(service, 'not-me', kept.appeal_id)}" in text
    )
    assert "/forget" not in text
    assert [u for u in URL.findall(text) if not u.startswith(service.public_url)] == []
    assert str(receipt["From"]).endswith("<appeals@dispatcher.invalid>")


async def test_a_third_party_gets_none_of_the_words_typed_with_their_address(
    store: Store, service: Service, make_worker: MakeWorker, campaigns_dir: Path, tmp_path: Path
) -> None:
    """The open-relay case: a name and letter made to phish whoever owns the address."""
    async with Sandbox(tmp_path / "box", channels=["email"]) as sandbox:
        await submitted(
            service,
            appeal(
                targets=["xi-jinping"],
                channels=["email"],
                supporter_name="PayPal Security Team",
                supporter_email="random.thirdparty@example.net",
                message="Your account is suspended. Verify at http://evil.example/login now.",
            ),
        )
        await drain(service, make_worker, sandbox, campaigns_dir)
        [receipt] = [m for m in sandbox.emails if "@example." in str(m["To"])]
    text = receipt.get_content() + str(receipt["Subject"])
    assert "PayPal" not in text and "evil.example" not in text and "suspended" not in text
    assert "this wasn't you" in text


async def test_a_confirmed_address_gets_its_letter_and_the_officials_get_its_reply_to(
    store: Store, service: Service, make_worker: MakeWorker, campaigns_dir: Path, tmp_path: Path
) -> None:
    async with Sandbox(tmp_path / "box", channels=["email"]) as sandbox:
        kept = await submitted(
            service, appeal(targets=["xi-jinping"], channels=["email"], reply_to=True)
        )
        # The email waits for the address: a drain ends with only the link sent.
        await drain(service, make_worker, sandbox, campaigns_dir)
        [confirm] = sandbox.emails
        assert str(confirm["Subject"]).strip().startswith("Confirm your email address")
        token = link_token(service, "confirm", kept.appeal_id)
        assert f"/a/{kept.appeal_id}/confirm?token={token}" in confirm.get_content()
        await confirm_reply_to(service, kept.appeal_id, token)
        await drain(service, make_worker, sandbox, campaigns_dir)
        [letter] = [m for m in sandbox.emails if "@example." not in str(m["To"])]
        [receipt] = [m for m in sandbox.emails if str(m["Subject"]).startswith("Your appeal:")]
    assert str(letter["Reply-To"]) == "Ana Lima <ana@example.org>"
    text = receipt.get_content()
    assert text.startswith("Dear Ana Lima,")
    assert "I am distressed to learn" in text  # a copy of the letter, to its confirmed owner
    assert (
        f"/a/{kept.appeal_id}/forget?token={link_token(service, 'forget', kept.appeal_id)}" in text
    )


async def test_the_receipt_is_written_in_the_language_of_the_letter(
    store: Store, service: Service, make_worker: MakeWorker, campaigns_dir: Path, tmp_path: Path
) -> None:
    async with Sandbox(tmp_path / "box", channels=["email"]) as sandbox:
        li = dataclasses.replace(
            appeal(targets=["xi-jinping"], channels=["email"]),
            supporter_name="李华",
            supporter_email="li@example.org",
            language="zh",
        )
        await submitted(service, li)
        await drain(service, make_worker, sandbox, campaigns_dir)
        [receipt] = [m for m in sandbox.emails if "@example." in str(m["To"])]
    assert str(receipt["Subject"]) == "您的呼吁：新疆的失踪与任意拘押"
    text = receipt.get_content()
    assert text.startswith("您好：")
    assert "- 习近平，通过电子邮件：已由我们的测试服务器接收（这是演练：官员并未收到）。" in text
    assert "李华" not in text  # unconfirmed: nothing the supporter wrote


async def test_the_receipt_follows_the_pages_not_the_letter(
    store: Store, service: Service, make_worker: MakeWorker, campaigns_dir: Path, tmp_path: Path
) -> None:
    """English pages, the Chinese sample letter: the receipt (deletion link and all) is in
    English; the letter to the official stays Chinese."""
    async with Sandbox(tmp_path / "box", channels=["email"]) as sandbox:
        ana = appeal(targets=["xi-jinping"], channels=["email"], language="zh", page_language="en")
        await submitted(service, ana)
        await drain(service, make_worker, sandbox, campaigns_dir)
        [receipt] = [m for m in sandbox.emails if "@example." in str(m["To"])]
        [letter] = [m for m in sandbox.emails if "@example." not in str(m["To"])]
    assert str(receipt["Subject"]) == "Your appeal: Missing and arbitrarily detained in Xinjiang"
    assert "- Xi Jinping, by Email: received by our test server" in receipt.get_content()
    assert "习近平" in letter.get_content()


async def test_an_own_letter_gets_the_frame_of_the_language_it_is_written_in(
    store: Store, service: Service, make_worker: MakeWorker, campaigns_dir: Path, tmp_path: Path
) -> None:
    """A Chinese letter typed on the English pages (English chosen) goes with the Chinese
    subject and greeting; an English one with Chinese chosen, with the English ones."""
    chinese = await submitted(
        service,
        appeal(channels=["email"], language="en", page_language="en",
               message="我们强烈呼吁立即释放所有被任意拘押的人。"),
    )  # fmt: skip
    english = await submitted(
        service,
        appeal(supporter_email="bo@example.org", channels=["email"], language="zh",
               page_language="zh", message="Please release everyone detained arbitrarily."),
    )  # fmt: skip
    zh = await store.receipt_appeal(chinese.appeal_id)
    en = await store.receipt_appeal(english.appeal_id)
    assert zh is not None and en is not None
    assert (zh.language, zh.page_language) == ("zh", "en")
    campaign = service.catalog.get("ua-open")
    assert campaign is not None
    assert zh.subject in campaign.letter["zh"].subject_lines
    assert (en.language, en.page_language) == ("en", "zh")
    assert en.subject in campaign.letter["en"].subject_lines
    async with Sandbox(tmp_path / "box", channels=["email"]) as sandbox:
        await drain(service, make_worker, sandbox, campaigns_dir)
    letters = {str(m["Subject"]): m.get_content() for m in sandbox.emails
               if "@example." not in str(m["To"])}  # fmt: skip
    assert letters[zh.subject].startswith("尊敬的")
    assert letters[en.subject].startswith("Dear ")


async def test_a_letter_staff_rejected_gets_only_a_plain_notice(
    store: Store, campaigns_dir: Path, make_worker: MakeWorker, tmp_path: Path
) -> None:
    path = campaigns_dir / "ua-open.toml"
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            "goal = 1000\n", "goal = 1000\nreview_own_letters = true\n", 1
        ),
        encoding="utf-8",
    )
    service = Service(
        store=store,
        catalog=CampaignCatalog.load(campaigns_dir),  # reviewing its supporters' own words
        policy=RetryPolicy.from_settings(FAST_RETRY),
        poll_seconds=0.05,
    )
    async with Sandbox(tmp_path / "box", channels=["email"]) as sandbox:
        held = await submitted(
            service,
            appeal(channels=["email"], message="Buy cheap watches at http://spam.example now."),
        )
        await decide_letter(service, held.appeal_id, "reject", by="ana", note="spam")
        await drain(service, make_worker, sandbox, campaigns_dir)
    [notice] = sandbox.emails  # nothing went to the officials
    assert str(notice["Subject"]).strip().startswith("Your appeal was not sent")
    text = notice.get_content()
    assert "did not approve the letter" in text
    assert f"sending the campaign's own letter: {service.public_url}/c/ua-open" in text
    assert "watches" not in text and "spam.example" not in text and "Ana Lima" not in text


async def test_a_delivery_staff_stopped_is_told_as_such_and_its_letter_not_called_sent(
    store: Store, service: Service, make_worker: MakeWorker, campaigns_dir: Path, tmp_path: Path
) -> None:
    async with Sandbox(tmp_path / "box", channels=["email", "fax"]) as sandbox:
        kept = await submitted(
            service, appeal(targets=["xi-jinping"], channels=["email", "fax"], reply_to=True)
        )
        await drain(service, make_worker, sandbox, campaigns_dir)  # the fax goes; email waits
        await confirm_reply_to(
            service, kept.appeal_id, link_token(service, "confirm", kept.appeal_id)
        )
        [email] = [e for e in await store.list_deliveries(appeal_id=kept.appeal_id)
                   if e.channel.value == "email"]  # fmt: skip
        await cancel_delivery(service, email.id, by="ana")
        await drain(service, make_worker, sandbox, campaigns_dir)
        [receipt] = [m for m in sandbox.emails if str(m["Subject"]).startswith("Your appeal:")]
    text = receipt.get_content()
    assert "- Xi Jinping, by Email: not delivered. The campaign's staff stopped it." in text
    assert "could not reach" not in text and "mail server" not in text
    assert "as it was sent" not in text  # the fax went, to the sandbox: a rehearsal
    assert "Your letter (it reached none of the officials):" in text


async def test_a_cancelled_appeal_says_its_letter_was_not_sent(
    store: Store, service: Service, make_worker: MakeWorker, campaigns_dir: Path, tmp_path: Path
) -> None:
    async with Sandbox(tmp_path / "box", channels=["email"]) as sandbox:
        kept = await submitted(
            service, appeal(targets=["xi-jinping"], channels=["email"], reply_to=True)
        )
        await drain(service, make_worker, sandbox, campaigns_dir)
        await confirm_reply_to(
            service, kept.appeal_id, link_token(service, "confirm", kept.appeal_id)
        )
        [email] = await store.list_deliveries(appeal_id=kept.appeal_id)
        await cancel_delivery(service, email.id, by="ana")
        await drain(service, make_worker, sandbox, campaigns_dir)
        [receipt] = [m for m in sandbox.emails if str(m["Subject"]).startswith("Your appeal")]
    text = receipt.get_content()
    assert "The campaign's staff stopped it." in text
    assert "as it was sent" not in text
