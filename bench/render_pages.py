"""Benchmark: milliseconds of CPU a fax page takes to render, for a Latin and a Chinese letter.

The letters are UA 61.21's English and Chinese ones (config/campaigns/ua-61-21.toml),
each rendered as the worker renders a fax (cover, subject, salutation, letter, signature)
to Beijing's A4, over and over until at least ``--pages`` pages are made. The first
render of each letter is reported apart: it includes loading the font, once per process.

    .venv/bin/python -m bench.render_pages --pages 200
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import time
import tomllib
from pathlib import Path
from typing import Any

import pypdf

from dispatcher.models import Channel, ClaimedDelivery, DeliveryStatus
from dispatcher.render.fax import render_fax_pdf

ROOT = Path(__file__).resolve().parent.parent
CAMPAIGN = ROOT / "config/campaigns/ua-61-21.toml"


def delivery(language: str) -> ClaimedDelivery:
    """The campaign's letter in ``language`` as a fax to Xi Jinping (A4)."""
    campaign: dict[str, Any] = tomllib.loads(CAMPAIGN.read_text("utf-8"))
    letter = campaign["letter"][language]
    target = campaign["targets"][0]
    names = target.get("text", {}).get(language, {})
    return ClaimedDelivery(
        id=1,
        appeal_id="bench",
        campaign_id=campaign["id"],
        target_id=target["id"],
        target_name=names.get("name", target["name"]),
        salutation=target.get("salutations", {}).get(language, target["salutation"]),
        channel=Channel.FAX,
        address="+861062381025",
        status=DeliveryStatus.SENDING,
        attempts=1,
        provider_ref=None,
        expires_at=dt.datetime.now(dt.UTC),
        supporter_name="Zoë Ångström" if language == "en" else "李华",
        supporter_email="supporter@example.org",
        supporter_country=None,
        language=language,
        subject=letter["subject"],
        body=letter["body"],
        tweet=None,
        earlier_outcome_unknown=False,
    )


def measure(fax: ClaimedDelivery, pages: int) -> tuple[float, float, int, int]:
    """(first render in ms, ms per page after it, pages per fax, faxes rendered)."""
    started = time.process_time()
    pdf = render_fax_pdf(fax, header_text="Urgent Action 61.21")
    first = (time.process_time() - started) * 1000
    per_fax = len(pypdf.PdfReader(io.BytesIO(pdf)).pages)
    faxes = max(1, -(-pages // per_fax))
    started = time.process_time()
    for _ in range(faxes):
        render_fax_pdf(fax, header_text="Urgent Action 61.21")
    elapsed = (time.process_time() - started) * 1000
    return first, elapsed / (faxes * per_fax), per_fax, faxes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200, help="pages per letter (at least)")
    args = parser.parse_args()
    for language, label in (("en", "Latin (en)"), ("zh", "Chinese (zh)")):
        first, per_page, per_fax, faxes = measure(delivery(language), args.pages)
        print(
            f"{label:13} first fax {first:8.1f} ms; then {per_page:7.2f} ms/page "
            f"({faxes} faxes of {per_fax} page(s), CPU time)"
        )


if __name__ == "__main__":
    main()
