"""Privacy and consent on the pages and in the API: the notice, the two choices (a receipt,
on unless unticked; future contact, off unless ticked), and deleting one's data through
the signed link, with the counts unchanged."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.conftest import OPEN_CAMPAIGN
from tests.web.conftest import OPERATOR_TOKEN, MakeClient, delivery_ids, status_path
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


async def test_this_wasnt_me_stops_what_has_not_gone_out_and_nothing_is_taken_again(
    client: httpx.AsyncClient,
) -> None:
    """Someone sent an appeal with a third party's address: the link in the email to that
    address stops it, deletes what was typed, and the address is never used again."""
    body = {"supporter": {"name": "PayPal Security", "email": "victim@example.net"}}
    appeal_id = (await client.post(APPEALS, json=body)).json()["appeal_id"]
    before = (await client.get(f"/api/campaigns/{OPEN_CAMPAIGN}/report")).json()
    path = status_path(client, appeal_id, "not-me")
    forged = await client.get(f"/a/{appeal_id}/not-me", params={"token": "0" * 32})
    assert forged.status_code == 404
    page = await client.get(path)
    assert page.status_code == 200 and "It wasn't me: stop it" in page.text
    token = path.rpartition("=")[2]
    done = await client.post(f"/a/{appeal_id}/not-me", data={"csrf": csrf_of(page), "token": token})
    assert done.status_code == 200 and "Thank you for telling us" in done.text
    status = await client.get("/api" + status_path(client, appeal_id).replace("/a/", "/appeals/"))
    assert {d["status"] for d in status.json()["deliveries"]} == {"cancelled"}
    supporters = await client.get("/api/supporters?format=json", headers=OPERATOR)
    assert "PayPal" not in supporters.text and "victim@" not in supporters.text
    # The address again, in any case: answered as ever, and nothing is stored or sent.
    again = await client.post(
        APPEALS, json={"supporter": {"name": "Someone", "email": "Victim@Example.net"}}
    )
    assert again.status_code == 202 and again.json()["appeal_id"] != appeal_id
    after = (await client.get(f"/api/campaigns/{OPEN_CAMPAIGN}/report")).json()
    assert after["rehearsal"]["appeals"] == before["rehearsal"]["appeals"] == 1
    assert after["rehearsal"]["channels"]["email"]["pending"] == 0


async def test_the_campaign_decides_whether_officials_may_ever_get_the_address(
    make_client: MakeClient, campaigns_dir: Path
) -> None:
    path = campaigns_dir / f"{OPEN_CAMPAIGN}.toml"
    text = path.read_text(encoding="utf-8")
    for n, (setting, reply_to, waits) in enumerate(
        (
            ("never", True, False),
            ("always", False, True),
            ("ask", False, False),
            ("ask", True, True),
        )
    ):
        path.write_text(
            re.sub(r'^reply_to_supporter = ".*"$', f'reply_to_supporter = "{setting}"', text,
                   flags=re.M),
            encoding="utf-8",
        )  # fmt: skip
        async with make_client() as client:
            page = await client.get(PAGE)
            has_box = 'name="reply_to"' in page.text
            supporter = {"name": "Ana", "email": f"ana{n}@example.org"}  # one database
            sent = await client.post(
                APPEALS, json={"supporter": supporter, "channels": ["email"], "reply_to": reply_to}
            )
            appeal_id = sent.json()["appeal_id"]
            status = await client.get(
                "/api" + status_path(client, appeal_id).replace("/a/", "/appeals/")
            )
        assert has_box is (setting == "ask"), setting
        assert sent.json()["confirm_by_email"] is waits, setting
        statuses = {d["status"] for d in status.json()["deliveries"]}
        assert statuses == ({"awaiting_supporter"} if waits else {"queued"}), setting
