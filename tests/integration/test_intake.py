"""The one intake path, on a real store: the limits first, then every rule, then the
review decision and storing; the answer tells an operator's tool what the store did, and
a page or the API only what was asked for."""

from __future__ import annotations

import dataclasses

from dispatcher.service import Service
from dispatcher.service.appeal_request import Rejected, Via
from dispatcher.service.intake import Accepted, submit_appeal
from dispatcher.service.limits import IntakeLimits, Limit
from dispatcher.service.reporting import campaign_report
from tests.conftest import OPEN_CAMPAIGN
from tests.integration.conftest import appeal

ONE_A_MINUTE = IntakeLimits(per_address=Limit(1, 60), per_email=Limit(0, 3600))


async def appeals_stored(service: Service) -> int:
    report = await campaign_report(service, OPEN_CAMPAIGN)
    return report.appeals + report.rehearsal.appeals


async def test_the_limits_count_an_appeal_before_any_rule_and_refuse_with_the_wait(
    service: Service,
) -> None:
    bad = appeal(supporter_email="not-an-email", via=Via.API, client="203.0.113.9")
    refused = await submit_appeal(service, bad, limits=ONE_A_MINUTE)
    assert isinstance(refused, Rejected) and refused.retry_after is None
    assert [p.field for p in refused.problems] == ["supporter.email"]
    good = appeal(channels=["email"], via=Via.API, client="203.0.113.9")
    limited = await submit_appeal(service, good, limits=ONE_A_MINUTE)
    assert isinstance(limited, Rejected) and limited.retry_after is not None
    [problem] = limited.problems
    assert (problem.field, problem.reason) == (None, "rate_limited")
    assert (
        problem.message
        == f"too many appeals from this address; try again in {limited.retry_after} s"
    )
    other = await submit_appeal(
        service, appeal(channels=["email"], via=Via.API, client="203.0.113.10"), limits=ONE_A_MINUTE
    )
    assert isinstance(other, Accepted)  # another client
    cli = await submit_appeal(service, appeal(channels=["fax"]), limits=ONE_A_MINUTE)
    assert isinstance(cli, Accepted)  # an operator's command has no client address
    assert await appeals_stored(service) == 2  # the two accepted; nothing of the refused


async def test_the_per_email_limit_counts_the_address_however_it_is_typed(
    service: Service,
) -> None:
    limits = IntakeLimits(per_email=Limit(1, 3600))
    first = await submit_appeal(service, appeal(channels=["email"]), limits=limits)
    again = await submit_appeal(
        service, appeal(channels=["fax"], supporter_email=" ANA@example.org"), limits=limits
    )
    assert isinstance(first, Accepted) and isinstance(again, Rejected)
    assert "too many appeals from this email address" in again.first.message


async def test_only_an_operators_tool_is_told_what_the_store_did(service: Service) -> None:
    request = appeal(channels=["email"], via=Via.API)
    first = await submit_appeal(service, request)
    repeat = await submit_appeal(service, request)
    assert isinstance(first, Accepted) and isinstance(repeat, Accepted)
    # The same words, whoever signed, and an id of their own.
    assert dataclasses.replace(repeat, appeal_id=first.appeal_id) == first
    assert first.receipt is None and repeat.appeal_id != first.appeal_id
    told = await submit_appeal(service, appeal(channels=["email"], via=Via.CLI))
    assert isinstance(told, Accepted) and told.receipt is not None
    assert told.receipt.is_repeat and [d.target_id for d in told.receipt.already_counted] == [
        "xi-jinping",
        "cui-tiankai",
    ]
