"""Fax PDFs read back with an independent PDF reader (pypdf): the text layer holds the letter."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import re

import pypdf
import pytest

from dispatcher.models import Channel, ClaimedDelivery
from dispatcher.render.fax import fax_page_count, render_fax_pdf
from dispatcher.render.fonts import fax_font
from dispatcher.render.layout import LATIN_QUOTES_FACE, MM, PAGE_WIDTH, line_width, runs, wrap
from dispatcher.render.letter import letter_text
from tests.conftest import claimed_delivery

# The cover's date: passed in, so the test reads back what it gave, whatever the clock.
TODAY = dt.date(2026, 3, 11)
USABLE = PAGE_WIDTH - 40 * MM  # the width of a line within the 20 mm margins

LETTER = claimed_delivery(
    id=42,
    channel=Channel.FAX,
    address="+861062381025",
    supporter_name="Zoë Ångström-Łukasz",
    subject="Release them — Освободите их",
    body="I urge you to release them and to end the detentions in Xinjiang.\n\n" * 40
    + "Ελευθερώστε τους. Libérez-les. Wolność dla nich.",
)


def read_back(pdf: bytes) -> list[str]:
    """Each page's text, whitespace collapsed."""
    reader = pypdf.PdfReader(io.BytesIO(pdf), strict=True)
    return [re.sub(r"\s+", " ", page.extract_text()).strip() for page in reader.pages]


def words(text: str) -> list[str]:
    return text.split()


def test_an_alphabetic_letter_reads_back_word_for_word_across_pages() -> None:
    pdf = render_fax_pdf(LETTER, header_text="Urgent Action 61.21", today=TODAY)
    pages = read_back(pdf)
    assert len(pages) > 1 and all(pages)
    text = " ".join(pages)
    assert words(text) == words(
        "Urgent Action 61.21\n"
        f"To: Xi Jinping, fax +861062381025\nFrom: {LETTER.supporter_name}\n"
        "Date: 2026-03-11\nReference: delivery 42\n"
        f"{LETTER.subject}\n{letter_text(LETTER)}"
    )
    assert b"/FontFile2" in pdf and b"WenQuanYi" in pdf  # the face is embedded
    metadata = pypdf.PdfReader(io.BytesIO(pdf)).metadata
    assert metadata is not None and metadata.title == LETTER.subject


def test_a_word_longer_than_a_line_is_cut_and_nothing_is_lost() -> None:
    font = fax_font()
    long_word = "Ł" * 400
    lines = wrap(font, f"before {long_word} after", 11, USABLE)
    assert "".join(lines).replace(" ", "") == f"before{long_word}after"
    assert all(line_width(font, line, 11) <= USABLE for line in lines)
    assert len(lines) > 3
    pdf = render_fax_pdf(
        dataclasses.replace(LETTER, body=f"before {long_word} after"), header_text="UA"
    )
    assert long_word in " ".join(read_back(pdf)).replace(" ", "")


def test_line_breaks_in_the_letter_are_kept_and_lines_fit_the_page() -> None:
    font = fax_font()
    lines = wrap(font, "one\n\ntwo   three\nfour", 11, USABLE)
    assert lines == ["one", "", "two three", "four"]
    long = wrap(font, LETTER.body, 11, USABLE)
    assert all(line_width(font, line, 11) <= USABLE for line in long)
    assert sum(1 for line in long if line) > 40
    # Alphabetic text breaks only at spaces: every line is whole words of the letter.
    assert {word for line in long for word in line.split()} == set(LETTER.body.split())


def test_a_line_of_chinese_longer_than_the_page_wraps_between_characters() -> None:
    font = fax_font()
    sentence = "我敦促你们释放被任意拘押的人，并告知家属他们的下落。"
    paragraph = sentence * 6  # no spaces at all: about five lines at 11 pt
    lines = wrap(font, paragraph, 11, USABLE)
    assert len(lines) >= 4
    assert "".join(lines) == paragraph  # broken between characters: nothing added or lost
    assert all(line_width(font, line, 11) <= USABLE for line in lines)
    # Each line but the last is full: the next character (with the comma or full stop
    # that stays with it) would not have fitted.
    rest = paragraph
    for line in lines[:-1]:
        rest = rest.removeprefix(line)
        after = rest[:2] if rest[1:2] in ("，", "。") else rest[0]
        assert line_width(font, line + after, 11) > USABLE
    # A comma or a full stop never starts a line; it stays with the character before it.
    assert not any(line[0] in "，。" for line in lines)


def test_mixed_chinese_and_latin_break_between_characters_but_not_inside_words() -> None:
    font = fax_font()
    paragraph = ("国际特赦组织 Amnesty International 要求释放 Ilham Tohti。" * 8).strip()
    lines = wrap(font, paragraph, 11, USABLE)
    assert len(lines) > 2
    assert all(line_width(font, line, 11) <= USABLE for line in lines)
    words = " ".join(lines).split()
    assert {"Amnesty", "International", "Ilham"} <= set(words)
    assert not {"Amnes", "Internat", "Ilh"} & {w for line in lines for w in line.split()}
    assert "".join(lines).replace(" ", "") == paragraph.replace(" ", "")


