"""What every framework adapter provides, and the logic they all share.

An adapter is the only code that touches a framework. It selects a backend (metal,
cuda or cpu), exposes the framework's completion barrier and memory counters, sets the
math mode a dtype asks for, and builds each workload as a zero-argument callable on
device-resident inputs. The timing protocol (bench.measure) and the checking
(bench.precision) are shared and never re-implemented here.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, ContextManager, Iterator, Mapping, Sequence

import numpy as np

from bench.measure import DeviceEvents

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


def tf32_needs_ampere(compute_capability: tuple[int, int]) -> str | None:
    """Why a CUDA GPU of this compute capability has no TF32 (None from Ampere, 8.0, on)."""
    if tuple(compute_capability) < (8, 0):
        return "TF32 needs an NVIDIA GPU of compute capability 8.0 or newer"
    return None


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
class Placement:
    """Where a case's output (and, where the framework says, its ops) ran.

    `ok` is True when every output leaf lives on the selected device, False when one does
    not (the row becomes an error), None when the framework cannot tell. `host_ops` names
    the ops of the timed function that ran on the host CPU although a GPU was selected
    (TensorFlow places ops without a kernel for the device on the CPU without an error):
    such a row is recorded but never ranked as a GPU row."""

    ok: bool | None
    where: str
    host_ops: Mapping[str, int] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        if self.ok is None:
            return f"not checked: {self.where}"
        if not self.ok:
            return f"failed: {self.where}"
        if self.host_ops:
            ops = ", ".join(f"{op}×{n}" for op, n in sorted(self.host_ops.items()))
            return f"partial: {self.where}; on the host CPU: {ops}"
        return f"ok: {self.where}"


def leaves(out: Any) -> Iterator[Any]:
    """The arrays of an output that may be a tuple/list/dict tree (a training step returns
    its loss with the updated state)."""
    if isinstance(out, (tuple, list)):
        for item in out:
            yield from leaves(item)
    elif isinstance(out, dict):
        for item in out.values():
            yield from leaves(item)
    elif out is not None:
        yield out


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
        self.configure_threads(threads)
        self.backend = choose_backend(device, self.available_backends(), self.name)
        self.activate_backend()

    # -- backend ---------------------------------------------------------------------
    @abstractmethod
    def available_backends(self) -> list[str]:
        """Usable backends in preference order, probed through the framework's own API."""

    def missing_reason(self, backend: str) -> str:
        """Why `backend` is not among the available ones, in the framework's words (bench doctor)."""
        return f"{self.name} reports no {backend} backend here"

    def activate_backend(self) -> None:
        """Make `self.backend` the default device. Called once, after selection."""

    def device_name(self) -> str:
        """The device's own name. On CPU it is the host's CPU (what `bench env` and the
        rows show); an adapter names its accelerators itself."""
        if self.backend == "cpu":
            from bench.machine import cpu_name

            return cpu_name()
        raise NotImplementedError(f"the {self.name} adapter does not name its {self.backend} device")

    @abstractmethod
    def versions(self) -> dict[str, str]:
        """Framework version first, then plugins/backends that decide what ran."""

    @abstractmethod
    def threads(self) -> int | None:
        """Intra-op threads the framework will use (CPU fairness)."""

    def configure_threads(self, threads: int | None) -> None:
        """Apply --threads before the framework starts its pools."""

    def compile_cache(self) -> str:
        """The persistent compile cache this process has (the `compile_cache` column): with one,
        a case's first call may be served from disk, so it is a cached first call, not a cold
        compile. An adapter whose framework has such a cache says which and where."""
        return f"none: {self.name} keeps compiled code in memory only"

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

    # -- self-checks (bench.selfcheck) ---------------------------------------------------
    def matmul(self, a: Any, b: Any) -> Any:
        """`a @ b` on device arrays, issued without waiting: one step of the dependent
        chain bench.selfcheck times to prove that `barrier` waits for the work."""
        raise NotImplementedError(f"the {self.name} adapter has no matmul hook for the barrier check")

    def placement(self, out: Any) -> Placement:
        """Where `out` lives, compared with the selected device."""
        return Placement(None, f"the {self.name} adapter has no placement hook")

    def observing_placement(self) -> ContextManager[None]:
        """Wraps a case's build and first call; a framework that can only report op
        placement while a graph is first instantiated (TensorFlow's run metadata) records it here."""
        return contextlib.nullcontext()

    def device_events(self) -> DeviceEvents:
        """Timing events recorded on the device's own stream (bench.measure.DeviceEvents),
        for the device-time figure; raises Unsupported with the reason where the framework
        exposes none (then that figure is null and the row says why)."""
        if self.backend == "cpu":
            raise Unsupported("on cpu the host is the device: no separate device time (latency is it)")
        raise Unsupported(f"{self.name} exposes no device timing events on {self.backend}")

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

    def check_case_budget(self, workload: str, params: Mapping[str, Any], dtype: str) -> None:
        """Raise Skipped when this case, in this mode, would run far past a case's time:
        asked by the worker before it draws inputs (a 0.5B model's weights and float64
        reference cost seconds), so the skip costs nothing but the adapter's own probe.
        Default: every case runs."""

    @property
    def compiled(self) -> bool:
        """Whether the case being prepared asked for the compiled mode; every builder of a
        workload measured in both modes reads it once."""
        self.check_suite_budget()
        return self.mode == "compiled"

    # -- workloads -------------------------------------------------------------------
    #: Modules beside the adapter (in its framework's folder) that hold `prepare_<workload>`
    #: functions; a framework may lack any of them. Imported only when a case of theirs runs,
    #: so a worker that times matmul never imports the generation code (or its dependencies).
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
            try:
                module = importlib.import_module(f"{package}.{name}")
            except ModuleNotFoundError as exc:
                if exc.name != f"{package}.{name}":
                    raise  # the module exists but needs something missing: a real error
                continue  # a framework without, say, generate.py implements no workload there
            builder = getattr(module, f"prepare_{workload}", None)
            if builder is not None:
                return builder(self, params, dtype, inputs)
        raise Unsupported(f"the {self.name} adapter does not implement {workload!r} yet")


def describe_cache_dir(kind: str, path: str | os.PathLike[str] | None) -> str:
    """`kind: PATH (holds entries | empty)` as the process found it at start, or `none: …`
    when no folder is set; only the first entry is looked at (a cache may hold thousands)."""
    if not path:
        return f"none: {kind} off (no folder set)"
    try:
        with os.scandir(path) as entries:
            state = "holds entries" if next(entries, None) is not None else "empty"
    except OSError:
        state = "empty"
    return f"{kind}: {path} ({state} at process start)"
