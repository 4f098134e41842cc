"""Validation happens before anything is stored; every error names the field."""

from __future__ import annotations

import datetime as dt

import pytest

from dispatcher.campaigns import CampaignCatalog
from dispatcher.models import Channel
from dispatcher.service import ErrorKind, ServiceError
from dispatcher.service.appeal_request import AppealRequest, Rejected, Via
from dispatcher.service.validation import ValidAppeal, check_appeal, check_post_content
from dispatcher.web.plain import plain_problem
from tests.conftest import OPEN_CAMPAIGN


def request(**overrides: object) -> AppealRequest:
    values: dict[str, object] = {
        "campaign_id": OPEN_CAMPAIGN,
        "supporter_name": "Ana Lima",
        "supporter_email": "ana@example.org",
    }
    values.update(overrides)
    return AppealRequest(**values)  # type: ignore[arg-type]


def validate_appeal(
    catalog: CampaignCatalog, appeal: AppealRequest, *, now: dt.datetime | None = None
) -> ValidAppeal:
    """The appeal every rule accepted, or its first problem raised (as the API says it)."""
    result = check_appeal(catalog, appeal, now=now)
    if isinstance(result, Rejected):
        raise result.first
    return result


def refused(catalog: CampaignCatalog, **overrides: object) -> ServiceError:
    result = check_appeal(catalog, request(**overrides))
    assert isinstance(result, Rejected)
    return result.first


def test_defaults_fan_out_to_every_channel_of_every_target(catalog: CampaignCatalog) -> None:
    valid = validate_appeal(catalog, request())
    pairs = [(d.target_id, d.channel) for d in valid.deliveries]
    assert pairs == [
        ("xi-jinping", Channel.EMAIL),
        ("xi-jinping", Channel.FAX),
        ("cui-tiankai", Channel.EMAIL),
        ("cui-tiankai", Channel.FAX),
        ("cui-tiankai", Channel.TWITTER),
    ]
    campaign = catalog.get(valid.appeal.campaign_id)
    assert campaign is not None  # one of the campaign's subject lines, for this supporter
    assert valid.appeal.subject in campaign.letter["en"].subject_lines
    assert valid.appeal.own_message is False


def test_explicit_channel_skips_targets_without_it(catalog: CampaignCatalog) -> None:
    valid = validate_appeal(catalog, request(channels=["twitter"]))
    assert [(d.target_id, d.channel) for d in valid.deliveries] == [
        ("cui-tiankai", Channel.TWITTER)
    ]


@pytest.mark.parametrize("email", ["not-an-email", "ana@", "ana@@example.org", ""])
def test_malformed_email(catalog: CampaignCatalog, email: str) -> None:
    error = refused(catalog, supporter_email=email)
    assert error.field == "supporter.email"
    assert error.kind is ErrorKind.INVALID


@pytest.mark.parametrize(
    "name", ["Ana\r\nBcc: victim@example.org", "Ana\nLima", "Ana\x00", "A\u2028B"]
)
def test_control_characters_in_name(catalog: CampaignCatalog, name: str) -> None:
    error = refused(catalog, supporter_name=name)
    assert error.field == "supporter.name"
    assert "control or line-break" in error.message


def test_empty_and_overlong_name(catalog: CampaignCatalog) -> None:
    assert refused(catalog, supporter_name="   ").field == "supporter.name"
    error = refused(catalog, supporter_name="x" * 201)
    assert "201 characters; at most 200" in error.message


def test_unknown_campaign_and_target_and_channel(catalog: CampaignCatalog) -> None:
    error = refused(catalog, campaign_id="nope")
    assert error.kind is ErrorKind.NOT_FOUND and "'nope'" in error.message
    error = refused(catalog, targets=["mayor"])
    assert error.field == "targets" and "'mayor'" in error.message and "xi-jinping" in error.message
    error = refused(catalog, channels=["pigeon"])
    assert error.field == "channels" and "'pigeon'" in error.message
    assert "email, fax, twitter" in error.message
    assert "reported, not sent" in refused(catalog, channels=["phone"]).message


def test_channel_the_chosen_target_lacks(catalog: CampaignCatalog) -> None:
    error = refused(catalog, targets=["xi-jinping"], channels=["twitter"])
    assert error.field == "channels"
    assert "'xi-jinping' cannot be reached by twitter" in error.message


def test_closed_campaign_names_its_deadline(catalog: CampaignCatalog) -> None:
    error = refused(catalog, campaign_id="ua-61-21")
    assert error.kind is ErrorKind.CLOSED
    assert "2021-09-10" in error.message


def test_campaign_closes_after_its_deadline_day(catalog: CampaignCatalog) -> None:
    campaign = catalog.get(OPEN_CAMPAIGN)
    assert campaign is not None
    after = campaign.closes_at + dt.timedelta(seconds=1)
    with pytest.raises(ServiceError) as info:
        validate_appeal(catalog, request(), now=after)
    assert info.value.kind is ErrorKind.CLOSED


