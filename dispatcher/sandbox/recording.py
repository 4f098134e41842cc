"""Where the sandbox servers write what they receive, so a person can open it.

Writes are synchronous on purpose: the files are small, live on local disk and are
written once per accepted message, so a thread hop would add complexity for nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9@._+-]+")
_NUMBERED = re.compile(r"^(\d{5,})-")


def safe_name(text: str, *, limit: int = 80) -> str:
    """``text`` reduced to characters that are safe in a file name on any OS."""
    cleaned = _UNSAFE.sub("_", text).strip("._") or "unknown"
    return cleaned[:limit]


class NumberedFolder:
    """A folder whose files are named ``NNNNN-<label>.<ext>``, numbered from 1.

    Numbering continues after the highest number already present, so a run that does
    not clear the directory never overwrites the files of an earlier run.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._last: int | None = None

    def next_stem(self, label: str) -> str:
        """Reserve the next number and return the file stem ``NNNNN-<label>``."""
        if self._last is None:
            self.path.mkdir(parents=True, exist_ok=True)
            self._last = max(
                (int(m.group(1)) for p in self.path.iterdir() if (m := _NUMBERED.match(p.name))),
                default=0,
            )
        self._last += 1
        return f"{self._last:05d}-{safe_name(label)}"

    def write_bytes(self, name: str, data: bytes) -> Path:
        """Write ``data`` to ``name`` inside the folder and return the full path."""
        self.path.mkdir(parents=True, exist_ok=True)
        target = self.path / name
        target.write_bytes(data)
        return target
