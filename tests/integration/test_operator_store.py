"""The operator's queries on both databases: the supporter list and its search, actions on
a selection, delivered times for the chart, sessions that know their operator, the audit
log, and the one time format."""

from __future__ import annotations

import datetime as dt
import hashlib

from dispatcher.models import Channel, DeliveryStatus, format_time, utcnow
from dispatcher.service import Service, audit
from dispatcher.service.exports import supporters
from dispatcher.service.log import LogFilter
from dispatcher.service.operator import (
    act_on_selection,
    delivered_recently,
    selection_actionable,
)
from dispatcher.service.sessions import (
    end_session,
    find_session,
    session_holder,
    start_session,
    token_fingerprint,
)
from dispatcher.service.validation import AppealRequest
from tests.conftest import OPEN_CAMPAIGN, submitted


async def appeal(service: Service, name: str, email: str, channels: list[str]) -> str:
    request = AppealRequest(
        campaign_id=OPEN_CAMPAIGN,
        supporter_name=name,
        supporter_email=email,
        channels=channels,
        contact_ok=name.startswith("Ana"),
    )
    return (await submitted(service, request)).appeal_id


async def test_supporters_are_listed_per_campaign_and_found_by_part_of_a_name_or_email(
    service: Service,
) -> None:
    await appeal(service, "Ana Lima", "Ana@Example.org", ["email"])
    await appeal(service, "Ana Lima", "ana@example.org", ["fax"])
    await appeal(service, "Li Wei", "li_wei@example.net", ["email"])
    rows = await supporters(service, campaign=OPEN_CAMPAIGN)
    assert [(r.name, r.appeals, r.contact_ok) for r in rows] == [
        ("Li Wei", 1, False),
        ("Ana Lima", 2, True),
    ]
    assert rows[0].last_appeal_at.tzinfo is not None
    assert [r.name for r in await supporters(service, search="ANA@")] == ["Ana Lima"]
    # _ and % are letters here, not patterns.
    assert [r.name for r in await supporters(service, search="i_w")] == ["Li Wei"]
    assert await supporters(service, search="a%") == []


async def test_an_action_on_a_selection_changes_only_what_it_applies_to(service: Service) -> None:
    await appeal(service, "Ana Lima", "ana@example.org", ["email", "fax"])
    fax = LogFilter.parse(channel="fax")
    assert await selection_actionable(service, fax) == {"retry": 2, "cancel": 2}
    assert await act_on_selection(service, fax, "cancel", by="ana") == 2
    # Cancelled ones cannot be cancelled again; the email deliveries were not selected.
    assert await act_on_selection(service, fax, "cancel", by="ana") == 0
    log = await service.store.list_deliveries()
    assert {(e.channel, e.status) for e in log} == {
        (Channel.FAX, DeliveryStatus.CANCELLED),
        (Channel.EMAIL, DeliveryStatus.QUEUED),
    }
    assert all(e.last_error is not None for e in log if e.channel is Channel.FAX)
    [last, first] = (await audit.recent(service))[:2]
    assert (last.operator, last.action, last.subject) == (
        "ana",
        "cancel",
        "0 deliveries (channel=fax)",
    )
    assert first.subject == "2 deliveries (channel=fax)"


async def test_delivered_times_ignore_the_status_filter(service: Service) -> None:
    await appeal(service, "Ana Lima", "ana@example.org", ["email"])
    [one, _] = await service.store.list_deliveries()
    await service.store.change_status(
        one.id, allowed_from=frozenset({DeliveryStatus.QUEUED}), to=DeliveryStatus.DELIVERED
    )
    found = await delivered_recently(service, LogFilter.parse(status="failed"))
    assert [channel for channel, _ in found] == [Channel.EMAIL]
    assert utcnow() - found[0][1] < dt.timedelta(minutes=1)


KEY = b"k" * 32
TOKENS = {"li": "li-token-abcdefghijkl", "ana": "ana-token-0123456789"}


async def test_a_session_knows_its_operator_until_it_ends(service: Service) -> None:
    li = token_fingerprint(KEY, TOKENS["li"])
    session = await start_session(service, "li", fingerprint=li, lifetime=dt.timedelta(minutes=5))
    assert await session_holder(service, session, TOKENS, KEY) == "li"
    await end_session(service, session)
    assert await find_session(service, session) is None
    assert await session_holder(service, session, TOKENS, KEY) is None
    ana = token_fingerprint(KEY, TOKENS["ana"])
    short = await start_session(
        service, "ana", fingerprint=ana, lifetime=dt.timedelta(microseconds=1)
    )
    assert await session_holder(service, short, TOKENS, KEY) is None


async def test_a_session_ends_when_its_operators_token_changes(service: Service) -> None:
    li = token_fingerprint(KEY, TOKENS["li"])
    session = await start_session(service, "li", fingerprint=li, lifetime=dt.timedelta(minutes=5))
    # What is stored is a keyed fingerprint: neither the token nor its plain hash.
    stored = await find_session(service, session)
    assert stored is not None and stored.token_fingerprint == li
    assert TOKENS["li"] not in li and hashlib.sha256(TOKENS["li"].encode()).hexdigest() != li
    changed = {**TOKENS, "li": "li-new-token-mnopqrstu"}
    assert await session_holder(service, session, changed, KEY) is None
    assert await session_holder(service, session, {"ana": TOKENS["ana"]}, KEY) is None
    # The same token again (another process with the same secret key) still holds.
    assert await session_holder(service, session, dict(TOKENS), KEY) == "li"


def test_one_time_format() -> None:
    moscow = dt.timezone(dt.timedelta(hours=3))
    when = dt.datetime(2026, 12, 2, 21, 20, 44, 999, tzinfo=moscow)
    assert format_time(when) == "2026-12-02 18:20:44 UTC"