def test_oversize_message(catalog: CampaignCatalog) -> None:
    error = refused(catalog, message="word " * 3000)
    assert error.field == "message"
    assert "at most 10000" in error.message


def test_tweet_over_280_weighted_characters(catalog: CampaignCatalog) -> None:
    # 120 CJK characters weigh 240; with the handles and signature it is over 280.
    error = refused(catalog, channels=["twitter"], tweet="释" * 120)
    assert error.field == "tweet"
    assert "weighted characters" in error.message and "280" in error.message
    # The same tweet is fine when it is not sent to X.
    validate_appeal(catalog, request(channels=["email"], tweet="释" * 120))


def test_script_the_fax_font_cannot_draw(catalog: CampaignCatalog) -> None:
    uyghur = "مەن سىزدىن بارلىق تۇتقۇنلارنى قويۇپ بېرىشىڭىزنى تەلەپ قىلىمەن"
    error = refused(catalog, message=uyghur, language="ug")
    assert error.field == "message" and "fax font" in error.message
    valid = validate_appeal(catalog, request(message=uyghur, language="ug", channels=["email"]))
    assert valid.appeal.body == uyghur


def test_a_character_the_fax_cannot_print_is_blamed_on_the_field_it_is_in(
    catalog: CampaignCatalog,
) -> None:
    # Issue 18, item 3: an emoji in the name, the sample letter untouched, was refused as
    # "A fax cannot print some characters in your letter (🌻)", field message.
    error = refused(catalog, supporter_name="Zoë 🌻 Tester", channels=["fax"])
    assert (error.field, error.params["characters"]) == ("supporter.name", "🌻")
    assert "in your name" in error.message
    assert plain_problem(error).text.startswith("A fax cannot print some characters in your name")
    assert plain_problem(error).anchor == "name"
    error = refused(catalog, supporter_country="Bhutan 🏔", channels=["fax"])
    assert error.field == "supporter.country" and "in your country" in error.message
    validate_appeal(catalog, request(supporter_name="Zoë 🌻 Tester", channels=["email"]))


def test_chinese_letter_is_accepted_for_fax(catalog: CampaignCatalog) -> None:
    valid = validate_appeal(
        catalog, request(message="请立即释放所有被任意拘押的人。", language="zh", channels=["fax"])
    )
    assert valid.appeal.language == "zh" and valid.appeal.own_message


def test_language_without_sample_letter_needs_own_message(catalog: CampaignCatalog) -> None:
    error = refused(catalog, language="fr")
    assert error.field == "language" and "'fr'" in error.message and "en" in error.message


# --- inputs that could be turned against a supporter or an official (issue 8) ------------


@pytest.mark.parametrize(
    ("name", "named"),
    [
        ("Ana\u202eatsiL", "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("Ana\u2066Lima\u2069", "U+2066 LEFT-TO-RIGHT ISOLATE"),
        ("A\u200bna", "U+200B ZERO WIDTH SPACE"),
        ("Ana\u200dLima", "U+200D ZERO WIDTH JOINER"),
    ],
)
def test_names_refuse_invisible_characters(catalog: CampaignCatalog, name: str, named: str) -> None:
    error = refused(catalog, supporter_name=name)
    assert error.field == "supporter.name"
    assert named in error.message and "invisible" in error.message


def test_letters_refuse_bidi_controls_but_keep_the_joiners_scripts_need(
    catalog: CampaignCatalog,
) -> None:
    persian = "می\u200cخواهم که آزاد شوند"  # ZWNJ inside a Persian word
    assert validate_appeal(catalog, request(message=persian, channels=["email"])).appeal.body
    error = refused(catalog, message="Release them \u202etxet neddih", channels=["email"])
    assert error.field == "message" and "U+202E" in error.message


def test_full_width_addresses_are_the_same_supporter(catalog: CampaignCatalog) -> None:
    wide = validate_appeal(catalog, request(supporter_email="ｄｕｐ@example.org"))
    assert wide.appeal.supporter_email == "dup@example.org"


@pytest.mark.parametrize("email", ["josé@example.org", "李@example.org"])
def test_non_ascii_before_the_at_is_refused_with_what_is_accepted(
    catalog: CampaignCatalog, email: str
) -> None:
    error = refused(catalog, supporter_email=email)
    assert error.field == "supporter.email" and repr(email) in error.message
    assert "plain ASCII before the @" in error.message


def test_an_internationalised_domain_is_accepted(catalog: CampaignCatalog) -> None:
    valid = validate_appeal(catalog, request(supporter_email="ana@bücher.example"))
    assert valid.appeal.supporter_email == "ana@bücher.example"


def test_idempotency_keys_are_bound_to_the_supporter(catalog: CampaignCatalog) -> None:
    alice = validate_appeal(catalog, request(idempotency_key="1"))
    alice_again = validate_appeal(
        catalog, request(idempotency_key="1", supporter_email="ANA@example.org")
    )
    mallory = validate_appeal(
        catalog, request(idempotency_key="1", supporter_email="mallory@example.org")
    )
    assert alice.appeal.idempotency_key == alice_again.appeal.idempotency_key
    assert alice.appeal.idempotency_key != mallory.appeal.idempotency_key


@pytest.mark.parametrize(
    ("tweet", "says"),
    [
        ("@elonmusk @POTUS free them", "mentions @POTUS, @elonmusk"),
        ("Free them ＠elonmusk", "mentions @elonmusk"),
        ("Free them https://spam.example/x", "links to 'https://spam.example/x'"),
        ("Free them spam.com", "links to 'spam.com'"),
    ],
)
def test_a_supporters_post_mentions_only_targets_and_links_nowhere_else(
    catalog: CampaignCatalog, tweet: str, says: str
) -> None:
    error = refused(catalog, tweet=tweet, channels=["twitter"])
    assert error.field == "tweet" and says in error.message


def test_a_post_may_mention_the_campaigns_officials(catalog: CampaignCatalog) -> None:
    valid = validate_appeal(
        catalog, request(tweet="@AmbCuiTiankai release them now", channels=["twitter"])
    )
    assert valid.appeal.tweet == "@AmbCuiTiankai release them now"


def test_a_post_may_link_to_the_campaigns_domains(catalog: CampaignCatalog) -> None:
    campaign = catalog.get(OPEN_CAMPAIGN)
    assert campaign is not None
    allowed = campaign.model_copy(update={"link_domains": ("amnesty.org",)})
    check_post_content(allowed, "Act now: https://www.amnesty.org/en/ua-61-21")
    with pytest.raises(ServiceError) as info:
        check_post_content(allowed, "Act now: https://amnesty.org.evil.example/ua")
    assert "amnesty.org" in info.value.message


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("<script>alert(1)</script>", "markup"),
        ("Ana <b>Lima</b>", "markup"),
        ("Ana https://spam.example/x", "link"),
        ("Ana www.spam.com", "link"),
        ("Visit spam.com", "link"),
    ],
)
def test_names_refuse_markup_and_links(catalog: CampaignCatalog, name: str, reason: str) -> None:
    """A name signs letters to officials and is published on X: plain text only."""
    error = refused(catalog, supporter_name=name)
    assert (error.field, error.reason) == ("supporter.name", reason)
    assert repr(name) in error.message


