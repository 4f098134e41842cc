"""Group commit: appeals handed in together share one transaction, and each is decided
exactly as it would be alone, in the order it arrived (the same receipts and the same
rows as one transaction each, by :func:`insert_appeal`)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any

from sqlalchemy import event, select

from dispatcher.campaigns import CampaignCatalog
from dispatcher.models import AppealReceipt, Channel, NewAppeal, NewDelivery, utcnow
from dispatcher.service.validation import ValidAppeal, check_appeal
from dispatcher.store import Store
from dispatcher.store.intake_sql import insert_appeal
from dispatcher.store.schema import appeals, deliveries, receipts, supporters, suppressed_addresses
from tests.integration.conftest import appeal

SUPPRESSED = "alias-of-someone-who-said-it-was-not-them"


def _valid(catalog: CampaignCatalog, **overrides: Any) -> ValidAppeal:
    checked = check_appeal(
        catalog, appeal(**overrides), channels_on=[Channel.EMAIL, Channel.FAX, Channel.TWITTER]
    )
    assert isinstance(checked, ValidAppeal)
    return checked


def _batch(catalog: CampaignCatalog) -> list[tuple[str, NewAppeal, Sequence[NewDelivery]]]:
    """Every way an appeal can go, several in one batch: new supporters; the same one twice
    (the second a repeat of the first, which is not written yet); one with an earlier
    appeal stored before the batch; a subset overlapping an earlier one of the batch;
    an address its owner disowned; the same idempotency key twice; a confirmation."""
    made = [
        ("a1", _valid(catalog, supporter_email="ana@example.org", channels=["email", "fax"])),
        ("b1", _valid(catalog, supporter_email="bo@example.org", supporter_name="Bo")),
        ("a2", _valid(catalog, supporter_email="ANA@example.org", channels=["email"])),
        ("a3", _valid(catalog, supporter_email="ana@example.org", channels=["email", "twitter"])),
        ("e1", _valid(catalog, supporter_email="early@example.org", channels=["email"])),
        ("s1", _valid(catalog, supporter_email="gone@example.org")),
        ("k1", _valid(catalog, supporter_email="key@example.org", idempotency_key="k-1")),
        ("k2", _valid(catalog, supporter_email="key@example.org", idempotency_key="k-1")),
        ("c1", _valid(catalog, supporter_email="cy@example.org", reply_to=True)),
        ("b2", _valid(catalog, supporter_email="bo@example.org", channels=["fax"])),
    ]
    batch: list[tuple[str, NewAppeal, Sequence[NewDelivery]]] = []
    for appeal_id, valid in made:
        new = valid.appeal
        if appeal_id == "s1":
            new = dataclasses.replace(new, email_alias=SUPPRESSED)
        batch.append((appeal_id, new, valid.deliveries))
    return batch


async def _prepare(store: Store, catalog: CampaignCatalog) -> None:
    """An appeal stored before the batch, and a disowned address."""
    early = _valid(catalog, supporter_email="early@example.org", channels=["email", "fax"])
    await store.create_appeal(early.appeal, early.deliveries, appeal_id="e0")
    async with store.engine.begin() as conn:
        await conn.execute(
            suppressed_addresses.insert().values(alias=SUPPRESSED, created_at=utcnow())
        )


async def _rows(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    d, a, s, r = deliveries, appeals, supporters, receipts
    queries = {
        "deliveries": select(d.c.id, d.c.appeal_id, d.c.target_id, d.c.channel, d.c.status,
                             d.c.supporter_email_lc).order_by(d.c.id),
        "appeals": select(a.c.id, a.c.supporter_id, a.c.idempotency_key).order_by(a.c.id),
        "supporters": select(s.c.id, s.c.email_lc, s.c.name).order_by(s.c.id),
        "receipts": select(r.c.appeal_id, r.c.kind).order_by(r.c.appeal_id, r.c.kind),
    }  # fmt: skip
    async with store.engine.connect() as conn:
        return {name: [tuple(row) for row in await conn.execute(q)] for name, q in queries.items()}


async def test_a_batch_stores_what_one_transaction_each_would_and_commits_once(
    database_url: str, catalog: CampaignCatalog, tmp_path: Any
) -> None:
    batched = await Store.open(database_url)
    try:
        await _prepare(batched, catalog)
        commits: list[int] = []
        event.listen(batched.engine.sync_engine, "commit", lambda _conn: commits.append(1))
        got = await asyncio.gather(
            *(
                batched.create_appeal(new, wanted, appeal_id=appeal_id)
                for appeal_id, new, wanted in _batch(catalog)
            )
        )
        batched_rows = await _rows(batched)
    finally:
        await batched.close()
    assert len(commits) == 1  # ten appeals, one transaction

    alone = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'alone.db'}")
    try:
        await _prepare(alone, catalog)
        expected: list[AppealReceipt] = []
        for appeal_id, new, wanted in _batch(catalog):
            async with alone.engine.begin() as conn:
                expected.append(
                    await insert_appeal(
                        conn, new, wanted, utcnow(), appeal_id=appeal_id, providers={}
                    )
                )
        alone_rows = await _rows(alone)
    finally:
        await alone.close()
    assert list(got) == expected
    assert batched_rows == alone_rows
    by_id = dict(zip([a for a, _, _ in _batch(catalog)], got, strict=True))
    assert by_id["a2"].created == () and by_id["a2"].already_counted  # the first's, in the batch
    assert by_id["s1"].suppressed
    assert by_id["k2"].already_counted == by_id["k1"].created


async def test_two_stores_racing_on_one_supporter_count_each_pair_once(
    database_url: str, catalog: CampaignCatalog
) -> None:
    """Two processes' batches with the same supporters (on PostgreSQL they overlap; the
    loser's batch breaks on the unique index and stores each appeal again alone)."""
    first, second = await Store.open(database_url), await Store.open(database_url)
    try:
        valid = [_valid(catalog, supporter_email=f"s{n}@example.org") for n in range(8)]
        got = await asyncio.gather(
            *(s.create_appeal(v.appeal, v.deliveries) for v in valid for s in (first, second))
        )
        rows = await _rows(first)
    finally:
        await first.close()
        await second.close()
    created = sum(len(r.created) for r in got)
    assert created == sum(len(v.deliveries) for v in valid) == len(rows["deliveries"])
    counted_for = {
        (target, channel, email) for _, _, target, channel, _, email in rows["deliveries"]
    }
    assert len(counted_for) == len(rows["deliveries"])  # no pair twice for one supporter


