"""The one-step campaign form, on the campaign page and embedded in another site's page:
reading what was posted, checking it, accepting it, and showing it again with each
problem beside its field."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dispatcher import i18n
from dispatcher.campaigns import Campaign
from dispatcher.channels.registry import CHANNEL_LABELS
from dispatcher.i18n import N_, _, ngettext
from dispatcher.models import Channel, Sources
from dispatcher.render.tweet import MAX_WEIGHTED_LENGTH
from dispatcher.service import ErrorKind, ServiceError
from dispatcher.service.appeal_request import AppealRequest, Rejected, Via
from dispatcher.service.letters import call_scripts
from dispatcher.service.reported import REPORTED_KINDS
from dispatcher.service.reporting import campaign_report
from dispatcher.service.sources import MAX_SOURCE_CHARS, check_sources
from dispatcher.service.x_accounts import CONNECTION_COOKIE, connected_account, x_way
from dispatcher.web.deps import WebContext, client_ip
from dispatcher.web.errors import STATUS_OF, ApiError
from dispatcher.web.html import PostedForm, render_page
from dispatcher.web.plain import plain_problems


@dataclass(frozen=True, slots=True)
class Embed:
    """The form inside another site's iframe: its cookieless form token, and the headers
    that let the campaign's own sites (``embed_origins``) frame it."""

    token: str
    headers: dict[str, str]


APPEAL_FIELDS = (
    "name", "email", "country", "language", "subject", "message", "tweet", "form_id",
    *Sources.FIELDS,
)  # fmt: skip


async def render_campaign(
    request: Request,
    context: WebContext,
    campaign: Campaign,
    form: dict[str, Any],
    *,
    problems: Sequence[ServiceError] = (),
    notice: str | None = None,
    status_code: int | None = None,
    embed: Embed | None = None,
) -> HTMLResponse:
    """The campaign page (or, with ``embed``, its form for another site's iframe) with
    what was typed, each problem beside its field."""
    report = await campaign_report(context.service, campaign.id)
    x_account = await connected_account(context.service, request.cookies.get(CONNECTION_COOKIE))
    language = form.get("language") or campaign.default_language
    letter = campaign.sample_letter(language)
    plain = plain_problems(problems)
    values = {
        "campaign": campaign,
        "report": report,
        "form": form,
        "letter": letter,
        "language": language,
        "problems": plain,
        "field_errors": {p.anchor: p.text for p in reversed(plain) if p.anchor},
        "notice": notice,
        "kinds": REPORTED_KINDS,
        "max_post": MAX_WEIGHTED_LENGTH,
        "counter_words": counter_words(),
        "language_names": i18n.NAMES,
        "language_words": LANGUAGE_WORDS,
        "x_way": x_way(context.service, campaign.id),
        "call_scripts": call_scripts(campaign, language, None),
        "x_account": None if embed else x_account,
        "embed": embed,
        **({"csrf": embed.token} if embed else {}),  # the iframe's cookieless token
    }
    if status_code is None:
        status_code = STATUS_OF[problems[0].kind] if problems else 200
    headers = embed.headers if embed else None
    return render_page(
        request, "campaign.html", context, values, status_code=status_code, headers=headers
    )


# A letter's language named in a sentence ("a translation of the English letter").
LANGUAGE_WORDS = {"en": N_("English"), "zh": N_("Chinese")}


def plural_forms(singular: str, plural: str) -> dict[str, str]:
    """Both forms of a sentence with a number, for a script to choose from (the catalogue
    extraction knows this name: see ``make translations``)."""
    return {"one": ngettext(singular, plural, 1), "other": ngettext(singular, plural, 2)}


