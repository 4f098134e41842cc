"""What operators see of X: posts handed to supporters (unverified, never counted) on the
dashboard's totals, and X's app cap, once reached, said plainly with when it resets."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from dispatcher.channels.x_limits import APP_KEY
from dispatcher.models import utcnow
from tests.conftest import OPEN_CAMPAIGN, write_open_campaign
from tests.web.conftest import context_of, running_app, web_settings
from tests.web.test_operator_safety import sign_in

APPEALS = f"/api/campaigns/{OPEN_CAMPAIGN}/appeals"


async def test_the_dashboard_shows_hand_offs_apart_and_the_app_cap(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    write_open_campaign(campaigns_dir, x_mode="hand_off")
    async with running_app(web_settings(tmp_path, campaigns_dir)) as (app, client):
        posted = await client.post(
            APPEALS,
            json={
                "supporter": {"name": "Ana", "email": "ana@example.org"},
                "channels": ["twitter"],
            },
        )
        assert posted.status_code == 202 and posted.json()["hand_offs"]
        link = posted.json()["hand_offs"][0]["link"]
        opened = await client.get(link)
        assert opened.status_code == 303
        assert opened.headers["location"].startswith("https://x.com/intent/post?text=")
        forged = await client.get(link.replace("token=", "token=0"))
        assert forged.status_code == 404
        await sign_in(client)
        page = await client.get("/operator")
        assert "1 X post handed to its supporter (unverified, never counted; 1 opened)" in page.text
        assert "handed off (unverified)" in page.text
        assert 'id="x-capped"' not in page.text
        report = (await client.get(f"/api/campaigns/{OPEN_CAMPAIGN}/report")).json()
        assert (report["actions"], report["unverified"]["handed_off"]) == (0, 1)

        # X said the app's 24-hour cap is used up: the dashboard says until when.
        resets = utcnow() + dt.timedelta(hours=20)
        store = context_of(app).service.store
        await store.x_limit_seen(APP_KEY, 0, resets, "X's 24-hour cap for the app is reached")
        page = await client.get("/operator")
        assert 'id="x-capped"' in page.text
        assert "new X posts are handed to supporters to send themselves until" in page.text
