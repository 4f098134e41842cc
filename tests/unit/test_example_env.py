"""config/example.env lists every setting with its real default (it is written from the
settings classes by `make example-env`; it used to miss half of them and to contradict
the default of DISPATCHER_INTAKE__MAX_BODY_BYTES)."""

from __future__ import annotations

from pydantic import BaseModel

from dispatcher.settings import IntakeSettings, Settings
from dispatcher.settings_env import example_env
from tests.conftest import ROOT


def every_setting() -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    for name, field in Settings.model_fields.items():
        model = field.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            nested = model.model_fields.items()
            found += [(f"DISPATCHER_{name.upper()}__{n.upper()}", f.default) for n, f in nested]
        else:
            found.append((f"DISPATCHER_{name.upper()}", field.default))
    return found


def test_the_file_is_written_from_the_settings_classes() -> None:
    written = (ROOT / "config" / "example.env").read_text(encoding="utf-8")
    assert written == example_env(), "run `make example-env`"


def test_every_setting_is_listed_with_its_real_default() -> None:
    lines = example_env().splitlines()
    for name, default in every_setting():
        [line] = [line for line in lines if line.startswith(f"# {name}=")]
        if isinstance(default, (int, float, str)) and not isinstance(default, bool):
            assert line == f"# {name}={default}"
    assert "# DISPATCHER_INTAKE__MAX_BODY_BYTES=262144" in lines
    assert IntakeSettings().max_body_bytes == 262144
