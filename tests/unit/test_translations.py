"""The Chinese catalogue covers every message the interface writes, with the same
placeholders, and the language a request is answered in is chosen as documented."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po

from dispatcher import i18n
from dispatcher.web.language import choose
from tests.conftest import ROOT

PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def extracted(tmp_path: Path) -> set[str | tuple[str, ...]]:
    """What `make translations` extracts, extracted the same way."""
    pot = tmp_path / "messages.pot"
    CommandLineInterface().run(  # type: ignore[no-untyped-call]
        ["pybabel", "-q", "extract", "-F", str(ROOT / "babel.cfg"), "-k", "N_", "-k",
         "plural_forms:1,2", "--no-location", "-o", str(pot), str(ROOT)]
    )  # fmt: skip
    with pot.open("rb") as handle:
        return {_key(m.id) for m in read_po(handle) if m.id}


def _key(message_id: object) -> str | tuple[str, ...]:
    return tuple(message_id) if isinstance(message_id, (list, tuple)) else str(message_id)


def test_every_message_has_a_chinese_translation_with_the_same_placeholders(
    tmp_path: Path,
) -> None:
    path = i18n.LOCALES_DIR / "zh" / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        po = read_po(handle)
    catalogue = {_key(m.id): m for m in po if m.id}
    wanted = extracted(tmp_path)
    assert not po.obsolete, "messages no longer used: run `make translations`"
    assert sorted(map(str, set(catalogue) - wanted)) == []
    assert len(wanted) > 200
    assert sorted(map(str, wanted - set(catalogue))) == [], "run `make translations`"
    for key in wanted:
        message = catalogue[key]
        forms = message.string if isinstance(message.string, (list, tuple)) else [message.string]
        assert all(forms) and not message.fuzzy, f"untranslated: {key!r}"
        original = key[0] if isinstance(key, tuple) else key
        for text in forms:
            assert set(PLACEHOLDER.findall(str(text))) <= set(PLACEHOLDER.findall(original)), key


def test_gettext_speaks_the_current_language_and_falls_back_to_english() -> None:
    assert i18n.gettext("Send my appeal") == "Send my appeal"
    with i18n.speaking("zh"):
        assert i18n.gettext("Send my appeal") == "发送我的呼吁"
        assert i18n.gettext("not a catalogued message") == "not a catalogued message"
        assert i18n.ngettext("%(num)s supporter", "%(num)s supporters", 5) == "%(num)s 位支持者"
        assert i18n.format_date(dt.date(2021, 9, 10)) == "2021年9月10日"
    with i18n.speaking("fr"):
        assert i18n.current() == "en"
    assert i18n.format_date(dt.date(2021, 9, 10)) == "10 September 2021"
    assert i18n.format_number(12345) == "12,345"


def test_a_wait_is_said_in_seconds_then_in_whole_minutes_rounded_up() -> None:
    assert [i18n.how_long(n) for n in (1, 89, 90, 121, 3600)] == [
        "1 second",
        "89 seconds",
        "2 minutes",
        "3 minutes",
        "60 minutes",
    ]  # fmt: skip ("1 seconds" before plurals went through the catalogue's rule)
    with i18n.speaking("zh"):
        assert i18n.how_long(37) == "37 秒" and i18n.how_long(600) == "10 分钟"


def test_plurals_follow_the_catalogues_rule_and_chinese_sentences_join_without_spaces() -> None:
    one = ("%(num)s appeal", "%(num)s appeals")
    assert [i18n.ngettext(*one, n) % {"num": n} for n in (0, 1, 2)] == [
        "0 appeals", "1 appeal", "2 appeals",
    ]  # fmt: skip
    assert i18n.sentences("One.", "", "Two.") == "One. Two."
    with i18n.speaking("zh"):  # Plural-Forms: nplurals=1 (one form for every number)
        assert {i18n.ngettext(*one, n) for n in (0, 1, 2, 21)} == {"%(num)s 份呼吁"}
        assert i18n.sentences("第一句。", "第二句。") == "第一句。第二句。"


def test_the_language_comes_from_the_query_then_the_cookie_then_the_browser() -> None:
    assert choose("lang=zh", "lang=en", "en") == ("zh", True)
    assert choose("lang=xx", "lang=zh", "en") == ("zh", False)
    assert choose("", "", "zh-CN,zh;q=0.9,en;q=0.8") == ("zh", False)
    assert choose("", "", "fr-FR, en;q=0.5, zh;q=0.4") == ("en", False)
    assert choose("", "", "de, fr") == ("en", False)
    assert choose("", 'a="', "zh") == ("zh", False)  # a malformed cookie chooses nothing


def test_the_browsers_languages_are_weighed_by_their_q_values() -> None:
    # The highest q wins wherever it stands; a region or script falls back to its language.
    assert i18n.negotiate("en;q=0.3, ZH-Hant-TW;q=0.4") == "zh"
    assert i18n.negotiate("en-GB;q=0.9, zh;q=0.9") == "en"  # equal: the header's order
    # q=0 says "not this one"; an unreadable q is left out, not taken as 1.
    assert i18n.negotiate("zh;q=0, en") == "en"
    assert i18n.negotiate("zh;q=high, en;q=0.1") == "en"
    assert i18n.negotiate("*, fr") is None
    assert i18n.negotiate("") is None and i18n.negotiate(None) is None
