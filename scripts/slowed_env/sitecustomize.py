"""Slows torch honestly, for `bench ab` demonstrations: every timed call does one extra op.

Imported at start-up by the interpreter that `scripts/slowed_env/python` runs. It wraps the
torch adapter's prepared call so that each call also computes `out * 1.0` on its output
tensor, as a regression that adds an elementwise pass would. The extra op is real work on
the same device and enters every timed call (latency and queued) exactly as the original
does; nothing is scaled after measuring. Other frameworks are untouched.
"""

from __future__ import annotations

import dataclasses

try:
    from bench.frameworks import base
except ImportError:  # not a metalbench worker: nothing to slow
    base = None

if base is not None:
    _prepare = base.Adapter.prepare

    def _slowed_prepare(self, workload, params, dtype, inputs):  # type: ignore[no-untyped-def]
        prepared = _prepare(self, workload, params, dtype, inputs)
        if type(self).__name__ != "TorchAdapter":
            return prepared
        import torch

        call = prepared.call

        def slowed():  # type: ignore[no-untyped-def]
            out = call()
            first = out if isinstance(out, torch.Tensor) else next(
                (x for x in (out if isinstance(out, (tuple, list)) else ()) if isinstance(x, torch.Tensor)), None)
            if first is not None and first.is_floating_point():
                torch.mul(first, 1.0)
            return out

        return dataclasses.replace(prepared, call=slowed, implementation=prepared.implementation + " + extra mul")

    base.Adapter.prepare = _slowed_prepare
