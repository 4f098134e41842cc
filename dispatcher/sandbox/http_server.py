"""Shared plumbing for the sandbox's HTTP stand-ins (aiohttp, in the caller's loop)."""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

from aiohttp import web

# How long a stalled answer holds its connection, at most (the client gives up first).
STALL_SECONDS = 120.0


def json_error(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON error response with ``status``; ``headers`` are added as given."""
    return web.json_response(body, status=status, headers=headers)


def reset_connection(transport: asyncio.Transport | None) -> None:
    """Close with a TCP RST (linger 0) instead of a clean FIN: "connection reset by peer"."""
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def stall(request: web.Request) -> web.Response:
    """Answer nothing until the client hangs up (or ``STALL_SECONDS``)."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + STALL_SECONDS
    while loop.time() < give_up:
        transport = request.transport
        if transport is None or transport.is_closing():
            break
        await asyncio.sleep(0.05)
    return web.Response(status=504)


async def drip(request: web.Request, response: web.Response, seconds: float) -> web.StreamResponse:
    """Send ``response``'s headers, then its body one byte every ``seconds``."""
    body = bytes(response.body) if isinstance(response.body, bytes | bytearray) else b""
    stream = web.StreamResponse(status=response.status, headers=response.headers)
    stream.content_length = len(body)
    await stream.prepare(request)
    for byte in body:
        transport = request.transport
        if transport is None or transport.is_closing():
            return stream
        await stream.write(bytes([byte]))
        await asyncio.sleep(seconds)
    await stream.write_eof()
    return stream


class HttpServer:
    """An aiohttp application bound to ``host:port`` by ``start()``.

    Subclasses register their routes in ``routes``. ``base_url`` and ``port`` are valid
    once started; ``port=0`` asks the OS for an ephemeral port.
    """

    # Requests still running when stop() is called get this long to finish.
    _SHUTDOWN_TIMEOUT = 1.0

    def __init__(self, *, host: str, port: int) -> None:
        self._host = host
        self._requested_port = port
        self._runner: web.AppRunner | None = None
        self.port = 0

    def routes(self, app: web.Application) -> None:
        """Add this server's routes to ``app``."""
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the bound server (IPv6 hosts in brackets)."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Bind and serve; raises ``OSError`` if the port is taken."""
        app = web.Application()
        self.routes(app)
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=self._SHUTDOWN_TIMEOUT)
        await runner.setup()
        try:
            # Bound here, not by the site: a port another process takes at the same moment
            # (several workers starting their sandboxes at once) is always an OSError.
            sock = listening_socket(self._host, self._requested_port)
            await web.SockSite(runner, sock).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Close the listening socket and every open connection."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()


def listening_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; ``OSError`` (EADDRINUSE) if it is taken."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
