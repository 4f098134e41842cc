"""Receipts end to end over real SMTP: the worker's relay carries, to the supporter only,
a notice when a delivery fails for good while others are on their way, then the receipt
once all have settled; a supporter who opted out gets nothing; each message goes once."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from dispatcher.runtime import run_with_receipts
from dispatcher.sandbox import Faults, Sandbox
from dispatcher.service import Service
from dispatcher.service.forget import forget_token
from dispatcher.service.intake import submit_appeal
from dispatcher.store import Store
from tests.conftest import settings_for
from tests.integration.conftest import MakeWorker, appeal


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
        kept = await submit_appeal(service, ana)
        await submit_appeal(service, bo)
        worker = make_worker(sandbox, max_attempts=1)
        worker.pacing = None
        settings = settings_for(sandbox, database_url="unused", campaigns_dir=campaigns_dir)
        await asyncio.wait_for(
            run_with_receipts(worker, settings, service, stop=asyncio.Event(), drain=True),
            timeout=60,
        )
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
    assert "- Xi Jinping, by Fax: delivered." in text
    assert "- Xi Jinping, by Email: not delivered." in text
    assert "I am distressed to learn" in text  # a copy of the letter
    assert f"/a/{kept.appeal_id}/forget?token={forget_token(service, kept.appeal_id)}" in text
    assert str(receipt["From"]).endswith("<appeals@dispatcher.invalid>")


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
        await submit_appeal(service, li)
        worker = make_worker(sandbox, max_attempts=1)
        worker.pacing = None
        settings = settings_for(sandbox, database_url="unused", campaigns_dir=campaigns_dir)
        await asyncio.wait_for(
            run_with_receipts(worker, settings, service, stop=asyncio.Event(), drain=True),
            timeout=60,
        )
        [receipt] = [m for m in sandbox.emails if "@example." in str(m["To"])]
    assert str(receipt["Subject"]) == "您的呼吁：新疆的失踪与任意拘押"
    text = receipt.get_content()
    assert text.startswith("李华，您好：")
    assert "- 习近平，通过电子邮件：已送达。" in text
    assert "我得知，来自以穆斯林为主的少数民族" in text
