"""The error a command raises for bad command-line input."""

from __future__ import annotations


class UsageError(Exception):
    """Bad command-line input; the message is one sentence for the user."""
