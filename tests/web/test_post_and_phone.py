"""For the post and the phone: the campaign page gives each official's number as a tel:
link with a call script, and their postal address; the status page prints the letter
for the post (A4 or US Letter by the official's country, the address on top, rendered as
faxes are), behind the status link's token; a deleted appeal says so and prints nothing;
the delete link, followed again, says the data is gone instead of offering it again."""

from __future__ import annotations

import html
import io
import re

import httpx
from pypdf import PdfReader

from tests.conftest import OPEN_CAMPAIGN, submitted
from tests.integration.conftest import appeal
from tests.web.conftest import APP_OF, OPERATOR_TOKEN, context_of, status_path
from tests.web.test_pages import PAGE, csrf_of


def text_of(page: httpx.Response) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page.text))


async def test_the_campaign_page_gives_numbers_scripts_and_addresses(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get(PAGE)
    zh = await client.get(PAGE + "?lang=zh")
    assert '<a href="tel:+12024952266">+12024952266</a>' in page.text
    assert "Hello, my name is [your name]. I am calling about" in text_of(page)
    assert "3505 International Place NW" in page.text and "Zhongnanhai" in page.text
    assert "您好，我叫[您的名字]。" in text_of(zh)


async def test_the_letter_prints_for_the_post_behind_the_status_link(
    client: httpx.AsyncClient,
) -> None:
    service = context_of(APP_OF[client]).service
    kept = await submitted(
        service, appeal(campaign_id=OPEN_CAMPAIGN, channels=["email"], targets=["xi-jinping"])
    )
    status = status_path(client, kept.appeal_id)
    page = await client.get(status)
    token = status.split("token=")[1]
    links = re.findall(r'href="(/a/[^"]+\.pdf\?token=[^"]+)"', page.text)
    assert [link.split("/letters/")[1].split(".pdf")[0] for link in links] == [
        "xi-jinping", "cui-tiankai",
    ]  # fmt: skip
    xi = await client.get(links[0])
    cui = await client.get(links[1])
    assert xi.status_code == 200 and xi.headers["content-type"] == "application/pdf"
    assert xi.headers["cache-control"] == "no-store"
    a4, letter = PdfReader(io.BytesIO(xi.content)), PdfReader(io.BytesIO(cui.content))
    assert [round(float(v)) for v in a4.pages[0].mediabox[2:]] == [595, 842]  # China: A4
    assert [round(float(v)) for v in letter.pages[0].mediabox[2:]] == [612, 792]  # US Letter
    words = " ".join(p.extract_text() for p in letter.pages).replace("\n", " ")
    assert "3505 International Place NW" in words and "Dear Ambassador," in words
    assert "I am distressed to learn" in words and "Ana Lima" in words
    no_token = await client.get(f"/a/{kept.appeal_id}/letters/xi-jinping.pdf")
    wrong = await client.get(f"/a/{kept.appeal_id}/letters/nobody.pdf?token={token}")
    assert no_token.status_code == 404 and wrong.status_code == 404


async def test_after_deleting_the_pages_say_so_and_print_nothing(
    client: httpx.AsyncClient,
) -> None:
    service = context_of(APP_OF[client]).service
    kept = await submitted(
        service, appeal(campaign_id=OPEN_CAMPAIGN, channels=["email"], targets=["xi-jinping"])
    )
    forget = status_path(client, kept.appeal_id, "forget")
    form = await client.get(forget)
    token = forget.split("token=")[1]
    # Deleting waits until nothing is on its way (no worker runs here): an operator
    # cancels what is queued first.
    for entry in await service.store.list_deliveries(appeal_id=kept.appeal_id):
        await client.post(f"/api/deliveries/{entry.id}/cancel",
                          headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})  # fmt: skip
    done = await client.post(forget, data={"csrf": csrf_of(form), "token": token})
    again = await client.get(forget)
    status = await client.get(status_path(client, kept.appeal_id))
    assert "Your data has been deleted" in done.text, done.text[:500]
    assert "Your data was deleted already" in again.text and "Delete my data" not in again.text
    assert "You deleted your name, email address and letter" in status.text
    assert "Print your letter" not in status.text