def test_a_chinese_letter_is_set_in_the_full_face_and_reads_back() -> None:
    chinese = dataclasses.replace(
        LETTER,
        language="zh",
        subject="释放他们",
        salutation="尊敬的习主席",
        body=("我敦促你们释放被任意拘押的人。" * 4 + "\n") * 20,
    )
    pdf = render_fax_pdf(chinese, header_text="紧急行动", today=TODAY)
    pages = read_back(pdf)
    assert len(pages) > 1 and all(pages)
    expected = (
        f"紧急行动\nTo: Xi Jinping, fax +861062381025\nFrom: {LETTER.supporter_name}\n"
        f"Date: 2026-03-11\nReference: delivery 42\n释放他们\n{letter_text(chinese)}"
    )
    assert "".join(pages).replace(" ", "") == re.sub(r"\s+", "", expected)
    assert b"/FontFile2" in pdf and b"WenQuanYi" in pdf


def test_curly_quotes_are_narrow_in_latin_words_and_full_width_in_chinese() -> None:
    font = fax_font()
    assert runs(font, "the People’s Republic") == [
        ("the People", font.name),
        ("’", LATIN_QUOTES_FACE),
        ("s Republic", font.name),
    ]
    assert runs(font, "报告《“如同战争中的敌人”》") == [("报告《“如同战争中的敌人”》", font.name)]
    # The apostrophe takes less than half an em (the CJK face's takes a whole one).
    assert line_width(font, "People’s", 11) < line_width(font, "Peoples", 11) + 11 / 2
    letter = dataclasses.replace(LETTER, body="“Like We Were Enemies in a War”, the People’s")
    chinese = dataclasses.replace(CHINESE, body="报告《“如同战争中的敌人”》中收集的证据")
    for fax in (letter, chinese):
        text = "".join(read_back(render_fax_pdf(fax, header_text="UA", today=TODAY)))
        assert fax.body.replace(" ", "") in text.replace(" ", "")


# (width, height) in points, as a PDF's MediaBox gives them.
A4_POINTS = (595.28, 841.89)
LETTER_POINTS = (612.0, 792.0)
CHINESE = dataclasses.replace(
    LETTER, language="zh", subject="释放他们", body="我敦促你们释放被任意拘押的人。\n" * 120
)


def page_sizes(pdf: bytes) -> set[tuple[float, float]]:
    reader = pypdf.PdfReader(io.BytesIO(pdf), strict=True)
    return {
        (round(float(page.mediabox.width), 2), round(float(page.mediabox.height), 2))
        for page in reader.pages
    }


@pytest.mark.parametrize("letter", [LETTER, CHINESE], ids=["alphabetic", "chinese"])
@pytest.mark.parametrize(
    ("number", "paper"),
    [
        ("+12024952138", LETTER_POINTS),  # Washington: US Letter
        ("+15145550123", LETTER_POINTS),  # Montréal: Canada uses Letter too
        ("+525555555555", LETTER_POINTS),  # Mexico City
        ("+861062381025", A4_POINTS),  # Beijing: A4
        ("+442079460000", A4_POINTS),  # London
    ],
)
def test_the_paper_follows_the_destination_country_and_the_count_is_on_that_paper(
    letter: ClaimedDelivery, number: str, paper: tuple[float, float]
) -> None:
    fax = dataclasses.replace(letter, address=number)
    pdf = render_fax_pdf(fax, header_text="UA")
    assert page_sizes(pdf) == {paper}
    pages = pypdf.PdfReader(io.BytesIO(pdf)).pages
    assert fax_page_count(fax, header_text="UA") == len(pages) > 1


@pytest.mark.parametrize("letter", [LETTER, CHINESE], ids=["alphabetic", "chinese"])
def test_a_long_letter_takes_more_pages_on_the_shorter_us_letter(letter: ClaimedDelivery) -> None:
    # 120 lines and the cover fill three A4 pages (46 lines each), but not three Letter ones.
    line = "A line of the letter.\n" if letter is LETTER else "我敦促你们释放被任意拘押的人。\n"
    body = line * 120
    washington = dataclasses.replace(letter, address="+12024952138", body=body)
    beijing = dataclasses.replace(letter, address="+861062381025", body=body)
    on_letter = fax_page_count(washington, header_text="UA")
    on_a4 = fax_page_count(beijing, header_text="UA")
    assert (on_letter, on_a4) == (4, 3)
    assert len(pypdf.PdfReader(io.BytesIO(render_fax_pdf(washington, header_text="UA"))).pages) == (
        on_letter
    )