async def test_hits_counted_together_number_each_hit_as_if_counted_alone(store: Store) -> None:
    await store.count_hit("ip:one", 7)  # an older window, forgotten once the next starts
    commits: list[int] = []
    event.listen(store.engine.sync_engine, "commit", lambda _conn: commits.append(1))
    hits = [("ip:one", 8)] * 5 + [("email:a", 8), ("ip:one", 8), ("email:b", 8), ("email:a", 8)]
    got = await asyncio.gather(*(store.count_hit(key, window) for key, window in hits))
    assert len(commits) == 1
    assert got == [1, 2, 3, 4, 5, 1, 6, 1, 2]
    assert await store.hits("ip:one", 8) == 6 and await store.hits("email:a", 8) == 2
    assert await store.hits("ip:one", 7) == 0  # forgotten
    assert await store.count_hit("ip:one", 8) == 7  # and on, alone


async def test_looks_at_the_x_apps_cap_made_together_share_one_query(store: Store) -> None:
    queries: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "pacing" in statement:
            queries.append(statement)

    event.listen(store.engine.sync_engine, "before_cursor_execute", seen)
    answers = await asyncio.gather(*(store.x_limit_spent("x:app") for _ in range(10)))
    assert answers == [None] * 10 and len(queries) == 1
    await store.x_limit_spent("x:app")  # a look after those is a query of its own
    assert len(queries) == 2
