"""Issue 15, supporters' safety: what a name may carry, how long a fax may be, inputs that
used to be 500s on one database or the other, limits that count the client and not its
spelling, exports a spreadsheet cannot run, and what pages let caches and strangers keep.
Every case goes over HTTP to the real app; where the database matters, on both."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import httpx
import pytest

from dispatcher.channels.phaxio import phaxio_signature
from dispatcher.settings import IntakeSettings
from dispatcher.web.app import create_app
from tests.conftest import OPEN_CAMPAIGN
from tests.web.conftest import (
    CALLBACK_TOKEN,
    CALLBACK_URL,
    OPERATOR_TOKEN,
    MakeClient,
    live_server,
    web_settings,
)
from tests.web.test_pages import PAGE, csrf_of, supporter_form

OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
APPEALS = f"/api/campaigns/{OPEN_CAMPAIGN}/appeals"


def appeal(
    name: str = "Ana Lima", email: str = "ana@example.org", **more: object
) -> dict[str, object]:
    return {"supporter": {"name": name, "email": email}, **more}


# ---------------------------------------------------------------- names and posts


@pytest.mark.parametrize(
    "name",
    [
        "Ana @elonmusk",
        "Ana ＠elonmusk",
        "Ana #tag",
        "Ana $TSLA",
        "=?utf-8?q?Ana=0D=0ABcc:victim@example.org?=",
        "\u3164",
        *(
            f"Ana{chr(cp)}Lima"
            for cp in (
                0x00AD, 0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180B, 0x2061, 0x2064,
                0x206A, 0x206F, 0x2800, 0x3164, 0xFFA0, 0xFE00, 0xFE0F, 0xFFF9, 0xFFFB,
                0x1D173, 0xE0000, 0xE0041, 0xE007F, 0xE0100, 0x1BCA0,
            )
        ),
    ],
)  # fmt: skip
async def test_a_name_that_would_mention_tag_hide_or_encode_is_refused(
    name: str, client: httpx.AsyncClient
) -> None:
    response = await client.post(APPEALS, json=appeal(name))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == "supporter.name"
    invisible = [ch for ch in name if not ch.isascii() and ch not in "＠"]
    if len(name) == 9 and invisible:  # Ana?Lima: the character is named
        assert f"U+{ord(invisible[0]):04X}" in error["message"]
    report = await client.get(f"/api/campaigns/{OPEN_CAMPAIGN}/report")
    assert report.json()["appeals"] == 0


@pytest.mark.parametrize("post", ["RT@elonmusk free them", "Free them rT@elonmusk"])
async def test_an_own_post_refuses_a_retweet_style_mention(
    post: str, client: httpx.AsyncClient
) -> None:
    response = await client.post(APPEALS, json=appeal(tweet=post))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "tweet"
    assert "@elonmusk" in response.json()["error"]["message"]


async def test_the_form_says_a_refused_name_in_plain_words_in_both_languages(
    client: httpx.AsyncClient,
) -> None:
    for lang, words in (("en", "without @, # or $"), ("zh", "不含 @、# 或 $")):
        page = await client.get(f"{PAGE}?lang={lang}")
        form = supporter_form(csrf_of(page), name="Ana @elonmusk")
        response = await client.post(PAGE, data=form)
        assert response.status_code == 422, response.text[:300]
        assert words in response.text


@pytest.fixture
def reviewing(campaigns_dir: Path) -> Path:
    path = campaigns_dir / f"{OPEN_CAMPAIGN}.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("goal = 1000\n", "goal = 1000\nreview_own_letters = true\n", 1))
    return path


@pytest.mark.parametrize(
    ("name", "country", "held"),
    [
        ("Ana Lima", "Brazil", False),
        ("José O'Neil-Smith", "Côte d'Ivoire", False),
        ("Ana Lima", "Brazil 2 visit free-them dot org", True),
        ("Ana (free them all now)", None, True),
        ("Ana Lima 2027", None, True),
    ],
)
async def test_on_a_review_campaign_a_name_or_country_of_own_words_is_held(
    name: str, country: str | None, held: bool, reviewing: Path, client: httpx.AsyncClient
) -> None:
    supporter = {"name": name, "email": "ana@example.org", "country": country}
    accepted = await client.post(APPEALS, json={"supporter": supporter})
    assert accepted.status_code == 202, accepted.text
    review = await client.get("/api/review", headers=OPERATOR)
    waiting = {letter["appeal_id"] for letter in review.json()["letters"]}
    assert (accepted.json()["appeal_id"] in waiting) is held


# ---------------------------------------------------------------- the fax page cap


async def test_a_letter_padded_to_many_fax_pages_is_refused_with_the_count(
    client: httpx.AsyncClient,
) -> None:
    padded = "x\n" * 4999 + "x"
    response = await client.post(APPEALS, json=appeal(message=padded, channels=["fax"]))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == "message" and "at most 5 pages" in error["message"]
    # Without fax the same letter is accepted: the cap is the fax's.
    email = await client.post(APPEALS, json=appeal(message=padded, channels=["email"]))
    assert email.status_code == 202, email.text


async def test_the_fax_cap_counts_pages_as_the_fax_renderer_lays_them_out(
    client: httpx.AsyncClient,
) -> None:
    """Long lines wrap: a letter of few line breaks can still be over the cap, and one a
    little under it passes (the count is the renderer's, not a guess from line breaks)."""
    paragraph = "Release those detained for their peaceful activism. " * 13  # ~8 lines
    # 186 line breaks alone make 5 pages at most; the paragraphs' wrapped lines make 6.
    over = "\n".join(["Free"] * 180 + [paragraph] * 6)
    under = "\n".join(["Free"] * 120 + [paragraph] * 2)  # about 4 pages
    assert len(over) < 10_000 and over.count("\n") < 5 * 46
    refused = await client.post(APPEALS, json=appeal(message=over, channels=["fax"]))
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["field"] == "message"
    accepted = await client.post(APPEALS, json=appeal(message=under, channels=["fax"]))
    assert accepted.status_code == 202, accepted.text


async def test_the_campaign_page_states_the_fax_page_cap(client: httpx.AsyncClient) -> None:
    page = await client.get(f"/c/{OPEN_CAMPAIGN}")
    assert "at most 5 pages" in page.text


# ---------------------------------------------------------------- NUL, ranges, webhooks


NUL_GETS = [
    ("/api/appeals/%00", "appeal_id"),
    ("/a/%00", None),
    ("/api/supporters?search=%00", "search"),
    ("/api/deliveries?target=%00", "target"),
    ("/api/deliveries?campaign=%00", "campaign"),
    ("/api/deliveries/export?campaign=%00", "campaign"),
    ("/operator?target=%00", None),
    ("/api/deliveries?cursor=2147483648", "cursor"),
    ("/api/deliveries?cursor=99999999999999999999999", "cursor"),
]


@pytest.mark.parametrize(("path", "field"), NUL_GETS)
async def test_nul_and_out_of_range_parameters_are_a_422_on_either_database(
    path: str, field: str | None, database_url: str, make_client: MakeClient
) -> None:
    async with make_client(database_url=database_url) as client:
        response = await client.get(path, headers=OPERATOR)
    assert response.status_code == 422, response.text[:300]
    if field is not None:
        assert response.json()["error"]["field"] == field


@pytest.mark.parametrize("decision", ["approve", "reject"])
async def test_a_nul_appeal_id_in_a_review_decision_is_a_422_on_either_database(
    decision: str, database_url: str, make_client: MakeClient
) -> None:
    async with make_client(database_url=database_url) as client:
        response = await client.post(f"/api/appeals/%00/{decision}", headers=OPERATOR)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "appeal_id"


def signed_callback(fax: str) -> tuple[dict[str, str], dict[str, str]]:
    fields = {"fax": fax}
    signature = phaxio_signature(CALLBACK_TOKEN, CALLBACK_URL, fields, {})
    return fields, {"X-Phaxio-Signature": signature}


@pytest.mark.parametrize(
    ("fax", "field"),
    [
        ("[" * 100_000 + "]" * 100_000, "fax"),
        (json.dumps({"id": 1, "status": "failure", "error_code": {"a": 1}}), "fax.error_code"),
        (
            json.dumps({"id": 1, "status": "failure", "error_message": ["busy"]}),
            "fax.error_message",
        ),
        (json.dumps({"id": "\u0000", "status": "success"}), "fax.id"),
    ],
)
async def test_a_signed_callback_with_a_malformed_fax_is_a_422_on_either_database(
    fax: str, field: str, database_url: str, make_client: MakeClient
) -> None:
    fields, headers = signed_callback(fax)
    async with make_client(database_url=database_url) as client:
        response = await client.post("/webhooks/fax", data=fields, headers=headers)
    assert response.status_code == 422, response.text[:300]
    assert response.json()["error"]["field"] == field


# ---------------------------------------------------------------- limits


async def test_the_per_address_limit_counts_an_ipv6_client_by_its_64(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    settings = web_settings(
        tmp_path,
        campaigns_dir,
        intake=IntakeSettings(per_ip_per_minute=1, per_email_per_hour=0),
        trusted_proxies=["127.0.0.1"],
    )
    app = create_app(settings, run_worker=False)
    codes = []
    async with live_server(app, settings) as base_url, httpx.AsyncClient(base_url=base_url) as http:
        for n, address in enumerate(["2001:db8:1:2::1", "2001:db8:1:2::ffff", "2001:db8:1:3::1"]):
            body = appeal(email=f"a{n}@example.org")
            response = await http.post(APPEALS, json=body, headers={"X-Forwarded-For": address})
            codes.append(response.status_code)
    assert codes == [202, 429, 202]  # the same /64 is one client; the next /64 another


async def test_the_per_email_limit_counts_the_address_as_intake_normalises_it(
    make_client: MakeClient,
) -> None:
    intake = IntakeSettings(per_ip_per_minute=0, per_email_per_hour=1)
    async with make_client(intake=intake) as client:
        first = await client.post(APPEALS, json=appeal(email="same@example.org"))
        wide = await client.post(APPEALS, json=appeal(email="ｓame@example.org"))
        upper = await client.post(APPEALS, json=appeal(email="SAME@example.org"))
    assert (first.status_code, wide.status_code, upper.status_code) == (202, 429, 429)


# ---------------------------------------------------------------- exports, caches, health


async def test_a_formula_after_a_semicolon_in_a_supporter_cell_is_neutralised(
    database_url: str, make_client: MakeClient
) -> None:
    async with make_client(database_url=database_url) as client:
        sent = await client.post(APPEALS, json=appeal(name="Ana;=2+3;x,+SUM(1)"))
        assert sent.status_code == 202, sent.text
        export = await client.get("/api/supporters?format=csv", headers=OPERATOR)
    assert export.headers["cache-control"] == "no-store"
    rows = list(csv.reader(io.StringIO(export.text)))
    name = rows[1][rows[0].index("name")]
    assert name == "Ana;'=2+3;x,'+SUM(1)"
    for separator in (";", ",", "\t", "|"):
        for cell in name.split(separator):
            assert cell.lstrip()[:1] not in ("=", "+", "-", "@"), (separator, cell)


@pytest.mark.parametrize(
    "path", [f"/c/{OPEN_CAMPAIGN}", "/operator", "/operator/supporters", "/api/deliveries/export"]
)
async def test_supporter_and_operator_pages_and_exports_are_not_stored_by_caches(
    path: str, client: httpx.AsyncClient
) -> None:
    response = await client.get(path, headers=OPERATOR)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"


async def test_healthz_tells_the_public_only_its_status_and_operators_the_details(
    client: httpx.AsyncClient,
) -> None:
    public = await client.get("/healthz")
    operator = await client.get("/healthz", headers=OPERATOR)
    assert public.json() == {"status": "ok"}
    assert operator.json()["database"] == "ok" and "worker" in operator.json()


async def test_the_language_link_of_a_page_not_found_stays_on_the_site(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    app = create_app(web_settings(tmp_path, campaigns_dir), run_worker=False)
    async with live_server(app) as base_url, httpx.AsyncClient(base_url=base_url) as http:
        page = await http.get(f"{base_url}//evil.example/login", headers={"Accept": "text/html"})
    assert page.status_code == 404
    links = [part.split('"')[0] for part in page.text.split('href="')[1:]]
    assert links and all(not link.startswith("//") and "evil.example" not in link for link in links)
