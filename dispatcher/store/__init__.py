"""Persistence: the only package that runs SQL."""

from dispatcher.store.engine import DatabaseUrlError
from dispatcher.store.problems import lasting_problem
from dispatcher.store.store import Store

__all__ = ["DatabaseUrlError", "Store", "lasting_problem"]
