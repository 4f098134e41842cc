"""``dispatcher serve``: the HTTP service, in one process or several sharing its port.

With ``--processes N`` the kernel spreads new connections over N processes that listen on
the same port (SO_REUSEPORT), so intake can use every CPU; only the first runs the worker
and the sandbox. Each answers an appeal once it is stored, as one process does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import os
import secrets
import signal
import socket
import sys

from pydantic import SecretStr

from dispatcher.cli.usage import UsageError
from dispatcher.output import err
from dispatcher.runtime import announce_channel_modes, require_secret_when_live, served_at
from dispatcher.settings import Settings


async def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from dispatcher.web.app import create_app, server_config

    processes: int = args.processes
    if processes < 1 or (processes > 1 and args.port == 0):
        raise UsageError(
            f"--processes {processes}: give 1 or more (more than 1 needs a fixed --port, "
            "which every process listens on)"
        )
    if args.shared_port:
        _end_with_parent()
    require_secret_when_live(settings)
    settings = served_at(settings, args.host, args.port)
    shared = {}
    if processes > 1 and settings.secret_key is None:
        # Forms and links signed by one process are checked by another: one key for all
        # of them (for this run only, as the warning about the key says).
        key = secrets.token_urlsafe(32)
        settings = settings.model_copy(update={"secret_key": SecretStr(key)})
        shared["DISPATCHER_SECRET_KEY"] = key
    if not args.shared_port:
        announce_channel_modes(settings, lambda line: err.print(line, markup=False))
    app = create_app(settings, run_worker=not args.no_worker, announce=err.print)
    config = server_config(app, settings, host=args.host, port=args.port, log_level=args.log_level)
    listening = listen(args.host, args.port, shared=processes > 1 or args.shared_port)
    if not args.shared_port:
        base = settings.public_url  # where supporters reach it (DISPATCHER_PUBLIC_URL, or here)
        many = f" ({processes} processes)" if processes > 1 else ""
        err.print(f"serving {base}/c/<campaign>, {base}/operator and {base}/docs{many}")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[listening]))
    others: list[asyncio.subprocess.Process] = []
    try:
        # The others start once this one has (the schema brought up to date, once);
        # uvicorn's server says so with a flag, not an event.
        while not server.started and not serving.done():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if server.started:
            keep_out_of_collections()
            others = [await _another(args, shared) for _ in range(processes - 1)]
        await serving
    finally:
        await _stop(others)
    return 0


def keep_out_of_collections() -> None:
    """What start-up made (modules, the app, campaigns, the engine) lives as long as the
    process: moved out of the garbage collector's sight. Otherwise each full collection
    walks all of it again, a pause of a tenth of a second or more under load, which every
    request in flight then waits out."""
    gc.collect()
    gc.freeze()


def listen(host: str, port: int, *, shared: bool) -> socket.socket:
    """A listening socket on ``host:port``; ``shared``: other processes may listen on the
    same port (SO_REUSEPORT: the kernel gives each new connection to one of them)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


async def _another(args: argparse.Namespace, shared: dict[str, str]) -> asyncio.subprocess.Process:
    """One more process on the port: it takes appeals and pages, and sends nothing."""
    command = [sys.executable, "-m", "dispatcher.cli", "serve", "--no-worker", "--shared-port"]
    command += ["--host", args.host, "--port", str(args.port), "--log-level", args.log_level]
    return await asyncio.create_subprocess_exec(*command, env={**os.environ, **shared})


def _end_with_parent() -> None:
    """A process of a --processes group ends when the one that started it does, even if
    that one was killed (Linux; elsewhere it is stopped when its starter stops)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the starter is gone already
        raise SystemExit(0)


async def _stop(others: list[asyncio.subprocess.Process]) -> None:
    for process in others:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
    for process in others:
        await process.wait()
