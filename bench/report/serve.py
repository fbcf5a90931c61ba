"""Serve a rendered report on localhost: `bench report --serve`.

The report is a static file, so the standard library's HTTP server is enough. It binds
to 127.0.0.1 by default (results can name hosts and paths a user may not want on the
network), and `serve` can stop after a given time so tests and scripts never leave a
server behind.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable


WILDCARDS = ("", "0.0.0.0", "::")


def is_loopback(host: str) -> bool:
    """Only this machine can connect: localhost or a loopback address."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def machine_names() -> set[str]:
    """The names and addresses this machine is reached by (for a server bound to every
    address): its host name, fully qualified name, the addresses those resolve to, and the
    address it would use to reach the network (a UDP socket's connect sends nothing)."""
    names = {socket.gethostname(), socket.getfqdn()}
    for name in list(names):
        try:
            names.update(str(info[4][0]) for info in socket.getaddrinfo(name, None))
        except OSError:
            pass
    for family, probe in ((socket.AF_INET, ("192.0.2.1", 9)), (socket.AF_INET6, ("2001:db8::1", 9))):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.connect(probe)
                names.add(s.getsockname()[0])
        except OSError:
            pass
    return {n for n in names if n}


def allowed_hosts(host: str, port: int) -> set[str]:
    """Host headers a browser sends for this server. Anything else is a page that pointed
    its own domain at this server (DNS rebinding) to read the report: refused. Bound to
    every address (0.0.0.0, ::), the names and addresses of this machine are allowed; the
    check once switched itself off there, so any Host was answered."""
    names = {host, "localhost", "127.0.0.1", "::1"}
    if host in WILDCARDS:
        names |= machine_names()
    names = {n for n in names if n}
    names |= {f"[{n}]" for n in names if ":" in n and not n.startswith("[")}
    return {n.lower() for n in names} | {f"{n}:{port}".lower() for n in names}


class _QuietHandler(SimpleHTTPRequestHandler):
    """Serves the report folder without logging every request to the user's terminal,
    only to the Host names of this server, and with a plain 404 for paths the file system
    cannot name (a NUL byte once printed a traceback)."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
        pass

    def send_head(self) -> Any:
        host = (self.headers.get("Host") or "").strip().lower()
        allowed = getattr(self.server, "allowed_hosts", set())
        if host not in allowed:
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
    server.allowed_hosts = allowed_hosts(host, server.server_address[1])  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, name="bench-report-server", daemon=True).start()
    return server


def address(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/"


def exposure_warning(host: str, port: int) -> str | None:
    """One line for a server other machines can reach, or None on loopback."""
    if is_loopback(host):
        return None
    where = "every address of this machine" if host in WILDCARDS else host
    return (f"warning: serving on {where} (port {port}): anyone who can reach it can read the report, which "
            "names hosts and paths; only Host headers naming this machine are answered")


def serve(directory: Path | str, host: str = "127.0.0.1", port: int = 8000, seconds: float | None = None,
          announce: Callable[[str], None] = print,
          warn: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)) -> None:
    """Serve until Ctrl-C, or for `seconds` when given; always closes the socket. Bound
    beyond loopback (`--host 0.0.0.0`), it says so first, in one line on stderr."""
    server = start_server(directory, host, port)
    try:
        warning = exposure_warning(host, server.server_address[1])
        if warning:
            warn(warning)
        announce(address(server))
        threading.Event().wait(seconds)  # sleeps; Ctrl-C interrupts it in the main thread
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
