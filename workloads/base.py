"""The vocabulary every workload definition speaks.

A workload is defined once, in plain NumPy: its parameter grid per suite, its FLOP and
byte counts, how to draw inputs, and a float64 reference. Framework adapters only ever
see the inputs this module produced, so every framework is checked against the same
numbers. Nothing here imports a framework.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

Params = Mapping[str, Any]
MODES = ("eager", "compiled")
"""Execution modes, a dimension like the dtype: `eager` runs the framework's ops one by one
as Python issues them (MLX's lazy graph counts: nothing fuses across the step); `compiled`
hands the whole step to the framework's compiler (torch.compile, mx.compile, XLA through
tf.function(jit_compile=True) or jax.jit). Rows of different modes are never ranked together."""
Inputs = dict[str, np.ndarray]


# Relative-error tolerances of a dense float product (matmul, bmm, sdpa, decode attention):
# fp32 sums in fp32, tf32/fp16/bf16 keep 10/10/7 mantissa bits, and the error of a sum of
# such products grows with the length of the reduction. One table, so the four agree.
DENSE_TOLERANCE: Mapping[str, float] = {"fp32": 1e-4, "tf32": 5e-3, "fp16": 1e-2, "bf16": 3e-2}


@dataclass(frozen=True)
class Workload:
    """One benchmarked operation, described independently of any framework.

    `make_inputs` returns float64 arrays; the runner rounds them to the storage dtype
    before the reference is computed, so the reference sees exactly the numbers the
    framework sees and any remaining error is the framework's arithmetic.
    """

    name: str
    summary: str
    dtypes: tuple[str, ...]
    suites: Mapping[str, Sequence[Params]]
    flops: Callable[[Params], float]
    bytes_moved: Callable[[Params, int], float]
    make_inputs: Callable[[Params, np.random.Generator], Inputs]
    reference: Callable[[Inputs, Params], np.ndarray]
    tolerance: Mapping[str, float]
    check_index: Callable[[Params], tuple[slice, ...]] = lambda p: ()
    """The part of the output that `reference` returns (and that is compared). GPU-sized
    cases check a slice so the float64 reference stays affordable on the host."""
    precision_witness: bool = True
    """False when the output cannot witness which number format ran: a scalar training
    loss averages thousands of roundings away, so its error is checked against the
    tolerance but not classified (the row says `not-classified`)."""
    assess: Callable[[np.ndarray, Inputs, Params, str, dict[str, Any], Inputs], list[str]] | None = None
    """Workload-specific figures and verdicts beyond the reference check. Called with the
    checked output, the stored inputs, the params, the row's dtype (its tolerance is the
    workload's own `tolerance[dtype]`), the row's `metrics` (which already holds what
    the adapter's `Prepared.metrics` gathered) and the case's `reference_extras` (empty
    where the workload has none); it adds figures to `metrics` and returns problems, each
    of which makes the row incorrect (e.g. "loss did not fall")."""
    reference_extras: Callable[[Inputs, Params], Inputs] | None = None
    """Float64 results beyond the reference that `assess` reads and that every worker of a
    case would compute alike (generate: the float64 greedy decoding of the prompt, seconds
    of host CPU at a 0.5B shape). Computed beside the reference from the same float64
    inputs; where the run shares a case's inputs (`shared_inputs`, bench.case_cache) they
    are stored and loaded with the reference, so one worker per run pays for them."""
    rates: Callable[[Params, int], Mapping[str, float]] | None = None
    """Work per call in units other than FLOPs and bytes (tokens, samples, weight GB),
    given the params and the dtype's itemsize; the worker divides each by the per-call
    median and stores it in `metrics` under the same name (tokens_per_s, weight_gbps)."""
    depends_on: tuple[Any, ...] = ()
    """Modules or functions whose source also defines the workload (a shared model or
    quantizer): included in `definition_hash`."""
    modes: tuple[str, ...] = ("eager",)
    """Execution modes this workload is measured in (see MODES). A one-op workload (matmul,
    SDPA) has nothing to compile across ops: its rows are `eager`, whatever wrapper
    dispatches the op (a jax.jit of one op is how JAX dispatches it eagerly anyway).
    Multi-op workloads (a training step, a decode step) are timed in both."""

    shared_inputs: bool = False
    """True where building a case's inputs and reference is costly (a model's weights and
    a float64 forward over them): the run builds them once per case and its worker
    processes share them (bench.case_cache) instead of each drawing them again."""

    timing_budget_s: float | None = None
    """The most seconds each timing kind of a case gets, whatever the suite's budget
    (`--budget` still lowers it). For a workload whose row already runs its call hundreds
    of times for its own figures (generate: ~900 decode steps of greedy generations, with
    their own intervals), the full suite's 5 s per kind bought little but minutes."""

    def cases(self, suite: str) -> list[Params]:
        return [dict(p) for p in self.suites[suite]]

    def definition_hash(self) -> str:
        """A short digest of everything that gives this workload its meaning.

        Stored in every row so that comparisons never pair results of a workload whose
        definition (maths, inputs, FLOP count) changed between two runs.
        """
        parts = [self.name, json.dumps(sorted(self.tolerance.items()))]
        hooks = tuple(h for h in (self.assess, self.rates, self.reference_extras) if h is not None)
        for fn in (self.flops, self.bytes_moved, self.make_inputs, self.reference, *hooks, *self.depends_on):
            parts.append(_source_text(fn))
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def _source_text(obj: Any) -> str:
    """Source of a function or module; a functools.partial is its function plus its bound
    arguments (its repr holds a memory address, which would change the hash every run)."""
    if isinstance(obj, functools.partial):
        return _source_text(obj.func) + repr(obj.args) + repr(sorted(obj.keywords.items()))
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        return getattr(obj, "__qualname__", type(obj).__qualname__)


def params_key(params: Params) -> str:
    """Canonical JSON text of a parameter dict (the `params` column)."""
    return json.dumps(dict(params), sort_keys=True, separators=(",", ":"))
