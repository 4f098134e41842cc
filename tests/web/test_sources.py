"""Where actions come from: ?source= and the UTM tags on the campaign page (and in the
API's body) are kept with each appeal, shown in the supporter export and broken down in
the report's ``sources`` and on the dashboard; a bad tag in the API is a 422 naming it,
and one in a link is dropped (the supporter did not type it)."""

from __future__ import annotations

import csv
import io

import httpx

from tests.conftest import OPEN_CAMPAIGN
from tests.web.conftest import OPERATOR_TOKEN
from tests.web.test_operator_tools import sign_in
from tests.web.test_pages import PAGE, csrf_of, supporter_form

BEARER = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


async def test_sources_are_kept_reported_exported_and_shown(client: httpx.AsyncClient) -> None:
    page = await client.get(
        PAGE + "?source=Newsletter&utm_source=mail&utm_medium=email&utm_campaign=dec-7"
    )
    assert 'name="source" value="newsletter"' in page.text
    form = supporter_form(csrf_of(page), source="Newsletter", utm_source="mail",
                          utm_medium="email", utm_campaign="dec-7")  # fmt: skip
    sent = await client.post(PAGE, data=form)
    assert sent.status_code == 303, sent.text[:300]
    odd = await client.get(PAGE + "?source=<script>")  # from a link: dropped, never shown
    assert "&lt;script&gt;" not in odd.text.split('name="form_id"')[1].split("</form>")[0][:400]
    api = await client.post(
        f"/api/campaigns/{OPEN_CAMPAIGN}/appeals",
        json={"supporter": {"name": "Bo Li", "email": "bo@example.org"},
              "source": "partner-site", "utm": {"campaign": "dec-7"},
              "targets": ["xi-jinping"], "channels": ["email"]},
    )  # fmt: skip
    assert api.status_code == 202, api.text
    bad = await client.post(
        f"/api/campaigns/{OPEN_CAMPAIGN}/appeals",
        json={"supporter": {"name": "Cy Wu", "email": "cy@example.org"},
              "utm": {"medium": "e mail"}, "targets": ["xi-jinping"], "channels": ["email"]},
    )  # fmt: skip
    report = (await client.get(f"/api/campaigns/{OPEN_CAMPAIGN}/report")).json()
    exported = await client.get("/api/supporters?format=csv", headers=BEARER)
    await sign_in(client, OPERATOR_TOKEN)
    dashboard = await client.get("/operator")
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "utm.medium"
    assert "'e mail' is not accepted" in bad.json()["error"]["message"]
    tags = {(s["source"], s["utm_source"], s["utm_medium"], s["utm_campaign"]): s["appeals"]
            for s in report["sources"]}  # fmt: skip
    assert tags == {
        ("newsletter", "mail", "email", "dec-7"): 1,
        ("partner-site", None, None, "dec-7"): 1,
    }
    rows = {r["name"]: r for r in csv.DictReader(io.StringIO(exported.text))}
    assert rows["Ana Lima"]["source"] == "newsletter" and rows["Ana Lima"]["utm_medium"] == "email"
    assert rows["Bo Li"]["source"] == "partner-site" and rows["Bo Li"]["utm_source"] == ""
    assert "newsletter · mail · email · dec-7" in dashboard.text
    assert "partner-site · dec-7" in dashboard.text


async def test_the_chinese_dashboard_names_statuses_and_channels_in_chinese(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get(PAGE)
    await client.post(PAGE, data=supporter_form(csrf_of(page)))
    await sign_in(client, OPERATOR_TOKEN)
    dashboard = await client.get("/operator?lang=zh")
    icon = await client.get("/favicon.ico")
    assert '<td class="status state-queued">排队中' in dashboard.text
    assert "<td>电子邮件</td>" in dashboard.text and ">queued<" not in dashboard.text
    assert '<option value="queued" >排队中</option>' in dashboard.text
    assert icon.status_code == 301 and icon.headers["location"] == "/static/favicon.svg"