@pytest.mark.parametrize("name", ["Ana Lima", "O'Brien-Smith Jr.", "李华", "José María 3rd"])
def test_ordinary_names_pass(catalog: CampaignCatalog, name: str) -> None:
    valid = validate_appeal(catalog, request(supporter_name=name))
    assert valid.appeal.supporter_name == name


# --- one check for every caller (issue 19, item 6) ----------------------------------------


def test_every_problem_is_found_at_once_the_first_for_each_field(catalog: CampaignCatalog) -> None:
    result = check_appeal(
        catalog,
        request(
            supporter_name="",
            supporter_email="ana@",
            supporter_country="x" * 65,
            channels=["twitter"],
            tweet="@elonmusk free them",
            page_language="xx",
        ),
    )
    assert isinstance(result, Rejected)
    assert [(p.field, p.reason) for p in result.problems] == [
        ("supporter.name", "empty"),
        ("supporter.email", "email_invalid"),
        ("supporter.country", "too_long"),
        ("tweet", "post_mention"),
        ("page_language", "language"),
    ]


def test_a_page_that_ticks_nothing_chooses_nothing_where_the_api_means_everyone(
    catalog: CampaignCatalog,
) -> None:
    for via in (Via.FORM, Via.EMBED):
        page = check_appeal(catalog, request(via=via))
        assert isinstance(page, Rejected)
        assert [(p.field, p.reason) for p in page.problems] == [("channels", "no_choice")]
    for via in (Via.API, Via.CLI):
        assert len(validate_appeal(catalog, request(via=via)).deliveries) == 5


def test_a_bad_tag_in_a_followed_link_is_dropped_but_refused_from_the_api(
    catalog: CampaignCatalog,
) -> None:
    tags = {"source": "news letter!", "utm_source": "Mail"}
    picked = [("xi-jinping", "email")]
    page = validate_appeal(catalog, request(via=Via.FORM, pairs=picked, sources=tags))
    assert (page.appeal.sources.source, page.appeal.sources.utm_source) == (None, "mail")
    assert refused(catalog, via=Via.API, sources=tags).field == "source"


def test_the_sample_letter_sent_back_unchanged_is_the_campaigns_from_every_caller(
    catalog: CampaignCatalog,
) -> None:
    campaign = catalog.get(OPEN_CAMPAIGN)
    assert campaign is not None
    sample = campaign.letter["en"].body
    picked = [("xi-jinping", "email")]
    for via in Via:
        as_sent = sample.replace("\n", "\r\n") + "\r\n"  # as a browser sends a textarea
        unchanged = validate_appeal(catalog, request(via=via, pairs=picked, message=as_sent))
        edited = validate_appeal(catalog, request(via=via, pairs=picked, message=sample + " Now."))
        assert (unchanged.appeal.own_message, edited.appeal.own_message) == (False, True), via
        assert unchanged.appeal.body == sample.strip()
