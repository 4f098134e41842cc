"""``dispatcher demo``: the whole pipeline on the embedded default, against the sandbox.

Everything lives under ``var/demo/`` (a fresh SQLite database and a labelled copy of the
UA 61.21 campaign with its deadline moved, because the real one closed in 2021) and
``var/sandbox/`` (what the sandbox servers received). Nothing leaves this machine.

The demo's parts: ``prepare`` (the campaign copy, settings, secret key), ``supporters``
(who acts, and how), ``run`` (the run, its worker and the optional web pages) and
``check`` (the report against what the sandbox received).
"""

from __future__ import annotations

from dispatcher.demo.prepare import (
    DEMO_CAMPAIGN,
    DEMO_DIR,
    SANDBOX_DIR,
    SOURCE_CAMPAIGN,
    demo_environment,
    demo_settings,
    ensure_secret_key,
    write_demo_campaign,
)
from dispatcher.demo.run import ServeOptions, run_demo
from dispatcher.demo.supporters import DemoAppeal, demo_appeals

__all__ = [
    "DEMO_CAMPAIGN",
    "DEMO_DIR",
    "SANDBOX_DIR",
    "SOURCE_CAMPAIGN",
    "DemoAppeal",
    "ServeOptions",
    "demo_appeals",
    "demo_environment",
    "demo_settings",
    "ensure_secret_key",
    "run_demo",
    "write_demo_campaign",
]
