"""Privacy and consent on the pages and in the API: the notice, the two choices (a receipt,
on unless unticked; future contact, off unless ticked), and deleting one's data through
the signed link, with the counts unchanged."""

from __future__ import annotations

import re

import httpx

from tests.conftest import OPEN_CAMPAIGN
from tests.web.conftest import OPERATOR_TOKEN, delivery_ids, status_path
from tests.web.test_pages import PAGE, csrf_of, supporter_form

APPEALS = f"/api/campaigns/{OPEN_CAMPAIGN}/appeals"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


async def settle(client: httpx.AsyncClient, appeal_id: str) -> None:
    """Cancel the appeal's deliveries (as an operator would): nothing left pending."""
    for delivery_id in await delivery_ids(client, appeal_id):
        cancelled = await client.post(f"/api/deliveries/{delivery_id}/cancel", headers=OPERATOR)
        assert cancelled.status_code == 200


async def test_the_page_says_how_data_is_used_and_asks_before_future_contact(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get(PAGE)
    assert "How your information is used" in page.text
    assert "published publicly from Amnesty International's account" in page.text
    assert re.search(r'name="receipt" value="yes" checked', page.text)
    assert re.search(r'name="contact_ok" value="yes" >', page.text)  # off by default


async def test_deleting_through_the_signed_link_keeps_the_counts(client: httpx.AsyncClient) -> None:
    body = {"supporter": {"name": "Ana Lima", "email": "ana@example.org"}, "channels": ["email"]}
    appeal_id = (await client.post(APPEALS, json=body)).json()["appeal_id"]
    path = status_path(client, appeal_id, "forget")  # as the supporter's emails carry it
    token = path.rpartition("=")[2]
    pending = await client.delete(f"/api/appeals/{appeal_id}", params={"token": token})
    assert pending.status_code == 409 and "still being sent" in pending.json()["error"]["message"]
    await settle(client, appeal_id)
    before = (await client.get(f"/api/campaigns/{OPEN_CAMPAIGN}/report")).json()
    forged = await client.delete(f"/api/appeals/{appeal_id}", params={"token": "0" * 32})
    assert forged.status_code == 404
    odd = await client.delete(f"/api/appeals/{appeal_id}", params={"token": "ü😀\x00"})
    assert odd.status_code in (404, 422)  # not a 500 (schemathesis found it)
    other = await client.get(f"/a/{appeal_id}/forget", params={"token": "0" * 32})
    assert other.status_code == 404 and "<h1>Page not found</h1>" in other.text
    confirm = await client.get(path)
    assert confirm.status_code == 200 and "It cannot be undone." in confirm.text
    done = await client.post(
        f"/a/{appeal_id}/forget", data={"csrf": csrf_of(confirm), "token": token}
    )
    assert done.status_code == 200 and "Your data has been deleted" in done.text
    after = (await client.get(f"/api/campaigns/{OPEN_CAMPAIGN}/report")).json()
    assert after == before
    again = await client.delete(f"/api/appeals/{appeal_id}", params={"token": token})
    assert again.status_code == 204  # nothing left to delete: still done
    # The same supporter sending again is still counted once: the address's alias stays.
    fresh = await client.post(APPEALS, json=body)
    assert fresh.status_code == 202
    assert (await client.get(f"/api/campaigns/{OPEN_CAMPAIGN}/report")).json() == after


async def test_the_form_keeps_the_choices_about_receipt_and_contact(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get(PAGE)
    form = supporter_form(csrf_of(page), name="", contact_ok="yes")
    form.pop("receipt", None)
    again = await client.post(PAGE, data=form)
    assert again.status_code == 422
    assert re.search(r'name="receipt" value="yes" >', again.text)  # unticked stays unticked
    assert re.search(r'name="contact_ok" value="yes" checked', again.text)
