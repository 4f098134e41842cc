"""The fax font: found on the system (fonts-wqy-microhei) or named by DISPATCHER_FAX__FONT,
and when there is none, faxes refused with a sentence saying what to install or set."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pypdf
import pytest
import reportlab
from pydantic import ValidationError

from dispatcher.models import Channel
from dispatcher.render.fax import render_fax_pdf
from dispatcher.render.fonts import SYSTEM_FONTS, FaxFontError, fax_font, resolve_font
from dispatcher.settings import FaxSettings
from tests.conftest import OPEN_CAMPAIGN, claimed_delivery

WQY = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
# A TrueType face with Latin only: Bitstream Vera, which reportlab ships (for its tests
# and demos; the dispatcher never looks inside a package for a font).
VERA = Path(reportlab.__file__).parent / "fonts" / "Vera.ttf"
DISPATCHER = str(Path(sys.executable).with_name("dispatcher"))
ROOT = Path(__file__).resolve().parents[2]
SYSTEM_FONT = SYSTEM_FONTS[0]
LATIN = claimed_delivery(
    channel=Channel.FAX, address="+442079460000", supporter_name="Zoë Ångström"
)


def test_with_no_font_on_the_system_the_error_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(FaxFontError) as info:
        resolve_font(None, system=(tmp_path / "wqy-microhei.ttc",), fontconfig=False)
    message = str(info.value)
    assert "apt-get install fonts-wqy-microhei" in message
    assert "DISPATCHER_FAX__FONT" in message
    assert ". " not in message  # one sentence


def test_a_system_face_without_chinese_is_passed_over(tmp_path: Path) -> None:
    with pytest.raises(FaxFontError, match="apt-get install fonts-wqy-microhei"):
        resolve_font(None, system=(VERA,), fontconfig=False)


def test_a_configured_path_that_is_not_a_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "fonts" / "missing.ttf"
    with pytest.raises(FaxFontError) as info:
        resolve_font(missing)
    assert str(missing) in str(info.value) and "not a file" in str(info.value)
    # The setting itself is refused when it is read, naming the path.
    with pytest.raises(ValidationError) as refused:
        FaxSettings(font=missing)
    assert str(missing) in str(refused.value)


def test_a_configured_file_that_is_not_a_font_is_named(tmp_path: Path) -> None:
    garbage = tmp_path / "font.ttf"
    garbage.write_text("not a font", encoding="utf-8")
    with pytest.raises(FaxFontError) as info:
        resolve_font(garbage)
    assert str(garbage) in str(info.value) and "cannot be embedded" in str(info.value)


def test_a_configured_font_is_used_whatever_it_covers() -> None:
    font = resolve_font(VERA)
    assert font.path == VERA
    pdf = render_fax_pdf(LATIN, header_text="UA", font=font)
    assert b"BitstreamVeraSans" in pdf and b"WenQuanYi" not in pdf
    text = " ".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    assert "Zoë Ångström" in text and "Second paragraph." in text
    # It has no Chinese: a Chinese fax would be refused at intake, not drawn as boxes.
    assert font.uncovered("释放 them") == ["放", "释"]


def test_without_configuration_the_system_font_is_found() -> None:
    assert WQY.is_file(), "apt-get install fonts-wqy-microhei (make test does, as root)"
    assert resolve_font(None, fontconfig=False).path == WQY
    assert fax_font().path == WQY  # this process's: DISPATCHER_FAX__FONT is not set here
    # fontconfig's list is searched too: the face it names for Chinese has Chinese.
    if shutil.which("fc-list") is None:
        pytest.skip("fontconfig is not installed")
    found = resolve_font(None, system=(), fontconfig=True)
    assert found.uncovered("释放 Aa") == []


def test_a_font_is_loaded_once_per_process() -> None:
    assert resolve_font(WQY) is resolve_font(WQY) is fax_font()
    chinese = dataclasses.replace(LATIN, body="我敦促你们释放被任意拘押的人。")
    assert render_fax_pdf(chinese, header_text="UA").count(b"/FontFile2") >= 1


def _cli(
    tmp_path: Path, campaigns_dir: Path, font: Path, *args: str, **settings: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCHER_")}
    env.update(
        DISPATCHER_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'font.db'}",
        DISPATCHER_CAMPAIGNS_DIR=str(campaigns_dir),
        DISPATCHER_FAX__FONT=str(font),
        PYTHONPATH=str(ROOT),  # this checkout's package, wherever the venv was installed from
        **settings,
    )
    return subprocess.run(
        [DISPATCHER, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )


def test_the_cli_names_a_fax_font_path_that_is_not_a_file(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    missing = tmp_path / "nowhere" / "font.ttc"
    result = _cli(tmp_path, campaigns_dir, missing, "campaigns")
    assert result.returncode != 0
    assert "DISPATCHER_FAX__FONT" in result.stderr and str(missing) in result.stderr


def test_a_fax_the_configured_font_cannot_draw_is_refused_at_intake(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    garbage = tmp_path / "font.ttf"
    garbage.write_bytes(b"\0" * 64)
    send = ["send", "--campaign", OPEN_CAMPAIGN, "--name", "Ana Lima"]
    send += ["--email", "ana@example.org", "--target", "xi-jinping"]
    refused = _cli(tmp_path, campaigns_dir, garbage, *send, "--channel", "fax")
    assert refused.returncode != 0
    assert str(garbage) in refused.stderr and "leave out fax" in refused.stderr
    assert "apt-get install fonts-wqy-microhei" in refused.stderr
    # The same appeal by email only is taken: only the fax needs the font.
    taken = _cli(tmp_path, campaigns_dir, garbage, *send, "--channel", "email")
    assert taken.returncode == 0, taken.stderr


@pytest.mark.skipif(not SYSTEM_FONT.is_file(), reason="needs fonts-wqy-microhei (make fonts)")
def test_a_worker_without_the_font_fails_the_attempt_saying_what_to_install(
    tmp_path: Path, campaigns_dir: Path
) -> None:
    """The appeal was taken where the font is; the worker runs where it is not (another
    machine): the attempt fails as a fault installing the font mends, and says so."""
    send = ["send", "--campaign", OPEN_CAMPAIGN, "--name", "Ana Lima"]
    send += ["--email", "ana@example.org", "--target", "xi-jinping", "--channel", "fax"]
    taken = _cli(tmp_path, campaigns_dir, SYSTEM_FONT, *send)
    assert taken.returncode == 0, taken.stderr
    garbage = tmp_path / "font.ttf"
    garbage.write_bytes(b"\0" * 64)
    once = {"DISPATCHER_RETRY__MAX_ATTEMPTS": "1", "DISPATCHER_RETRY__FAST_TRIES": "1"}
    worker = _cli(tmp_path, campaigns_dir, garbage, "worker", "--drain", **once)
    assert worker.returncode == 0, worker.stderr
    log = _cli(tmp_path, campaigns_dir, SYSTEM_FONT, "log", "--format", "json")
    [entry] = [json.loads(line) for line in log.stdout.splitlines() if line.strip()]
    assert entry["status"] == "failed"
    error = entry["last_error"]
    assert error["class"] == "TransientError" and error["code"] == "fax_font"
    assert "cannot draw the fax" in error["message"] and str(garbage) in error["message"]
