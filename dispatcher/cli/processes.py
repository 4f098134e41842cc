"""The commands that run until stopped: serve, worker, sandbox, and the demo."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

from dispatcher.cli.usage import UsageError
from dispatcher.output import err, out
from dispatcher.runtime import (
    announce_channel_modes,
    build_worker,
    close_adapters,
    embedded_sandbox,
    install_stop_handlers,
    open_service,
    require_secret_when_live,
    run_with_receipts,
    sandbox_from_settings,
)
from dispatcher.service import Service
from dispatcher.settings import Settings
from dispatcher.worker import Worker

if TYPE_CHECKING:
    from dispatcher.web.metrics import WorkerMetrics


async def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from dispatcher.web.metrics import WorkerMetrics

    require_secret_when_live(settings)
    async with open_service(settings) as service:
        metrics = WorkerMetrics()
        # Build first: half-given provider settings fail before anything starts.
        worker = build_worker(settings, service, on_attempt=metrics.observe_attempt)
        metrics.watch(worker)
        announce_channel_modes(settings, lambda line: err.print(line, markup=False))
        async with embedded_sandbox(settings, err.print):
            await _run_worker(worker, settings, service, metrics, drain=args.drain)
    return 0


async def _run_worker(
    worker: Worker, settings: Settings, service: Service, metrics: WorkerMetrics, *, drain: bool
) -> None:
    """The worker until it is stopped (or, with ``drain``, has nothing left), with its
    /metrics and /healthz served beside it when DISPATCHER_WORKER__METRICS_PORT is set."""
    from dispatcher.web.worker_probe import WorkerProbe, serving_probe

    stop = asyncio.Event()
    install_stop_handlers(stop, asyncio.current_task())
    probe = WorkerProbe(worker, service, metrics, stop)
    async with serving_probe(settings, probe, lambda line: err.print(line, markup=False)):
        err.print(f"worker {worker.name} started" + (" (drain)" if drain else ""))
        try:
            stats = await run_with_receipts(worker, settings, service, stop=stop, drain=drain)
        finally:
            await close_adapters(worker)
    summary = ", ".join(f"{k} {v}" for k, v in sorted(stats.outcomes.items())) or "nothing to do"
    err.print(
        f"worker stopped: {stats.handled} handled, recorded in {stats.commits} transactions "
        f"({summary})"
    )


async def cmd_sandbox(settings: Settings, args: argparse.Namespace) -> int:
    from dispatcher.sandbox import Faults

    cfg = settings.sandbox
    sandbox = sandbox_from_settings(
        cfg,
        email_faults=Faults(
            fail_first=args.email_fail_first, refuse=frozenset(args.email_refuse or ())
        ),
        fax_faults=Faults(
            fail_first=args.fax_fail_first,
            busy_first=args.fax_busy_first,
            refuse=frozenset(args.fax_refuse or ()),
        ),
        x_faults=Faults(
            fail_first=args.x_fail_first,
            rate_limit_first=args.x_rate_limit_first,
            refuse=frozenset(args.x_refuse or ()),
        ),
        fax_dialect=settings.fax.provider,
    )
    try:
        await sandbox.start()
    except OSError as exc:
        raise UsageError(
            f"cannot start the sandbox on {cfg.host} (ports {cfg.smtp_port}, {cfg.fax_port}, "
            f"{cfg.x_port}): {exc.strerror}; is another sandbox running?"
        ) from exc
    out.print("Sandbox running (Ctrl-C to stop); it records what it receives:")
    out.print(f"  SMTP      {cfg.host}:{sandbox.smtp_port}   → {cfg.directory}/email/*.eml")
    out.print(
        f"  fax API   {sandbox.fax_base_url} ({sandbox.fax_dialect}) → {cfg.directory}/fax/*.pdf"
    )
    out.print(f"  X API     {sandbox.x_base_url}/2/tweets → {cfg.directory}/twitter/tweets.jsonl")
    stop = asyncio.Event()
    install_stop_handlers(stop)
    try:
        await stop.wait()
    finally:
        await sandbox.stop()
    return 0


async def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from dispatcher.demo import ServeOptions, run_demo

    serve = ServeOptions(args.host, args.port) if args.serve else None
    return await run_demo(settings, out, serve)
