"""The worker's protocol pipe to the runner, and the heartbeat it sends while it starts.

Standard library only, so that bench.worker can open the pipe and start the heartbeat
before its own imports: numpy, scipy (through bench.stats) and the bench modules take
about 2 s of an idle core, and many times that on a busy machine, all before the
framework's import even begins. Until the worker's hello, the heartbeat says every second
how much CPU the process has used; the runner (bench.runner.WorkerProcess.await_hello)
waits on a start while that figure grows and gives up one that stopped using CPU.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any, TextIO

HEARTBEAT_S = 1.0  # between `starting` messages; the runner's start window is 30 s or more


class Channel:
    """One JSON message per line, whole lines only: the heartbeat thread writes on the pipe
    too, and only until the hello has gone (after it the runner reads rows, nothing else)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._starting = True

    def send(self, message: dict[str, Any]) -> None:
        with self._lock:
            if message.get("type") == "hello":
                self._starting = False
            self._write(message)

    def _write(self, message: dict[str, Any]) -> None:
        self._stream.write(json.dumps(message, default=float) + "\n")
        self._stream.flush()

    def beat_until_hello(self, interval_s: float = HEARTBEAT_S) -> None:
        """Send `starting` with the process's CPU seconds (less this thread's own, so a
        sleeping import shows none) every interval until the hello, from a daemon thread:
        an import holds the main thread, and a busy machine can stretch it past the runner's
        start window while it is making progress all along."""

        def beat() -> None:
            while True:
                with self._lock:
                    if not self._starting:
                        return
                    try:
                        self._write({"type": "starting", "cpu_s": round(time.process_time() - time.thread_time(), 3)})
                    except (OSError, ValueError):  # the runner went away or closed the pipe
                        return
                time.sleep(interval_s)

        threading.Thread(target=beat, name="bench-start-heartbeat", daemon=True).start()


def open_channel(heartbeat: bool = True) -> Channel:
    """The protocol pipe on a private copy of stdout, with fd 1 pointed at stderr so nothing
    a framework prints can corrupt the protocol, and (for a worker) the start heartbeat
    beating; a reference tool's serving process has no hello to beat until."""
    channel = Channel(os.fdopen(os.dup(1), "w", buffering=1))
    os.dup2(2, 1)  # stray prints from frameworks go to the log, not into the protocol
    sys.stdout = sys.stderr
    if heartbeat:
        channel.beat_until_hello()
    return channel
