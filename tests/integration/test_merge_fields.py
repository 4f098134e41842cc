"""Merge fields end to end over real SMTP and the fax gateway: the supporter's filled in
when the appeal is accepted, the official's as each delivery goes out, as text; a
supporter's own subject where the campaign
allows it, refused where it does not."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from pypdf import PdfReader

from dispatcher.campaigns import CampaignCatalog
from dispatcher.retry import RetryPolicy
from dispatcher.sandbox import Sandbox
from dispatcher.service import Service, ServiceError
from dispatcher.store import Store
from tests.conftest import FAST_RETRY, OPEN_CAMPAIGN, submitted
from tests.integration.conftest import MakeWorker, appeal
from tests.integration.test_receipts import drain


def with_fields(campaigns_dir: Path, *, editable: bool) -> Path:
    path = campaigns_dir / f"{OPEN_CAMPAIGN}.toml"
    text = path.read_text(encoding="utf-8")
    text = text.replace(
        'subject = "Release those arbitrarily detained in Xinjiang"\n',
        'subject = "{target.title}: release those detained in Xinjiang"\n', 1
    ).replace('body = """\nI am distressed', 'body = """\nI, {supporter.first_name} from '
              "{supporter.country}, write to you, {target.name}. I am distressed", 1)  # fmt: skip
    text = re.sub(r"^subjects = \[[^\]]*\]\n", "", text, count=1, flags=re.M)  # one line
    if editable:
        text = text.replace("goal = 1000\n", "goal = 1000\neditable_subject = true\n", 1)
    path.write_text(text, encoding="utf-8")
    return path


async def test_fields_are_filled_in_for_each_official_as_text(
    store: Store, campaigns_dir: Path, make_worker: MakeWorker, tmp_path: Path
) -> None:
    with_fields(campaigns_dir, editable=False)
    catalog = CampaignCatalog.load(campaigns_dir)
    service = Service(
        store=store,
        catalog=catalog,
        policy=RetryPolicy.from_settings(FAST_RETRY),
        poll_seconds=0.05,
    )
    async with Sandbox(tmp_path / "box", channels=["email", "fax"]) as sandbox:
        await submitted(
            service,
            appeal(channels=["email", "fax"],
                   targets=["xi-jinping", "cui-tiankai"]),
        )  # fmt: skip
        with pytest.raises(ServiceError) as refused:
            await submitted(
                service, appeal(supporter_email="bo@example.org", subject="My own subject")
            )
        await drain(service, make_worker, sandbox, campaigns_dir)
    letters = {str(m["To"]): m for m in sandbox.emails if "@example." not in str(m["To"])}
    xi = letters["Xi Jinping <english@mail.gov.cn>"]
    assert str(xi["Subject"]) == (
        "President of the People’s Republic of China: release those detained in Xinjiang"
    )
    body = xi.get_content()
    assert "I, Ana from Brazil, write to you, Xi Jinping. I am distressed" in body
    cui = letters["Cui Tiankai <chinaembpress_us@mfa.gov.cn>"].get_content()
    assert "write to you, Cui Tiankai." in cui
    faxed = "".join(
        p.extract_text() for f in sandbox.faxes for p in PdfReader(io.BytesIO(f.pdf)).pages
    )
    assert "write to you, Cui Tiankai" in faxed.replace("\n", " ")
    assert refused.value.field == "subject"
    assert "sets its subject lines; accepted: no subject" in refused.value.message


async def test_a_supporters_own_subject_where_the_campaign_allows_it(
    store: Store, campaigns_dir: Path, make_worker: MakeWorker, tmp_path: Path
) -> None:
    with_fields(campaigns_dir, editable=True)
    catalog = CampaignCatalog.load(campaigns_dir)
    service = Service(
        store=store,
        catalog=catalog,
        policy=RetryPolicy.from_settings(FAST_RETRY),
        poll_seconds=0.05,
    )
    with pytest.raises(ServiceError) as long:
        await submitted(service, appeal(channels=["email"], subject="x" * 151))
    with pytest.raises(ServiceError) as broken:
        await submitted(service, appeal(channels=["email"], subject="Hi\r\nBcc: a@b.c"))
    async with Sandbox(tmp_path / "box", channels=["email"]) as sandbox:
        await submitted(
            service, appeal(channels=["email"], targets=["xi-jinping"], subject="Free them now")
        )
        await drain(service, make_worker, sandbox, campaigns_dir)
    [letter] = [m for m in sandbox.emails if "@example." not in str(m["To"])]
    assert str(letter["Subject"]) == "Free them now" and letter["Bcc"] is None
    assert (long.value.field, long.value.reason) == ("subject", "too_long")
    assert broken.value.field == "subject"
