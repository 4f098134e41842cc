"""The demo's supporters and what each of them does on the campaign page."""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import parse_qsl, urlsplit

import httpx
from rich.console import Console

from dispatcher.demo.prepare import DEMO_CAMPAIGN
from dispatcher.service import Service
from dispatcher.service.appeal_request import AppealRequest, Rejected
from dispatcher.service.intake import submit_appeal
from dispatcher.service.x_accounts import finish_connection, start_connection

CHINESE_LETTER = (
    "我对新疆有六十多名主要来自穆斯林少数民族的人被关押在拘留营或未经公正审判被判刑入狱深感不安。\n\n"
    "我敦促您立即释放所有被关押在新疆拘留营和监狱中的人；在他们获释之前，"
    "公开他们的下落，允许他们与家人和自行选择的律师联系，并确保他们不受酷刑和其他虐待。"
)
CHINESE_TWEET = "请立即释放所有在新疆被任意拘押的人，并告知家属他们的下落。#新疆"


@dataclass(frozen=True)
class DemoAppeal:
    label: str
    request: AppealRequest
    # The supporter connects this (sandbox) X account on the page first: their posts go
    # out from it. Without one, their posts are handed to them (counted as unverified).
    x_account: str | None = None


def demo_appeals() -> list[DemoAppeal]:
    def req(**kwargs: object) -> AppealRequest:
        return AppealRequest(campaign_id=DEMO_CAMPAIGN, **kwargs)  # type: ignore[arg-type]

    return [
        DemoAppeal(
            "sample letter, every target and channel, posts from her own X account",
            req(
                supporter_name="Ana Lima",
                supporter_email="ana.lima@example.org",
                supporter_country="Brazil",
            ),
            x_account="ana_lima",
        ),
        DemoAppeal(
            "own letter and tweet in Chinese to the ambassador",
            req(
                supporter_name="李华",
                supporter_email="li.hua@example.net",
                targets=["cui-tiankai"],
                message=CHINESE_LETTER,
                tweet=CHINESE_TWEET,
                language="zh",
            ),
        ),
        DemoAppeal(
            "own letter, email to the president only",
            req(
                supporter_name="Kwame Mensah",
                supporter_email="kwame@example.com",
                supporter_country="Ghana",
                targets=["xi-jinping"],
                channels=["email"],
                message="I ask you to release every person arbitrarily detained in Xinjiang "
                "and to let their families know where they are.",
            ),
        ),
        DemoAppeal(
            "email and X to both officials, no X account connected (posts handed to her)",
            req(
                supporter_name="Sofia Rossi",
                supporter_email="sofia.rossi@example.it",
                channels=["email", "twitter"],
            ),
        ),
        DemoAppeal(
            "the same supporter again (different case in the email)",
            req(
                supporter_name="Ana Lima",
                supporter_email="Ana.Lima@Example.org",
                supporter_country="Brazil",
            ),
        ),
    ]


async def submit_appeals(service: Service, console: Console) -> int:
    """The demo supporters act, one step each; returns how many deliveries were created."""
    total = 0
    for item in demo_appeals():
        request = item.request
        if item.x_account is not None:
            connection = await connect_sandbox_account(service, item.x_account)
            request = replace(request, x_connection=connection)
            console.print(f"  {request.supporter_name} connects the X account @{item.x_account}")
        result = await submit_appeal(service, request)
        if isinstance(result, Rejected):
            console.print(f"  [red]refused[/] {item.label}: {result.first.message}")
            continue
        receipt = result.receipt
        assert receipt is not None  # the demo is an operator's tool (its requests' via)
        who = item.request.supporter_name
        if receipt.is_repeat:
            console.print(
                f"  {who}: {item.label} → [yellow]already counted[/] "
                "(nothing new stored; the address is told by email)"
            )
        else:
            total += len(receipt.created)
            chans = ", ".join(f"{d.target_id}/{d.channel}" for d in receipt.created)
            console.print(f"  {who}: {item.label} → appeal {receipt.appeal_id}: {chans}")
    return total


async def connect_sandbox_account(service: Service, username: str) -> str:
    """What a supporter does on the campaign page: connect their X account, here on the
    sandbox X (its consent page, answered "Authorize app"). Returns the connection's id."""
    connection_id, consent_page = await start_connection(service, DEMO_CAMPAIGN)
    url = urlsplit(consent_page)
    form = {**dict(parse_qsl(url.query)), "username": username, "decision": "allow"}
    async with httpx.AsyncClient() as http:
        answer = await http.post(consent_page.partition("?")[0], data=form)
    back = dict(parse_qsl(urlsplit(answer.headers.get("location", "")).query))
    await finish_connection(
        service, state=back.get("state", ""), code=back.get("code"), error=back.get("error")
    )
    return connection_id
