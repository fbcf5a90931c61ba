"""A NumPy 'framework' for runner tests: it can crash, hang, or skip its barrier on demand.

Selected through params keys that the workload itself ignores: {"behaviour": "crash"}
exits the worker process mid-case, {"behaviour": "hang"} never answers.
"""

from __future__ import annotations

import os
import time
from typing import Any, Mapping

import numpy as np

from bench.frameworks.base import Adapter, PeakMemory, Prepared


class FakeAdapter(Adapter):
    name = "fake"

    def available_backends(self) -> list[str]:
        return ["cpu"]

    def device_name(self) -> str:
        return "numpy"

    def versions(self) -> dict[str, str]:
        return {"numpy": np.__version__}

    def threads(self) -> int | None:
        return 1

    def set_math_mode(self, dtype: str) -> str:
        return "numpy"

    def asarray(self, x: np.ndarray, dtype: str) -> Any:
        return np.asarray(x, dtype=np.float64)

    def to_numpy(self, out: Any) -> np.ndarray:
        return np.asarray(out)

    def barrier(self, out: Any) -> None:
        pass

    def matmul(self, a: Any, b: Any) -> Any:
        return np.matmul(a, b)

    def reset_peak_memory(self) -> None:
        pass

    def peak_memory(self) -> PeakMemory:
        return PeakMemory(None, "fake framework")

    def prepare_matmul(self, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
        behaviour = p.get("behaviour")
        if behaviour == "crash":
            os._exit(3)
        if behaviour == "hang":
            time.sleep(3600)
        a, b = self.asarray(x["a"], dtype), self.asarray(x["b"], dtype)
        return Prepared(lambda: a @ b, "numpy.matmul")


class AsyncAdapter(FakeAdapter):
    """Work runs on a background thread, like a GPU queue; the barrier waits for it."""

    name = "fake-async"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.pool = ThreadPoolExecutor(max_workers=1)
        super().__init__(*args, **kwargs)

    def to_numpy(self, out: Any) -> np.ndarray:
        return np.asarray(out.result())

    def barrier(self, out: Any) -> None:
        out.result()

    def release(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        from concurrent.futures import ThreadPoolExecutor

        self.pool = ThreadPoolExecutor(max_workers=1)

    def matmul(self, a: Any, b: Any) -> Any:
        # one worker thread = one in-order queue: a's producer has finished when this runs
        return self.pool.submit(lambda: np.matmul(_value(a), _value(b)))

    def prepare_matmul(self, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
        a, b = self.asarray(x["a"], dtype), self.asarray(x["b"], dtype)
        return Prepared(lambda: self.pool.submit(np.matmul, a, b), "numpy.matmul on a worker thread")


def _value(x: Any) -> Any:
    return x.result() if hasattr(x, "result") else x


class ForgetfulAdapter(AsyncAdapter):
    """The bug published MPS/CUDA tables had: the barrier returns without waiting."""

    name = "fake-no-barrier"

    def barrier(self, out: Any) -> None:
        pass


class UncheckedForgetfulAdapter(ForgetfulAdapter):
    """A forgetful barrier on a framework the barrier check cannot drive (no matmul hook):
    only the datasheet-peak bound is left to catch it."""

    name = "fake-no-barrier-unchecked"

    def matmul(self, a: Any, b: Any) -> Any:
        raise NotImplementedError("no matmul hook")


class CompilingAdapter(FakeAdapter):
    """A framework with a compiler: in the compiled mode its first call "compiles" (sleeps
    COMPILE_S and counts the compilation), later calls run the compiled function. On its
    one backend, the eager mode of `generate`-like cases is too slow for the quick suite.
    params {"behaviour": "ignore-mode"} builds eager whatever the case asked (a bug the
    worker must catch)."""

    name = "fake-compiling"
    COMPILE_S = 0.2
    quick_suite_skips = {("eager", "cpu"): "this fake's eager mode takes an hour to set up"}

    def prepare_matmul(self, p: Mapping[str, Any], dtype: str, x: Mapping[str, np.ndarray]) -> Prepared:
        a, b = self.asarray(x["a"], dtype), self.asarray(x["b"], dtype)
        if p.get("behaviour") == "ignore-mode":
            return Prepared(lambda: a @ b, "numpy.matmul")
        if not self.compiled:
            return Prepared(lambda: a @ b, "numpy.matmul")
        state = {"compiled": 0}

        def call() -> Any:
            if not state["compiled"]:
                time.sleep(self.COMPILE_S)
                state["compiled"] += 1
            return a @ b

        return Prepared(call, f"fake.compile(numpy.matmul), compiled {state['compiled']}x before the first call", mode="compiled")


class PlacementProbeFailsAdapter(FakeAdapter):
    """Its placement probe raises (a plugin whose arrays cannot say where they live): the
    doctor must not count that backend as shown to work."""

    def placement(self, out: Any) -> Any:
        raise RuntimeError("device of the output unknown")
