"""A small headless-Chromium driver over the DevTools protocol, for the report's tests and
scripts/report_timing.py.

Chromium's command line alone cannot make a phone: headless windows are at least 500 px
wide, so `--window-size=390,…` lays the page out at 500. The DevTools protocol's
`Emulation.setDeviceMetricsOverride` can, and it also gives the console messages and
uncaught exceptions as events, a screenshot at any size, and `Runtime.evaluate` to wait
for the page's own "rendered" stamp instead of sleeping.

The protocol travels over `--remote-debugging-pipe` (Chromium reads commands on fd 3 and
writes replies on fd 4, each message JSON ended by a NUL byte), so no port is opened and
no websocket library is needed. Every read has a deadline; the browser is always killed.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         "--remote-debugging-pipe")


def find_chromium() -> str | None:
    return shutil.which("chromium") or (str(Path("/usr/bin/chromium")) if Path("/usr/bin/chromium").exists() else None)


def _high(fd: int) -> int:
    """The same pipe end on a descriptor ≥ 10 (the original is closed)."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return moved


class BrowserError(RuntimeError):
    pass


class Chromium:
    """One headless browser; `page()` opens a tab in it. Use as a context manager."""

    def __init__(self, binary: str, timeout: float = 120.0) -> None:
        self.timeout = timeout
        self.profile = tempfile.TemporaryDirectory(prefix="report-chromium-")  # a fresh --user-data-dir
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # the child's ends away from 3 and 4, or the redirections below would clobber them
        to_chrome_r, from_chrome_w = (_high(fd) for fd in (to_chrome_r, from_chrome_w))
        # bash (dash cannot name descriptors above 9) puts our pipe ends on fds 3 and 4, where --remote-debugging-pipe expects them
        script = f'exec "$0" "$@" 3<&{to_chrome_r} 4>&{from_chrome_w} {to_chrome_r}<&- {from_chrome_w}>&-'
        self.proc = subprocess.Popen(
            [shutil.which("bash") or "/bin/bash", "-c", script, binary, *FLAGS, f"--user-data-dir={self.profile.name}", "about:blank"],
            pass_fds=(to_chrome_r, from_chrome_w), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        for fd in (self._to_chrome, self._from_chrome):
            try:
                os.close(fd)
            except OSError:
                pass
        self.profile.cleanup()

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float | None = None) -> dict[str, Any]:
        """One command; returns its result, keeps events that arrive meanwhile."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            self.events.append(reply)

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("no reply from chromium in time")
            ready, _, _ = select.select([self._from_chrome], [], [], left)
            if ready:
                chunk = os.read(self._from_chrome, 1 << 20)
                if not chunk:
                    raise BrowserError("chromium closed the pipe")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def page(self, width: int, height: int) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        for domain in ("Runtime", "Log", "Page"):
            page.send(f"{domain}.enable")
        page.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})
        return page


class Page:
    def __init__(self, browser: Chromium, session: str) -> None:
        self.browser = browser
        self.session = session

    def send(self, method: str, params: dict[str, Any] | None = None, timeout: float | None = None) -> dict[str, Any]:
        return self.browser.send(method, params, self.session, timeout)

    def open(self, url: str, ready: str, timeout: float = 120.0) -> Any:
        """Navigate and wait until the JavaScript expression `ready` is truthy; returns its value."""
        self.send("Page.navigate", {"url": url})
        return self.wait(ready, timeout)

    def wait(self, expression: str, timeout: float = 120.0) -> Any:
        poll = (f"new Promise(function (resolve, reject) {{ const end = Date.now() + {int(timeout * 1000)};"
                f" (function check() {{ let v; try {{ v = ({expression}); }} catch (e) {{ v = null; }}"
                f" if (v) resolve(v); else if (Date.now() > end) reject(new Error('timed out: ' + {json.dumps(expression)}));"
                f" else setTimeout(check, 25); }})(); }})")
        result = self.send("Runtime.evaluate", {"expression": poll, "awaitPromise": True, "returnByValue": True},
                           timeout=timeout + 30)
        if "exceptionDetails" in result:
            raise BrowserError(result["exceptionDetails"].get("exception", {}).get("description", "page error"))
        return result["result"].get("value")

    def evaluate(self, expression: str) -> Any:
        return self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})["result"].get("value")

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def console_problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions and error log entries of this page."""
        out = []
        for event in self.browser.events:
            if event.get("sessionId") != self.session:
                continue
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
                out.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                out.append(details.get("exception", {}).get("description") or details.get("text", "exception"))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                out.append(params["entry"].get("text", ""))
        return out