def counter_words() -> dict[str, dict[str, str]]:
    """The live counters' sentences in the page's language, for campaign.js to fill in
    (%(n)s, %(count)s, %(limit)s); "one" and "other" forms where the number matters."""

    return {
        "letter_left": plural_forms(
            "You have %(n)s character remaining (%(count)s of %(limit)s)",
            "You have %(n)s characters remaining (%(count)s of %(limit)s)",
        ),
        "letter_over": plural_forms(
            "You have %(n)s character too many (%(count)s of %(limit)s)",
            "You have %(n)s characters too many (%(count)s of %(limit)s)",
        ),
        "post_over": plural_forms(
            "Your post is %(n)s character too long for X (%(count)s of %(limit)s, with the "
            "officials' handles and your name)",
            "Your post is %(n)s characters too long for X (%(count)s of %(limit)s, with the "
            "officials' handles and your name)",
        ),
        "post_fits": {
            "other": _(
                "%(count)s of %(limit)s characters, with the officials' handles and your name"
            )
        },
        "post_none": {"other": _("No official is ticked for X: nothing will be posted.")},
    }


def read_appeal_form(posted: PostedForm) -> dict[str, Any]:
    """What the campaign form posted, as the page shows it again."""
    form: dict[str, Any] = {key: posted.one(key) for key in APPEAL_FIELDS}
    form["picked"] = posted.all("pick")
    form["tweet_sent"] = bool(posted.all("tweet"))
    form["receipt"] = posted.one("receipt") == "yes"
    form["contact_ok"] = posted.one("contact_ok") == "yes"
    form["reply_to"] = posted.one("reply_to") == "yes"
    form["submitted"] = True
    form["form_id"] = form["form_id"][:64] or secrets.token_urlsafe(16)
    return form


async def submit_appeal_form(
    request: Request,
    context: WebContext,
    campaign: Campaign,
    form: dict[str, Any],
    *,
    trusted: bool,
    embed: Embed | None = None,
) -> Response:
    """The one Send button: a plain form post, then the sent page. Anything wrong, and
    the page comes back with what was typed and chosen, each problem beside its field.
    An embedded form carries no X account (none can be connected inside an iframe)."""
    again = partial(render_campaign, request, context, campaign, form, embed=embed)
    if not trusted:
        notice = _(
            "For your safety this page had expired, so nothing was sent yet. Everything you "
            "typed is still here: please press Send again."
        )
        return await again(notice=notice, status_code=403)
    # The X account connected on this page (one left half-way is ignored by intake: its
    # post is handed off, as the page said).
    cookie = None if embed else request.cookies.get(CONNECTION_COOKIE)
    via = Via.EMBED if embed else Via.FORM
    appeal = appeal_from_form(campaign, form, via, client=client_ip(request), x_connection=cookie)
    try:
        result = await context.submit_appeal(appeal)
    except ApiError as exc:  # the service unavailable: said in the page, with the form kept
        problem, status = refusal(exc)
        return await again(problems=[problem], status_code=status)
    if isinstance(result, Rejected):  # each problem beside its field, or the limit reached
        limited = None if result.retry_after is None else 429
        return await again(problems=result.problems, status_code=limited)
    # The same page for every accepted appeal, new or a repeat (who signed is private):
    # what was asked for, and what the emails to the address will say.
    query = urlencode(
        [
            *(("to", f"{target}:{channel.value}") for target, channel in result.requested),
            ("confirm", int(result.confirm_by_email)),
            ("receipt", int(form["receipt"])),
            *(("post", f"{target} {link}") for target, link in result.hand_offs),
        ]
    )
    sent = f"/c/{campaign.id}/embed/sent" if embed else f"/c/{campaign.id}/sent"
    response = RedirectResponse(f"{sent}?{query}", status_code=303)
    response.delete_cookie(CONNECTION_COOKIE, path="/")  # used: one appeal per connection
    return response


def refusal(exc: ServiceError | ApiError) -> tuple[ServiceError, int]:
    """A refusal from the service or the web layer (a limit), as a problem to show on the
    page and the status to answer with."""
    if isinstance(exc, ApiError):
        wait = (exc.headers or {}).get("Retry-After", "")
        reason = {429: "rate_limited", 503: "unavailable"}.get(exc.status)
        params = {"seconds": int(wait)} if wait.isdigit() else {}
        return ServiceError(ErrorKind.INVALID, exc.message, None, reason, params), exc.status
    return exc, STATUS_OF[exc.kind]


