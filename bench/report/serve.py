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


def allowed_hosts(host: str, port: int) -> set[str]:
    """Host headers a browser sends for this server. Anything else is a page that pointed
    its own domain at 127.0.0.1 (DNS rebinding) to read the report: refused."""
    names = {host, "localhost", "127.0.0.1", "[::1]"}
    if ":" in host and not host.startswith("["):
        names.add(f"[{host}]")
    return {n.lower() for n in names} | {f"{n}:{port}".lower() for n in names}


class _QuietHandler(SimpleHTTPRequestHandler):
    """Serves the report folder without logging every request to the user's terminal,
    only to the Host names of this server, and with a plain 404 for paths the file system
    cannot name (a NUL byte once printed a traceback)."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
        pass

    def send_head(self) -> Any:
        host = (self.headers.get("Host") or "").strip().lower()
        allowed = getattr(self.server, "allowed_hosts", None)  # None: bound to every address, names unknown
        if allowed is not None and host not in allowed:
            self.send_error(403, "unexpected Host header")
            return None
        try:
            return super().send_head()
        except ValueError:  # "embedded null byte" from os.path
            self.send_error(404, "File not found")
            return None


def start_server(directory: Path | str, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    """A running server in a daemon thread; the caller stops it with `.shutdown()`.

    Port 0 asks the OS for any free port; `server.server_address` says which.
    """
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer((host, port), handler)
    wildcard = host in ("", "0.0.0.0", "::")
    server.allowed_hosts = None if wildcard else allowed_hosts(host, server.server_address[1])  # type: ignore[attr-defined]
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
