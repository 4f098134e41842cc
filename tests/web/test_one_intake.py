"""One intake path (issue 19, item 6): the campaign page, the embedded form and the JSON API
hand their appeal to the same service, which finds every problem, decides the review and
stores; each only says the answer its own way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from dispatcher.service.review import held_letters
from tests.conftest import OPEN_CAMPAIGN
from tests.web.conftest import context_of, running_app, web_settings
from tests.web.test_languages import text_of
from tests.web.test_pages import PAGE, csrf_of, stored_appeal_ids, supporter_form

API = f"/api/campaigns/{OPEN_CAMPAIGN}/appeals"
EMBED = f"/c/{OPEN_CAMPAIGN}/embed"


def error_of(response: httpx.Response) -> tuple[int, str | None]:
    return response.status_code, response.json()["error"]["field"]


async def test_three_problems_are_all_on_the_page_and_the_api_names_them_in_turn(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get(PAGE)
    form = supporter_form(csrf_of(page), name="", email="not-an-email", pick=["nobody:email"])
    shown = await client.post(PAGE, data=form)
    assert shown.status_code == 422
    words = text_of(shown)
    for said in (
        "Enter your name",
        "Enter an email address in the right format, like name@example.org",
        "Choose officials from the list on this page",
    ):
        assert said in words
    assert await stored_appeal_ids(client) == []
    # The same appeal through the API: a 422 names one problem at a time, in the order the
    # service checks them, until none is left.
    body: dict[str, Any] = {
        "supporter": {"name": "", "email": "not-an-email"},
        "targets": ["nobody"],
        "channels": ["email"],
    }
    assert error_of(await client.post(API, json=body)) == (422, "supporter.name")
    body["supporter"]["name"] = "Ana Lima"
    assert error_of(await client.post(API, json=body)) == (422, "supporter.email")
    body["supporter"]["email"] = "ana@example.org"
    assert error_of(await client.post(API, json=body)) == (422, "targets")
    assert await stored_appeal_ids(client) == []
    body["targets"] = ["xi-jinping"]
    assert (await client.post(API, json=body)).status_code == 202


@pytest.fixture
def reviewing(campaigns_dir: Path) -> Path:
    path = campaigns_dir / f"{OPEN_CAMPAIGN}.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("goal = 1000\n", "goal = 1000\nreview_own_letters = true\n", 1))
    return campaigns_dir


async def test_an_edited_letter_is_held_for_review_from_the_page_the_embed_and_the_api(
    tmp_path: Path, reviewing: Path
) -> None:
    """The sample letter sent back unchanged goes out; one word added, and it waits for
    the campaign's staff, whichever way it came in (the browser's CRLF line endings and
    the textarea's last line break are not an edit)."""
    async with running_app(web_settings(tmp_path, reviewing)) as (app, client):
        campaign = context_of(app).service.catalog.get(OPEN_CAMPAIGN)
        assert campaign is not None
        sample = campaign.letter["en"].body
        letters = {"Sample": sample, "Edited": sample + " Thank you."}
        for kind, letter in letters.items():
            browser = letter.replace("\n", "\r\n") + "\r\n"
            page = await client.get(PAGE)
            form = supporter_form(
                csrf_of(page),
                name=f"Fiona {kind}",
                email=f"form-{kind}@example.org",
                message=browser,
                pick=["xi-jinping:email"],
            )
            assert (await client.post(PAGE, data=form)).status_code == 303
            framed = await client.get(EMBED)
            form = {**form, "csrf": csrf_of(framed), "name": f"Emma {kind}",
                    "email": f"embed-{kind}@example.org"}  # fmt: skip
            embedded = await client.post(EMBED, data=form, headers={"Origin": "http://testserver"})
            assert embedded.status_code == 303
            body = {
                "supporter": {"name": f"Ada {kind}", "email": f"api-{kind}@example.org"},
                "targets": ["xi-jinping"],
                "channels": ["email"],
                "message": letter,
            }
            assert (await client.post(API, json=body)).status_code == 202
        held = await held_letters(context_of(app).service)
        assert len(await stored_appeal_ids(client)) == 6
    assert sorted(h.supporter_name for h in held) == ["Ada Edited", "Emma Edited", "Fiona Edited"]
