"""Persistence: the only package that runs SQL."""

from dispatcher.store.engine import DatabaseUrlError
from dispatcher.store.problems import lasting_problem
from dispatcher.store.purge_sql import PURGED, pseudonym
from dispatcher.store.store import Store

__all__ = ["PURGED", "DatabaseUrlError", "Store", "lasting_problem", "pseudonym"]
