"""Serve a rendered report on localhost: `bench report --serve`.

The report is a static file, so the standard library's HTTP server is enough. It binds
to 127.0.0.1 by default (results can name hosts and paths a user may not want on the
network), and `serve` can stop after a given time so tests and scripts never leave a
server behind.
"""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable


class _QuietHandler(SimpleHTTPRequestHandler):
    """Serves the report folder without logging every request to the user's terminal."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
        pass


def start_server(directory: Path | str, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    """A running server in a daemon thread; the caller stops it with `.shutdown()`.

    Port 0 asks the OS for any free port; `server.server_address` says which.
    """
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer((host, port), handler)
    threading.Thread(target=server.serve_forever, name="bench-report-server", daemon=True).start()
    return server


def address(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/"


def serve(directory: Path | str, host: str = "127.0.0.1", port: int = 8000, seconds: float | None = None,
          announce: Callable[[str], None] = print) -> None:
    """Serve until Ctrl-C, or for `seconds` when given; always closes the socket."""
    server = start_server(directory, host, port)
    try:
        announce(address(server))
        threading.Event().wait(seconds)  # sleeps; Ctrl-C interrupts it in the main thread
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
