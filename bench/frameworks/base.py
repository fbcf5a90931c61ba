"""What every framework adapter provides, and the logic they all share.

An adapter is the only code that touches a framework. It selects a backend (metal,
cuda or cpu), exposes the framework's completion barrier and memory counters, sets the
math mode a dtype asks for, and builds each workload as a zero-argument callable on
device-resident inputs. The timing protocol (bench.measure) and the checking
(bench.precision) are shared and never re-implemented here.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np

BACKENDS = ("metal", "cuda", "cpu")
DEVICE_CHOICES = ("auto",) + BACKENDS


class Unsupported(Exception):
    """This framework, on this backend, has no way to run the case; the message says why."""


class Skipped(Exception):
    """The case could run here but is left out of this suite (a compile slower than the
    quick suite's budget); the message says why and where it does run."""


class BackendUnavailable(Exception):
    """The requested backend is not present; never silently replaced by another."""


def choose_backend(requested: str, available: Sequence[str], framework: str) -> str:
    """`available` is in preference order (metal, then cuda, then cpu); auto takes the first."""
    if requested not in DEVICE_CHOICES:
        raise ValueError(f"unknown device {requested!r} (choose from: {', '.join(DEVICE_CHOICES)})")
    if not available:
        raise BackendUnavailable(f"{framework} found no usable backend")
    if requested == "auto":
        return available[0]
    if requested in available:
        return requested
    raise BackendUnavailable(
        f"{framework}: backend {requested!r} is not available here (available: {', '.join(available)})"
    )


def dist_versions(*names: str) -> dict[str, str]:
    """Installed versions of the named distributions; absent ones are left out."""
    found = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


@dataclass(frozen=True)
class Prepared:
    """A workload ready to time: `call` issues one operation and does not wait."""

    call: Callable[[], Any]
    implementation: str
    notes: Mapping[str, Any] = field(default_factory=dict)
    checked: Callable[[Any], Any] = lambda out: out
    """The part of a call's output that is checked against the reference. A training
    step returns its loss together with the updated state, so the barrier waits on the
    whole step while only the loss is compared."""
    metrics: Callable[[], Mapping[str, Any]] | None = None
    """Framework-side figures gathered after the check and before timing (a training
    run's loss curve over a fixed number of steps, its trainable-parameter count);
    they land in the row's `metrics` and the workload's `assess` judges them."""
    mode: str = "eager"
    """What ran: `eager`, or `compiled` when the framework's compiler took the whole step
    (the worker refuses a Prepared whose mode is not the one the case asked for)."""


@dataclass(frozen=True)
class PeakMemory:
    device_bytes: int | None
    note: str = ""  # why device_bytes is null, or what it counts


class Adapter(ABC):
    """Base class of the four adapters. Subclasses fill in the abstract methods and
    one `prepare_<workload>` method per workload they implement."""

    name: ClassVar[str]
    mode: str = "eager"  # the execution mode of the case being prepared (set by the worker)
    suite: str = "quick"  # the suite it belongs to (modes too slow to set up for quick skip there)
    #: (mode, backend) -> why that mode takes longer to set up than the quick suite's budget
    #: there (a C++ build per compiled function; JAX's eager compiling every primitive).
    quick_suite_skips: ClassVar[Mapping[tuple[str, str], str]] = {}

    def __init__(self, device: str = "auto", threads: int | None = None) -> None:
        self.threads_requested = threads
        self.configure_threads(threads)
        self.backend = choose_backend(device, self.available_backends(), self.name)
        self.activate_backend()

    # -- backend ---------------------------------------------------------------------
    @abstractmethod
    def available_backends(self) -> list[str]:
        """Usable backends in preference order, probed through the framework's own API."""

    def activate_backend(self) -> None:
        """Make `self.backend` the default device. Called once, after selection."""

    @abstractmethod
    def device_name(self) -> str: ...

    @abstractmethod
    def versions(self) -> dict[str, str]:
        """Framework version first, then plugins/backends that decide what ran."""

    @abstractmethod
    def threads(self) -> int | None:
        """Intra-op threads the framework will use (CPU fairness)."""

    def configure_threads(self, threads: int | None) -> None:
        """Apply --threads before the framework starts its pools."""

    # -- precision -------------------------------------------------------------------
    def tf32_unsupported_reason(self) -> str | None:
        """None where a reduced-precision fp32 matmul mode exists on this backend."""
        if self.backend == "cpu":
            return "no reduced-precision (TF32-class) fp32 matmul mode exists on CPU"
        return None

    @abstractmethod
    def set_math_mode(self, dtype: str) -> str:
        """Force fp32 strict for fp32, ask for TF32 for tf32; return the switch given."""

    # -- execution -------------------------------------------------------------------
    @abstractmethod
    def asarray(self, x: np.ndarray, dtype: str) -> Any:
        """Move a host array (exactly representable in `dtype`) to the device as `dtype`."""

    @abstractmethod
    def to_numpy(self, out: Any) -> np.ndarray: ...

    @abstractmethod
    def barrier(self, out: Any) -> None:
        """Block until `out`, and all work queued before it, has completed."""

    def enqueue(self, out: Any) -> None:
        """Start computing `out` without waiting (only lazy frameworks need this)."""

    def unsupported_reason(self, exc: BaseException) -> str | None:
        """A reason when `exc` means "this framework/backend cannot do the case" rather
        than a crash; such cases are recorded as unsupported, not error."""
        if isinstance(exc, NotImplementedError):
            return str(exc) or "not implemented"
        return None

    # -- memory ----------------------------------------------------------------------
    @abstractmethod
    def reset_peak_memory(self) -> None: ...

    @abstractmethod
    def peak_memory(self) -> PeakMemory: ...

    def release(self) -> None:
        """Return cached device memory between cases."""

    # -- modes -----------------------------------------------------------------------
    def check_suite_budget(self) -> None:
        """Skipped when (mode, backend) is listed in `quick_suite_skips` and the suite is
        quick (the reason says so and names --suite full, where it runs). The worker asks
        before it draws inputs, so a skip costs nothing."""
        reason = self.quick_suite_skips.get((self.mode, self.backend))
        if reason and self.suite == "quick":
            raise Skipped(f"{self.mode} {self.name} on {self.backend} is left to --suite full: {reason}")

    @property
    def compiled(self) -> bool:
        """Whether the case being prepared asked for the compiled mode; every builder of a
        workload measured in both modes reads it once."""
        self.check_suite_budget()
        return self.mode == "compiled"

    # -- workloads -------------------------------------------------------------------
    #: Modules beside the adapter (in its framework's folder) that hold `prepare_<workload>`
    #: functions. Imported only when a case of theirs runs, so a worker that times matmul
    #: never imports the training or generation code (or their optional dependencies).
    workload_modules: ClassVar[tuple[str, ...]] = ("ops", "generate")

    def prepare(self, workload: str, params: Mapping[str, Any], dtype: str, inputs: Mapping[str, np.ndarray]) -> Prepared:
        """Build `workload` for timing. Short workloads are `prepare_<workload>` methods of
        the adapter; longer ones are `prepare_<workload>(adapter, params, dtype, inputs)`
        functions in the framework folder's `workload_modules`. Neither: `Unsupported`."""
        method = getattr(self, f"prepare_{workload}", None)
        if method is not None:
            return method(params, dtype, inputs)
        package = type(self).__module__.rpartition(".")[0]
        for name in self.workload_modules:
            module = importlib.import_module(f"{package}.{name}")
            builder = getattr(module, f"prepare_{workload}", None)
            if builder is not None:
                return builder(self, params, dtype, inputs)
        raise Unsupported(f"the {self.name} adapter does not implement {workload!r} yet")
