"""What exists: frameworks, workloads, dtypes, suites. The one place to register either.

Framework entries are data only — importing this module imports no framework, so the
parent process (and `bench list`) stays light. The adapter module is imported inside
the worker process that runs that framework.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from bench.argtypes import UsageError
from bench.frameworks.base import DEVICE_CHOICES
from bench.precision import DTYPES
from workloads import WORKLOADS

SUITES = ("quick", "full")
# Sampling time per case and timing kind in each process when `bench run --budget` is not given.
# Quick: 0.2 s in each of the quick suite's 3 processes samples as long as the 0.6 s of one
# process did, and the figure now stands on the processes, where the noise lives (samples inside
# one process are correlated; docs/processes.md has the per-process costs); full: tight
# intervals on a GPU.
SUITE_BUDGET_S = {"quick": 0.2, "full": 5.0}
TIMINGS = ("latency", "queued", "both")


@dataclass(frozen=True)
class FrameworkSpec:
    name: str
    adapter: str  # "module:Class", imported only inside the worker
    import_name: str  # importable when installed: the tests skip a framework without it (a run asks its worker)
    extra: str  # pip extra of metalbench
    aliases: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)  # the worker's environment (the runner adds --threads'); adapters set none
    env_by_dtype: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    env_by_device: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # by --device

    @property
    def install_hint(self) -> str:
        return f"pip install 'metalbench[{self.extra}]'"

    def worker_env(self, dtype: str, device: str = "auto") -> dict[str, str]:
        """Environment a worker needs for `dtype` on `device`; cases differing here need separate workers."""
        return {**self.env, **self.env_by_device.get(device, {}), **self.env_by_dtype.get(dtype, {})}


FRAMEWORKS: dict[str, FrameworkSpec] = {
    spec.name: spec
    for spec in (
        FrameworkSpec("torch", "bench.frameworks.torch.adapter:TorchAdapter", "torch", "torch", aliases=("pytorch",)),
        FrameworkSpec(
            "tensorflow",
            "bench.frameworks.tensorflow.adapter:TensorFlowAdapter",
            "tensorflow",
            "tensorflow",
            aliases=("tf",),
            env={"TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow"},
        ),
        FrameworkSpec(
            "jax",
            "bench.frameworks.jax.adapter:JaxAdapter",
            "jax",
            "jax",
            # JAX initialises every discovered plugin on first use and re-raises any failure for
            # every backend (jax 0.5.0 and 0.11 xla_bridge.backends(); plugins register with
            # fail_quietly=False), so a Metal plugin that cannot start (jax-metal on a current
            # macOS, jax#34109; a VM without Metal) would fail the CPU rows too. JAX_PLATFORMS
            # limits initialisation to the platforms named.
            env_by_device={"cpu": {"JAX_PLATFORMS": "cpu"}},
        ),
        FrameworkSpec(
            "mlx",
            "bench.frameworks.mlx.adapter:MLXAdapter",
            "mlx.core",
            "mlx",
            # MLX reads MLX_ENABLE_TF32 from the environment; default 1 would run fp32 as TF32.
            env={"MLX_ENABLE_TF32": "0"},
            env_by_dtype={"tf32": {"MLX_ENABLE_TF32": "1"}},
        ),
    )
}


def resolve_framework(name: str) -> str:
    """Canonical framework name for a name or alias; ValueError naming the choices."""
    key = name.strip().lower()
    for spec in FRAMEWORKS.values():
        if key == spec.name or key in spec.aliases:
            return spec.name
    raise ValueError(f"unknown framework {name!r} (choose from: {', '.join(FRAMEWORKS)})")


def resolve_workload(name: str) -> str:
    if name in WORKLOADS:
        return name
    raise ValueError(f"unknown workload {name!r} (choose from: {', '.join(WORKLOADS)})")


# Text parameters that also take a path to a file of the user's (workloads.corpus.load).
PATH_PARAMS = {"data": "a UTF-8 text file"}


def parse_params(workload: str, text: str) -> dict[str, object]:
    """`m=4096,n=4096,k=4096` -> a parameter dict for `workload`.

    Each value is read as the type the workload's own cases give that key, so every
    workload can be described: whole numbers (sizes, counts) must be positive integers,
    decimals (learning rates) positive finite numbers, flags true/false, and text one of
    the values the suites use (e.g. qmatmul's scheme), or for a path parameter such as
    the training `data`, a file that exists. Every key must be given, and only once.
    """
    template = dict(WORKLOADS[workload].cases("quick")[0])
    given: dict[str, object] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or key not in template:
            raise ValueError(f"bad parameter {item!r} for {workload} (expected KEY=VALUE with KEY one of: {', '.join(template)})")
        if key in given:
            raise ValueError(f"duplicate parameter {key!r} for {workload} (give each KEY once)")
        given[key] = _parse_value(workload, key, value, template[key])
    missing = [k for k in template if k not in given]
    if missing:
        raise ValueError(f"{workload} needs every parameter: missing {', '.join(missing)} (e.g. {params_example(workload)})")
    return given


def params_grid(workloads: list[str], texts: list[str] | None) -> list[dict[str, object]] | None:
    """The cases' parameters from `--params` (each text through parse_params), or None for the
    suite's grid; one usage error when they name no single workload or do not parse. One
    reading for `bench run` and `bench noise`."""
    if not texts:
        return None
    if len(workloads) != 1:
        raise UsageError("--params needs exactly one --workload")
    try:
        return [parse_params(workloads[0], text) for text in texts]
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _parse_value(workload: str, key: str, value: str, like: object) -> object:
    """`value` as the type of `like` (the quick suite's value for this key)."""
    if isinstance(like, bool):
        if value.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"bad value for {workload} {key}: {value!r} (expected true or false)")
        return value.lower() in ("true", "1")
    if isinstance(like, int):
        try:
            number = int(value)
        except ValueError:
            number = 0
        if number < 1:
            raise ValueError(f"bad size for {workload}: {key}={value} (must be a positive integer)")
        return number
    if isinstance(like, float):
        try:
            real = float(value)
        except ValueError:
            real = math.nan
        if not (math.isfinite(real) and real > 0):
            raise ValueError(f"bad value for {workload} {key}: {value!r} (expected a positive number, e.g. {like})")
        return real
    choices = sorted({str(case[key]) for suite in SUITES for case in WORKLOADS[workload].cases(suite) if key in case})
    if value in choices or (key in PATH_PARAMS and Path(value).is_file()):
        return value
    also = f", or the path of {PATH_PARAMS[key]}" if key in PATH_PARAMS else ""
    raise ValueError(f"bad value for {workload} {key}: {value!r} (choose from: {', '.join(choices)}{also})")


def format_params(params: Mapping[str, object]) -> str:
    """A parameter dict as `-p` text, the inverse of `parse_params` (flags as true/false;
    text, such as a path, as it is)."""
    return ",".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in params.items())


def params_example(workload: str) -> str:
    return format_params(WORKLOADS[workload].cases("quick")[0])


def resolve_choice(kind: str, value: str, choices: tuple[str, ...]) -> str:
    if value in choices:
        return value
    raise ValueError(f"unknown {kind} {value!r} (choose from: {', '.join(choices)})")


__all__ = [
    "DEVICE_CHOICES",
    "DTYPES",
    "FRAMEWORKS",
    "SUITES",
    "SUITE_BUDGET_S",
    "TIMINGS",
    "WORKLOADS",
    "FrameworkSpec",
    "format_params",
    "parse_params",
    "resolve_choice",
    "resolve_framework",
    "resolve_workload",
]