def appeal_from_form(
    campaign: Campaign,
    form: dict[str, Any],
    via: Via,
    *,
    client: str | None = None,
    x_connection: str | None = None,
) -> AppealRequest:
    """The appeal the form asks for, as the page posted it (the letter as it stood in the
    box: intake tells the sample sent back unchanged from the supporter's own words), from
    ``client``'s address, with the X account connected on the page."""
    pairs = [tuple(p.split(":", 1)) for p in form["picked"] if ":" in p]
    return AppealRequest(
        campaign_id=campaign.id,
        supporter_name=form["name"],
        supporter_email=form["email"],
        supporter_country=form["country"] or None,
        message=form["message"] or None,
        subject=form["subject"] or None if campaign.editable_subject else None,
        tweet=form["tweet"] if form["tweet_sent"] else None,  # emptied: no post, or an error
        language=form["language"] or None,
        receipt=form["receipt"],
        contact_ok=form["contact_ok"],
        reply_to=form["reply_to"],
        idempotency_key=f"form:{form['form_id']}",
        page_language=i18n.current(),
        # From the link the supporter followed (a bad tag is dropped: they did not type it).
        sources={name: form[name][:MAX_SOURCE_CHARS] for name in Sources.FIELDS},
        # Only what is ticked: intake refuses a page's empty choice ("choose at least
        # one"), so an unticked form never sends anything.
        pairs=[(target, channel) for target, channel in pairs],
        x_connection=x_connection,
        via=via,
        client=client,
    )


def new_form(request: Request, campaign: Campaign, letter: str | None) -> dict[str, Any]:
    """The form as a page first shows it: the sample letter in ``?letter=`` if the
    campaign has it, else in the page's language if it has that, else in its own."""
    language = campaign.sample_language(letter, i18n.current())
    return {
        "language": language,
        # Sent back with the form: a second press of Send (or a reload of the post) is
        # the same submission, not a repeat (see service.links.new_appeal_id).
        "form_id": secrets.token_urlsafe(16),
        # Where the supporter came from, sent back with the form (a bad tag is dropped).
        **{
            name: value or ""
            for name, value in check_sources(request.query_params, strict=False).values().items()
        },
    }


async def sent_values(
    request: Request, context: WebContext, campaign: Campaign, to: list[str], post: list[str]
) -> dict[str, Any]:
    """What the page after Send shows: what was asked for, the posts handed to the
    supporter (only links we make: /x/post), the campaign's progress and share links."""
    names = {t.id: t.name_in(i18n.current()) for t in campaign.targets}
    asked: dict[str, list[str]] = {}
    for pair in to:
        target, _sep, channel = pair.partition(":")
        if target in names and channel in set(Channel):
            asked.setdefault(names[target], []).append(_(CHANNEL_LABELS[Channel(channel)]))
    # Posts handed to the supporter: our links to them (only links we make: /x/post).
    hand_offs = []
    for pair in post:
        target, _sep, link = pair.partition(" ")
        if target in names and link.startswith("/x/post?"):
            hand_offs.append((names[target], link))
    values = {
        "campaign": campaign,
        "asked": asked,
        "hand_offs": hand_offs,
        "report": await campaign_report(context.service, campaign.id),
        "share": share_links(
            campaign, str(request.url_for("campaign_page", campaign_id=campaign.id))
        ),
    }
    return values


def share_links(campaign: Campaign, url: str) -> list[tuple[str, str]]:
    """(label, address) to pass the campaign on: plain links, no third-party scripts."""
    title = campaign.title_in(i18n.current())
    text = _("%(title)s: I wrote to the officials. Will you? %(url)s") % {
        "title": title,
        "url": url,
    }
    return [
        ("X", f"https://x.com/intent/post?{urlencode({'text': text})}"),
        ("Facebook", f"https://www.facebook.com/sharer/sharer.php?{urlencode({'u': url})}"),
        ("WhatsApp", f"https://wa.me/?{urlencode({'text': text})}"),
        (
            N_("Email"),
            "mailto:?" + urlencode({"subject": title, "body": text}, quote_via=quote),
        ),
    ]
