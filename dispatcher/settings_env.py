"""``config/example.env``, written from the settings classes: every setting, its real
default, and the comment beside it in dispatcher/settings.py.

    python -m dispatcher.settings_env > config/example.env    (make example-env)

tests/unit/test_example_env.py fails when the file and the classes disagree.
"""

from __future__ import annotations

import inspect
import json
import re
import textwrap
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from dispatcher.settings import Settings

HEADER = """\
# Every setting, with its default, written by `make example-env` from the settings classes
# (dispatcher/settings.py); do not edit by hand. Copy what you need to .env (never commit
# it) or export it. Every name is optional: with none set, the database is SQLite under
# var/ and every channel goes to the local sandbox.
"""
_FIELD = re.compile(r"^\s+(\w+):")


def _comments(model: type[BaseModel]) -> dict[str, list[str]]:
    """Field name → the comment lines written just above it in the class."""
    found: dict[str, list[str]] = {}
    pending: list[str] = []
    for line in inspect.getsource(model).splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            pending.append(stripped.lstrip("#").strip())
            continue
        matched = _FIELD.match(line)
        if matched and matched.group(1) in model.model_fields:
            found[matched.group(1)] = pending
        pending = []
    return found


def _value(default: Any) -> str:
    if default is None or isinstance(default, SecretStr):
        return ""
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, (list, dict, tuple)):
        return json.dumps(default) if default else ""
    if isinstance(default, Path):
        return str(default)
    return str(default)


def _lines(model: type[BaseModel], prefix: str) -> list[str]:
    out: list[str] = []
    comments = _comments(model)
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            continue
        default = field.get_default(call_default_factory=True)
        out += [f"# {line}" if line else "#" for line in comments.get(name, [])]
        out.append(f"# {prefix}{name.upper()}={_value(default)}")
    return out


def example_env() -> str:
    """The file's text."""
    sections = [HEADER, "# --- general", *_lines(Settings, "DISPATCHER_"), ""]
    for name, field in Settings.model_fields.items():
        model = field.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        own = inspect.cleandoc(model.__dict__.get("__doc__") or "")  # not BaseModel's
        about = " ".join(own.split("\n\n")[0].split())
        title = f"--- {name}: {about.replace('``', '')}" if about else f"--- {name}"
        sections += [f"# {line}" for line in textwrap.wrap(title, 88)]
        sections += [*_lines(model, f"DISPATCHER_{name.upper()}__"), ""]
    return "\n".join(sections).rstrip("\n") + "\n"


if __name__ == "__main__":
    print(example_env(), end="")
